/**
 * The attestations of an image by reference, as `berth attestations` shows them: for each
 * platform image of the selected root, the attestation manifests attached to it — BuildKit's
 * index entries (`vnd.docker.reference.digest`, formats.md §12.1) and OCI 1.1 referrers whose
 * `subject` is the image, when the place lists them (§13: next to the image in its index, in
 * index.json, or in an index tagged `sha256-<hex>` by the referrers tag schema; only those with
 * BuildKit's artifact type or in-toto layers count) — with every in-toto layer decoded,
 * summarised and its subjects checked against the image manifest digest.
 * Opens its own source and closes it.
 */
import type { Descriptor } from './core/descriptor.js';
import { shortDigest } from './core/digest.js';
import { toBerthError } from './core/errors.js';
import { parseJsonBytes } from './core/json.js';
import type { ImageManifest } from './core/manifest.js';
import {
  ANNOTATION_DOCKER_REFERENCE_DIGEST,
  ANNOTATION_IN_TOTO_PREDICATE_TYPE,
  DOCKER_ATTESTATION_MANIFEST,
  IN_TOTO,
  OCI_EMPTY,
  bareMediaType,
  classifyMediaType,
} from './core/media-types.js';
import { formatPlatform } from './core/platform.js';
import {
  MAX_STATEMENT_BYTES,
  checkSubjects,
  decodeStatement,
  isProvenancePredicateType,
  sbomFormatOf,
  summarizeStatement,
  type AttestationSummary,
  type StatementSubject,
} from './attest/index.js';
import { describeBlob, fetchBytes } from './content/store.js';
import { entryRole, readNode, type GraphNode } from './image/node.js';
import { platformCandidates, resolveManifest } from './image/resolve.js';
import { withSource, type ReadOptions } from './images.js';
import type { ImageSource } from './transports/transport.js';

export interface AttestationsOptions extends ReadOptions {
  /**
   * Keep only statements of this predicate type: an exact URI
   * (`https://slsa.dev/provenance/v1`), or `provenance` (any SLSA version), `sbom` (SPDX or
   * CycloneDX), `spdx`, `cyclonedx`.
   */
  readonly predicateType?: string;
  /** Include each statement's whole JSON document (as stored) as `document`. */
  readonly raw?: boolean;
}

export interface AttestationsResult {
  readonly reference: string;
  /** Digest of the root index; undefined when the root is a single manifest. */
  readonly index: string | undefined;
  /** The predicate-type filter asked for, if any. */
  readonly predicateType?: string;
  /** One entry per platform image of the root (only the asked one with a platform), in index order. */
  readonly images: readonly ImageAttestations[];
}

export interface ImageAttestations {
  readonly platform: string | undefined;
  /** Digest of the image manifest: what the attestations describe. */
  readonly digest: string;
  readonly present: boolean;
  readonly attestations: readonly AttestationManifestInfo[];
}

export interface AttestationManifestInfo {
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  /**
   * How it is attached to the image: BuildKit's `vnd.docker.reference.digest` index annotation,
   * or an OCI 1.1 `subject` (a referrer listed in the index or in the entry point).
   */
  readonly attachedBy: 'annotation' | 'subject';
  /**
   * BuildKit's legacy form (a real image config with platform unknown/unknown) or the OCI
   * artifact form (empty config, `artifactType`); undefined when the manifest is absent.
   */
  readonly form: 'image-config' | 'oci-artifact' | undefined;
  readonly artifactType?: string;
  readonly present: boolean;
  /** One per in-toto layer (those the predicate-type filter keeps), in layer order. */
  readonly statements: readonly AttestationStatementInfo[];
  /** Layers that are not in-toto statements (ignored, as BuildKit's consumers do). */
  readonly otherLayers: ReadonlyArray<{ readonly digest: string; readonly mediaType: string; readonly size: number }>;
  /** Problems with the manifest itself (unreadable, subject and annotation disagree). */
  readonly problems: readonly string[];
}

export interface AttestationStatementInfo {
  /** The layer holding the statement. */
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  /** From the statement, else from the layer's `in-toto.io/predicate-type` annotation. */
  readonly predicateType: string;
  readonly present: boolean;
  /** in-toto `_type`; '' for a bare predicate; undefined when the layer could not be decoded. */
  readonly statementType?: string;
  readonly subjects: readonly StatementSubject[];
  /** Undefined when the layer is absent or could not be decoded (see `error`). */
  readonly summary?: AttestationSummary;
  /** Subjects that do not name the image manifest. */
  readonly subjectProblems: readonly string[];
  /** Things worth knowing that are not problems (an empty BuildKit v0.1 subject list). */
  readonly notes: readonly string[];
  /** Why the layer could not be read or decoded. */
  readonly error?: string;
  /** The whole JSON document as stored, with `raw`. */
  readonly document?: unknown;
}

