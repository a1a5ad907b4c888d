/**
 * OCI 1.1 referrers of a manifest (formats.md section 13): the referrers API
 * (`GET /v2/<name>/referrers/<digest>`) when the registry has it, else the tag schema — an index
 * at tag `<alg>-<hex>` that clients maintain. A 404 on the API means "no API"; an absent or
 * invalid fallback index means "no referrers".
 */
import type { Descriptor } from '../../core/descriptor.js';
import { digestAlgorithm, digestHex, shortDigest, type Digest } from '../../core/digest.js';
import { BerthError } from '../../core/errors.js';
import { OCI_INDEX } from '../../core/media-types.js';
import { parseImageIndex } from '../../core/manifest.js';
import type { DockerReference } from '../../core/reference.js';
import type { IoOptions } from '../../io/stream.js';
import type { RegistryClient } from './client.js';
import { formatRepository } from './reference.js';
import { fetchManifest, repoPath } from './source.js';
import { limits } from '../../io/limits.js';

export interface ReferrersList {
  readonly subject: Digest;
  /** Where the list came from. */
  readonly via: 'api' | 'tag-schema';
  /** The fallback tag read (tag schema only). */
  readonly tag?: string;
  /** Whether the registry applied the artifactType filter itself. */
  readonly filtered: boolean;
  readonly manifests: readonly Descriptor[];
  readonly notes: readonly string[];
}

/** The fallback tag of a subject: `sha256-<hex>`, at most 128 characters. */
export function referrersTag(subject: Digest): string {
  return `${digestAlgorithm(subject)}-${digestHex(subject)}`.slice(0, 128);
}

export async function listReferrers(client: RegistryClient, ref: DockerReference, subject: Digest, opts: IoOptions & { artifactType?: string } = {}): Promise<ReferrersList> {
  const repo = formatRepository(ref);
  const what = `listing referrers of ${shortDigest(subject)} in ${repo}`;
  const query = opts.artifactType === undefined ? '' : `?artifactType=${encodeURIComponent(opts.artifactType)}`;
  const keep = (list: readonly Descriptor[], filtered: boolean): Descriptor[] =>
    opts.artifactType === undefined || filtered ? [...list] : list.filter((d) => d.artifactType === opts.artifactType);
  // a registry that answered 404 once has no referrers API: ask only the fallback tag from then on
  if (client.referrersApi.get(ref.path) !== false) {
    const res = await client.request({
      method: 'GET', path: `/v2/${repoPath(ref)}/referrers/${subject}${query}`, scope: `repository:${ref.path}:pull`,
      headers: { Accept: OCI_INDEX }, accept: [200, 404], what, ...(opts.signal ? { signal: opts.signal } : {}),
    });
    client.referrersApi.set(ref.path, res.status === 200);
    if (res.status === 200) {
      const bytes = await res.bytes(limits().maxManifestBytes);
      const index = parseImageIndex(bytes, { what: `referrers list of ${shortDigest(subject)}` });
      const filtered = opts.artifactType !== undefined && /\bartifactType\b/i.test(res.header('oci-filters-applied') ?? '');
      return { subject, via: 'api', filtered, manifests: keep(index.manifests, filtered), notes: [] };
    }
    res.discard();
  }
  const tag = referrersTag(subject);
  let bytes: Uint8Array;
  try {
    bytes = (await fetchManifest(client, ref, tag, `${what} (fallback tag ${tag})`, opts)).bytes;
  } catch (err) {
    if (err instanceof BerthError && err.code === 'BERTH_NOT_FOUND') return { subject, via: 'tag-schema', tag, filtered: false, manifests: [], notes: [] };
    throw err;
  }
  try {
    const index = parseImageIndex(bytes, { what: `referrers index at tag ${tag}` });
    return { subject, via: 'tag-schema', tag, filtered: false, manifests: keep(index.manifests, false), notes: [] };
  } catch (err) {
    // an invalid fallback index means "no referrers"; say why
    return { subject, via: 'tag-schema', tag, filtered: false, manifests: [], notes: [`tag ${tag} is not a valid referrers index (${(err as Error).message}); treated as no referrers`] };
  }
}

