/**
 * Deciding what a copy writes, before any blob moves: which entries of an index are kept
 * (platforms, attestations whose subject is kept), which manifest format each node gets (the
 * user's --format, else what the destination accepts, else unchanged), what compression image
 * layers get, and whether the target can express all of it. A refusal here costs nothing: no
 * byte has been written.
 *
 * Also the conversions themselves (OCI ↔ Docker schema 2, index ↔ manifest list, layer media
 * types for a new compression), as pure functions over the parsed source and the written
 * descriptors.
 */
import type { Descriptor } from '../core/descriptor.js';
import { shortDigest } from '../core/digest.js';
import { BerthError } from '../core/errors.js';
import { isJsonObject, type JsonObject } from '../core/json.js';
import type { ImageManifest, IndexManifest } from '../core/manifest.js';
import {
  ANNOTATION_DOCKER_REFERENCE_DIGEST, DOCKER_CONFIG, DOCKER_FOREIGN_LAYER_GZIP, DOCKER_FOREIGN_LAYER_TAR, DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR,
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, classifyMediaType, type LayerCompression,
} from '../core/media-types.js';
import { formatPlatform, normalizePlatform, selectPlatform, type Platform } from '../core/platform.js';
import type { BlobSource } from '../content/store.js';
import type { Compression } from '../io/codec.js';
import type { IoOptions } from '../io/stream.js';
import { attestationSubject, entryRole, isImageManifest, readNode, type GraphNode } from '../image/node.js';
import { platformCandidates } from '../image/resolve.js';
import type { DestinationCapabilities, RootEntry } from '../transports/transport.js';

export type ManifestFamily = 'oci' | 'docker';

export interface PlanOptions extends IoOptions {
  /** 'all' keeps every platform; a list keeps the best match for each. */
  readonly platforms: 'all' | readonly Platform[];
  readonly attestations: 'keep' | 'drop';
  /** Manifest format wanted; undefined: unchanged where the destination allows. */
  readonly format: ManifestFamily | undefined;
  /** Compression for image layers ('preserve': as they are). */
  readonly compression: 'preserve' | Compression;
  /** Names the source in messages. */
  readonly where: string;
  readonly onNote?: (message: string) => void;
}

export interface ManifestPlan {
  readonly kind: 'manifest';
  readonly desc: Descriptor;
  readonly raw: Uint8Array;
  readonly manifest: ImageManifest;
  readonly role: 'image' | 'attestation' | 'artifact';
  /** berth built the source manifest (docker-archive): its layers are uncompressed whatever it says. */
  readonly synthesized: boolean;
  readonly family: ManifestFamily;
  /** Whether the manifest's bytes (so its digest) change in this copy. */
  readonly rewrites: boolean;
  /** For each layer: the compression of its bytes at the source, and what it gets at the destination. */
  readonly layers: ReadonlyArray<{ readonly from: LayerCompression | undefined; readonly to: LayerCompression | undefined }>;
}

export interface IndexPlan {
  readonly kind: 'index';
  readonly desc: Descriptor;
  readonly raw: Uint8Array;
  readonly index: IndexManifest;
  /** Kept entries, in their original order, with their position in the source index. */
  readonly entries: ReadonlyArray<{ readonly position: number; readonly node: PlanNode }>;
  readonly filtered: boolean;
  readonly family: ManifestFamily;
}

/** An index entry berth does not understand, copied as an opaque blob. */
export interface OpaquePlan {
  readonly kind: 'blob';
  readonly desc: Descriptor;
}

export type PlanNode = ManifestPlan | IndexPlan | OpaquePlan;

function note(opts: PlanOptions, message: string): void {
  opts.onNote?.(message);
}

function familyOfType(mt: string): ManifestFamily | undefined {
  const f = classifyMediaType(mt).family;
  return f === 'oci' ? 'oci' : f === 'docker' ? 'docker' : undefined;
}