/** Attestations of the images the reference selects (all platforms of an index, or the one asked for). */
export async function attestationsOf(text: string, opts: AttestationsOptions = {}): Promise<AttestationsResult> {
  return withSource(text, async (src) => {
    const where = src.reference.toString();
    const ep = await src.entryPoint(opts);
    const root = await src.root(opts);
    const rootNode = await readNode(src, root.descriptor, opts);

    // The images, and every index walked to reach them (where attestations and referrers are listed).
    const indexes: Array<GraphNode & { kind: 'index' }> = [];
    let images: Array<{ descriptor: Descriptor; present: boolean }>;
    if (rootNode.kind === 'manifest') {
      images = [{ descriptor: root.descriptor, present: true }];
    } else {
      indexes.push(rootNode);
      const cands = (await platformCandidates(src, rootNode, opts)).filter((c) => entryRole(c.descriptor) === 'image');
      const seen = new Set([rootNode.descriptor.digest]);
      for (const c of cands) {
        for (const via of c.via) {
          if (seen.has(via.digest)) continue;
          seen.add(via.digest);
          const inner = await readNode(src, via, opts);
          if (inner.kind === 'index') indexes.push(inner);
        }
      }
      images = cands.map((c) => ({ descriptor: c.descriptor, present: c.present }));
      if (opts.platform !== undefined) {
        const { entry } = await resolveManifest(src, root.descriptor, { ...opts, where });
        images = images.filter((i) => i.descriptor.digest === entry.digest);
      }
    }
    const imageDigests = new Set(images.map((i) => i.descriptor.digest as string));

    // Attached manifests per image digest, in the order found: annotations first, then referrers.
    const attached = new Map<string, Array<{ desc: Descriptor; by: 'annotation' | 'subject'; node?: GraphNode & { kind: 'manifest' } }>>();
    const taken = new Set<string>();
    const attach = (subject: string, desc: Descriptor, by: 'annotation' | 'subject', node?: GraphNode & { kind: 'manifest' }) => {
      const key = `${subject} ${desc.digest}`;
      if (taken.has(key)) return;
      taken.add(key);
      const list = attached.get(subject) ?? [];
      list.push({ desc, by, ...(node ? { node } : {}) });
      attached.set(subject, list);
    };
    for (const index of indexes) {
      for (const d of index.index.manifests) {
        const subject = d.annotations?.[ANNOTATION_DOCKER_REFERENCE_DIGEST];
        if (entryRole(d) === 'attestation' && subject !== undefined && imageDigests.has(subject)) attach(subject, d, 'annotation');
      }
    }
    // Referrers: manifests listed next to the images (or in the entry point) whose subject is one.
    const pool = [
      ...indexes.flatMap((i) => i.index.manifests),
      ...ep.roots.map((r) => r.descriptor).filter((d) => d.digest !== root.descriptor.digest),
    ];
    // The referrers tag schema (§13 fallback) as layouts keep it: an index tagged `sha256-<hex>`.
    const fallbackTags = new Set([...imageDigests].map((d) => d.replace(':', '-')));
    for (const r of ep.roots) {
      if (!r.names.some((n) => fallbackTags.has(n.slice(n.lastIndexOf(':') + 1))) || classifyMediaType(r.descriptor.mediaType).kind !== 'index') continue;
      if (!(await src.has(r.descriptor, opts))) continue;
      const node = await readNode(src, r.descriptor, opts).catch(() => undefined);
      if (node?.kind === 'index') pool.push(...node.index.manifests);
    }
    const looked = new Set<string>();
    for (const d of pool) {
      if (imageDigests.has(d.digest) || looked.has(d.digest) || classifyMediaType(d.mediaType).kind !== 'manifest') continue;
      looked.add(d.digest);
      if (entryRole(d) === 'attestation' || !(await src.has(d, opts))) continue;
      const node = await readNode(src, d, opts).catch(() => undefined);
      if (node?.kind !== 'manifest') continue;
      const subject = node.manifest.subject?.digest;
      if (subject !== undefined && imageDigests.has(subject) && isAttestationManifest(node.manifest)) attach(subject, d, 'subject', node);
    }

    const out: ImageAttestations[] = [];
    for (const image of images) {
      const list: AttestationManifestInfo[] = [];
      for (const a of attached.get(image.descriptor.digest) ?? []) {
        const info = await readAttestationManifest(src, a.desc, a.by, a.node, image.descriptor.digest, opts);
        if (opts.predicateType !== undefined && info.statements.length === 0 && info.present && info.problems.length === 0) continue;
        list.push(info);
      }
      out.push({
        platform: image.descriptor.platform ? formatPlatform(image.descriptor.platform) : undefined,
        digest: image.descriptor.digest,
        present: image.present,
        attestations: list,
      });
    }
    return {
      reference: where,
      index: rootNode.kind === 'index' ? rootNode.descriptor.digest : undefined,
      ...(opts.predicateType !== undefined ? { predicateType: opts.predicateType } : {}),
      images: out,
    };
  }, opts);
}

/** A manifest that carries attestations: BuildKit's artifact type, or any in-toto layer. */
function isAttestationManifest(m: ImageManifest): boolean {
  if (m.artifactType === DOCKER_ATTESTATION_MANIFEST) return true;
  return m.layers.some((l) => bareMediaType(l.mediaType) === IN_TOTO);
}

