/**
 * A registry repository as an ImageSource. The entry point is synthetic ("registry") with one
 * root: the manifest or index the tag or digest names, fetched once with every manifest media
 * type in Accept and checked against Docker-Content-Digest and its own bytes. Manifests are
 * fetched from /manifests/ (and kept in memory, they are small), everything else streams from
 * /blobs/ (redirects to blob storage followed, a broken download resumed with Range). Nothing is
 * fetched until asked for.
 */
import type { Descriptor } from '../../core/descriptor.js';
import { createDigester, digestAlgorithm, isDigest, isVerifiableAlgorithm, shortDigest, type Digest } from '../../core/digest.js';
import { BerthError } from '../../core/errors.js';
import { jsonBytes } from '../../core/json.js';
import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, bareMediaType, classifyMediaType, isIndexMediaType, isManifestMediaType,
} from '../../core/media-types.js';
import { referenceName, type DockerReference } from '../../core/reference.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import type { EntryPoint, ImageReference, ImageSource, RootEntry, SourceFormat } from '../transport.js';
import { noteBlobLocation, type RegistryClient, type RegistryResponse, type RequestSpec } from './client.js';
import { formatRepository } from './reference.js';
import { listReferrers } from './referrers.js';
import { limits } from '../../io/limits.js';

/** Every manifest and index type berth reads, in the order registries should prefer. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ');

const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1\+(?:prettyjws|json)$|^application\/json$/;
const MAX_RESUMES = 5;
/** Blobs from this size on are read on a socket of their own (client.getBlob, raw-get.ts). */
const RAW_MIN = 1 << 20;

/** The registry entry point's format name. */
export const REGISTRY_FORMAT: SourceFormat = 'registry';

export interface FetchedManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Uint8Array;
}

/** Whether a descriptor names something served from /manifests/ rather than /blobs/. */
export function isManifestLike(mediaType: string): boolean {
  return isIndexMediaType(mediaType) || isManifestMediaType(mediaType) || classifyMediaType(mediaType).kind === 'schema1';
}

export function repoPath(ref: DockerReference): string {
  return ref.path.split('/').map(encodeURIComponent).join('/');
}

/**
 * GET of a manifest by tag or digest, verified: its sha256 (or the requested digest's algorithm)
 * must equal the digest asked for and the Docker-Content-Digest header. Schema 1 is refused.
 */
