/** Attestations (BuildKit in-toto statements): decoding and summaries. Pure: no I/O. */
export {
  DSSE_IN_TOTO_PAYLOAD_TYPE,
  MAX_STATEMENT_BYTES,
  PREDICATE_TYPE_ANNOTATION,
  STATEMENT_TYPE_V01,
  STATEMENT_TYPE_V1,
  decodeStatement,
  type DecodeStatementOptions,
  type Statement,
  type StatementSubject,
} from './statement.js';
export {
  BUILDKIT_METADATA_KEY,
  PREDICATE_SLSA_PROVENANCE_V02,
  PREDICATE_SLSA_PROVENANCE_V1,
  isProvenancePredicateType,
  summarizeProvenance,
  type ProvenanceMaterial,
  type ProvenanceSource,
  type ProvenanceSummary,
} from './provenance.js';
export {
  LARGEST_PACKAGES,
  PREDICATE_CYCLONEDX,
  PREDICATE_SPDX,
  sbomFormatOf,
  summarizeSbom,
  type SbomPackage,
  type SbomSummary,
} from './sbom.js';
export {
  ATTESTATION_ARTIFACT_TYPE,
  ATTESTATION_REFERENCE_TYPE,
  IN_TOTO_LAYER_MEDIA_TYPE,
  REFERENCE_DIGEST_ANNOTATION,
  REFERENCE_TYPE_ANNOTATION,
  checkSubjects,
  summarizeStatement,
  type AttestationSummary,
  type ProvenanceAttestation,
  type SbomAttestation,
  type UnknownAttestation,
} from './attestation.js';