/** Whether a statement of `predicateType` passes the `--predicate-type` filter. */
export function predicateTypeMatches(filter: string, predicateType: string): boolean {
  switch (filter) {
    case 'provenance':
      return isProvenancePredicateType(predicateType);
    case 'sbom':
      return sbomFormatOf(predicateType) !== undefined;
    case 'spdx':
    case 'cyclonedx':
      return sbomFormatOf(predicateType) === filter;
    default:
      return predicateType === filter;
  }
}

async function readAttestationManifest(
  src: ImageSource,
  desc: Descriptor,
  by: 'annotation' | 'subject',
  known: (GraphNode & { kind: 'manifest' }) | undefined,
  imageDigest: string,
  opts: AttestationsOptions,
): Promise<AttestationManifestInfo> {
  const base = { digest: desc.digest, size: desc.size, mediaType: desc.mediaType, attachedBy: by };
  const what = describeBlob(desc, 'attestation manifest');
  if (known === undefined && !(await src.has(desc, opts))) {
    return { ...base, form: undefined, present: false, statements: [], otherLayers: [], problems: [] };
  }
  let node: GraphNode;
  try {
    node = known ?? await readNode(src, desc, opts);
  } catch (err) {
    return { ...base, form: undefined, present: true, statements: [], otherLayers: [], problems: [toBerthError(err).message] };
  }
  if (node.kind !== 'manifest') {
    return { ...base, form: undefined, present: true, statements: [], otherLayers: [], problems: [`${what} is an index, want a manifest`] };
  }
  const m = node.manifest;
  const problems: string[] = [];
  if (m.subject !== undefined && m.subject.digest !== imageDigest) {
    problems.push(`${what}: subject ${shortDigest(m.subject.digest)} is not the image manifest ${imageDigest}`);
  }
  const form = bareMediaType(m.config.mediaType) === OCI_EMPTY || m.artifactType !== undefined ? 'oci-artifact' : 'image-config';
  const statements: AttestationStatementInfo[] = [];
  const otherLayers: Array<{ digest: string; mediaType: string; size: number }> = [];
  for (const layer of m.layers) {
    if (bareMediaType(layer.mediaType) !== IN_TOTO) {
      otherLayers.push({ digest: layer.digest, mediaType: layer.mediaType, size: layer.size });
      continue;
    }
    const annotated = layer.annotations?.[ANNOTATION_IN_TOTO_PREDICATE_TYPE];
    if (opts.predicateType !== undefined && annotated !== undefined && annotated !== '' && !predicateTypeMatches(opts.predicateType, annotated)) continue;
    const info = await readStatement(src, layer, imageDigest, opts);
    if (opts.predicateType !== undefined && info.error === undefined && info.present && !predicateTypeMatches(opts.predicateType, info.predicateType)) continue;
    statements.push(info);
  }
  return {
    ...base,
    form,
    ...(m.artifactType !== undefined ? { artifactType: m.artifactType } : {}),
    present: true,
    statements,
    otherLayers,
    problems,
  };
}

async function readStatement(src: ImageSource, layer: Descriptor, imageDigest: string, opts: AttestationsOptions): Promise<AttestationStatementInfo> {
  const what = describeBlob(layer, 'attestation layer');
  const base = {
    digest: layer.digest,
    size: layer.size,
    mediaType: layer.mediaType,
    predicateType: layer.annotations?.[ANNOTATION_IN_TOTO_PREDICATE_TYPE] ?? '',
  };
  if (!(await src.has(layer, opts))) {
    return { ...base, present: false, subjects: [], subjectProblems: [], notes: [] };
  }
  let bytes: Uint8Array;
  try {
    bytes = await fetchBytes(src, layer, { ...opts, maxBytes: MAX_STATEMENT_BYTES, what });
  } catch (err) {
    return { ...base, present: true, subjects: [], subjectProblems: [], notes: [], error: toBerthError(err).message };
  }
  const document = opts.raw ? documentOf(bytes, what) : undefined;
  const withDocument = opts.raw ? { document } : {};
  try {
    const statement = decodeStatement(bytes, what, layer.annotations ? { annotations: layer.annotations } : {});
    const summary = summarizeStatement(statement);
    const checked = checkSubjects(statement, imageDigest);
    return {
      ...base,
      predicateType: statement.predicateType,
      present: true,
      statementType: statement.type,
      subjects: statement.subjects,
      summary,
      subjectProblems: checked.filter((p) => !p.startsWith('note: ')),
      notes: checked.filter((p) => p.startsWith('note: ')).map((p) => p.slice('note: '.length)),
      ...withDocument,
    };
  } catch (err) {
    return { ...base, present: true, subjects: [], subjectProblems: [], notes: [], error: toBerthError(err).message, ...withDocument };
  }
}

/** The stored JSON as a value, or the text itself when it is not JSON (raw output shows it anyway). */
function documentOf(bytes: Uint8Array, what: string): unknown {
  try {
    return parseJsonBytes(bytes, what, MAX_STATEMENT_BYTES);
  } catch {
    return new TextDecoder().decode(bytes);
  }
}

