/**
 * Random access to a tar file on disk (image archives: docker-archive, oci-archive).
 *
 * openTarArchive sniffs the outer compression (gzip, xz, zstd, bzip2); a compressed archive is
 * decompressed once into a temp file that close() removes. The tar is then indexed in one pass
 * that reads only header blocks and seeks past bodies, so opening costs one small read per
 * member whatever the archive's size. Member bodies are read later by byte range.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError, isBerthError, withContext } from '../core/errors.js';
import { decompress, sniffCompression } from '../io/codec.js';
import type { ByteStream, IoOptions } from '../io/stream.js';
import { fileStream } from '../io/file-stream.js';
import type { TarType } from './header.js';
import { limits } from '../io/limits.js';
import { checkPath, entryLabel, readHeaderGroup, type BlockReader } from './reader.js';

export type ArchiveCompression = 'none' | 'gzip' | 'xz' | 'zstd' | 'bzip2';

export interface ArchiveEntry {
  /** Position among the archive's members (PAX global headers are not members). */
  readonly index: number;
  /** The name exactly as stored (may start with `./`, directories may end with `/`). */
  readonly name: string;
  /** Cleaned name: no leading `./`, no trailing `/`, no empty or `.` components; `.` for the root. */
  readonly normalizedName: string;
  readonly type: TarType;
  /** Bytes of data (0 for links, directories and devices). */
  readonly size: number;
  /** Offset of the first data byte in the (decompressed) tar file. */
  readonly dataOffset: number;
  readonly linkname: string;
  readonly mode: number;
}

export interface OpenOptions extends IoOptions {
  /** highWaterMark of the read stream; default 1 MiB. */
  readonly chunkSize?: number;
}

export interface TarArchive {
  /** The file given to openTarArchive. */
  readonly file: string;
  readonly compression: ArchiveCompression;
  /** The uncompressed tar that offsets refer to (`file` itself, or the temp spool). */
  readonly tarFile: string;
  readonly entries: readonly ArchiveEntry[];
  /** Looks a member up by name (normalised first); the last of duplicates wins, as on extraction. */
  get(name: string): ArchiveEntry | undefined;
  /**
   * Finds a member following symlinks (relative to the link's directory) and hard links
   * (relative to the archive root) inside the archive only, also through symlinked parent
   * directories. BERTH_NOT_FOUND when missing, BERTH_UNSAFE_PATH when a link leaves the archive
   * or loops.
   */
  resolve(name: string): ArchiveEntry;
  /** The entry's data bytes (exactly `size`); a link entry has none: resolve() it first. */
  open(entry: ArchiveEntry, opts?: OpenOptions): ByteStream;
  /** The entry's data in memory; BERTH_TOO_LARGE when it is bigger than maxBytes. */
  readBytes(entry: ArchiveEntry, maxBytes: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface OpenTarArchiveOptions extends IoOptions {
  readonly maxEntries?: number;
  /** Where to spool a decompressed archive; default os.tmpdir(). */
  readonly tempDir?: string;
}

const MAX_LINK_HOPS = 40;
const WINDOW = 64 * 1024;

/** Cleans a member name; returns undefined for an absolute name or one with `..` components. */
export function normalizeMemberName(name: string): string | undefined {
  if (name.startsWith('/')) return undefined;
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') return undefined;
    parts.push(p);
  }
  return parts.length === 0 ? '.' : parts.join('/');
}

/** Reads header-sized pieces at a moving position through a 64 KiB window (few syscalls for small members). */
class FileBlocks implements BlockReader {
  private window = Buffer.alloc(0);
  private windowStart = 0;
  pos = 0;

  constructor(private readonly fh: FileHandle, private readonly fileSize: number) {}

  async read(n: number): Promise<Uint8Array> {
    const want = Math.max(0, Math.min(n, this.fileSize - this.pos));
    if (want === 0) return new Uint8Array(0);
    const inWindow = this.pos >= this.windowStart && this.pos + want <= this.windowStart + this.window.length;
    if (!inWindow) {
      const size = Math.min(Math.max(WINDOW, want), this.fileSize - this.pos);
      const buf = Buffer.alloc(size);
      const { bytesRead } = await this.fh.read(buf, 0, size, this.pos);
      this.window = buf.subarray(0, bytesRead);
      this.windowStart = this.pos;
    }
    const from = this.pos - this.windowStart;
    const out = new Uint8Array(this.window.subarray(from, from + want));
    this.pos += out.length;
    return out;
  }
}

function checkAbort(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted === true) throw new BerthError('BERTH_ABORTED', `${what}: aborted`, { cause: signal.reason });
}

