/**
 * The read side of berth by reference, as the CLI and the explorer use it: open what the user
 * typed, draw its tree, inspect one image, fetch raw manifests, configs and blobs, verify.
 * Every function opens its own source and closes it.
 */
import type { Descriptor } from './core/descriptor.js';
import { isDigest, parseDigest, shortDigest, type Digest } from './core/digest.js';
import { BerthError } from './core/errors.js';
import { ANNOTATION_IN_TOTO_PREDICATE_TYPE, classifyMediaType } from './core/media-types.js';
import { formatPlatform, type Platform } from './core/platform.js';
import { checkSubjects, decodeStatement } from './attest/index.js';
import { describeBlob, fetchBytes, openVerified } from './content/store.js';
import type { ByteStream, IoOptions } from './io/stream.js';
import { inspectImage, type InspectResult } from './image/inspect.js';
import { entryRole, readNode } from './image/node.js';
import { platformCandidates, resolveImage, resolveManifest } from './image/resolve.js';
import { buildTree, type TreeNode } from './image/tree.js';
import { verifyImages, type VerifyReport } from './image/verify.js';
import { parseImageName } from './transports/all.js';
import type { ImageSource, SourceFormat } from './transports/transport.js';
import { limits } from './io/limits.js';

export interface ReadOptions extends IoOptions {
  readonly platform?: Platform;
}

/** Opens a reference, runs `fn` with its source, and always closes it. */
export async function withSource<T>(text: string, fn: (src: ImageSource) => Promise<T>, opts: IoOptions = {}): Promise<T> {
  const ref = await parseImageName(text);
  const src = await ref.openSource(opts);
  try {
    return await fn(src);
  } finally {
    await src.close();
  }
}

export interface TreeResult {
  readonly reference: string;
  readonly format: SourceFormat;
  readonly notes: readonly string[];
  readonly tree: TreeNode;
}

/** The whole structure of a place (all roots, or the one the reference selects). */
export async function treeOf(text: string, opts: IoOptions = {}): Promise<TreeResult> {
  return withSource(text, async (src) => {
    const ep = await src.entryPoint(opts);
    let tree = await buildTree(src, { file: ep.file, raw: ep.raw, roots: ep.roots }, opts);
    if (src.reference.selector !== undefined) {
      // the whole graph first, so referrers and signatures listed as other roots still hang
      // under the selected image; then only its subtree
      const chosen = await src.root(opts);
      tree = { ...tree, children: tree.children.filter((c) => c.digest === chosen.descriptor.digest).slice(0, 1) };
    }
    return { reference: src.reference.toString(), format: ep.format, notes: ep.notes, tree };
  }, opts);
}

/** Summary of one image (the platform asked for, else the host's, never an attestation). */
export async function inspectReference(text: string, opts: ReadOptions = {}): Promise<InspectResult> {
  return withSource(text, async (src) => {
    const root = await src.root(opts);
    const where = src.reference.toString();
    const image = await resolveImage(src, root.descriptor, { ...opts, where });
    return inspectImage(image, { reference: where, names: root.names, synthesized: root.synthesized });
  }, opts);
}

/** The raw bytes of the root manifest or index; with a platform, of that platform's manifest. */
export async function rawManifestOf(text: string, opts: ReadOptions = {}): Promise<{ descriptor: Descriptor; bytes: Uint8Array }> {
  return withSource(text, async (src) => {
    const root = await src.root(opts);
    if (opts.platform === undefined) {
      const node = await readNode(src, root.descriptor, opts);
      return { descriptor: root.descriptor, bytes: node.raw };
    }
    const { node } = await resolveManifest(src, root.descriptor, { ...opts, where: src.reference.toString() });
    return { descriptor: node.descriptor, bytes: node.raw };
  }, opts);
}

/** The raw config bytes of one image. */
export async function rawConfigOf(text: string, opts: ReadOptions = {}): Promise<{ descriptor: Descriptor; bytes: Uint8Array }> {
  return withSource(text, async (src) => {
    const root = await src.root(opts);
    const { node } = await resolveManifest(src, root.descriptor, { ...opts, where: src.reference.toString() });
    const desc = node.manifest.config;
    return { descriptor: desc, bytes: await fetchBytes(src, desc, { ...opts, maxBytes: limits().maxConfigBytes, what: describeBlob(desc, 'config') }) };
  }, opts);
}

/**
 * A verified stream of the blob with `digest`, found among the descriptors reachable from the
 * entry point (so its size is known); the caller consumes it, and the source closes at its end.
 */
export async function openBlobByDigest(text: string, digestText: string, opts: IoOptions = {}): Promise<{ descriptor: Descriptor; stream: ByteStream }> {
  const digest = parseDigest(digestText, 'DIGEST');
  const ref = await parseImageName(text);
  const src = await ref.openSource(opts);
  try {
    const ep = await src.entryPoint(opts);
    const desc = await findDescriptor(src, ep.roots.map((r) => r.descriptor), digest, opts);
    if (desc === undefined) {
      throw new BerthError('BERTH_NOT_FOUND', `${ref.toString()}: no blob ${digest} is reachable from ${ep.file}`, { subject: digest });
    }
    const verified = await openVerified(src, desc, opts);
    async function* closing(): ByteStream {
      try {
        yield* verified;
      } finally {
        await src.close();
      }
    }
    return { descriptor: desc, stream: closing() };
  } catch (err) {
    await src.close();
    throw err;
  }
}

