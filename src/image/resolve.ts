/**
 * From a root descriptor to one image: walk nested indexes, pick the platform the user wants
 * (or the host's), never an attestation manifest, then read the manifest and its config.
 */
import type { Descriptor } from '../core/descriptor.js';
import { shortDigest } from '../core/digest.js';
import { BerthError, withContext } from '../core/errors.js';
import { parseImageConfig, type ImageConfig } from '../core/config.js';
import type { ImageManifest } from '../core/manifest.js';
import { classifyMediaType } from '../core/media-types.js';
import { formatPlatform, normalizePlatform, platformFromNode, selectPlatform, type Platform } from '../core/platform.js';
import { describeBlob, fetchBytes, type BlobSource } from '../content/store.js';
import type { IoOptions } from '../io/stream.js';
import { entryRole, readNode, type GraphNode } from './node.js';
import { DEFAULT_LIMITS, limits } from '../io/limits.js';

/** Image configs over this size are refused before reading: the default (limits().maxConfigBytes is the one in force). */
export const MAX_CONFIG_BYTES = DEFAULT_LIMITS.maxConfigBytes;
/** Nested indexes deeper than this are refused (and cycles always). */
export const MAX_INDEX_DEPTH = 8;

export function hostPlatform(): Platform {
  return platformFromNode(process.platform, process.arch);
}

export interface PlatformCandidate {
  readonly descriptor: Descriptor;
  readonly present: boolean;
  /** Indexes walked to reach it, outermost first. */
  readonly via: readonly Descriptor[];
}

/** Every image manifest an index offers, through nested indexes; attestations left out. */
export async function platformCandidates(src: BlobSource, index: GraphNode & { kind: 'index' }, opts: IoOptions = {}): Promise<PlatformCandidate[]> {
  const out: PlatformCandidate[] = [];
  const seen = new Set<string>([index.descriptor.digest]);
  async function visit(node: GraphNode & { kind: 'index' }, via: Descriptor[]): Promise<void> {
    if (via.length > MAX_INDEX_DEPTH) {
      throw new BerthError('BERTH_LIMIT', `reading ${describeBlob(node.descriptor, 'index')}: indexes nested deeper than ${MAX_INDEX_DEPTH}`, { subject: node.descriptor.digest });
    }
    for (const desc of node.index.manifests) {
      const role = entryRole(desc);
      if (role === 'attestation' || role === 'unknown') continue;
      const present = await src.has(desc, opts);
      if (role === 'index') {
        if (!present || seen.has(desc.digest)) continue;
        seen.add(desc.digest);
        const child = await readNode(src, desc, opts);
        if (child.kind === 'index') await visit(child, [...via, desc]);
        else out.push({ descriptor: desc, present, via: [...via, desc] });
        continue;
      }
      out.push({ descriptor: desc, present, via });
    }
  }
  await visit(index, [index.descriptor]);
  // Referrers listed beside images (entries with an artifactType) are not platform images;
  // they count only when an index holds nothing else.
  const images = out.filter((c) => entryRole(c.descriptor) !== 'artifact');
  return images.length > 0 ? images : out;
}

function listPlatforms(cands: readonly PlatformCandidate[]): string {
  return cands
    .map((c) => `${c.descriptor.platform ? formatPlatform(c.descriptor.platform) : 'no platform'}${c.present ? '' : ' (absent)'}`)
    .join(', ');
}

export interface ResolvedImage {
  readonly descriptor: Descriptor;
  readonly raw: Uint8Array;
  readonly manifest: ImageManifest;
  readonly rawConfig: Uint8Array;
  /** The parsed config; undefined for artifacts whose config is not an image config. */
  readonly config: ImageConfig | undefined;
  /** Indexes walked to reach the manifest, outermost first (empty for a bare manifest). */
  readonly via: readonly Descriptor[];
  /** The platform the image is for: from the config, else from the index entry. */
  readonly platform: Platform | undefined;
}

export interface ResolveOptions extends IoOptions {
  readonly platform?: Platform;
  /** Names the place in errors. */
  readonly where?: string;
}