async function spawnDecompress(cmd: string, file: string, out: Writable, signal: AbortSignal | undefined): Promise<void> {
  const child = spawn(cmd, ['-dc', '--', file], { stdio: ['ignore', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  await pipeline(child.stdout, out);
  const code = await exited;
  if (code !== 0) throw new Error(`${cmd} exited with code ${code}${stderr === '' ? '' : `: ${stderr.trim().split('\n')[0]}`}`);
}

async function spool(file: string, compression: ArchiveCompression, dest: string, signal: AbortSignal | undefined): Promise<void> {
  const out = createWriteStream(dest);
  if (compression === 'gzip' || compression === 'zstd') {
    // the same streaming codecs as layers: bounded memory, errors that name the archive
    const input = createReadStream(file, { highWaterMark: 1 << 20 });
    const plain = decompress(input, compression, { what: 'the archive', ...(signal ? { signal } : {}) });
    await pipeline(Readable.from(plain), out, signal === undefined ? {} : { signal });
  } else {
    await spawnDecompress(compression === 'xz' ? 'xz' : 'bzip2', file, out, signal);
  }
}

/** Opens a tar file (optionally gzip/xz/zstd/bzip2-compressed) and indexes its members. */
export async function openTarArchive(file: string, opts: OpenTarArchiveOptions = {}): Promise<TarArchive> {
  const what = `opening tar archive ${JSON.stringify(file)}`;
  let tempDir: string | undefined;
  try {
    checkAbort(opts.signal, what);
    const head = Buffer.alloc(6);
    const fh0 = await open(file, 'r');
    try {
      await fh0.read(head, 0, 6, 0);
    } finally {
      await fh0.close();
    }
    const sniffed = sniffCompression(head);
    if (sniffed === 'lz4') throw new BerthError('BERTH_UNSUPPORTED', `${what}: the archive is lz4-compressed, which berth does not read`, { subject: file });
    const compression: ArchiveCompression = sniffed;
    let tarFile = file;
    if (compression !== 'none') {
      tempDir = await mkdtemp(join(opts.tempDir ?? tmpdir(), 'berth-archive-'));
      tarFile = join(tempDir, 'archive.tar');
      try {
        await spool(file, compression, tarFile, opts.signal);
      } catch (err) {
        if (isBerthError(err)) throw err;
        if ((err as { code?: unknown }).code === 'ABORT_ERR') throw withContext(err, what);
        throw new BerthError('BERTH_COMPRESSION', `${what}: decompressing ${compression}: ${(err as Error).message}`, { subject: file, cause: err });
      }
    }
    const entries = await indexTar(tarFile, file, opts);
    return new Archive(file, compression, tarFile, entries, tempDir);
  } catch (err) {
    if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
    throw isBerthError(err) && err.message.startsWith(what) ? err : withContext(err, what);
  }
}

async function indexTar(tarFile: string, shownName: string, opts: OpenTarArchiveOptions): Promise<ArchiveEntry[]> {
  const maxEntries = opts.maxEntries ?? limits().maxStreamEntries;
  const maxPath = limits().maxPathBytes;
  const fh = await open(tarFile, 'r');
  try {
    const { size: fileSize } = await fh.stat();
    if (fileSize === 0) {
      throw new BerthError('BERTH_INVALID_TAR', `${JSON.stringify(shownName)} is not a tar archive (the file is empty)`, { subject: shownName });
    }
    const blocks = new FileBlocks(fh, fileSize);
    const entries: ArchiveEntry[] = [];
    let prevName: string | undefined;
    for (let n = 0; ; n++) {
      if ((n & 1023) === 0) checkAbort(opts.signal, 'indexing tar');
      const at = blocks.pos;
      let g;
      try {
        g = await readHeaderGroup(blocks, at, entries.length, prevName);
      } catch (err) {
        if (at === 0 && isBerthError(err, 'BERTH_INVALID_TAR')) {
          throw new BerthError('BERTH_INVALID_TAR', `${JSON.stringify(shownName)} is not a tar archive (no valid tar header at byte 0)`, {
            subject: shownName, cause: err,
          });
        }
        throw err;
      }
      if (g.end) break;
      const end = g.dataOffset + g.dataSize + g.paddingSize;
      const label = entryLabel(entries.length, g.header.name);
      if (g.dataOffset + g.dataSize > fileSize) {
        const got = Math.max(0, fileSize - g.dataOffset);
        throw new BerthError('BERTH_INVALID_TAR', `${label}: truncated body (want ${g.dataSize} bytes, got ${got})`, {
          subject: g.header.name, want: g.dataSize, got,
        });
      }
      if (end > fileSize) {
        throw new BerthError('BERTH_INVALID_TAR', `${label}: truncated padding after the body (want ${g.paddingSize} bytes, got ${fileSize - g.dataOffset - g.dataSize})`, {
          subject: g.header.name,
        });
      }
      blocks.pos = end;
      prevName = g.header.name;
      if (g.header.typeflag === 'g') continue;
      if (entries.length >= maxEntries) {
        throw new BerthError('BERTH_LIMIT', `${label}: too many entries (want at most ${maxEntries})`, { want: maxEntries, subject: g.header.name });
      }
      checkPath(entries.length, maxPath, g.header);
      const normalizedName = normalizeMemberName(g.header.name);
      if (normalizedName === undefined) {
        throw new BerthError('BERTH_UNSAFE_PATH', `${label}: member name is absolute or contains ".."`, { subject: g.header.name });
      }
      entries.push({
        index: entries.length, name: g.header.name, normalizedName, type: g.header.type, size: g.dataSize, dataOffset: g.dataOffset,
        linkname: g.header.linkname, mode: g.header.mode,
      });
    }
    return entries;
  } finally {
    await fh.close();
  }
}

class Archive implements TarArchive {
  private readonly byName = new Map<string, ArchiveEntry>();
  private closed = false;

  constructor(
    readonly file: string,
    readonly compression: ArchiveCompression,
    readonly tarFile: string,
    readonly entries: readonly ArchiveEntry[],
    private readonly tempDir: string | undefined,
  ) {
    for (const e of entries) this.byName.set(e.normalizedName, e);
  }

  get(name: string): ArchiveEntry | undefined {
    const n = normalizeMemberName(name);
    return n === undefined ? undefined : this.byName.get(n);
  }

  resolve(name: string): ArchiveEntry {
    const what = `resolving ${JSON.stringify(name)} in ${JSON.stringify(this.file)}`;
    const start = normalizeMemberName(name);
    if (start === undefined) throw new BerthError('BERTH_UNSAFE_PATH', `${what}: name is absolute or contains ".."`, { subject: name });
    let pending = start === '.' ? [] : start.split('/');
    let done: string[] = [];
    let hops = 0;
    const hop = (e: ArchiveEntry): void => {
      if (++hops > MAX_LINK_HOPS) {
        throw new BerthError('BERTH_UNSAFE_PATH', `${what}: too many links (more than ${MAX_LINK_HOPS}, a loop?) at member ${JSON.stringify(e.name)}`, { subject: e.name });
      }
    };
    const escape = (e: ArchiveEntry): BerthError =>
      new BerthError('BERTH_UNSAFE_PATH', `${what}: member ${JSON.stringify(e.name)} links outside the archive (to ${JSON.stringify(e.linkname)})`, {
        subject: e.name, got: e.linkname,
      });
    while (pending.length > 0) {
      const part = pending[0]!;
      const rest = pending.slice(1);
      const e = this.byName.get([...done, part].join('/'));
      if (e !== undefined && e.type === 'symlink') {
        hop(e);
        if (e.linkname.startsWith('/')) throw escape(e);
        const target = normalizeRelative([...done, ...e.linkname.split('/')]);
        if (target === undefined) throw escape(e);
        pending = [...target, ...rest];
        done = [];
        continue;
      }
      if (e !== undefined && e.type === 'link' && rest.length === 0) {
        hop(e);
        const target = e.linkname.startsWith('/') ? undefined : normalizeRelative(e.linkname.split('/'));
        if (target === undefined) throw escape(e);
        pending = target;
        done = [];
        continue;
      }
      done.push(part);
      pending = rest;
    }
    const found = this.byName.get(done.length === 0 ? '.' : done.join('/'));
    if (found === undefined) {
      const via = done.join('/') === start ? '' : ` (resolved to ${JSON.stringify(done.join('/'))})`;
      throw new BerthError('BERTH_NOT_FOUND', `${what}: no such member${via}`, { subject: name });
    }
    return found;
  }

  open(entry: ArchiveEntry, opts: OpenOptions = {}): ByteStream {
    this.checkOpen();
    if (entry.size === 0) return (async function* () {})();
    return fileStream(this.tarFile, {
      start: entry.dataOffset, end: entry.dataOffset + entry.size - 1, highWaterMark: opts.chunkSize ?? 1 << 20,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
  }

  async readBytes(entry: ArchiveEntry, maxBytes: number): Promise<Uint8Array> {
    this.checkOpen();
    if (entry.size > maxBytes) {
      throw new BerthError('BERTH_TOO_LARGE', `reading member ${JSON.stringify(entry.name)} of ${JSON.stringify(this.file)}: more than ${maxBytes} bytes (want at most ${maxBytes}, got ${entry.size})`, {
        subject: entry.name, want: maxBytes, got: entry.size,
      });
    }
    const buf = Buffer.alloc(entry.size);
    if (entry.size === 0) return new Uint8Array(0);
    const fh = await open(this.tarFile, 'r');
    try {
      let got = 0;
      while (got < entry.size) {
        const { bytesRead } = await fh.read(buf, got, entry.size - got, entry.dataOffset + got);
        if (bytesRead === 0) {
          throw new BerthError('BERTH_INVALID_TAR', `reading member ${JSON.stringify(entry.name)} of ${JSON.stringify(this.file)}: file shrank (want ${entry.size} bytes, got ${got})`, { subject: entry.name });
        }
        got += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.tempDir !== undefined) await rm(this.tempDir, { recursive: true, force: true });
  }

  private checkOpen(): void {
    if (this.closed && this.tempDir !== undefined) {
      throw new BerthError('BERTH_USAGE', `reading ${JSON.stringify(this.file)}: the archive is closed`, { subject: this.file });
    }
  }
}

/** Cleans path components; undefined when `..` climbs above the root. */
function normalizeRelative(parts: readonly string[]): string[] | undefined {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(p);
  }
  return out;
}

