/**
 * OCI 1.1 referrers of a manifest (formats.md section 13): the referrers API
 * (`GET /v2/<name>/referrers/<digest>`) when the registry has it, else the tag schema — an index
 * at tag `<alg>-<hex>` that clients maintain. A 404 on the API means "no API"; an absent or
 * invalid fallback index means "no referrers".
 */
import type { Descriptor } from '../../core/descriptor.js';
import { digestAlgorithm, digestHex, shortDigest, type Digest } from '../../core/digest.js';
import { BerthError } from '../../core/errors.js';
import { MAX_MANIFEST_BYTES } from '../../core/json.js';
import { OCI_INDEX } from '../../core/media-types.js';
import { parseImageIndex } from '../../core/manifest.js';
import type { DockerReference } from '../../core/reference.js';
import type { IoOptions } from '../../io/stream.js';
import type { RegistryClient } from './client.js';
import { formatRepository } from './reference.js';
import { fetchManifest, repoPath } from './source.js';

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
  const res = await client.request({
    method: 'GET', path: `/v2/${repoPath(ref)}/referrers/${subject}${query}`, scope: `repository:${ref.path}:pull`,
    headers: { Accept: OCI_INDEX }, accept: [200, 404], what, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const keep = (list: readonly Descriptor[], filtered: boolean): Descriptor[] =>
    opts.artifactType === undefined || filtered ? [...list] : list.filter((d) => d.artifactType === opts.artifactType);
  if (res.status === 200) {
    const bytes = await res.bytes(MAX_MANIFEST_BYTES);
    const index = parseImageIndex(bytes, { what: `referrers list of ${shortDigest(subject)}` });
    const filtered = opts.artifactType !== undefined && /\bartifactType\b/i.test(res.header('oci-filters-applied') ?? '');
    return { subject, via: 'api', filtered, manifests: keep(index.manifests, filtered), notes: [] };
  }
  res.discard();
  const tag = referrersTag(subject);
  let bytes: Uint8Array;
  try {
    bytes = (await fetchManifest(client, ref, tag, `${what} (fallback tag ${tag})`, { ...opts, accept: OCI_INDEX })).bytes;
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