/** Picks the manifest a root stands for: the wanted platform of an index, or the root itself. */
export async function resolveManifest(src: BlobSource, root: Descriptor, opts: ResolveOptions = {}): Promise<{ node: GraphNode & { kind: 'manifest' }; via: Descriptor[]; entry: Descriptor }> {
  const where = opts.where ?? 'the image';
  const node = await readNode(src, root, opts);
  if (node.kind === 'manifest') return { node, via: [], entry: root };
  const cands = await platformCandidates(src, node, opts);
  if (cands.length === 0) {
    throw new BerthError('BERTH_NOT_FOUND', `${where}: index ${shortDigest(root.digest)} lists no image manifests`, { subject: root.digest });
  }
  let chosen: PlatformCandidate | undefined;
  if (opts.platform !== undefined) {
    const want = normalizePlatform(opts.platform);
    const withPlatform = cands.filter((c) => c.descriptor.platform !== undefined);
    const best = selectPlatform(withPlatform.map((c) => c.descriptor), want);
    chosen = withPlatform.find((c) => c.descriptor === best);
    if (chosen === undefined && withPlatform.length === 0 && cands.length === 1) chosen = cands[0];
    if (chosen === undefined) {
      throw new BerthError('BERTH_NO_MATCHING_PLATFORM', `${where}: no image for ${formatPlatform(want)} (it has: ${listPlatforms(cands)})`, { subject: where, want: formatPlatform(want) });
    }
  } else {
    const present = cands.filter((c) => c.present);
    if (present.length === 1) chosen = present[0];
    else if (present.length > 1) {
      const best = selectPlatform(present.filter((c) => c.descriptor.platform).map((c) => c.descriptor), hostPlatform());
      chosen = present.find((c) => c.descriptor === best);
      if (chosen === undefined) {
        throw new BerthError('BERTH_AMBIGUOUS', `${where}: holds images for several platforms and none for this host (${formatPlatform(hostPlatform())}); choose one with --platform (${listPlatforms(cands)})`, { subject: where });
      }
    } else {
      throw new BerthError('BERTH_NOT_FOUND', `${where}: none of the images the index lists is present (${listPlatforms(cands)})`, { subject: where });
    }
  }
  if (!chosen!.present) {
    throw new BerthError('BERTH_NOT_FOUND', `${where}: the image for ${chosen!.descriptor.platform ? formatPlatform(chosen!.descriptor.platform) : 'that platform'} (${shortDigest(chosen!.descriptor.digest)}) is listed but not present (a sparse export holds only some platforms)`, { subject: chosen!.descriptor.digest });
  }
  const manifestNode = await readNode(src, chosen!.descriptor, opts);
  if (manifestNode.kind !== 'manifest') {
    throw new BerthError('BERTH_INVALID_INDEX', `${where}: entry ${shortDigest(chosen!.descriptor.digest)} is an index where an image manifest was expected`, { subject: chosen!.descriptor.digest });
  }
  return { node: manifestNode, via: [...chosen!.via], entry: chosen!.descriptor };
}

/** Resolves a root to one image with its config, verified. */
export async function resolveImage(src: BlobSource, root: Descriptor, opts: ResolveOptions = {}): Promise<ResolvedImage> {
  const { node, via, entry } = await resolveManifest(src, root, opts);
  const configDesc = node.manifest.config;
  const what = describeBlob(configDesc, 'config');
  const rawConfig = await fetchBytes(src, configDesc, { ...opts, maxBytes: limits().maxConfigBytes, what });
  let config: ImageConfig | undefined;
  if (classifyMediaType(configDesc.mediaType).kind === 'config') {
    try {
      config = parseImageConfig(rawConfig, { what });
    } catch (err) {
      throw withContext(err, `reading ${opts.where ?? 'the image'}`);
    }
  }
  const platform = config !== undefined && config.os && config.architecture
    ? { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }
    : entry.platform;
  return { descriptor: node.descriptor, raw: node.raw, manifest: node.manifest, rawConfig, config, via, platform };
}