/** The family a node is written in. `mustRewrite`: its bytes change anyway, so the destination's preference applies. */
function chooseFamily(sourceType: string, sourceFamily: ManifestFamily, mustRewrite: boolean, opts: PlanOptions, caps: DestinationCapabilities): ManifestFamily {
  if (opts.format !== undefined) return opts.format;
  if (caps.manifestTypes === 'any') return sourceFamily;
  const accepted = caps.manifestTypes;
  if (!mustRewrite && accepted.includes(sourceType)) return sourceFamily;
  const kind = classifyMediaType(sourceType).kind;
  for (const t of accepted) {
    if (classifyMediaType(t).kind === kind) return familyOfType(t) ?? sourceFamily;
  }
  return sourceFamily;
}

/** Plans the copy of a root: selection, formats, compression, and every refusal up front. */
export async function planCopy(src: BlobSource, root: RootEntry, caps: DestinationCapabilities, opts: PlanOptions): Promise<PlanNode> {
  const node = await readNode(src, root.descriptor, opts);
  if (node.kind === 'manifest') return planManifest(node, root.synthesized ? 'image' : roleOf(node), root.synthesized, caps, opts);
  if (!caps.acceptsIndex) return planSingle(src, node, caps, opts);
  const chosen = opts.platforms === 'all' ? 'all' : await choosePlatforms(src, node, opts.platforms, opts);
  const plan = await planIndex(src, node, chosen, caps, opts, 0);
  if (plan === undefined) throw new BerthError('BERTH_NOT_FOUND', `${opts.where}: nothing to copy: the index keeps no entries`, { subject: root.descriptor.digest });
  return plan;
}

function roleOf(node: GraphNode & { kind: 'manifest' }): 'image' | 'artifact' {
  return isImageManifest(node.manifest) ? 'image' : 'artifact';
}

/** The digests of the manifests that best match each wanted platform (first match wins among equals). */
async function choosePlatforms(src: BlobSource, index: GraphNode & { kind: 'index' }, wanted: readonly Platform[], opts: PlanOptions): Promise<Set<string>> {
  const cands = await platformCandidates(src, index, opts);
  const withPlatform = cands.filter((c) => c.descriptor.platform !== undefined);
  const out = new Set<string>();
  for (const want of wanted) {
    const best = selectPlatform(withPlatform.map((c) => c.descriptor), normalizePlatform(want));
    if (best === undefined) {
      const have = withPlatform.map((c) => formatPlatform(c.descriptor.platform!)).join(', ') || 'none';
      throw new BerthError('BERTH_NO_MATCHING_PLATFORM', `${opts.where}: no image for ${formatPlatform(normalizePlatform(want))} (it has: ${have})`, {
        subject: opts.where, want: formatPlatform(want),
      });
    }
    out.add(best.digest);
  }
  return out;
}

/** A destination that cannot hold an index gets the one image the index (or --platform) names. */
async function planSingle(src: BlobSource, index: GraphNode & { kind: 'index' }, caps: DestinationCapabilities, opts: PlanOptions): Promise<PlanNode> {
  const cands = await platformCandidates(src, index, opts);
  let pick: Descriptor | undefined;
  if (opts.platforms !== 'all') {
    const chosen = await choosePlatforms(src, index, opts.platforms, opts);
    if (chosen.size > 1) {
      throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: the destination holds one image per name, not an index; choose a single --platform (${chosen.size} were chosen)`, { subject: opts.where });
    }
    pick = cands.find((c) => chosen.has(c.descriptor.digest))?.descriptor;
  } else {
    const images = cands.filter((c) => c.present);
    if (images.length !== 1) {
      const list = cands.map((c) => (c.descriptor.platform ? formatPlatform(c.descriptor.platform) : shortDigest(c.descriptor.digest))).join(', ');
      throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: the destination holds one image per name, not an index with ${cands.length} images (${list}); choose one with --platform`, { subject: opts.where });
    }
    pick = images[0]!.descriptor;
  }
  if (pick === undefined || !(await src.has(pick, opts))) {
    throw new BerthError('BERTH_NOT_FOUND', `${opts.where}: the chosen image ${pick ? shortDigest(pick.digest) : ''} is listed but not present`, { subject: opts.where });
  }
  if (index.index.manifests.some((d) => entryRole(d) === 'attestation')) note(opts, 'attestation manifests are left out: the destination holds images only');
  const node = await readNode(src, pick, opts);
  if (node.kind !== 'manifest') throw new BerthError('BERTH_INVALID_INDEX', `${opts.where}: entry ${shortDigest(pick.digest)} is an index where an image manifest was expected`, { subject: pick.digest });
  return planManifest(node, roleOf(node), false, caps, opts);
}