/** A referrers-list entry in the key order of the spec's examples: mediaType, digest, size, artifactType, annotations. */
export function referrerEntry(d: Descriptor): Record<string, unknown> {
  return {
    mediaType: d.mediaType, digest: d.digest, size: d.size,
    ...(d.artifactType !== undefined ? { artifactType: d.artifactType } : {}),
    ...(d.annotations !== undefined && Object.keys(d.annotations).length > 0 ? { annotations: d.annotations } : {}),
  };
}

export interface FallbackUpdate {
  readonly tag: string;
  /** Entries added now (0: every one was listed already, nothing was written). */
  readonly added: number;
  /** Entries in the index afterwards. */
  readonly total: number;
}

const UPDATE_ATTEMPTS = 3;

/**
 * Adds referrers to the fallback index of `subject` (tag `<alg>-<hex>`), as distribution-spec 1.1
 * says clients without the referrers API do: read the index (404: start empty; anything but an
 * OCI index: refuse and change nothing), append the descriptors not listed yet (no duplicates;
 * entries already there are kept byte for byte), PUT it back under the tag. The registry has no
 * conditional PUT, so the index is read again after the PUT and the update is repeated (bounded)
 * when a concurrent writer dropped an entry.
 */
export async function addToFallbackIndex(client: RegistryClient, ref: DockerReference, subject: Digest, referrers: readonly Descriptor[], opts: IoOptions = {}): Promise<FallbackUpdate> {
  const tag = referrersTag(subject);
  const repo = formatRepository(ref);
  const what = `updating the referrers of ${shortDigest(subject)} in ${repo} (fallback tag ${tag})`;
  const wanted = new Map<string, Descriptor>();
  for (const r of referrers) if (!wanted.has(r.digest)) wanted.set(r.digest, r);
  let added = 0;
  for (let attempt = 0; ; attempt++) {
    const current = await readFallbackIndex(client, ref, tag, what, opts);
    const listed = new Set(current.manifests.map((m) => (typeof m === 'object' && m !== null ? (m as { digest?: unknown }).digest : undefined)));
    const missing = [...wanted.values()].filter((d) => !listed.has(d.digest));
    if (missing.length === 0) return { tag, added, total: current.manifests.length };
    if (attempt >= UPDATE_ATTEMPTS) {
      throw new BerthError('BERTH_IO', `${what}: the index kept changing under concurrent writers (${UPDATE_ATTEMPTS} attempts); push again`, { subject: tag });
    }
    const index = {
      ...(current.raw ?? { schemaVersion: 2, mediaType: OCI_INDEX }),
      manifests: [...current.manifests, ...missing.map(referrerEntry)],
    };
    const bytes = Buffer.from(JSON.stringify(index), 'utf8');
    const res = await client.request({
      method: 'PUT', path: `/v2/${repoPath(ref)}/manifests/${encodeURIComponent(tag)}`, scope: `repository:${ref.path}:pull,push`, accept: [201],
      followRedirects: false, what, body: bytes, headers: { 'Content-Type': OCI_INDEX }, ...(opts.signal ? { signal: opts.signal } : {}),
    });
    res.discard();
    added += missing.length;
  }
}

async function readFallbackIndex(client: RegistryClient, ref: DockerReference, tag: string, what: string, opts: IoOptions): Promise<{ raw: Record<string, unknown> | undefined; manifests: unknown[] }> {
  let m;
  try {
    // every manifest type accepted: a registry may hide a non-index from an index-only Accept (404)
    m = await fetchManifest(client, ref, tag, what, opts);
  } catch (err) {
    if (err instanceof BerthError && err.code === 'BERTH_NOT_FOUND') return { raw: undefined, manifests: [] };
    throw err;
  }
  if (m.descriptor.mediaType !== OCI_INDEX) {
    throw new BerthError('BERTH_INVALID_INDEX', `${what}: the tag holds ${m.descriptor.mediaType}, not an OCI image index; it was left as it is`, { subject: tag });
  }
  // checked as an index, kept as raw JSON so entries and fields berth does not know survive
  parseImageIndex(m.bytes, { what: `referrers index at tag ${tag}` });
  const raw = JSON.parse(Buffer.from(m.bytes).toString('utf8')) as Record<string, unknown>;
  return { raw, manifests: Array.isArray(raw.manifests) ? [...(raw.manifests as unknown[])] : [] };
}
