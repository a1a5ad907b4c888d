/**
 * Read access to the files of an image place, whether a directory or a tar archive, confined to
 * it: names are cleaned, `..` and absolute names refused, symlinks never followed out.
 */
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../../core/errors.js';
import { toBytes, type ByteStream, type IoOptions } from '../../io/stream.js';
import { fileStream } from '../../io/file-stream.js';
import { openTarArchive, type ArchiveEntry, type TarArchive } from '../../tar/archive.js';

export interface PlaceFile {
  readonly name: string;
  readonly size: number;
  readonly type: 'file' | 'directory' | 'other';
}

export interface PlaceFiles {
  /** The directory or archive, for messages. */
  readonly location: string;
  readonly kind: 'directory' | 'archive';
  /** The file at `name` (symlinks inside the place followed), or undefined. */
  stat(name: string): Promise<PlaceFile | undefined>;
  open(name: string, opts?: IoOptions): Promise<ByteStream>;
  /** Whole small file, refusing more than `maxBytes`. */
  readBytes(name: string, maxBytes: number): Promise<Uint8Array>;
  /** Up to the first `n` bytes of a file (fewer when it is shorter). */
  readHead(name: string, n: number): Promise<Uint8Array>;
  /** Names of the regular files directly inside `dir` (no recursion). */
  list(dir: string): Promise<readonly string[]>;
  close(): Promise<void>;
}

/** Cleans a member name: drops `./` and trailing `/`; refuses absolute names and `..`. */
export function cleanName(name: string, where: string): string {
  if (name.startsWith('/')) {
    throw new BerthError('BERTH_UNSAFE_PATH', `${where}: "${name}" is an absolute path`, { subject: name });
  }
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new BerthError('BERTH_UNSAFE_PATH', `${where}: "${name}" climbs out with ".."`, { subject: name });
    parts.push(part);
  }
  return parts.join('/');
}

async function headOf(stream: ByteStream, n: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let have = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    have += chunk.length;
    if (have >= n) break; // leaving the loop closes the stream
  }
  const out = new Uint8Array(Math.min(have, n));
  let at = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, out.length - at);
    out.set(c.subarray(0, take), at);
    at += take;
    if (at === out.length) break;
  }
  return out;
}

class DirectoryFiles implements PlaceFiles {
  readonly kind = 'directory';
  constructor(readonly location: string, private readonly realRoot: string) {}

  private async confined(name: string): Promise<string | undefined> {
    const rel = cleanName(name, this.location);
    const full = path.join(this.realRoot, rel);
    try {
      await lstat(full);
    } catch {
      return undefined;
    }
    let real: string;
    try {
      real = await realpath(full);
    } catch {
      return undefined; // dangling symlink
    }
    if (real !== this.realRoot && !real.startsWith(this.realRoot + path.sep)) {
      throw new BerthError('BERTH_UNSAFE_PATH', `${this.location}: "${rel}" is a symlink that leads outside the layout`, { subject: rel });
    }
    return real;
  }