async function planIndex(
  src: BlobSource, node: GraphNode & { kind: 'index' }, chosen: Set<string> | 'all', caps: DestinationCapabilities, opts: PlanOptions, depth: number,
): Promise<IndexPlan | undefined> {
  if (depth > 8) throw new BerthError('BERTH_LIMIT', `${opts.where}: indexes nested deeper than 8`, { subject: node.descriptor.digest });
  const entries: Array<{ position: number; node: PlanNode }> = [];
  const kept = new Set<string>();
  const rewritten = new Set<string>();
  const manifests = node.index.manifests;
  const absent = (d: Descriptor, what: string): BerthError => new BerthError('BERTH_NOT_FOUND',
    `${opts.where}: ${what} ${shortDigest(d.digest)}${d.platform ? ` (${formatPlatform(d.platform)})` : ''} is listed but not present${chosen === 'all' ? '; copy the platforms that are present with --platform' : ''}`,
    { subject: d.digest });
  for (const [position, d] of manifests.entries()) {
    const role = entryRole(d);
    if (role === 'attestation') continue;
    if (role === 'image' || role === 'artifact') {
      if (chosen !== 'all' && !chosen.has(d.digest)) continue;
      if (!(await src.has(d, opts))) throw absent(d, 'manifest');
      const child = await readNode(src, d, opts);
      if (child.kind !== 'manifest') throw new BerthError('BERTH_INVALID_INDEX', `${opts.where}: entry ${shortDigest(d.digest)} says manifest but is an index`, { subject: d.digest });
      const plan = planManifest(child, roleOf(child), false, caps, opts);
      entries.push({ position, node: plan });
      kept.add(d.digest);
      if (plan.rewrites) rewritten.add(d.digest);
    } else if (role === 'index') {
      if (!(await src.has(d, opts))) {
        if (chosen === 'all') throw absent(d, 'index');
        continue;
      }
      const child = await readNode(src, d, opts);
      if (child.kind !== 'index') throw new BerthError('BERTH_INVALID_INDEX', `${opts.where}: entry ${shortDigest(d.digest)} says index but is a manifest`, { subject: d.digest });
      const plan = await planIndex(src, child, chosen, caps, opts, depth + 1);
      if (plan !== undefined) {
        entries.push({ position, node: plan });
        kept.add(d.digest);
      }
    } else if (chosen === 'all') {
      if (await src.has(d, opts)) entries.push({ position, node: { kind: 'blob', desc: d } });
      else note(opts, `entry ${shortDigest(d.digest)} (${d.mediaType}) is not present at the source and is left out`);
    }
  }
  let droppedAttestations = 0;
  for (const [position, d] of manifests.entries()) {
    if (entryRole(d) !== 'attestation') continue;
    const subject = attestationSubject(d);
    if (subject === undefined || !kept.has(subject)) continue;
    if (rewritten.has(subject)) {
      // Its statements name the original manifest digest, which the copy does not keep.
      note(opts, `attestation ${shortDigest(d.digest)} is left out: it describes manifest ${shortDigest(subject)}, which this copy rewrites`);
      continue;
    }
    if (opts.attestations === 'drop' || !caps.acceptsAttestations) {
      droppedAttestations++;
      continue;
    }
    if (!(await src.has(d, opts))) {
      note(opts, `attestation ${shortDigest(d.digest)} for ${shortDigest(subject)} is not present at the source and is left out`);
      continue;
    }
    const child = await readNode(src, d, opts);
    if (child.kind !== 'manifest') continue;
    entries.push({ position, node: planManifest(child, 'attestation', false, caps, opts) });
  }
  if (droppedAttestations > 0 && opts.attestations === 'keep') note(opts, `${droppedAttestations} attestation manifest(s) left out: the destination cannot hold them`);
  if (entries.length === 0) return undefined;
  entries.sort((a, b) => a.position - b.position);
  const filtered = entries.length !== manifests.length;
  const sourceType = node.descriptor.mediaType;
  const childrenChange = entries.some((e) => e.node.kind !== 'blob' && e.node.family !== node.index.family);
  const family = chooseFamily(sourceType, node.index.family, filtered || childrenChange, opts, caps);
  if (family === 'docker') {
    for (const e of entries) {
      if (e.node.kind === 'blob') {
        throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: a Docker manifest list cannot hold entry ${shortDigest(e.node.desc.digest)} (${e.node.desc.mediaType}); use --format oci`, { subject: e.node.desc.digest });
      }
      if (e.node.kind === 'manifest' && e.node.role === 'attestation') {
        throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: a Docker manifest list cannot hold attestation manifests; use --attestations drop or --format oci`, { subject: e.node.desc.digest });
      }
    }
    if (node.index.annotations !== undefined || manifests.some((d) => d.annotations !== undefined && entryRole(d) !== 'attestation')) {
      note(opts, `index ${shortDigest(node.descriptor.digest)}: annotations are dropped (Docker manifest lists have none)`);
    }
  }
  return { kind: 'index', desc: node.descriptor, raw: node.raw, index: node.index, entries, filtered, family };
}

