/**
 * Pushing to a registry repository (`docker://HOST/REPO[:TAG]`). The copy engine calls has/put for
 * blobs and putManifest for children before parents; this writes them by digest, so nothing is
 * reachable by name until commit PUTs the root under its tag(s) — the last request of a push.
 *
 * - has(): blobs written in this push, else HEAD; when another repository of the same registry is
 *   known to hold the blob (it was read from there), a cross-repository mount is tried, and a
 *   mounted blob is "already there".
 * - put(): blobs up to 4 MiB in one monolithic PUT, larger ones streamed in one PATCH (read,
 *   hash and send overlap), then PUT ?digest=; with an upload chunk size set (registries that cap
 *   request bodies), PATCH chunks of that size with Content-Range instead. The registry checks
 *   the digest at the closing PUT (berth does not hash a second time: the copy engine's stream is
 *   verified as it is read). putComputed() streams too, hashing as it goes.
 * - Manifests: the last one given is held back until the next one comes (children go before
 *   their parent) or commit. When it is the root, commit sends it once, under its tag (the
 *   registry stores it by digest too): no HEAD, no PUT by digest before the PUT by tag. has() does
 *   not ask about manifests: sending a small manifest again costs what asking would.
 * - Uploaded blobs stay in the registry if the push fails before commit (registries collect them).
 */
import type { Descriptor } from '../../core/descriptor.js';
import { createDigester, digestAlgorithm, shortDigest, type Digest } from '../../core/digest.js';
import { BerthError } from '../../core/errors.js';
import { OCI_INDEX, classifyMediaType } from '../../core/media-types.js';
import { parseDockerReference, type DockerReference } from '../../core/reference.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import { verifyBytes } from '../../io/verify.js';
import { verificationOf } from '../../io/verified-stream.js';
import type { DestinationCapabilities, DestinationOptions, ImageDestination, ImageReference, NamedRoot } from '../transport.js';
import { knownBlobLocation, type RegistryClient } from './client.js';
import { formatRepository } from './reference.js';
import { addToFallbackIndex, type FallbackUpdate } from './referrers.js';
import { fetchManifest, isManifestLike, repoPath } from './source.js';

export const REGISTRY_CAPABILITIES: DestinationCapabilities = {
  acceptsIndex: true,
  manifestTypes: 'any',
  layerCompression: 'preserve',
  acceptsForeignLayers: true,
  acceptsAttestations: true,
  parallelPuts: true,
  multipleRoots: false,
  referrers: true,
};

const DEFAULT_CHUNK = 16 * 1024 * 1024;
/** Without a chunk size set, blobs up to this size go in one PUT, larger ones in one streamed PATCH. */
const MONOLITHIC_MAX = 4 * 1024 * 1024;
const TAG = /^\w[\w.-]{0,127}$/;

export class RegistryDestination implements ImageDestination {
  readonly capabilities = REGISTRY_CAPABILITIES;
  private readonly blobs = new Set<string>();
  private readonly manifests = new Map<string, { desc: Descriptor; bytes: Uint8Array }>();
  /** The manifest putManifest kept back (see the module comment); sent by digest when another comes. */
  private held: { desc: Descriptor; bytes: Uint8Array } | undefined;
  /** Upload sessions opened by a mount attempt that the registry answered with 202. */
  private readonly openUploads = new Map<string, string>();
  private committed = false;
  private closed = false;
  /** Referrers of this push by subject digest (addReferrer), for the fallback tags at commit. */
  private readonly referrers = new Map<string, Map<string, Descriptor>>();
  /** Manifests whose PUT the registry answered with OCI-Subject: it indexed their subject itself. */
  private readonly indexedByRegistry = new Set<string>();
  /** Fallback tags written at commit (for the CLI and tests). */
  readonly fallbackTags: FallbackUpdate[] = [];

  constructor(
    readonly reference: ImageReference,
    private readonly docker: DockerReference,
    private readonly client: RegistryClient,
    private readonly opts: DestinationOptions = {},
  ) {
    // the scheme probe (GET /v2/) runs while the source is opened and planned; a failure here is
    // dropped and met again, with its message, by the first request
    client.baseUrl(opts.signal).catch(() => undefined);
  }

  private get repo(): string {
    return formatRepository(this.docker);
  }

  private get scope(): string {
    return `repository:${this.docker.path}:pull,push`;
  }

  private get chunkSize(): number {
    return Math.max(1024, this.client.opts.uploadChunkSize ?? DEFAULT_CHUNK);
  }