export async function fetchManifest(client: RegistryClient, ref: DockerReference, tagOrDigest: string, what: string, opts: IoOptions & { accept?: string } = {}): Promise<FetchedManifest> {
  const res = await client.request({
    method: 'GET', path: `/v2/${repoPath(ref)}/manifests/${encodeURIComponent(tagOrDigest)}`, scope: `repository:${ref.path}:pull`,
    headers: { Accept: opts.accept ?? MANIFEST_ACCEPT }, what, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const bytes = await res.bytes(limits().maxManifestBytes).catch((err: unknown) => {
    throw new BerthError((err as BerthError).code ?? 'BERTH_IO', `${what}: ${(err as Error).message}`, { subject: tagOrDigest });
  });
  const contentType = bareMediaType(res.header('content-type') ?? '');
  if (SCHEMA1.test(contentType) || looksLikeSchema1(bytes)) {
    throw new BerthError('BERTH_UNSUPPORTED', `${what}: the registry holds a Docker schema 1 manifest (${contentType || 'no media type'}), which berth does not read; push the image again with a current docker, buildah or skopeo`, { subject: tagOrDigest });
  }
  const header = res.header('docker-content-digest');
  const requested = isDigest(tagOrDigest) ? tagOrDigest : undefined;
  const alg = requested !== undefined ? digestAlgorithm(requested) : header !== undefined && isDigest(header) ? digestAlgorithm(header) : 'sha256';
  if (!isVerifiableAlgorithm(alg)) throw new BerthError('BERTH_UNSUPPORTED', `${what}: digest algorithm "${alg}" cannot be verified`, { subject: tagOrDigest });
  const d = createDigester(alg);
  d.update(bytes);
  const got = d.digest();
  if (requested !== undefined && got !== requested) {
    throw new BerthError('BERTH_DIGEST_MISMATCH', `${what}: the registry sent a manifest whose digest is ${got}, not the ${requested} asked for`, { subject: tagOrDigest, want: requested, got });
  }
  if (header !== undefined && header !== '' && header !== got) {
    throw new BerthError('BERTH_DIGEST_MISMATCH', `${what}: Docker-Content-Digest says ${header} but the body's digest is ${got}`, { subject: tagOrDigest, want: header, got });
  }
  let mediaType = contentType;
  if (!isManifestLike(mediaType)) mediaType = mediaTypeField(bytes) ?? mediaType;
  if (!isManifestLike(mediaType)) {
    throw new BerthError('BERTH_UNKNOWN_MEDIA_TYPE', `${what}: the registry answered with ${JSON.stringify(contentType || '(no Content-Type)')}, which is not a manifest or index type berth reads`, { subject: tagOrDigest });
  }
  return { descriptor: { mediaType, digest: got, size: bytes.length }, bytes };
}

function mediaTypeField(bytes: Uint8Array): string | undefined {
  try {
    const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: unknown; manifests?: unknown; config?: unknown };
    if (typeof json.mediaType === 'string') return json.mediaType;
    if (Array.isArray(json.manifests)) return OCI_INDEX;
    if (typeof json.config === 'object' && json.config !== null) return OCI_MANIFEST;
  } catch {
    // not JSON: the caller reports the media type
  }
  return undefined;
}

function looksLikeSchema1(bytes: Uint8Array): boolean {
  if (bytes.length > 64 * 1024) return false;
  try {
    const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as { schemaVersion?: unknown };
    return json.schemaVersion === 1;
  } catch {
    return false;
  }
}

/** HEAD of a manifest: its descriptor without the bytes (undefined when absent). */
export async function headManifest(client: RegistryClient, ref: DockerReference, tagOrDigest: string, what: string, opts: IoOptions = {}): Promise<Descriptor | undefined> {
  const res = await client.request({
    method: 'HEAD', path: `/v2/${repoPath(ref)}/manifests/${encodeURIComponent(tagOrDigest)}`, scope: `repository:${ref.path}:pull`,
    headers: { Accept: MANIFEST_ACCEPT }, accept: [200, 404], what, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  res.discard();
  if (res.status === 404) return undefined;
  const digest = res.header('docker-content-digest');
  const size = Number(res.header('content-length'));
  const mediaType = bareMediaType(res.header('content-type') ?? '');
  if (SCHEMA1.test(mediaType)) {
    throw new BerthError('BERTH_UNSUPPORTED', `${what}: the registry holds a Docker schema 1 manifest (${mediaType}), which berth does not read`, { subject: tagOrDigest });
  }
  if (digest === undefined || !isDigest(digest) || !Number.isSafeInteger(size)) {
    // some registries omit the header on HEAD: fall back to GET, which verifies the bytes
    return (await fetchManifest(client, ref, tagOrDigest, what, opts)).descriptor;
  }
  if (isDigest(tagOrDigest) && digest !== tagOrDigest) {
    throw new BerthError('BERTH_DIGEST_MISMATCH', `${what}: the registry says the manifest is ${digest}, not the ${tagOrDigest} asked for`, { subject: tagOrDigest });
  }
  return { mediaType, digest, size };
}

export class RegistrySource implements ImageSource {
  private readonly manifests = new Map<string, Uint8Array>();
  private rootEntry: Promise<RootEntry> | undefined;
  private entry: EntryPoint | undefined;

  constructor(
    readonly reference: ImageReference,
    readonly docker: DockerReference,
    private readonly client: RegistryClient,
  ) {}

  private get where(): string {
    return this.reference.toString();
  }

  private get scope(): string {
    return `repository:${this.docker.path}:pull`;
  }

  async entryPoint(opts: IoOptions = {}): Promise<EntryPoint> {
    if (this.entry !== undefined) return this.entry;
    const root = await this.root(opts);
    this.entry = {
      file: 'registry',
      raw: jsonBytes({ reference: this.where, mediaType: root.descriptor.mediaType, digest: root.descriptor.digest, size: root.descriptor.size }),
      format: REGISTRY_FORMAT,
      roots: [root],
      notes: [],
    };
    return this.entry;
  }

  root(opts: IoOptions = {}): Promise<RootEntry> {
    this.rootEntry ??= this.fetchRoot(opts).catch((err: unknown) => {
      this.rootEntry = undefined;
      throw err;
    });
    return this.rootEntry;
  }

  private async fetchRoot(opts: IoOptions): Promise<RootEntry> {
    const target = this.docker.digest ?? this.docker.tag ?? 'latest';
    const m = await fetchManifest(this.client, this.docker, target, `reading ${this.where}`, opts);
    this.remember(m.descriptor.digest, m.bytes);
    return {
      descriptor: m.descriptor,
      names: this.docker.tag === undefined ? [] : [`${referenceName(this.docker)}:${this.docker.tag}`],
      position: 0,
      synthesized: false,
    };
  }

  async open(desc: Descriptor, opts: IoOptions = {}): Promise<ByteStream> {
    if (isManifestLike(desc.mediaType)) return single(await this.manifestBytes(desc, opts));
    try {
      return await this.openBlob(desc, opts);
    } catch (err) {
      // an unknown media type might still be a manifest (artifacts): try there before giving up
      if ((err as BerthError).code === 'BERTH_NOT_FOUND' && classifyMediaType(desc.mediaType).kind === 'unknown' && desc.size <= limits().maxManifestBytes) {
        const bytes = await this.manifestBytes(desc, opts).catch(() => undefined);
        if (bytes !== undefined) return single(bytes);
      }
      throw err;
    }
  }

  async has(desc: Descriptor, opts: IoOptions = {}): Promise<boolean> {
    if (this.manifests.has(desc.digest)) return true;
    const what = `checking ${describe(desc)} in ${formatRepository(this.docker)}`;
    if (isManifestLike(desc.mediaType)) {
      return (await headManifest(this.client, this.docker, desc.digest, what, opts)) !== undefined;
    }
    const res = await this.client.request({
      method: 'HEAD', path: `/v2/${repoPath(this.docker)}/blobs/${desc.digest}`, scope: this.scope, accept: [200, 404], what,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    res.discard();
    if (res.status === 200) noteBlobLocation(this.client.host, this.docker.path, desc.digest);
    return res.status === 200;
  }

  /** The referrers of a manifest in this repository: the referrers API, else the `<alg>-<hex>` fallback tag. */
  async referrers(subject: Digest, opts: IoOptions = {}): Promise<readonly Descriptor[]> {
    return (await listReferrers(this.client, this.docker, subject, opts)).manifests;
  }

  locate(digest: Digest): string {
    return `${formatRepository(this.docker)}@${digest}`;
  }

  async close(): Promise<void> {
    this.manifests.clear();
  }

  private async manifestBytes(desc: Descriptor, opts: IoOptions): Promise<Uint8Array> {
    const cached = this.manifests.get(desc.digest);
    if (cached !== undefined) return cached;
    const accept = desc.mediaType && !MANIFEST_ACCEPT.includes(desc.mediaType) ? `${desc.mediaType}, ${MANIFEST_ACCEPT}` : MANIFEST_ACCEPT;
    const m = await fetchManifest(this.client, this.docker, desc.digest, `reading ${describe(desc)} from ${formatRepository(this.docker)}`, { ...opts, accept });
    this.remember(desc.digest, m.bytes);
    return m.bytes;
  }

  /**
   * Keeps a manifest's bytes, and notes that the blobs it lists are in this repository (a registry
   * accepts a manifest only when they are), so a push to a sibling repository can mount them.
   */
  private remember(digest: string, bytes: Uint8Array): void {
    this.manifests.set(digest, bytes);
    try {
      const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as { config?: { digest?: unknown }; layers?: Array<{ digest?: unknown; urls?: unknown }> };
      const listed = [json.config, ...(Array.isArray(json.layers) ? json.layers : [])];
      for (const d of listed) {
        if (d !== undefined && typeof d.digest === 'string' && (d as { urls?: unknown }).urls === undefined) noteBlobLocation(this.client.host, this.docker.path, d.digest);
      }
    } catch {
      // not JSON: nothing to note (the parser above reports it)
    }
  }

  /** GET of a blob; resumes with Range after a broken connection (bounded). Raw bytes: openVerified checks them. */
  private async openBlob(desc: Descriptor, opts: IoOptions): Promise<ByteStream> {
    const what = `reading ${describe(desc)} from ${formatRepository(this.docker)}`;
    const path = `/v2/${repoPath(this.docker)}/blobs/${desc.digest}`;
    // a large body pays for a connection of its own (client.getBlob); a small one reuses a kept-alive one
    const large = desc.size >= RAW_MIN;
    const get = (from: number): Promise<RegistryResponse> => {
      const spec: Omit<RequestSpec, 'method' | 'body'> = {
        path, scope: this.scope, what,
        headers: from > 0 ? { Range: `bytes=${from}-` } : {},
        accept: from > 0 ? [200, 206] : [200],
        ...(opts.signal ? { signal: opts.signal } : {}),
      };
      return large ? this.client.getBlob(spec) : this.client.request({ ...spec, method: 'GET' });
    };
    const first = await get(0);
    noteBlobLocation(this.client.host, this.docker.path, desc.digest);
    // socket reads pass on as they come (up to 1 MiB over plain HTTP, 16-64 KiB through node:http):
    // gathering them into bigger chunks would cost a copy of every byte; the writer batches writes
    return resumingStream(first, get, what, desc.size);
  }
}

async function* single(bytes: Uint8Array): ByteStream {
  yield bytes;
}

function describe(desc: Descriptor): string {
  const kind = classifyMediaType(desc.mediaType).kind;
  const role = kind === 'index' ? 'index' : kind === 'manifest' ? 'manifest' : kind === 'config' ? 'config' : kind === 'layer' ? 'layer' : 'blob';
  return `${role} ${shortDigest(desc.digest)}`;
}

const RESUMABLE = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * The body of `first`, continued with `Range: bytes=N-` when the connection breaks before `size`
 * bytes came. A server that ignores Range (200) is read again from the start, skipping what was
 * already passed on.
 */
export async function* resumingStream(first: RegistryResponse, get: (from: number) => Promise<RegistryResponse>, what: string, size: number | undefined): ByteStream {
  let res = first;
  let received = 0;
  let skip = 0;
  let resumes = 0;
  for (;;) {
    try {
      for await (const chunk of res.body) {
        if (skip > 0) {
          if (chunk.length <= skip) {
            skip -= chunk.length;
            continue;
          }
          const rest = chunk.subarray(skip);
          skip = 0;
          received += rest.length;
          yield rest;
          continue;
        }
        received += chunk.length;
        yield chunk;
      }
      if (size !== undefined && received < size && !res.body.complete) {
        throw Object.assign(new Error('connection closed before the whole body came'), { code: 'ECONNRESET' });
      }
      return;
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!(RESUMABLE.has(code) || /aborted/i.test((err as Error).message ?? '')) || resumes >= MAX_RESUMES) {
        if (err instanceof BerthError) throw err;
        throw new BerthError('BERTH_IO', `${what}: connection broken after ${received} bytes (${code || (err as Error).message})${resumes > 0 ? ` and ${resumes} resumes` : ''}`, { cause: err });
      }
      resumes++;
      res.body.destroy();
      res = await get(received);
      if (res.status === 206) {
        const start = /^bytes (\d+)-/.exec(res.header('content-range') ?? '')?.[1];
        if (start !== undefined && Number(start) !== received) {
          res.discard();
          throw new BerthError('BERTH_IO', `${what}: resumed download starts at byte ${start}, not ${received}`, {});
        }
      } else {
        skip = received;
      }
    }
  }
}