async function findDescriptor(src: ImageSource, roots: readonly Descriptor[], digest: Digest, opts: IoOptions): Promise<Descriptor | undefined> {
  const seen = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const desc = queue.shift()!;
    if (desc.digest === digest) return desc;
    if (seen.has(desc.digest)) continue;
    seen.add(desc.digest);
    const kind = classifyMediaType(desc.mediaType).kind;
    if ((kind !== 'index' && kind !== 'manifest') || !(await src.has(desc, opts))) continue;
    const node = await readNode(src, desc, opts).catch(() => undefined);
    if (node === undefined) continue;
    if (node.kind === 'index') queue.push(...node.index.manifests);
    else queue.push(node.manifest.config, ...node.manifest.layers);
  }
  return undefined;
}

export interface PlatformEntry {
  readonly platform: string | undefined;
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly present: boolean;
  readonly attestations: ReadonlyArray<{ digest: string; present: boolean }>;
}

/** The platforms the selected root offers (one entry for a single-platform image). */
export async function platformsOf(text: string, opts: IoOptions = {}): Promise<{ reference: string; index: string | undefined; platforms: PlatformEntry[] }> {
  return withSource(text, async (src) => {
    const root = await src.root(opts);
    const node = await readNode(src, root.descriptor, opts);
    if (node.kind === 'manifest') {
      const image = await resolveImage(src, root.descriptor, { ...opts, where: src.reference.toString() });
      return {
        reference: src.reference.toString(), index: undefined,
        platforms: [{ platform: image.platform ? formatPlatform(image.platform) : undefined, digest: root.descriptor.digest, mediaType: root.descriptor.mediaType, size: root.descriptor.size, present: true, attestations: [] }],
      };
    }
    const cands = await platformCandidates(src, node, opts);
    const attestations = new Map<string, Array<{ digest: string; present: boolean }>>();
    const collect = async (index: typeof node): Promise<void> => {
      for (const d of index.index.manifests) {
        if (entryRole(d) !== 'attestation') continue;
        const subject = d.annotations?.['vnd.docker.reference.digest'] ?? '';
        const list = attestations.get(subject) ?? [];
        list.push({ digest: d.digest, present: await src.has(d, opts) });
        attestations.set(subject, list);
      }
    };
    await collect(node);
    for (const c of cands) {
      for (const via of c.via.slice(1)) {
        const inner = await readNode(src, via, opts);
        if (inner.kind === 'index') await collect(inner);
      }
    }
    return {
      reference: src.reference.toString(),
      index: root.descriptor.digest,
      platforms: cands.map((c) => ({
        platform: c.descriptor.platform ? formatPlatform(c.descriptor.platform) : undefined,
        digest: c.descriptor.digest,
        mediaType: c.descriptor.mediaType,
        size: c.descriptor.size,
        present: c.present,
        attestations: attestations.get(c.descriptor.digest) ?? [],
      })),
    };
  }, opts);
}

export interface VerifyReferenceOptions extends IoOptions {
  readonly strict?: boolean;
  readonly onBytes?: (n: number) => void;
}

/** Deep check of everything reachable (or of the root the reference selects). */
export async function verifyReference(text: string, opts: VerifyReferenceOptions = {}): Promise<VerifyReport & { reference: string }> {
  return withSource(text, async (src) => {
    const ep = await src.entryPoint(opts);
    const roots = src.reference.selector === undefined ? undefined : [(await src.root(opts)).descriptor];
    const report = await verifyImages(src, { file: ep.file, raw: ep.raw, roots: ep.roots }, {
      ...opts,
      ...(roots ? { roots } : {}),
      entryNotes: ep.notes,
      entryProblems: ep.problems ?? [],
      synthesized: new Set(ep.roots.filter((r) => r.synthesized).map((r) => r.descriptor.digest)),
      checkAttestationLayer: (layer, bytes, subject) => {
        const statement = decodeStatement(bytes, `attestation layer ${shortDigest(layer.digest)}`, layer.annotations ? { annotations: layer.annotations } : {});
        const problems = subject !== undefined && isDigest(subject) ? checkSubjects(statement, subject) : [];
        if (statement.predicateType === '') problems.push('predicateType: not stated');
        const annotated = layer.annotations?.[ANNOTATION_IN_TOTO_PREDICATE_TYPE];
        if (annotated !== undefined && !statement.bare && annotated !== statement.predicateType) {
          problems.push(`annotations["${ANNOTATION_IN_TOTO_PREDICATE_TYPE}"]: says ${annotated} but the statement's predicateType is ${statement.predicateType}`);
        }
        return problems;
      },
    });
    return { ...report, reference: src.reference.toString() };
  }, opts);
}
