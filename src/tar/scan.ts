/**
 * Header-only tar reading: what a listing needs (names, types, modes, owners, sizes, link
 * targets, devices, xattrs) and nothing else. Each chunk is scanned synchronously, bodies are
 * skipped without copying, and no raw header bytes are kept, so a layer of 200 000 tiny files
 * costs one pass over its bytes rather than an await and a few buffers per entry.
 *
 * Same input rules, checks and errors as readTar (reader.ts): a plain ustar/GNU/v7 block is
 * decoded here; anything else (extension headers, non-ASCII or prefixed names, base-256 or odd
 * numbers, a bad checksum, the end of the archive) goes through readTar's own header parser.
 */
import { BerthError } from '../core/errors.js';
import { limits } from '../io/limits.js';
import type { ByteStream } from '../io/stream.js';
import { BLOCK_SIZE, fastOctal, paddingLength, typeFromFlag, type TarHeader, type TarType } from './header.js';
import { DEFAULT_MAX_TRAILER_BYTES, checkEntries, checkPath, entryLabel, parseHeaderGroupAt } from './reader.js';

/** One tar member as scanTar reports it. */
export interface TarRecord {
  /** 0-based position among the entries (extension headers are not entries), as readTar counts. */
  readonly index: number;
  /** Full member name (PAX path, GNU long name or ustar prefix applied). */
  readonly name: string;
  readonly type: TarType;
  /** The type byte as stored. */
  readonly typeflag: string;
  /** Permission and special bits (12 bits). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Size as recorded (header-only types may say anything; see dataSize). */
  readonly size: number;
  readonly mtime: number;
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** From PAX `SCHILY.xattr.*` records; a shared empty object when there are none. */
  readonly xattrs: Readonly<Record<string, Uint8Array>>;
  /** Bytes of data after the header (skipped): `size`, or 0 for header-only types. */
  readonly dataSize: number;
}

export interface ScanTarOptions {
  /** More entries than this is a BERTH_LIMIT error. Default limits().maxStreamEntries. */
  readonly maxEntries?: number;
  /** A name or link target longer than this many bytes is a BERTH_LIMIT error. Default limits().maxPathBytes. */
  readonly maxPathBytes?: number;
  /** Trailing bytes beyond this are a BERTH_LIMIT error. Default 16 MiB. */
  readonly maxTrailerBytes?: number;
  readonly signal?: AbortSignal;
}

export interface ScanTarResult {
  /** Entries reported. */
  readonly entries: number;
  /** Bytes of the input, all of it read (trailer included). */
  readonly bytes: number;
}

const NO_XATTRS: Readonly<Record<string, Uint8Array>> = Object.freeze({});

class Record_ implements TarRecord {
  constructor(
    readonly index: number, readonly name: string, readonly type: TarType, readonly typeflag: string, readonly mode: number,
    readonly uid: number, readonly gid: number, readonly size: number, readonly mtime: number, readonly linkname: string,
    readonly devmajor: number, readonly devminor: number, readonly xattrs: Readonly<Record<string, Uint8Array>>, readonly dataSize: number,
  ) {}
}

function fromHeader(index: number, h: TarHeader, dataSize: number): TarRecord {
  let xattrs = NO_XATTRS;
  for (const k in h.xattrs) {
    if (Object.hasOwn(h.xattrs, k)) {
      xattrs = h.xattrs;
      break;
    }
  }
  return new Record_(index, h.name, h.type, h.typeflag, h.mode, h.uid, h.gid, h.size, h.mtime, h.linkname, h.devmajor, h.devminor, xattrs, dataSize);
}

/** One-character strings by byte value. */
const CHARS: readonly string[] = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));

let wordsOf: ArrayBufferLike | undefined;
let words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
/** Bytes >= 0x80 in the block byteSum last summed. */
let highBytes = 0;

/**
 * Sum of the 512 bytes at b[at] (and their count of bytes >= 0x80 in highBytes), four bytes at a
 * time over the 4-byte-aligned part (zlib hands out chunks at any offset), the edges bytewise.
 * Two 16-bit lanes of sums cannot carry into each other (at most 2 x 255 x 128), nor four 8-bit
 * lanes of counts (at most 128).
 */
function byteSum(b: Uint8Array, at: number): number {
  const start = b.byteOffset + at;
  const head = (4 - (start & 3)) & 3;
  let sum = 0;
  let high = 0;
  for (let i = at, end = at + head; i < end; i++) {
    const c = b[i]!;
    sum += c;
    high += c >> 7;
  }
  for (let i = at + head + ((BLOCK_SIZE - head) & ~3), end = at + BLOCK_SIZE; i < end; i++) {
    const c = b[i]!;
    sum += c;
    high += c >> 7;
  }
  if (wordsOf !== b.buffer) {
    wordsOf = b.buffer;
    words = new Uint32Array(b.buffer, 0, b.buffer.byteLength >>> 2);
  }
  let lanes = 0;
  let highs = 0;
  for (let i = (start + head) >>> 2, end = i + ((BLOCK_SIZE - head) >>> 2); i < end; i++) {
    const w = words[i]!;
    lanes += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
    highs += (w >>> 7) & 0x01010101;
  }
  highBytes = high + (highs & 0xff) + ((highs >>> 8) & 0xff) + ((highs >>> 16) & 0xff) + Math.floor(highs / 0x1000000);
  return sum + (lanes % 0x10000) + Math.floor(lanes / 0x10000);
}