  private signal(opts: IoOptions): { signal?: AbortSignal } {
    const s = opts.signal ?? this.opts.signal;
    return s ? { signal: s } : {};
  }

  async has(desc: Descriptor, opts: IoOptions = {}): Promise<boolean> {
    if (this.blobs.has(desc.digest) || this.manifests.has(desc.digest)) return true;
    if (isManifestLike(desc.mediaType)) return false;
    const what = `checking ${describe(desc)} in ${this.repo}`;
    const res = await this.client.request({
      method: 'HEAD', path: `/v2/${repoPath(this.docker)}/blobs/${desc.digest}`, scope: this.scope, accept: [200, 404], what, ...this.signal(opts),
    });
    res.discard();
    if (res.status === 200) return true;
    return this.tryMount(desc, opts);
  }

  /** POST ?mount=&from= when another repository of this registry is known to hold the blob. */
  private async tryMount(desc: Descriptor, opts: IoOptions): Promise<boolean> {
    const from = knownBlobLocation(this.client.host, desc.digest, this.docker.path);
    if (from === undefined) return false;
    const res = await this.client.request({
      method: 'POST', path: `/v2/${repoPath(this.docker)}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
      scope: `${this.scope} repository:${from}:pull`, accept: [201, 202], followRedirects: false,
      what: `mounting ${describe(desc)} from ${from} into ${this.repo}`, ...this.signal(opts),
    });
    res.discard();
    if (res.status === 201) {
      this.blobs.add(desc.digest);
      return true;
    }
    const location = res.header('location');
    if (location !== undefined) this.openUploads.set(desc.digest, new URL(location, res.url).toString());
    return false;
  }

  async put(desc: Descriptor, data: AsyncIterable<Uint8Array>, opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    if (this.blobs.has(desc.digest)) {
      await closeStream(data);
      return;
    }
    // not hashed here: the registry computes the digest of what it received and refuses the closing
    // PUT ?digest= on a mismatch (and the copy engine hands over a stream it verifies already)
    await this.upload(data, desc.digest, desc.size, `pushing ${describe(desc)} to ${this.repo}`, opts);
    this.blobs.add(desc.digest);
  }

  async putComputed(mediaType: string, data: AsyncIterable<Uint8Array>, opts: IoOptions = {}): Promise<Descriptor> {
    this.checkOpen();
    // a stream that verifies itself (the copy engine's, checked against a diff_id) is only counted
    const v = verificationOf(data);
    const digester = v !== undefined && digestAlgorithm(v.digest) === 'sha256' ? undefined : createDigester('sha256');
    let size = 0;
    async function* hashing(): ByteStream {
      for await (const chunk of data) {
        digester?.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    }
    const digest = await this.upload(hashing(), undefined, undefined, `pushing a ${classifyMediaType(mediaType).kind} blob to ${this.repo}`, opts, () => digester?.digest() ?? v!.digest);
    this.blobs.add(digest);
    return { mediaType, digest, size };
  }

  /**
   * Uploads a stream: one PUT when it fits in a chunk and its digest is known, else PATCH chunks
   * then the closing PUT. Returns the digest the upload was closed with.
   */
  private async upload(data: ByteStream, digest: Digest | undefined, size: number | undefined, what: string, opts: IoOptions, computed?: () => Digest): Promise<Digest> {
    let location = digest !== undefined ? this.openUploads.get(digest) : undefined;
    if (digest !== undefined) this.openUploads.delete(digest);
    if (location === undefined) {
      const res = await this.client.request({
        method: 'POST', path: `/v2/${repoPath(this.docker)}/blobs/uploads/`, scope: this.scope, accept: [202], followRedirects: false, what, ...this.signal(opts),
      });
      res.discard();
      const loc = res.header('location');
      if (loc === undefined) throw new BerthError('BERTH_IO', `${what}: the registry started an upload without a Location`, { subject: this.repo });
      location = new URL(loc, res.url).toString();
    }
    const chunked = this.client.opts.uploadChunkSize !== undefined;
    const chunk = chunked ? this.chunkSize : MONOLITHIC_MAX;
    if (digest !== undefined && size !== undefined && size <= chunk) {
      const bytes = await collect(data, size + 1);
      const url = withDigest(location, digest);
      const res = await this.client.request({
        method: 'PUT', path: url, scope: this.scope, accept: [201], followRedirects: false, what, body: bytes,
        headers: { 'Content-Type': 'application/octet-stream' }, ...this.signal(opts),
      });
      res.discard();
      return digest;
    }
    if (!chunked) {
      // the whole blob in one streamed PATCH (as docker and skopeo send it): reading, hashing and
      // sending overlap, and no chunk is buffered
      const res = await this.client.requestStream({
        method: 'PATCH', path: location, scope: this.scope, accept: [202], what,
        headers: { 'Content-Type': 'application/octet-stream' }, ...this.signal(opts),
      }, data, size);
      res.discard();
      const next = res.header('location');
      if (next !== undefined) location = new URL(next, res.url).toString();
      const final = digest ?? computed!();
      const done = await this.client.request({
        method: 'PUT', path: withDigest(location, final), scope: this.scope, accept: [201], followRedirects: false, what,
        body: new Uint8Array(0), headers: { 'Content-Type': 'application/octet-stream' }, ...this.signal(opts),
      });
      done.discard();
      return final;
    }
    let offset = 0;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const res = await this.client.request({
        method: 'PATCH', path: location!, scope: this.scope, accept: [202], followRedirects: false, what, body,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + body.length - 1}` }, ...this.signal(opts),
      });
      res.discard();
      offset += body.length;
      const next = res.header('location');
      if (next !== undefined) location = new URL(next, res.url).toString();
    };
    for await (const piece of data) {
      let at = 0;
      while (at < piece.length) {
        const take = Math.min(piece.length - at, chunk - pendingBytes);
        pending.push(piece.subarray(at, at + take));
        pendingBytes += take;
        at += take;
        if (pendingBytes >= chunk) await flush();
      }
    }
    await flush();
    const final = digest ?? computed!();
    const res = await this.client.request({
      method: 'PUT', path: withDigest(location, final), scope: this.scope, accept: [201], followRedirects: false, what,
      body: new Uint8Array(0), headers: { 'Content-Type': 'application/octet-stream' }, ...this.signal(opts),
    });
    res.discard();
    return final;
  }

  async putManifest(desc: Descriptor, bytes: Uint8Array, opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    verifyBytes(bytes, { digest: desc.digest, size: desc.size, what: describe(desc) });
    if (this.manifests.has(desc.digest)) return;
    const before = this.held;
    this.held = { desc, bytes };
    this.manifests.set(desc.digest, { desc, bytes });
    if (before !== undefined) await this.sendByDigest(before, opts);
  }

  /** Sends the held manifest by digest (before another manifest, referrers, or a push by digest). */
  private async release(opts: IoOptions): Promise<void> {
    const m = this.held;
    this.held = undefined;
    if (m !== undefined) await this.sendByDigest(m, opts);
  }

  private async sendByDigest(m: { desc: Descriptor; bytes: Uint8Array }, opts: IoOptions): Promise<void> {
    await this.putManifestAt(m.desc, m.bytes, m.desc.digest, `pushing ${describe(m.desc)} to ${this.repo}`, opts);
  }

  private async putManifestAt(desc: Descriptor, bytes: Uint8Array, at: string, what: string, opts: IoOptions): Promise<void> {
    const res = await this.client.request({
      method: 'PUT', path: `/v2/${repoPath(this.docker)}/manifests/${encodeURIComponent(at)}`, scope: this.scope, accept: [201], followRedirects: false,
      what, body: bytes, headers: { 'Content-Type': desc.mediaType }, ...this.signal(opts),
    });
    res.discard();
    if ((res.header('oci-subject') ?? '') !== '') this.indexedByRegistry.add(desc.digest);
    const said = res.header('docker-content-digest');
    if (said !== undefined && said !== '' && said !== desc.digest) {
      throw new BerthError('BERTH_DIGEST_MISMATCH', `${what}: the registry stored it as ${said}, not ${desc.digest}`, { subject: desc.digest, want: desc.digest, got: said });
    }
  }

  addReferrer(subject: Digest, referrer: Descriptor): void {
    let m = this.referrers.get(subject);
    if (m === undefined) {
      m = new Map();
      this.referrers.set(subject, m);
    }
    if (!m.has(referrer.digest)) m.set(referrer.digest, referrer);
  }

  /**
   * Makes the referrers of this push findable where the registry has no referrers API (no
   * OCI-Subject answer on their PUT, and a 404 from /referrers/): each subject's fallback index
   * gets the missing descriptors.
   */
  private async publishReferrers(opts: IoOptions): Promise<void> {
    for (const [subject, list] of this.referrers) {
      const pending = [...list.values()].filter((d) => !this.indexedByRegistry.has(d.digest));
      if (pending.length === 0) continue;
      if (this.client.referrersApi.get(this.docker.path) === undefined) {
        const res = await this.client.request({
          method: 'GET', path: `/v2/${repoPath(this.docker)}/referrers/${subject}`, scope: this.scope, accept: [200, 404],
          headers: { Accept: OCI_INDEX }, what: `checking the referrers API of ${this.repo}`, ...this.signal(opts),
        });
        res.discard();
        this.client.referrersApi.set(this.docker.path, res.status === 200);
      }
      if (this.client.referrersApi.get(this.docker.path) === true) continue;
      this.fallbackTags.push(await addToFallbackIndex(this.client, this.docker, subject as Digest, pending, this.signal(opts)));
    }
  }

  /** Tags the root: the reference's tag, or the tags of the names given. The last step of a push. */
  async commit(roots: readonly NamedRoot[], opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    if (roots.length !== 1) {
      throw new BerthError('BERTH_UNSUPPORTED', `${this.reference.toString()}: a registry reference holds one image; push one at a time (got ${roots.length})`, { subject: this.repo });
    }
    const root = roots[0]!;
    // the root alone may go straight under its tag; anything else held is sent as it is first
    if (this.held !== undefined && (this.held.desc.digest !== root.descriptor.digest || this.docker.digest !== undefined || this.referrers.size > 0)) await this.release(opts);
    // referrers first: everything they name is in by now; the image's tag stays the last request
    await this.publishReferrers(opts);
    if (this.docker.digest !== undefined) {
      if (root.descriptor.digest !== this.docker.digest) {
        throw new BerthError('BERTH_DIGEST_MISMATCH', `${this.reference.toString()}: the image pushed is ${root.descriptor.digest}, not the digest the reference names`, { subject: this.repo });
      }
      this.committed = true;
      return;
    }
    const tags = tagsOf(root.names, this.docker);
    let entry = this.manifests.get(root.descriptor.digest);
    if (entry === undefined) {
      // it was there before this push (has() said so): tag the registry's own bytes
      const m = await fetchManifest(this.client, this.docker, root.descriptor.digest, `reading ${describe(root.descriptor)} from ${this.repo}`, this.signal(opts));
      entry = { desc: { ...root.descriptor, mediaType: m.descriptor.mediaType }, bytes: m.bytes };
    }
    // a root still held goes to the registry with its first tag: errors name it as a push
    let unsent = this.held !== undefined;
    this.held = undefined;
    for (const tag of tags) {
      await this.putManifestAt(entry.desc, entry.bytes, tag, unsent ? `pushing ${describe(entry.desc)} to ${this.repo}:${tag}` : `tagging ${this.repo}:${tag}`, opts);
      unsent = false;
    }
    this.committed = true;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new BerthError('BERTH_USAGE', `${this.reference.toString()}: destination already closed`, {});
    if (this.committed) throw new BerthError('BERTH_USAGE', `${this.reference.toString()}: destination already committed`, {});
  }
}

