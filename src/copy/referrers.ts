/**
 * Referrers travel with the image (OCI 1.1, formats.md §13): after an image is copied, the
 * manifests at the source that name one of its manifests or indexes as `subject` (signatures,
 * SBOMs, attestations pushed as artifacts) are copied too, then theirs, a few levels deep. The
 * source lists them itself when it can (a registry's referrers API or fallback tag); otherwise
 * they are searched where a layout keeps them: roots of the entry point (index.json) that name a
 * copied subject, and the indexes tagged `<alg>-<hex>` by the referrers tag schema. A referrer
 * whose subject this copy rewrote (another digest) is left out with a note: it would point at
 * nothing.
 */
import type { Descriptor } from '../core/descriptor.js';
import { shortDigest, type Digest } from '../core/digest.js';
import { BerthError, isBerthError } from '../core/errors.js';
import { classifyMediaType } from '../core/media-types.js';
import type { IoOptions } from '../io/stream.js';
import { readNode } from '../image/node.js';
import type { ImageSource, RootEntry } from '../transports/transport.js';

/** How many generations of referrers are followed (a signature of an SBOM of an image is 2). */
export const MAX_REFERRER_DEPTH = 4;
/** Referrers copied with one image at most. */
export const MAX_REFERRERS = 10_000;

export interface FoundReferrer {
  /** The source digest of the manifest or index it refers to. */
  readonly subject: Digest;
  readonly desc: Descriptor;
}

function isManifestOrIndex(mediaType: string): boolean {
  const kind = classifyMediaType(mediaType).kind;
  return kind === 'manifest' || kind === 'index';
}

/** The fallback tag of the referrers tag schema: `sha256:ab…` → `sha256-ab…`. */
function fallbackTag(digest: string): string {
  return digest.replace(':', '-').slice(0, 128);
}

/**
 * Finds the referrers of `subjects` at the source. `seen` holds digests already copied or found
 * (they are not returned again).
 */
export async function findReferrers(src: ImageSource, subjects: readonly Digest[], seen: ReadonlySet<string>, opts: IoOptions): Promise<FoundReferrer[]> {
  const out: FoundReferrer[] = [];
  const taken = new Set<string>();
  const add = (subject: Digest, desc: Descriptor): void => {
    if (seen.has(desc.digest) || taken.has(desc.digest) || !isManifestOrIndex(desc.mediaType)) return;
    taken.add(desc.digest);
    out.push({ subject, desc });
  };
  if (typeof src.referrers === 'function') {
    for (const subject of subjects) {
      for (const d of await src.referrers(subject, opts)) add(subject, d);
    }
    return out;
  }
  const ep = await src.entryPoint(opts);
  if (ep.format !== 'oci-layout' && ep.format !== 'docker-archive-oci') return out;
  const wanted = new Set<string>(subjects);
  const byTag = new Map(subjects.map((s) => [fallbackTag(s), s] as const));
  const candidates: Descriptor[] = [];
  for (const r of ep.roots as readonly RootEntry[]) {
    if (r.synthesized || !isManifestOrIndex(r.descriptor.mediaType)) continue;
    const tagged = r.names.map((n) => byTag.get(n.slice(n.lastIndexOf(':') + 1))).find((s) => s !== undefined);
    if (tagged !== undefined && classifyMediaType(r.descriptor.mediaType).kind === 'index') {
      // an index kept under the fallback tag lists the subject's referrers; it is not one itself
      if (!(await src.has(r.descriptor, opts))) continue;
      const node = await readNode(src, r.descriptor, opts).catch(() => undefined);
      if (node?.kind === 'index') candidates.push(...node.index.manifests);
      continue;
    }
    candidates.push(r.descriptor);
  }
  const looked = new Set<string>();
  for (const d of candidates) {
    if (wanted.has(d.digest) || seen.has(d.digest) || looked.has(d.digest) || !isManifestOrIndex(d.mediaType)) continue;
    looked.add(d.digest);
    if (!(await src.has(d, opts))) continue;
    const node = await readNode(src, d, opts).catch(() => undefined);
    const subject = node === undefined ? undefined : node.kind === 'manifest' ? node.manifest.subject?.digest : node.index.subject?.digest;
    if (subject !== undefined && wanted.has(subject)) add(subject, { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.artifactType !== undefined ? { artifactType: d.artifactType } : {}) });
  }
  return out;
}

export interface ReferrerCopy {
  /**
   * Copies one referrer (a root of its own) and returns the manifests and indexes written so far
   * (source digest → written), or why it was left out (nothing was written then).
   */
  copy(found: FoundReferrer): Promise<ReadonlyMap<string, Descriptor> | string>;
  note(message: string): void;
}

/**
 * Follows referrers from the manifests and indexes an image copy wrote (`written`: source digest
 * → written descriptor), generation by generation. Returns how many referrers were copied.
 */
export async function copyReferrers(src: ImageSource, written: ReadonlyMap<string, Descriptor>, how: ReferrerCopy, opts: IoOptions): Promise<number> {
  const done = new Map(written);
  let frontier = [...written.keys()] as Digest[];
  let copied = 0;
  for (let depth = 0; depth < MAX_REFERRER_DEPTH && frontier.length > 0; depth++) {
    let found: FoundReferrer[];
    try {
      found = await findReferrers(src, frontier, new Set(done.keys()), opts);
    } catch (err) {
      if (isBerthError(err, 'BERTH_ABORTED')) throw err;
      how.note(`referrers could not be listed at the source, none copied (${(err as Error).message})`);
      return copied;
    }
    const next: Digest[] = [];
    for (const f of found) {
      if (copied >= MAX_REFERRERS) throw new BerthError('BERTH_LIMIT', `more than ${MAX_REFERRERS} referrers`, { subject: f.subject });
      const target = done.get(f.subject);
      if (target !== undefined && target.digest !== f.subject) {
        how.note(`referrer ${shortDigest(f.desc.digest)} is left out: it refers to ${shortDigest(f.subject)}, which this copy rewrites`);
        continue;
      }
      const wrote = await how.copy(f);
      if (typeof wrote === 'string') {
        how.note(`referrer ${shortDigest(f.desc.digest)} of ${shortDigest(f.subject)} is left out: ${wrote}`);
        continue;
      }
      copied++;
      for (const [from, to] of wrote) {
        if (!done.has(from)) {
          done.set(from, to);
          next.push(from as Digest);
        }
      }
    }
    frontier = next;
  }
  return copied;
}
