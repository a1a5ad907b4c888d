/**
 * One entry point over the attestation predicates berth knows (formats.md §12), and the check
 * that a statement really describes the image manifest it is attached to.
 */
import { digestAlgorithm, digestHex, parseDigest } from '../core/digest.js';
import { fieldPath } from '../core/errors.js';
import {
  PREDICATE_SLSA_PROVENANCE_V02,
  PREDICATE_SLSA_PROVENANCE_V1,
  isProvenancePredicateType,
  summarizeProvenance,
  type ProvenanceSummary,
} from './provenance.js';
import { PREDICATE_CYCLONEDX, PREDICATE_SPDX, sbomFormatOf, summarizeSbom, type SbomSummary } from './sbom.js';
import { STATEMENT_TYPE_V01, type Statement } from './statement.js';

// Local copies (media-types.ts is being written elsewhere; unify later).
/** `vnd.docker.reference.type` value marking a BuildKit attestation manifest in an index. */
export const ATTESTATION_REFERENCE_TYPE = 'attestation-manifest';
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';
/** Media type of each attestation layer. */
export const IN_TOTO_LAYER_MEDIA_TYPE = 'application/vnd.in-toto+json';
/** artifactType of BuildKit's OCI-artifact form of the attestation manifest (v0.32+). */
export const ATTESTATION_ARTIFACT_TYPE = 'application/vnd.docker.attestation.manifest.v1+json';

export { PREDICATE_SLSA_PROVENANCE_V02, PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_SPDX, PREDICATE_CYCLONEDX };

interface SummaryBase {
  readonly predicateType: string;
  /** Bytes of the statement as stored. */
  readonly size: number;
  readonly bare: boolean;
}

export interface ProvenanceAttestation extends SummaryBase, ProvenanceSummary {
  readonly kind: 'provenance';
}

export interface SbomAttestation extends SummaryBase, SbomSummary {
  readonly kind: 'sbom';
}

export interface UnknownAttestation extends SummaryBase {
  readonly kind: 'unknown';
}

export type AttestationSummary = ProvenanceAttestation | SbomAttestation | UnknownAttestation;

/** Summarises by predicate type; predicate types berth does not read give `kind: 'unknown'`. */
export function summarizeStatement(statement: Statement): AttestationSummary {
  const base: SummaryBase = { predicateType: statement.predicateType, size: statement.size, bare: statement.bare };
  if (isProvenancePredicateType(statement.predicateType)) {
    return { kind: 'provenance', ...base, ...summarizeProvenance(statement) };
  }
  if (sbomFormatOf(statement.predicateType) !== undefined) {
    return { kind: 'sbom', ...base, ...summarizeSbom(statement) };
  }
  return { kind: 'unknown', ...base };
}

/**
 * Problems with the statement's subjects, given the digest of the image manifest it is attached
 * to (the attestation manifest's `vnd.docker.reference.digest` or OCI `subject`). Every subject
 * must carry that digest. An empty subject list is normal for BuildKit's in-toto v0.1
 * provenance and bare predicates: reported as one entry starting with `note: `.
 * Throws BERTH_INVALID_DIGEST when `subjectDigest` itself is malformed.
 */
export function checkSubjects(statement: Statement, subjectDigest: string): string[] {
  const want = parseDigest(subjectDigest, 'subjectDigest');
  const alg = digestAlgorithm(want);
  const hex = digestHex(want);
  if (statement.subjects.length === 0) {
    const buildkitV01 = statement.bare
      || (statement.type === STATEMENT_TYPE_V01 && isProvenancePredicateType(statement.predicateType));
    return buildkitV01
      ? [`note: subject: empty (as buildkit writes in-toto v0.1 provenance), so it cannot confirm it describes ${want}`]
      : [`subject: empty, want a subject with digest ${want}`];
  }
  const problems: string[] = [];
  statement.subjects.forEach((subject, i) => {
    const got = subject.digests[alg];
    if (got === undefined) {
      const algs = Object.keys(subject.digests);
      problems.push(`${fieldPath('subject', i, 'digest')}: no ${alg} digest to compare with ${want} (has ${algs.length === 0 ? 'none' : algs.join(', ')})`);
    } else if (got !== hex) {
      problems.push(`${fieldPath('subject', i, 'digest', alg)}: ${alg}:${got} is not the image manifest ${want}`);
    }
  });
  return problems;
}