  async stat(name: string): Promise<PlaceFile | undefined> {
    const real = await this.confined(name);
    if (real === undefined) return undefined;
    const st = await stat(real);
    return { name: cleanName(name, this.location), size: st.size, type: st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other' };
  }

  async open(name: string, opts: IoOptions = {}): Promise<ByteStream> {
    const real = await this.confined(name);
    if (real === undefined) throw new BerthError('BERTH_NOT_FOUND', `${this.location}: "${name}" does not exist`, { subject: name });
    return fileStream(real, opts.signal ? { signal: opts.signal } : {});
  }

  async readBytes(name: string, maxBytes: number): Promise<Uint8Array> {
    const real = await this.confined(name);
    if (real === undefined) throw new BerthError('BERTH_NOT_FOUND', `${this.location}: "${name}" does not exist`, { subject: name });
    const handle = await open(real, 'r');
    try {
      const st = await handle.stat();
      if (st.size > maxBytes) {
        throw new BerthError('BERTH_TOO_LARGE', `reading ${name} in ${this.location}: ${st.size} bytes is over the limit of ${maxBytes}`, { subject: name, want: maxBytes, got: st.size });
      }
      return await toBytes(handle.createReadStream(), maxBytes, name);
    } finally {
      await handle.close();
    }
  }

  async readHead(name: string, n: number): Promise<Uint8Array> {
    const real = await this.confined(name);
    if (real === undefined) throw new BerthError('BERTH_NOT_FOUND', `${this.location}: "${name}" does not exist`, { subject: name });
    if (n <= 0) return new Uint8Array(0);
    // only the bytes asked for: a sniff must not read a 1 MiB chunk of every layer
    return headOf(createReadStream(real, { start: 0, end: n - 1, highWaterMark: n }), n);
  }

  async list(dir: string): Promise<readonly string[]> {
    const real = await this.confined(dir);
    if (real === undefined) return [];
    const out: string[] = [];
    for (const d of await readdir(real, { withFileTypes: true })) {
      if (d.isFile() || d.isSymbolicLink()) out.push(d.name);
    }
    return out.sort();
  }

  async close(): Promise<void> {}
}

class ArchiveFiles implements PlaceFiles {
  readonly kind = 'archive';
  constructor(readonly location: string, private readonly archive: TarArchive) {}

  private entry(name: string): ArchiveEntry | undefined {
    const rel = cleanName(name, this.location);
    if (this.archive.get(rel) === undefined) return undefined;
    try {
      return this.archive.resolve(rel);
    } catch (err) {
      if ((err as BerthError).code === 'BERTH_NOT_FOUND') return undefined;
      throw err;
    }
  }

  async stat(name: string): Promise<PlaceFile | undefined> {
    const e = this.entry(name);
    if (e === undefined) return undefined;
    return { name: e.normalizedName, size: e.size, type: e.type === 'file' ? 'file' : e.type === 'directory' ? 'directory' : 'other' };
  }

  async open(name: string, opts: IoOptions = {}): Promise<ByteStream> {
    const e = this.entry(name);
    if (e === undefined) throw new BerthError('BERTH_NOT_FOUND', `${this.location}: member "${name}" does not exist`, { subject: name });
    return this.archive.open(e, opts);
  }

  async readBytes(name: string, maxBytes: number): Promise<Uint8Array> {
    const e = this.entry(name);
    if (e === undefined) throw new BerthError('BERTH_NOT_FOUND', `${this.location}: member "${name}" does not exist`, { subject: name });
    return this.archive.readBytes(e, maxBytes);
  }

  async readHead(name: string, n: number): Promise<Uint8Array> {
    const e = this.entry(name);
    if (e === undefined) throw new BerthError('BERTH_NOT_FOUND', `${this.location}: member "${name}" does not exist`, { subject: name });
    // chunks of n bytes: a sniff must not read 2 MiB of every layer
    return headOf(this.archive.open(e, { chunkSize: Math.max(1, n) }), n);
  }

  async list(dir: string): Promise<readonly string[]> {
    const prefix = cleanName(dir, this.location);
    const out: string[] = [];
    for (const e of this.archive.entries) {
      const name = e.normalizedName;
      const slash = name.lastIndexOf('/');
      const parent = slash < 0 ? '' : name.slice(0, slash);
      if (parent === prefix && e.type !== 'directory') out.push(name.slice(slash + 1));
    }
    return [...new Set(out)].sort();
  }

  async close(): Promise<void> {
    await this.archive.close();
  }
}

/** Opens a directory as PlaceFiles. */
export async function openDirectoryFiles(dir: string): Promise<PlaceFiles> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch {
    throw new BerthError('BERTH_NOT_FOUND', `${dir}: no such directory`, { subject: dir });
  }
  if (!(await stat(real)).isDirectory()) throw new BerthError('BERTH_INVALID_LAYOUT', `${dir}: not a directory`, { subject: dir });
  return new DirectoryFiles(dir, real);
}

/** Opens a tar archive (outer gzip/xz/zstd handled by the tar module) as PlaceFiles. */
export async function openArchiveFiles(file: string, opts: IoOptions = {}): Promise<PlaceFiles> {
  return new ArchiveFiles(file, await openTarArchive(file, opts));
}