/** End of the ASCII text at b[start, end) (first NUL or end); -1 when a byte is ≥ 0x80. */
function asciiEnd(b: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c === 0) return i;
    if (c >= 0x80) return -1;
  }
  return end;
}

/**
 * The plain header block at b[at]: right checksum, ASCII names without a ustar prefix, octal
 * numbers, no extension type. Undefined for anything else (nothing is thrown here).
 */
function plainBlock(b: Buffer, at: number, index: number): TarRecord | undefined {
  const stored = fastOctal(b, at + 148, at + 156);
  if (stored < 0) return undefined;
  // The sums with the checksum field counted as eight spaces; signed = unsigned - 256 per byte >= 0x80.
  let unsigned = byteSum(b, at);
  let high = highBytes;
  for (let i = at + 148; i < at + 156; i++) {
    const c = b[i]!;
    unsigned -= c;
    high -= c >> 7;
  }
  unsigned += 8 * 0x20;
  if (stored !== unsigned && stored !== unsigned - 256 * high) return undefined;
  const flag = CHARS[b[at + 156]!]!;
  if (flag === 'x' || flag === 'L' || flag === 'K' || flag === 'g') return undefined;
  let v7 = true;
  if (b[at + 257] === 0x75 && b[at + 258] === 0x73 && b[at + 259] === 0x74 && b[at + 260] === 0x61 && b[at + 261] === 0x72) {
    if (b[at + 262] === 0) {
      // ustar: a prefix is joined to the name (left to the general parser).
      if (b[at + 345] !== 0) return undefined;
      v7 = false;
    } else if (b[at + 262] === 0x20 && b[at + 263] === 0x20 && b[at + 264] === 0) {
      v7 = false;
    }
  }
  const nameEnd = asciiEnd(b, at, at + 100);
  const linkEnd = asciiEnd(b, at + 157, at + 257);
  if (nameEnd < 0 || linkEnd < 0) return undefined;
  const mode = fastOctal(b, at + 100, at + 108);
  const uid = fastOctal(b, at + 108, at + 116);
  const gid = fastOctal(b, at + 116, at + 124);
  const size = fastOctal(b, at + 124, at + 136);
  const mtime = fastOctal(b, at + 136, at + 148);
  const devmajor = v7 ? 0 : fastOctal(b, at + 329, at + 337);
  const devminor = v7 ? 0 : fastOctal(b, at + 337, at + 345);
  if (mode < 0 || uid < 0 || gid < 0 || size < 0 || mtime < 0 || devmajor < 0 || devminor < 0) return undefined;
  const name = nameEnd === at ? '' : b.toString('latin1', at, nameEnd);
  const linkname = linkEnd === at + 157 ? '' : b.toString('latin1', at + 157, linkEnd);
  // Old tars mark directories with a regular-file type and a trailing slash (as buildHeader does).
  const type = flag === '\0' && name.endsWith('/') ? 'directory' : typeFromFlag(flag);
  const dataSize = flag >= '1' && flag <= '6' ? 0 : size;
  return new Record_(index, name, type, flag, mode & 0o7777, uid, gid, size, mtime, linkname, devmajor, devminor, NO_XATTRS, dataSize);
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function concat(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Scanning state carried from one chunk to the next. */
class Scanner {
  index = 0;
  bytes = 0;
  private prevName: string | undefined;
  /** Data and padding of the current entry still to skip. */
  private bodyLeft = 0;
  private padLeft = 0;
  private cur: TarRecord | undefined;
  /** A header group cut by the end of a chunk, and how many bytes of it the parser needs. */
  private carry: Buffer | undefined;
  private need = 0;
  private ended = false;
  private trailer = 0;

  constructor(
    private readonly onEntry: (r: TarRecord) => void,
    private readonly maxEntries: number,
    private readonly maxPath: number,
    private readonly maxTrailer: number,
  ) {}

  /** Consumes one chunk, synchronously. */
  feed(chunk: Buffer): void {
    this.bytes += chunk.length;
    const len = chunk.length;
    let pos = 0;
    for (;;) {
      if (this.carry !== undefined) {
        const take = Math.min(this.need - this.carry.length, len - pos);
        if (take > 0) {
          this.carry = concat(this.carry, chunk.subarray(pos, pos + take));
          pos += take;
        }
        if (this.carry.length < this.need) return;
        const carry = this.carry;
        const used = this.group(carry, 0, false);
        if (used < 0) continue;
        this.carry = undefined;
        // The parser stops where its last read ended, which is where the carry ends.
        if (used < carry.length) pos -= carry.length - used;
      }
      if (this.bodyLeft > 0) {
        const t = Math.min(this.bodyLeft, len - pos);
        this.bodyLeft -= t;
        pos += t;
        if (this.bodyLeft > 0) return;
      }
      if (this.padLeft > 0) {
        const t = Math.min(this.padLeft, len - pos);
        this.padLeft -= t;
        pos += t;
        if (this.padLeft > 0) return;
      }
      if (this.ended) {
        this.addTrailer(len - pos);
        return;
      }
      if (pos === len) return;
      const used = this.group(chunk, pos, false);
      if (used < 0) {
        this.carry = Buffer.from(chunk.subarray(pos));
        return;
      }
      pos += used;
    }
  }

  /** The end of the input: what is left must be the end of the archive (or nothing). */
  finish(): void {
    while (!this.ended) {
      if (this.bodyLeft > 0) throw this.truncatedBody();
      if (this.padLeft > 0) throw this.truncatedPadding();
      const buf = this.carry ?? Buffer.alloc(0);
      this.carry = undefined;
      const used = this.group(buf, 0, true);
      if (used < buf.length) this.addTrailer(buf.length - used);
    }
  }

  /**
   * Parses the header group at buf[pos] and reports it; returns the bytes it took, or -1 (need set)
   * when the group goes past the end of `buf` and more input may follow.
   */
  private group(buf: Buffer, pos: number, eof: boolean): number {
    if (buf.length - pos >= BLOCK_SIZE) {
      const r = plainBlock(buf, pos, this.index);
      if (r !== undefined) {
        this.entry(r, paddingLength(r.dataSize));
        return BLOCK_SIZE;
      }
    }
    const g = parseHeaderGroupAt(buf, pos, buf.length, eof, this.index, this.prevName);
    if (g.kind === 'more') {
      this.need = g.need;
      return -1;
    }
    if (g.kind === 'end') {
      this.ended = true;
      this.trailer = g.first.length;
      return g.consumed;
    }
    const dataSize = g.dataSize;
    this.entry(fromHeader(this.index, g.header, dataSize), g.paddingSize);
    return g.consumed;
  }

  private entry(r: TarRecord, paddingSize: number): void {
    checkEntries(this.index, this.maxEntries, r.name);
    checkPath(this.index, this.maxPath, r);
    this.cur = r;
    this.bodyLeft = r.dataSize;
    this.padLeft = paddingSize;
    this.onEntry(r);
    this.prevName = r.name;
    this.index++;
  }

  /** Bytes after the end-of-archive block, counted (never kept) in pieces of at most 1 MiB as readTar reads them. */
  private addTrailer(n: number): void {
    while (n > 0) {
      const piece = Math.min(n, 1 << 20);
      n -= piece;
      this.trailer += piece;
      if (this.trailer > this.maxTrailer) {
        throw new BerthError('BERTH_LIMIT', `reading tar trailer: more than ${this.maxTrailer} bytes after the end-of-archive block (want at most ${this.maxTrailer})`, {
          want: this.maxTrailer, got: this.trailer,
        });
      }
    }
  }

  private truncatedBody(): BerthError {
    const r = this.cur!;
    const got = r.dataSize - this.bodyLeft;
    return new BerthError('BERTH_INVALID_TAR', `${entryLabel(r.index, r.name)}: truncated body (want ${r.dataSize} bytes, got ${got})`, { want: r.dataSize, got, subject: r.name });
  }

  private truncatedPadding(): BerthError {
    const r = this.cur!;
    const want = paddingLength(r.dataSize);
    const got = want - this.padLeft;
    return new BerthError('BERTH_INVALID_TAR', `${entryLabel(r.index, r.name)}: truncated padding after the body (want ${want} bytes, got ${got})`, {
      want, got, subject: r.name,
    });
  }
}

/**
 * Reads an uncompressed tar stream to its end and calls `onEntry` with each member's header, in
 * order; bodies are skipped. Accepts, refuses and names errors exactly as readTar does
 * (BERTH_INVALID_TAR, BERTH_LIMIT for too many entries, long paths, oversized extension data or
 * trailer). `onEntry` runs synchronously between chunks; throwing from it stops the scan.
 */
export async function scanTar(src: ByteStream, onEntry: (r: TarRecord) => void, opts: ScanTarOptions = {}): Promise<ScanTarResult> {
  const s = new Scanner(
    onEntry, opts.maxEntries ?? limits().maxStreamEntries, opts.maxPathBytes ?? limits().maxPathBytes, opts.maxTrailerBytes ?? DEFAULT_MAX_TRAILER_BYTES,
  );
  checkAbort(opts.signal);
  for await (const chunk of src) {
    checkAbort(opts.signal);
    if (chunk.length > 0) s.feed(asBuffer(chunk));
  }
  s.finish();
  return { entries: s.index, bytes: s.bytes };
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new BerthError('BERTH_ABORTED', 'reading tar: aborted', { cause: signal.reason });
}
