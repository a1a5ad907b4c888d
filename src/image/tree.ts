/**
 * The structure of everything an entry point reaches, as the image-spec diagrams draw it:
 * entry point → index → one manifest per platform → config and layers, with attestation
 * manifests and referrers hung under the image they describe, absent children marked absent.
 */
import type { Descriptor } from '../core/descriptor.js';
import { toBerthError } from '../core/errors.js';
import { ANNOTATION_IN_TOTO_PREDICATE_TYPE, classifyMediaType } from '../core/media-types.js';
import { formatPlatform } from '../core/platform.js';
import type { BlobSource } from '../content/store.js';
import type { IoOptions } from '../io/stream.js';
import { attestationSubject, entryRole, isImageManifest, readNode } from './node.js';

export type TreeRole = 'entry' | 'index' | 'image' | 'attestation' | 'artifact' | 'referrer' | 'signature' | 'config' | 'layer' | 'unknown';

export interface TreeNode {
  readonly role: TreeRole;
  /** For the entry point: `index.json` / `manifest.json`; for layers: their position. */
  readonly label?: string;
  readonly mediaType?: string;
  readonly digest?: string;
  readonly size?: number;
  readonly platform?: string;
  readonly names?: readonly string[];
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** For attestation layers: the in-toto predicate type. */
  readonly predicateType?: string;
  /** The blob is listed but not stored here (sparse exports, foreign layers). */
  readonly absent?: boolean;
  /** berth built this manifest (docker-archive holds none). */
  readonly synthesized?: boolean;
  /** Reached again on its own path (an index that contains itself). */
  readonly cycle?: boolean;
  readonly error?: string;
  readonly children: TreeNode[];
}

export interface TreeRoot {
  readonly descriptor: Descriptor;
  readonly names: readonly string[];
  readonly synthesized: boolean;
}

export interface TreeEntryPoint {
  readonly file: string;
  readonly raw: Uint8Array;
  readonly roots: readonly TreeRoot[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function baseNode(role: TreeRole, desc: Descriptor, extra: Partial<TreeNode> = {}): Mutable<TreeNode> {
  return {
    role,
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    ...(desc.platform ? { platform: formatPlatform(desc.platform) } : {}),
    ...(desc.artifactType ? { artifactType: desc.artifactType } : {}),
    ...(desc.annotations && Object.keys(desc.annotations).length > 0 ? { annotations: desc.annotations } : {}),
    ...extra,
    children: [],
  };
}

export async function buildTree(src: BlobSource, entry: TreeEntryPoint, opts: IoOptions = {}): Promise<TreeNode> {
  const top: Mutable<TreeNode> = {
    role: 'entry', label: entry.file, size: entry.raw.length, children: [],
  };
  const byDigest = new Map<string, Mutable<TreeNode>[]>();

  async function expand(desc: Descriptor, role: TreeRole, path: readonly string[], extra: Partial<TreeNode>): Promise<Mutable<TreeNode>> {
    const node = baseNode(role, desc, extra);
    if (path.includes(desc.digest)) {
      node.cycle = true;
      return node;
    }
    const kind = classifyMediaType(desc.mediaType).kind;
    if (!(await src.has(desc, opts))) {
      node.absent = true;
      return node;
    }
    if (kind !== 'index' && kind !== 'manifest') return node;
    let graph;
    try {
      graph = await readNode(src, desc, opts);
    } catch (err) {
      node.error = toBerthError(err).message;
      return node;
    }
    const list = byDigest.get(desc.digest) ?? [];
    list.push(node);
    byDigest.set(desc.digest, list);
    const here = [...path, desc.digest];
    if (graph.kind === 'index') {
      if (role !== 'attestation' && role !== 'referrer') node.role = 'index';
      const children: Mutable<TreeNode>[] = [];
      const attestations: Array<{ subject: string | undefined; node: Mutable<TreeNode> }> = [];
      for (const child of graph.index.manifests) {
        const childRole = entryRole(child);
        const built = await expand(child, childRole, here, {});
        if (childRole === 'attestation') attestations.push({ subject: attestationSubject(child), node: built });
        else children.push(built);
      }
      node.children.push(...children);
      for (const a of attestations) {
        const subject = children.find((c) => c.digest === a.subject);
        (subject ?? node).children.push(a.node);
      }
      return node;
    }
    const manifest = graph.manifest;
    if (role === 'image' && !isImageManifest(manifest)) node.role = 'artifact';
    if (manifest.artifactType && !node.artifactType) node.artifactType = manifest.artifactType;
    const cfgPresent = await src.has(manifest.config, opts);
    node.children.push(baseNode('config', manifest.config, cfgPresent ? {} : { absent: true }));
    for (const [i, layer] of manifest.layers.entries()) {
      const present = await src.has(layer, opts);
      const predicate = layer.annotations?.[ANNOTATION_IN_TOTO_PREDICATE_TYPE];
      node.children.push(baseNode('layer', layer, {
        label: String(i),
        ...(present ? {} : { absent: true }),
        ...(predicate ? { predicateType: predicate } : {}),
      }));
    }
    return node;
  }

  for (const root of entry.roots) {
    const role = entryRole(root.descriptor);
    const node = await expand(root.descriptor, role === 'unknown' ? 'unknown' : role, [], {
      ...(root.names.length > 0 ? { names: root.names } : {}),
      ...(root.synthesized ? { synthesized: true } : {}),
    });
    top.children.push(node);
  }
  await attachReferrers(src, top, byDigest, opts);
  return top;
}

/**
 * The subject a tag names by convention: the referrers fallback tag `sha256-<hex>` (OCI 1.1
 * distribution-spec) and cosign's `sha256-<hex>.sig` / `.att` / `.sbom`.
 */
export function subjectFromTag(name: string): { digest: string; role: TreeRole } | undefined {
  const m = /(?:^|[:/])(sha256|sha512)-([a-f0-9]{64,128})(?:\.(sig|att|sbom))?$/.exec(name);
  if (m === null) return undefined;
  const role: TreeRole = m[3] === 'sig' ? 'signature' : m[3] === undefined ? 'referrer' : 'attestation';
  return { digest: `${m[1]}:${m[2]}`, role };
}

/**
 * Moves top-level entries under the node they refer to: manifests whose `subject` names it (OCI
 * 1.1 referrers), and entries tagged by the referrers fallback or cosign tag conventions.
 */
async function attachReferrers(src: BlobSource, top: Mutable<TreeNode>, byDigest: Map<string, Mutable<TreeNode>[]>, opts: IoOptions): Promise<void> {
  const keep: TreeNode[] = [];
  for (const child of top.children) {
    let subject: string | undefined;
    if (child.digest && !child.absent && !child.error && child.mediaType) {
      try {
        const g = await readNode(src, { mediaType: child.mediaType, digest: child.digest as Descriptor['digest'], size: child.size ?? 0 }, opts);
        subject = g.kind === 'index' ? g.index.subject?.digest : g.manifest.subject?.digest;
      } catch {
        subject = undefined;
      }
    }
    let role: TreeRole = 'referrer';
    if (subject === undefined) {
      const tagged = (child.names ?? []).map(subjectFromTag).find((t) => t !== undefined);
      if (tagged !== undefined) {
        subject = tagged.digest;
        role = tagged.role;
      }
    }
    const target = subject ? byDigest.get(subject)?.find((n) => n !== child) : undefined;
    if (target && target !== top) {
      (child as Mutable<TreeNode>).role = role;
      target.children.push(child);
    } else {
      keep.push(child);
    }
  }
  top.children = keep as Mutable<TreeNode>[];
}
