/**
 * Writing OCI image layouts (image-spec v1.1 image-layout.md), shared by oci:, oci-archive: and the
 * Docker 25+ docker-archive: a staging blob directory whose puts are verified before they become
 * visible, index.json building and updating, the names that go into index.json, and the tar
 * packer that turns a staged directory into an archive atomically.
 *
 * Every write goes to a temp file first and is renamed into place only once its size and digest
 * are right, so a failed or interrupted put never leaves a wrong blob behind.
 */
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Descriptor } from '../../core/descriptor.js';
import { createDigester, digestAlgorithm, digestHex, isVerifiableAlgorithm, type Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import { isJsonObject, parseJsonBytes, type JsonObject } from '../../core/json.js';
import { ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME, OCI_INDEX } from '../../core/media-types.js';
import { formatReference, parseDockerReference, familiarName } from '../../core/reference.js';
import { fsyncDir, makeTempSibling, writeStreamAtomic, TEMP_PREFIX } from '../../io/atomic-file.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import { fileStream } from '../../io/file-stream.js';
import { verifyBytes, verifyStream } from '../../io/verify.js';
import { verificationOf } from '../../io/verified-stream.js';
import { BLOCK_SIZE } from '../../tar/header.js';
import { writeTar, type TarWriteEntry } from '../../tar/writer.js';
import type { DestinationCapabilities, DestinationOptions, ImageDestination, ImageReference, NamedRoot } from '../transport.js';
import { limits } from '../../io/limits.js';

/** The `oci-layout` file berth writes (Docker 25's spelling; readers parse, never compare bytes). */
export const OCI_LAYOUT_FILE = new TextEncoder().encode('{"imageLayoutVersion":"1.0.0"}');

export function blobName(digest: Digest): string {
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

/** Wraps a file-system failure with the phrase, turning ENOSPC / EROFS / EACCES into plain words. */
export function writeError(err: unknown, phrase: string): BerthError {
  const code = (err as { code?: string } | null)?.code;
  const hint = code === 'ENOSPC' ? 'no space left on the device'
    : code === 'EROFS' ? 'the file system is read-only'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EDQUOT' ? 'disk quota exceeded'
    : undefined;
  if (hint !== undefined) return new BerthError('BERTH_IO', `${phrase}: ${hint}`, { subject: phrase, cause: err });
  return withContext(err, phrase);
}

async function writeAll(fh: FileHandle, chunks: readonly Uint8Array[], position: number | null): Promise<void> {
  let rest = chunks;
  let at = position;
  while (rest.length > 0) {
    let { bytesWritten } = rest.length === 1 ? await fh.write(rest[0]!, 0, rest[0]!.length, at) : await fh.writev(rest as Uint8Array[], at ?? undefined);
    if (at !== null) at += bytesWritten;
    // a short write: drop what went, write the rest
    let i = 0;
    while (i < rest.length && bytesWritten >= rest[i]!.length) bytesWritten -= rest[i++]!.length;
    rest = i < rest.length && bytesWritten > 0 ? [rest[i]!.subarray(bytesWritten), ...rest.slice(i + 1)] : rest.slice(i);
  }
}

/** A write starts once this much is gathered; reading goes on while it runs, up to WRITE_AHEAD_BYTES. */
const WRITE_BATCH_BYTES = 1 << 20;
const WRITE_AHEAD_BYTES = 8 << 20;

/**
 * Writes the chunks of `src` to `fh` in order, one writev of the gathered chunks at a time while
 * the next ones are read (a socket or file read overlaps the write, and small chunks are never
 * copied together). Chunks belong to the consumer once yielded, as toBytes assumes too. With a
 * `position`, writes go there onward (not to the file's offset); returns the bytes written.
 */
async function writeStream(fh: FileHandle, src: ByteStream, check: () => void, position: number | null = null): Promise<number> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let total = 0;
  // fields, not locals: the write's callbacks change them, which TypeScript's narrowing does not see
  const w: { busy?: Promise<void> | undefined; failure?: { err: unknown } } = {};
  const start = (): Promise<void> => {
    const batch = pending;
    const at = position === null ? null : position + total - pendingBytes;
    pending = [];
    pendingBytes = 0;
    // never rejects: the error is kept and thrown by the loop, so no rejection goes unhandled
    return writeAll(fh, batch, at).then(() => {
      w.busy = undefined;
    }, (err: unknown) => {
      w.busy = undefined;
      w.failure ??= { err };
    });
  };
  const rethrow = (): void => {
    if (w.failure !== undefined) throw w.failure.err;
  };
  try {
    for await (const chunk of src) {
      check();
      rethrow();
      if (chunk.length === 0) continue;
      pending.push(chunk);
      pendingBytes += chunk.length;
      total += chunk.length;
      if (pendingBytes < WRITE_BATCH_BYTES) continue;
      if (w.busy !== undefined && pendingBytes >= WRITE_AHEAD_BYTES) await w.busy;
      rethrow();
      w.busy ??= start();
    }
  } finally {
    // the file handle closes only once no write runs on it
    await w.busy;
  }
  rethrow();
  if (pending.length > 0) await writeAll(fh, pending, position === null ? null : position + total - pendingBytes);
  return total;
}

/**
 * `src` with its first read asked for now, before a put awaits anything: a source that fails on
 * an abort (a file stream given the copy's signal) has a reader from the start, so its error
 * comes out of the read instead of going unhandled while the put waits for its file.
 */
export function eager(src: ByteStream): ByteStream {
  const it = src[Symbol.asyncIterator]();
  const first = it.next();
  // the reader below awaits it; this only keeps an early rejection from counting as unhandled
  first.catch(() => undefined);
  return (async function* () {
    let done = false;
    try {
      for (let r = await first; r.done !== true; r = await it.next()) yield r.value;
      done = true;
    } finally {
      if (!done) await it.return?.();
    }
  })();
}

/**
 * Closes a stream that a failed put may never have started (the tar writer stops at an abort
 * before it reads a body): a source stream that fails on the abort then has a reader to fail
 * to, instead of raising an unhandled error.
 */
export async function discard(stream: ByteStream): Promise<void> {
  try {
    for await (const _ of stream) break;
  } catch {
    // already read, or failing: closed either way
  }
}

export interface BlobDirectoryOptions {
  /** Blobs that already exist elsewhere (an existing layout being added to). */
  readonly existing?: (desc: Descriptor) => Promise<boolean>;
  readonly fsync?: boolean;
  /** Names the destination in errors. */
  readonly where: string;
}

/**
 * A directory of blobs in the OCI layout shape (`blobs/<alg>/<hex>`), filled through verified
 * puts. Used as the staging area of every file-based destination.
 */
export class BlobDirectory {
  private readonly staged = new Map<string, number>();
  private tmpCounter = 0;

  constructor(readonly root: string, private readonly opts: BlobDirectoryOptions) {}

  /** Blobs put so far: digest → size. */
  get blobs(): ReadonlyMap<string, number> {
    return this.staged;
  }

  filePath(digest: Digest): string {
    return path.join(this.root, ...blobName(digest).split('/'));
  }

  async has(desc: Descriptor): Promise<boolean> {
    if (this.staged.get(desc.digest) === desc.size) return true;
    return (await this.opts.existing?.(desc)) ?? false;
  }

  private async tempFile(): Promise<string> {
    const dir = path.join(this.root, 'tmp');
    await mkdir(dir, { recursive: true });
    return path.join(dir, `${TEMP_PREFIX}${process.pid}-${++this.tmpCounter}-${randomBytes(4).toString('hex')}`);
  }

  private async place(tmp: string, digest: Digest, size: number): Promise<void> {
    const file = this.filePath(digest);
    await mkdir(path.dirname(file), { recursive: true });
    await rename(tmp, file);
    this.staged.set(digest, size);
  }

  /**
   * Streams `data` into the directory, verified against `desc` before it is named. A stream that
   * verifies itself against exactly `desc` (the copy engine's reader) is not hashed a second time.
   */
  async put(desc: Descriptor, data: ByteStream, opts: IoOptions = {}): Promise<void> {
    const v = verificationOf(data);
    const trusted = v !== undefined && v.digest === desc.digest && v.size === desc.size;
    const verified = trusted ? eager(data) : verifyStream(eager(data), { digest: desc.digest, size: desc.size, what: `blob ${desc.digest}` });
    await this.writeTemp(verified, `writing blob ${desc.digest} to ${this.opts.where}`, opts, async (tmp) => {
      await this.place(tmp, desc.digest, desc.size);
    });
  }

  /**
   * Streams `data` in as `desc` without hashing it: the caller made `data` fail on its last read
   * unless it is exactly `desc` (verifyStream or verifiedStream).
   */
  async putVerified(desc: Descriptor, data: ByteStream, opts: IoOptions = {}): Promise<void> {
    await this.writeTemp(data, `writing blob ${desc.digest} to ${this.opts.where}`, opts, async (tmp) => {
      await this.place(tmp, desc.digest, desc.size);
    });
  }

  /** Streams `data` in, computing its sha256 and size; returns its descriptor. */
  async putComputed(mediaType: string, data: ByteStream, opts: IoOptions = {}): Promise<Descriptor> {
    const v = verificationOf(data);
    if (v !== undefined && digestAlgorithm(v.digest) === 'sha256') return this.putCounted(mediaType, v.digest, eager(data), opts);
    data = eager(data);
    const digester = createDigester('sha256');
    async function* hashing(): ByteStream {
      for await (const chunk of data) {
        digester.update(chunk);
        yield chunk;
      }
    }
    let out: Descriptor | undefined;
    await this.writeTemp(hashing(), `writing a blob to ${this.opts.where}`, opts, async (tmp) => {
      const digest = digester.digest();
      out = { mediaType, digest, size: digester.bytes };
      await this.place(tmp, digest, digester.bytes);
    });
    return out!;
  }

  /** A self-verifying stream whose digest is known (a diff_id) but not its size: only counted. */
  private async putCounted(mediaType: string, digest: Digest, data: ByteStream, opts: IoOptions): Promise<Descriptor> {
    let size = 0;
    async function* counting(): ByteStream {
      for await (const chunk of data) {
        size += chunk.length;
        yield chunk;
      }
    }
    // the stream throws on its last read unless the bytes hash to `digest`, so before place()
    await this.writeTemp(counting(), `writing blob ${digest} to ${this.opts.where}`, opts, async (tmp) => {
      await this.place(tmp, digest, size);
    });
    return { mediaType, digest, size };
  }

  /** Writes small bytes (manifests, configs made in memory), verified against `desc`. */
  async putBytes(desc: Descriptor, bytes: Uint8Array, opts: IoOptions = {}): Promise<void> {
    verifyBytes(bytes, { digest: desc.digest, size: desc.size, what: `blob ${desc.digest}` });
    async function* one(): ByteStream {
      yield bytes;
    }
    await this.writeTemp(one(), `writing blob ${desc.digest} to ${this.opts.where}`, opts, async (tmp) => {
      await this.place(tmp, desc.digest, desc.size);
    });
  }

  private async writeTemp(src: ByteStream, phrase: string, opts: IoOptions, done: (tmp: string) => Promise<void>): Promise<void> {
    let tmp: string | undefined;
    let fh: FileHandle | undefined;
    try {
      tmp = await this.tempFile();
      fh = await open(tmp, 'wx', 0o644);
      await writeStream(fh, src, () => {
        if (opts.signal?.aborted) throw new BerthError('BERTH_ABORTED', `${phrase}: aborted`, { cause: opts.signal.reason });
      });
      if (this.opts.fsync !== false) await fh.sync();
      await fh.close();
      fh = undefined;
      await done(tmp);
      tmp = undefined;
    } catch (err) {
      await fh?.close().catch(() => undefined);
      if (tmp !== undefined) await unlink(tmp).catch(() => undefined);
      if (err instanceof BerthError && err.code !== 'BERTH_IO' && err.code !== 'BERTH_NOT_FOUND') throw err;
      throw writeError(err, phrase);
    }
  }

  /** Removes the staging temp dir (`tmp/`) once nothing writes any more. */
  async removeTemp(): Promise<void> {
    await rm(path.join(this.root, 'tmp'), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Names in index.json (formats.md 4.3: berth emits both keys)

/**
 * The annotations an index.json entry gets for `name`. A bare word (`latest`, `v1`) is only a
 * ref.name. A full reference gets `io.containerd.image.name` (normalised, `docker.io/library/…`)
 * and ref.name: the name as given for OCI layouts (skopeo's way), the tag alone for Docker 25
 * archives (Docker's way).
 */
export function refAnnotations(name: string, style: 'oci' | 'docker'): Record<string, string> {
  if (!name.includes(':') && !name.includes('/')) return { [ANNOTATION_REF_NAME]: name };
  let full: string | undefined;
  let tag: string | undefined;
  try {
    const ref = parseDockerReference(name);
    if (ref.digest === undefined && ref.tag !== undefined) {
      full = formatReference(ref);
      tag = ref.tag;
    }
  } catch {
    // Not a Docker reference: only a ref.name (valid by the OCI grammar or not, as the user said).
  }
  if (full === undefined) return { [ANNOTATION_REF_NAME]: name };
  return { [ANNOTATION_CONTAINERD_IMAGE_NAME]: full, [ANNOTATION_REF_NAME]: style === 'docker' ? tag! : name };
}

/** `RepoTags` form of a name (`app:1`, `localhost:5000/x:v3`), or undefined when it is not a tagged reference. */
export function repoTag(name: string): string | undefined {
  try {
    const ref = parseDockerReference(name, { defaultTag: true });
    if (ref.digest !== undefined) return undefined;
    return familiarName(ref);
  } catch {
    return undefined;
  }
}

/** The JSON object of an index.json entry for a root and one of its names (or none). */
export function indexEntry(root: Descriptor, annotations: Record<string, string> | undefined): JsonObject {
  return {
    mediaType: root.mediaType,
    digest: root.digest,
    size: root.size,
    ...(root.artifactType !== undefined ? { artifactType: root.artifactType } : {}),
    ...(root.platform !== undefined ? { platform: root.platform } : {}),
    ...(annotations !== undefined && Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

/** Entries for the roots: one per name, or one unnamed entry when a root has no names. */
export function rootEntries(roots: readonly NamedRoot[], style: 'oci' | 'docker'): JsonObject[] {
  const out: JsonObject[] = [];
  for (const root of roots) {
    if (root.names.length === 0) out.push(indexEntry(root.descriptor, undefined));
    for (const name of root.names) out.push(indexEntry(root.descriptor, refAnnotations(name, style)));
  }
  return out;
}

export function serializeIndex(manifests: readonly JsonObject[], extra: JsonObject = {}): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, ...extra, manifests })}\n`);
}

function refNameOf(entry: JsonObject): string | undefined {
  const a = entry['annotations'];
  if (!isJsonObject(a)) return undefined;
  const v = a[ANNOTATION_REF_NAME];
  return typeof v === 'string' ? v : undefined;
}

/**
 * Adds root entries to an existing index.json (its raw bytes), keeping every other entry and
 * unknown field as it was. An entry whose ref.name is taken by a different digest is replaced
 * when `overwrite`, else BERTH_EXISTS; re-adding the same digest under the same name is a no-op.
 */
export function mergeIndex(existing: Uint8Array | undefined, add: readonly JsonObject[], opts: { overwrite: boolean; where: string }): Uint8Array {
  let top: JsonObject = {};
  let manifests: JsonObject[] = [];
  if (existing !== undefined) {
    const value = parseJsonBytes(existing, 'index.json', limits().maxManifestBytes);
    if (!isJsonObject(value)) throw new BerthError('BERTH_INVALID_LAYOUT', `${opts.where}: index.json is not a JSON object`, { subject: 'index.json' });
    const list = value['manifests'];
    if (list !== null && list !== undefined && !Array.isArray(list)) {
      throw new BerthError('BERTH_INVALID_LAYOUT', `${opts.where}: index.json "manifests" is not a list`, { subject: 'index.json' });
    }
    manifests = ((list ?? []) as unknown[]).filter(isJsonObject);
    const { manifests: _m, schemaVersion: _s, mediaType: _t, ...rest } = value;
    top = rest;
  }
  for (const entry of add) {
    const name = refNameOf(entry);
    if (name === undefined) {
      if (!manifests.some((m) => m['digest'] === entry['digest'] && refNameOf(m) === undefined)) manifests.push(entry);
      continue;
    }
    const same = manifests.findIndex((m) => refNameOf(m) === name);
    if (same < 0) {
      manifests.push(entry);
      continue;
    }
    if (manifests[same]!['digest'] === entry['digest']) {
      manifests[same] = entry;
      continue;
    }
    if (!opts.overwrite) {
      throw new BerthError('BERTH_EXISTS', `${opts.where}: name "${name}" already names ${String(manifests[same]!['digest'])} (use --overwrite to replace it)`, { subject: name });
    }
    manifests = manifests.filter((m) => refNameOf(m) !== name);
    manifests.push(entry);
  }
  return serializeIndex(manifests, top);
}

/** Names in `add` that an existing index.json already gives to a different digest. */
export function conflictingNames(existing: Uint8Array, add: readonly JsonObject[]): string[] {
  const value = parseJsonBytes(existing, 'index.json', limits().maxManifestBytes);
  const list = isJsonObject(value) && Array.isArray(value['manifests']) ? (value['manifests'] as unknown[]).filter(isJsonObject) : [];
  const out: string[] = [];
  for (const entry of add) {
    const name = refNameOf(entry);
    if (name === undefined) continue;
    if (list.some((m) => refNameOf(m) === name && m['digest'] !== entry['digest'])) out.push(name);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Packing a tar file

export type TarMember =
  | { readonly name: string; readonly type: 'directory'; readonly mtime?: number }
  | { readonly name: string; readonly type: 'file'; readonly bytes: Uint8Array; readonly mtime?: number }
  | { readonly name: string; readonly type: 'file'; readonly file: string; readonly size: number; readonly mtime?: number }
  | { readonly name: string; readonly type: 'file'; readonly stream: ByteStream; readonly size: number; readonly mtime?: number }
  | { readonly name: string; readonly type: 'symlink'; readonly target: string; readonly mtime?: number };

function tarEntry(m: TarMember, opts: IoOptions): TarWriteEntry {
  const base = { name: m.name, mtime: m.mtime ?? 0, uname: 'root', gname: 'root' };
  switch (m.type) {
    case 'directory':
      return { header: { ...base, name: m.name.endsWith('/') ? m.name : `${m.name}/`, type: 'directory' } };
    case 'symlink':
      return { header: { ...base, type: 'symlink', linkname: m.target } };
    case 'file':
      if ('bytes' in m) return { header: { ...base, type: 'file', size: m.bytes.length }, body: m.bytes };
      if ('stream' in m) return { header: { ...base, type: 'file', size: m.size }, body: m.stream };
      return {
        header: { ...base, type: 'file', size: m.size },
        body: fileStream(m.file, opts.signal ? { signal: opts.signal } : {}),
      };
  }
}

/** The tar stream of `members` (uncompressed, deterministic: root-owned, mtime 0 unless given). */
export function tarStream(members: Iterable<TarMember> | AsyncIterable<TarMember>, opts: IoOptions = {}): ByteStream {
  async function* entries(): AsyncIterable<TarWriteEntry> {
    for await (const m of members) yield tarEntry(m, opts);
  }
  return writeTar(entries(), opts);
}

/** Writes the tar of `members` to `target` atomically (temp file beside it, fsync, rename). */
export async function writeTarFile(target: string, members: Iterable<TarMember> | AsyncIterable<TarMember>, opts: IoOptions & { fsync?: boolean } = {}): Promise<void> {
  try {
    await writeStreamAtomic(target, tarStream(members, opts), { fsync: opts.fsync !== false });
  } catch (err) {
    const cause = isBerthErrorWithCause(err);
    throw writeError(cause ?? err, `writing ${target}`);
  }
}

/**
 * An archive written member by member into a temp file, so a destination can stream a blob
 * straight into its tar instead of staging it and copying it in at the end. Each append()
 * writes a whole tar (its members, then the two-block trailer) where the previous one's trailer
 * began, so the file is a complete archive after every append; a failed append is cut off again.
 * publish() renames the file over the target; close() without it leaves the target untouched.
 */
export class TarAppender {
  /** Where the next member goes: the end of the last member written. */
  private offset = 0;
  private busy = false;

  private constructor(readonly file: string, private fh: FileHandle | undefined) {}

  /** Creates `file` (which must not exist). */
  static async create(file: string): Promise<TarAppender> {
    return new TarAppender(file, await open(file, 'wx', 0o644));
  }

  /** True when no append runs and the file is open. */
  get idle(): boolean {
    return !this.busy && this.fh !== undefined;
  }

  /** Bytes of members written so far. */
  get size(): number {
    return this.offset;
  }

  /** Appends `members`; on failure the file is cut back to what it held before, and the error rethrown. */
  async append(members: Iterable<TarMember> | AsyncIterable<TarMember>, opts: IoOptions = {}): Promise<void> {
    const fh = this.fh;
    if (fh === undefined || this.busy) throw new BerthError('BERTH_USAGE', `appending to ${this.file}: ${fh === undefined ? 'closed' : 'another append is running'}`, { subject: this.file });
    this.busy = true;
    const start = this.offset;
    try {
      const n = await writeStream(fh, tarStream(members, opts), () => {
        if (opts.signal?.aborted) throw new BerthError('BERTH_ABORTED', `writing ${this.file}: aborted`, { cause: opts.signal.reason });
      }, start);
      this.offset = start + n - 2 * BLOCK_SIZE;
    } catch (err) {
      await fh.truncate(start).catch(() => undefined);
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Ends the archive (trailer), flushes it when `fsync`, and renames it to `target`. */
  async publish(target: string, opts: { fsync?: boolean } = {}): Promise<void> {
    const fh = this.fh;
    if (fh === undefined || this.busy) throw new BerthError('BERTH_USAGE', `publishing ${this.file}: ${fh === undefined ? 'closed' : 'an append is running'}`, { subject: this.file });
    // after a cut-off append the trailer is missing: extending the file writes its zeros
    await fh.truncate(this.offset + 2 * BLOCK_SIZE);
    if (opts.fsync !== false) await fh.sync();
    this.fh = undefined;
    await fh.close();
    await rename(this.file, target);
    if (opts.fsync !== false) await fsyncDir(path.dirname(path.resolve(target)));
  }

  /** Closes the file (kept on disk; the caller removes its directory). */
  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
  }
}

/** writeStreamAtomic wraps fs errors once; dig out the system error so ENOSPC reads plainly. */
function isBerthErrorWithCause(err: unknown): unknown {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof BerthError && e.cause !== undefined; i++) e = e.cause;
  return (e as { code?: unknown } | null)?.code !== undefined && !(e instanceof BerthError) ? e : undefined;
}

/** The members of an OCI layout staged in `root`: oci-layout and index.json first, then blobs. */
export async function layoutMembers(root: string, indexJson: Uint8Array, blobs: ReadonlyMap<string, number>, extra: readonly TarMember[] = []): Promise<TarMember[]> {
  const out: TarMember[] = [
    { name: 'oci-layout', type: 'file', bytes: OCI_LAYOUT_FILE },
    { name: 'index.json', type: 'file', bytes: indexJson },
    ...extra,
    { name: 'blobs', type: 'directory' },
  ];
  const algs = new Set<string>();
  const digests = [...blobs.keys()].sort();
  for (const d of digests) algs.add(d.slice(0, d.indexOf(':')));
  for (const alg of [...algs].sort()) {
    out.push({ name: `blobs/${alg}`, type: 'directory' });
    for (const d of digests.filter((x) => x.startsWith(`${alg}:`))) {
      const file = path.join(root, 'blobs', alg, d.slice(alg.length + 1));
      const size = (await stat(file)).size;
      out.push({ name: `blobs/${alg}/${d.slice(alg.length + 1)}`, type: 'file', file, size });
    }
  }
  return out;
}

/** True when `alg` names a digest algorithm berth can compute for written blobs. */
export function canWriteDigest(d: Digest): boolean {
  return isVerifiableAlgorithm(digestAlgorithm(d));
}

// ---------------------------------------------------------------------------------------------
// The common part of every file-based destination

export interface StageOptions {
  /** Blobs that already exist at the target (an existing layout being added to). */
  readonly existing?: (desc: Descriptor) => Promise<boolean>;
  /**
   * The staged blobs are only read back into the published file (an archive), which is itself
   * fsynced: flushing them to disk first would write every byte to the disk twice.
   */
  readonly scratch?: boolean;
}

/**
 * A destination that stages blobs in a temp directory beside its target and publishes them at
 * commit. Subclasses implement publish(); close() without a commit removes the staging directory,
 * so the target is left exactly as it was.
 */
export abstract class StagingDestination implements ImageDestination {
  protected readonly blobs: BlobDirectory;
  /** Manifests and indexes put so far, by digest. */
  protected readonly manifests = new Map<string, { descriptor: Descriptor; bytes: Uint8Array }>();
  private committed = false;
  private closed = false;

  protected constructor(
    readonly reference: ImageReference,
    readonly capabilities: DestinationCapabilities,
    protected readonly staging: string,
    protected readonly opts: DestinationOptions,
    stage: StageOptions = {},
  ) {
    const fsync = opts.fsync !== false && stage.scratch !== true;
    this.blobs = new BlobDirectory(staging, { where: reference.toString(), ...(stage.existing ? { existing: stage.existing } : {}), fsync });
  }

  get where(): string {
    return this.reference.toString();
  }

  has(desc: Descriptor): Promise<boolean> {
    return this.blobs.has(desc);
  }

  put(desc: Descriptor, data: ByteStream, opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    return this.blobs.put(desc, data, opts);
  }

  putComputed(mediaType: string, data: ByteStream, opts: IoOptions = {}): Promise<Descriptor> {
    this.checkOpen();
    return this.blobs.putComputed(mediaType, data, opts);
  }

  async putManifest(desc: Descriptor, bytes: Uint8Array, opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    await this.blobs.putBytes(desc, bytes, opts);
    this.manifests.set(desc.digest, { descriptor: desc, bytes });
  }

  async commit(roots: readonly NamedRoot[], opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    if (this.committed) throw new BerthError('BERTH_USAGE', `committing ${this.where}: already committed`, { subject: this.where });
    for (const r of roots) {
      if (!this.manifests.has(r.descriptor.digest) && !(await this.blobs.has(r.descriptor))) {
        throw new BerthError('BERTH_USAGE', `committing ${this.where}: root ${r.descriptor.digest} was never put`, { subject: r.descriptor.digest });
      }
    }
    await this.blobs.removeTemp();
    await this.publish(roots, opts);
    this.committed = true;
  }

  /** Makes the staged content visible at the target, atomically. */
  protected abstract publish(roots: readonly NamedRoot[], opts: IoOptions): Promise<void>;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await rm(this.staging, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  }

  protected checkOpen(): void {
    if (this.closed) throw new BerthError('BERTH_USAGE', `writing to ${this.where}: the destination is closed`, { subject: this.where });
  }
}

/** What is at a destination path before anything is written. */
export type TargetState = { readonly kind: 'absent' } | { readonly kind: 'file'; readonly size: number } | { readonly kind: 'directory'; readonly entries: readonly string[] };

export async function targetState(target: string): Promise<TargetState> {
  let st;
  try {
    st = await stat(target);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') {
      const parent = path.dirname(path.resolve(target));
      const pst = await stat(parent).catch(() => undefined);
      if (pst === undefined || !pst.isDirectory()) {
        throw new BerthError('BERTH_NOT_FOUND', `${target}: the directory it would go in (${parent}) does not exist`, { subject: target });
      }
      return { kind: 'absent' };
    }
    throw writeError(err, `checking ${target}`);
  }
  if (st.isDirectory()) return { kind: 'directory', entries: await readdir(target) };
  return { kind: 'file', size: st.size };
}

/** A temp directory beside `target`, with errors that say why it could not be made. */
export async function stagingBeside(target: string): Promise<string> {
  try {
    return await makeTempSibling(target);
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause ?? err;
    throw writeError(cause, `preparing to write ${target}`);
  }
}