function planManifest(node: GraphNode & { kind: 'manifest' }, role: 'image' | 'attestation' | 'artifact', synthesized: boolean, caps: DestinationCapabilities, opts: PlanOptions): ManifestPlan {
  const m = node.manifest;
  const what = `manifest ${shortDigest(node.descriptor.digest)}`;
  const target = caps.layerCompression !== 'preserve' ? caps.layerCompression : opts.compression;
  const layers = m.layers.map((l) => {
    const info = classifyMediaType(l.mediaType);
    if (info.kind !== 'layer') return { from: undefined, to: undefined };
    const from: LayerCompression | undefined = synthesized ? 'none' : info.compression;
    // Only image layers are recompressed; attestation and artifact blobs travel as they are.
    const to = role === 'image' && target !== 'preserve' && !info.encrypted ? target : from;
    return { from, to };
  });
  if (role === 'artifact' && caps.layerCompression !== 'preserve') {
    // A destination that rewrites every layer (docker-archive) holds runnable images only.
    throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: ${what} is an artifact (${m.artifactType ?? m.config.mediaType}), not an image the destination can hold`, { subject: node.descriptor.digest });
  }
  for (const [i, l] of m.layers.entries()) {
    const info = classifyMediaType(l.mediaType);
    if (info.kind === 'layer' && info.encrypted && layers[i]!.to !== layers[i]!.from) {
      throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: layer ${i} of ${what} is encrypted and cannot be recompressed`, { subject: l.digest });
    }
    if (info.kind === 'layer' && info.nondistributable && layers[i]!.to !== layers[i]!.from && caps.acceptsForeignLayers) {
      // A foreign layer's digest is what its urls serve; recompressing would break that link.
      layers[i] = { from: layers[i]!.from, to: layers[i]!.from };
    }
  }
  const changes = synthesized || layers.some((l) => l.to !== l.from);
  // A synthesised manifest is berth's own: written as OCI, the way Docker 25 saves images.
  const family = opts.format === undefined && synthesized && (caps.manifestTypes === 'any' || caps.manifestTypes.includes(OCI_MANIFEST))
    ? 'oci'
    : chooseFamily(node.descriptor.mediaType, m.family, changes, opts, caps);
  const sourceFamily = m.family;
  if (family === 'docker') {
    if (m.artifactType !== undefined || m.subject !== undefined || role !== 'image' || classifyMediaType(m.config.mediaType).kind !== 'config') {
      throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: ${what} is ${role === 'attestation' ? 'an attestation' : 'an artifact'}${m.subject ? ' with a subject' : ''}, which Docker schema 2 cannot express; use --format oci`, { subject: node.descriptor.digest });
    }
    for (const [i, l] of m.layers.entries()) {
      const info = classifyMediaType(l.mediaType);
      const to = layers[i]!.to;
      if (info.kind !== 'layer') {
        throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: layer ${i} of ${what} has media type ${l.mediaType}, which Docker schema 2 cannot express; use --format oci`, { subject: l.digest });
      }
      if (to === 'zstd' && !(sourceFamily === 'docker' && layers[i]!.from === 'zstd')) {
        throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: layer ${i} of ${what} is zstd-compressed, which Docker schema 2 manifests cannot express; use --format oci or --compression gzip`, { subject: l.digest });
      }
      if (info.encrypted) {
        throw new BerthError('BERTH_UNSUPPORTED', `${opts.where}: layer ${i} of ${what} is encrypted, which Docker schema 2 cannot express; use --format oci`, { subject: l.digest });
      }
    }
    if (sourceFamily === 'oci' && (m.annotations !== undefined || m.layers.some((l) => l.annotations !== undefined))) {
      note(opts, `${what}: annotations are dropped (Docker schema 2 has none)`);
    }
  }
  const rewrites = changes || family !== m.family || configMediaType(m.config.mediaType, family) !== m.config.mediaType;
  return { kind: 'manifest', desc: node.descriptor, raw: node.raw, manifest: m, role, synthesized, family, layers, rewrites };
}

// ---------------------------------------------------------------------------------------------
// Conversions

const OCI_SUFFIX: Readonly<Record<LayerCompression, string>> = { none: '', gzip: '+gzip', zstd: '+zstd' };

/** The media type of a layer written with `compression` in `family` (unchanged when nothing changes). */
export function layerMediaType(source: string, family: ManifestFamily, from: LayerCompression | undefined, to: LayerCompression | undefined): string {
  const info = classifyMediaType(source);
  if (info.kind !== 'layer' || to === undefined) return source;
  const sourceFamily = info.family === 'docker' ? 'docker' : info.family === 'oci' ? 'oci' : undefined;
  // Same compression in the same family (or a type of no family, like Docker-style zstd): as it was.
  if (from === to && (sourceFamily === family || sourceFamily === undefined)) return source;
  if (family === 'oci') {
    const base = info.nondistributable ? 'application/vnd.oci.image.layer.nondistributable.v1.tar' : 'application/vnd.oci.image.layer.v1.tar';
    return `${base}${OCI_SUFFIX[to]}${info.encrypted ? '+encrypted' : ''}`;
  }
  if (to === 'zstd') {
    throw new BerthError('BERTH_UNSUPPORTED', `a zstd layer cannot be expressed in a Docker schema 2 manifest (${source})`, { subject: source });
  }
  if (info.nondistributable) return to === 'gzip' ? DOCKER_FOREIGN_LAYER_GZIP : DOCKER_FOREIGN_LAYER_TAR;
  return to === 'gzip' ? DOCKER_LAYER_GZIP : DOCKER_LAYER_TAR;
}

/** The config media type in `family` (image configs only; others unchanged). */
export function configMediaType(source: string, family: ManifestFamily): string {
  const info = classifyMediaType(source);
  if (info.kind !== 'config') return source;
  if (family === 'oci' && info.family === 'docker') return OCI_CONFIG;
  if (family === 'docker' && info.family === 'oci') return DOCKER_CONFIG;
  return source;
}

function rawDescriptor(raw: unknown): JsonObject {
  return isJsonObject(raw) ? raw : {};
}

/** A descriptor as JSON in the family's key order: OCI `mediaType, digest, size, …`; Docker `mediaType, size, digest, urls`. */
function descriptorJson(d: Descriptor, family: ManifestFamily, raw: JsonObject): JsonObject {
  if (family === 'docker') {
    return {
      mediaType: d.mediaType, size: d.size, digest: d.digest,
      ...(d.urls !== undefined ? { urls: d.urls } : {}),
      ...(d.platform !== undefined ? { platform: raw['platform'] ?? d.platform } : {}),
    };
  }
  const { mediaType: _m, digest: _d, size: _s, ...rest } = raw;
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...rest };
}

const encoder = new TextEncoder();

/** The bytes of a manifest written with new config and layer descriptors in `family`. */
export function manifestBytes(plan: ManifestPlan, config: Descriptor, layers: readonly Descriptor[]): { mediaType: string; bytes: Uint8Array } {
  const m = plan.manifest;
  const raw = m.raw;
  const rawLayers = Array.isArray(raw['layers']) ? (raw['layers'] as unknown[]) : [];
  if (plan.family === 'docker') {
    const obj = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: descriptorJson(config, 'docker', {}),
      layers: layers.map((l) => descriptorJson(l, 'docker', {})),
    };
    return { mediaType: DOCKER_MANIFEST, bytes: encoder.encode(JSON.stringify(obj)) };
  }
  const { schemaVersion: _v, mediaType: _t, artifactType, config: rawConfig, layers: _l, subject, annotations, ...unknown } = raw;
  const obj = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(artifactType !== undefined ? { artifactType } : {}),
    config: descriptorJson(config, 'oci', rawDescriptor(rawConfig)),
    layers: layers.map((l, i) => descriptorJson(l, 'oci', rawDescriptor(rawLayers[i]))),
    ...(subject !== undefined ? { subject } : {}),
    ...(annotations !== undefined ? { annotations } : {}),
    ...unknown,
  };
  return { mediaType: OCI_MANIFEST, bytes: encoder.encode(JSON.stringify(obj)) };
}

/**
 * The bytes of an index written with its kept entries, their new descriptors, in `family`.
 * Attestation entries follow their subject's new digest (`vnd.docker.reference.digest`).
 */
export function indexBytes(plan: IndexPlan, written: readonly Descriptor[], renamed: ReadonlyMap<string, string>): { mediaType: string; bytes: Uint8Array } {
  const raw = plan.index.raw;
  const rawEntries = Array.isArray(raw['manifests']) ? (raw['manifests'] as unknown[]) : [];
  const entries = plan.entries.map((e, i) => {
    const src = plan.index.manifests[e.position]!;
    const rawEntry = rawDescriptor(rawEntries[e.position]);
    const d: Descriptor = { ...src, mediaType: written[i]!.mediaType, digest: written[i]!.digest, size: written[i]!.size };
    if (plan.family === 'docker') return descriptorJson(d, 'docker', rawEntry);
    const json = descriptorJson(d, 'oci', rawEntry);
    const subject = attestationSubject(src);
    if (subject !== undefined && renamed.has(subject) && isJsonObject(json['annotations'])) {
      return { ...json, annotations: { ...json['annotations'], [ANNOTATION_DOCKER_REFERENCE_DIGEST]: renamed.get(subject) } };
    }
    return json;
  });
  if (plan.family === 'docker') {
    return { mediaType: DOCKER_MANIFEST_LIST, bytes: encoder.encode(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: entries })) };
  }
  const { schemaVersion: _v, mediaType: _t, manifests: _m, ...rest } = raw;
  return { mediaType: OCI_INDEX, bytes: encoder.encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, ...rest, manifests: entries })) };
}