/** The tags a push sets: each name's tag (`app:1`, `host/app:1` or a bare `1`), else the reference's. */
export function tagsOf(names: readonly string[], ref: DockerReference): string[] {
  const out = new Set<string>();
  for (const name of names) {
    if (TAG.test(name)) {
      out.add(name);
      continue;
    }
    try {
      const parsed = parseDockerReference(name, { defaultTag: false });
      if (parsed.tag !== undefined) out.add(parsed.tag);
    } catch {
      throw new BerthError('BERTH_INVALID_REFERENCE', `${JSON.stringify(name)} is not a tag or an image name with a tag`, { subject: name });
    }
  }
  if (out.size === 0) out.add(ref.tag ?? 'latest');
  return [...out];
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}

async function collect(data: ByteStream, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of data) {
    n += c.length;
    if (n > max) throw new BerthError('BERTH_SIZE_MISMATCH', `blob is larger than ${max - 1} bytes`, {});
    chunks.push(c);
  }
  return Buffer.concat(chunks, n);
}

async function closeStream(data: AsyncIterable<Uint8Array>): Promise<void> {
  await data[Symbol.asyncIterator]().return?.();
}

function describe(desc: Pick<Descriptor, 'digest' | 'mediaType'>): string {
  const kind = classifyMediaType(desc.mediaType).kind;
  const role = kind === 'index' ? 'index' : kind === 'manifest' ? 'manifest' : kind === 'config' ? 'config' : kind === 'layer' ? 'layer' : 'blob';
  return `${role} ${shortDigest(desc.digest)}`;
}
