/**
 * The rebuild side of tar-split, for big layers: the same records, checks and errors as
 * readTarSplit + assembleTar (split.ts), but the usual record lines are read straight from the
 * decompressed bytes (no JSON.parse, no text decoding, base64 decoded into the output), each
 * file's data is read synchronously from a file descriptor into a large output buffer, and the
 * output comes in ~1 MiB pieces. Any line that is not in the exact shape Go's encoder writes goes
 * through split.ts's parser, which accepts it or throws its error.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, fstatSync, read as readCallback, readSync } from 'node:fs';
import { BerthError, withContext } from '../core/errors.js';
import { decompress, sniffCompression } from '../io/codec.js';
import { peek, type ByteStream, type IoOptions } from '../io/stream.js';
import { cleanPath, Crc64, MAX_TAR_SPLIT_LINE, parseTarSplitRecord, type TarSplitFile } from './split.js';

/** A file record, as the opener sees it. */
export interface AssembleFile {
  /** As recorded (for `name_raw` records, the lossy UTF-8 decoding). */
  readonly name: string;
  readonly nameRaw?: Uint8Array;
  /**
   * The name as a path below the layer root: cleaned as if rooted (`..` cannot climb), no
   * leading or trailing slash, '' for the root itself; raw names as latin1, one char per byte.
   */
  readonly rel: string;
  readonly size: number;
}

/**
 * Opens the data of a file record: a file descriptor the assembler reads from offset 0 (only a
 * regular file is accepted; a FIFO should be opened non-blocking) and closes; or a promise of one
 * (e.g. while a directory is resolved the first time).
 */
export type FdOpener = (file: AssembleFile) => number | Promise<number>;

export interface AssembleOptions extends IoOptions {
  /** Names the tar-split input in record errors, e.g. `image/overlay2/layerdb/sha256/…/tar-split.json.gz`. */
  readonly source?: string;
  /** Names the rebuild in file errors, e.g. `rebuilding layer sha256:… from …`. */
  readonly what?: string;
  /**
   * Leave the CRC-64 comparisons to the reader: each file's check goes in here before the piece
   * holding its data is yielded, and the reader runs them (CrcChecker) before it uses the piece.
   * A worker thread rebuilding a layer so hands the checksumming to the thread that reads its
   * output. Reads, sizes and missing checksums are still checked here.
   */
  readonly deferredChecks?: DeferredChecks;
}

/** A deferred check covers a whole small file, a piece of a big file, or its last piece. */
const WHOLE = 0;
const PART = 1;
const LAST = 2;

/** The deferred checks of one piece: ranges in it, what kind, the recorded CRC-64 (8 bytes each), the file name. */
export interface CheckBatch {
  readonly o: readonly number[];
  readonly n: readonly number[];
  readonly k: readonly number[];
  readonly c: Uint8Array;
  readonly names: readonly string[];
}

/** Collects the checks of the piece being filled; take() hands them over with it. */
export class DeferredChecks {
  private o: number[] = [];
  private n: number[] = [];
  private k: number[] = [];
  private c: number[] = [];
  private names: string[] = [];

  get pending(): number {
    return this.o.length;
  }

  add(kind: number, offset: number, length: number, crc: Uint8Array | undefined, name: string): void {
    this.o.push(offset);
    this.n.push(length);
    this.k.push(kind);
    for (let i = 0; i < 8; i++) this.c.push(crc === undefined ? 0 : crc[i]!);
    this.names.push(name);
  }

  take(): CheckBatch {
    const b = { o: this.o, n: this.n, k: this.k, c: Uint8Array.from(this.c), names: this.names };
    this.o = [];
    this.n = [];
    this.k = [];
    this.c = [];
    this.names = [];
    return b;
  }
}

/** Runs deferred checks in piece order, with assembleTarSplit's error for a file whose CRC-64 differs. */
export class CrcChecker {
  /** The running checksum of a big file whose pieces are still coming. */
  private big: Crc64 | undefined;

  constructor(private readonly what: string) {}

  check(piece: Uint8Array, b: CheckBatch): void {
    for (let i = 0; i < b.o.length; i++) {
      const range = piece.subarray(b.o[i]!, b.o[i]! + b.n[i]!);
      let crc: Crc64;
      if (b.k[i] === WHOLE) {
        crc = new Crc64();
        crc.update(range);
      } else {
        crc = this.big ??= new Crc64();
        crc.update(range);
        if (b.k[i] === PART) continue;
        this.big = undefined;
      }
      const sum = crc.digest();
      const want = b.c.subarray(i * 8, i * 8 + 8);
      let same = true;
      for (let j = 0; j < 8; j++) if (sum[j] !== want[j]) same = false;
      if (!same) throw crcMismatch(`${this.what}: file ${JSON.stringify(b.names[i])}`, b.names[i]!, Buffer.from(want).toString('hex'), Buffer.from(sum).toString('hex'));
    }
  }
}

/** Size of the pieces the rebuilt tar comes in (one larger segment comes alone). */
export const ASSEMBLE_CHUNK = 1 << 20;

/** Files up to this size are read into the output buffer (one read); larger ones stream in pieces. */
const SMALL_FILE = 256 << 10;

/** The rooted-clean relative path of a name (memberPath's rule), latin1 for raw names. */
export function relativeOf(name: string, nameRaw?: Uint8Array): string {
  const text = nameRaw === undefined ? name : Buffer.from(nameRaw).toString('latin1');
  return simpleClean(text) ?? cleanPath(`/${text}`).slice(1);
}

/**
 * The clean form of the common names (`a/b`, `./a/b`, `a/b/`) without splitting, or undefined
 * for anything cleanPath has to look at (empty parts, `.`, `..`, a leading slash). For such a
 * name the rooted and the relative clean forms are the same string.
 */
function simpleClean(name: string): string | undefined {
  let s = name;
  if (s.startsWith('./')) s = s.slice(2);
  if (s.endsWith('/')) s = s.slice(0, -1);
  if (s === '' || s === '.' || s === '..' || s.charCodeAt(0) === 0x2f || s.charCodeAt(s.length - 1) === 0x2f) return undefined;
  if (s.startsWith('./') || s.startsWith('../') || s.endsWith('/.') || s.endsWith('/..') || s.includes('//') || s.includes('/./') || s.includes('/../')) return undefined;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Base64, strict: exactly what split.ts accepts (standard alphabet, length a multiple of 4, at
// most two `=` and only at the end).

const B64 = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
const EQ = 0x3d;

/** Decoded length of the base64 text src[a, b), or -1 when its length cannot be base64. */
function b64Length(src: Uint8Array, a: number, b: number): number {
  const n = b - a;
  if (n === 0) return 0;
  if ((n & 3) !== 0) return -1;
  return (n >>> 2) * 3 - (src[b - 1] === EQ ? (src[b - 2] === EQ ? 2 : 1) : 0);
}

/** Decodes base64 src[a, b) into out at `o`; false (out unspecified) when it is not strict base64. */
function b64Decode(src: Uint8Array, a: number, b: number, out: Uint8Array, o: number): boolean {
  if (a === b) return true;
  const T = B64;
  const last = b - 4;
  let j = o;
  for (let i = a; i < last; i += 4) {
    const c0 = T[src[i]!]!;
    const c1 = T[src[i + 1]!]!;
    const c2 = T[src[i + 2]!]!;
    const c3 = T[src[i + 3]!]!;
    if ((c0 | c1 | c2 | c3) < 0) return false;
    const v = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3;
    out[j] = v >>> 16;
    out[j + 1] = v >>> 8;
    out[j + 2] = v;
    j += 3;
  }
  const c0 = T[src[last]!]!;
  const c1 = T[src[last + 1]!]!;
  const p2 = src[last + 2] === EQ;
  const p3 = src[last + 3] === EQ;
  if (p2 && !p3) return false;
  const c2 = p2 ? 0 : T[src[last + 2]!]!;
  const c3 = p3 ? 0 : T[src[last + 3]!]!;
  if ((c0 | c1 | c2 | c3) < 0) return false;
  const v = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3;
  out[j] = v >>> 16;
  if (!p2) out[j + 1] = v >>> 8;
  if (!p3) out[j + 2] = v;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Lines

const NL = new Uint8Array([0x0a]);

/** Cuts decompressed chunks into lines without copying (only a line split across chunks is joined). */
class LineCursor {
  buf: Buffer = Buffer.alloc(0);
  start = 0;
  end = 0;
  private chunk: Buffer = Buffer.alloc(0);
  private at = 0;
  /** The start of a line begun in earlier chunks (joined once, when its end arrives). */
  private carry: Buffer[] = [];
  private carried = 0;

  constructor(private readonly what: string) {}

  feed(c: Uint8Array): void {
    this.chunk = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    this.at = 0;
  }

  /** The next complete line in buf[start, end), false when the chunk is used up. */
  next(): boolean {
    const c = this.chunk;
    const nl = c.indexOf(0x0a, this.at);
    if (nl < 0) {
      if (this.at < c.length) {
        // copied: the producer may reuse its buffer once the next chunk is asked for
        this.carry.push(Buffer.from(c.subarray(this.at)));
        this.carried += c.length - this.at;
        if (this.carried > MAX_TAR_SPLIT_LINE) {
          throw new BerthError('BERTH_LIMIT', `reading ${this.what}: a line longer than ${MAX_TAR_SPLIT_LINE} characters`, { want: MAX_TAR_SPLIT_LINE });
        }
      }
      this.at = c.length;
      return false;
    }
    if (this.carried > 0) {
      this.carry.push(c.subarray(this.at, nl));
      this.buf = Buffer.concat(this.carry);
      this.carry = [];
      this.carried = 0;
      this.start = 0;
      this.end = this.buf.length;
    } else {
      this.buf = c;
      this.start = this.at;
      this.end = nl;
    }
    this.at = nl + 1;
    return true;
  }
}

/** The decompressed text of tar-split metadata (gzip or plain), then one newline so the last line ends. */
async function* textOf(src: ByteStream, what: string, opts: IoOptions): ByteStream {
  const { head, stream } = await peek(src, 2);
  const text = sniffCompression(head) === 'gzip' ? decompress(stream, 'gzip', { what, ...(opts.signal ? { signal: opts.signal } : {}) }) : stream;
  // readTarSplit's decoder drops a byte order mark at the start of the text (only there).
  const { head: start, stream: rest } = await peek(text, 3);
  let skip = start.length === 3 && start[0] === 0xef && start[1] === 0xbb && start[2] === 0xbf ? 3 : 0;
  for await (const chunk of rest) {
    if (skip > 0) {
      const cut = Math.min(skip, chunk.length);
      skip -= cut;
      if (cut < chunk.length) yield chunk.subarray(cut);
      continue;
    }
    yield chunk;
  }
  yield NL;
}

// ---------------------------------------------------------------------------------------------
// Records

const SEGMENT_PREFIX = Buffer.from('{"type":2,"payload":"');
const FILE_PREFIX = Buffer.from('{"type":1,');
const NAME_KEY = Buffer.from('"name":"');
const SIZE_KEY = Buffer.from('"size":');
const PAYLOAD_KEY = Buffer.from('"payload":');
const NULL = Buffer.from('null');
const POSITION_KEY = Buffer.from(',"position":');

const BLANK = 0;
const SEGMENT = 1;
const FILE = 2;

function startsAt(buf: Buffer, at: number, end: number, lit: Buffer): boolean {
  const n = lit.length;
  if (at + n > end) return false;
  for (let i = 0; i < n; i++) if (buf[at + i] !== lit[i]) return false;
  return true;
}

/** A JSON non-negative integer at buf[a, b) (no sign, no leading zero, safe), else -1. */
function digits(buf: Buffer, a: number, b: number): number {
  if (a >= b || b - a > 15 || (buf[a] === 0x30 && b - a > 1)) return -1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

const LINE_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses one line at a time into its fields (no record object): the exact shapes Go writes on
 * the fast path, anything else through parseTarSplitRecord. Checks positions and duplicate
 * paths as readTarSplit does, with its messages.
 */
class RecordParser {
  position = 0;
  private readonly seen = new Set<string>();
  // The last record.
  /** Segment: base64 text at src[b64Start, b64End) of `src`, or decoded bytes in `payload`. */
  src: Buffer = Buffer.alloc(0);
  b64Start = 0;
  b64End = 0;
  payload: Uint8Array | undefined;
  /** Segment: decoded length. */
  length = 0;
  name = '';
  nameRaw: Uint8Array | undefined;
  rel = '';
  size = 0;
  /** File: the recorded CRC-64, when there is one. */
  readonly crc = Buffer.alloc(8);
  hasCrc = false;
  private lineStart = 0;
  private lineEnd = 0;

  /**
   * `measure`: sizes only (for the manifest); segment payloads are not decoded and paths not
   * compared, so bad base64 or a duplicate path is found when the layer is rebuilt.
   */
  constructor(
    private readonly what: string,
    private readonly measure = false,
  ) {}

  /** BLANK, SEGMENT or FILE. */
  parse(buf: Buffer, s: number, e: number): number {
    this.src = buf;
    this.lineStart = s;
    this.lineEnd = e;
    this.payload = undefined;
    const kind = this.fast(buf, s, e);
    return kind >= 0 ? kind : this.slow();
  }

  /** Decodes the segment into out at `o` (out has `length` bytes of room there). */
  segmentInto(out: Uint8Array, o: number): void {
    if (this.payload !== undefined) {
      out.set(this.payload, o);
      return;
    }
    // Node's decoder is lenient: it takes the URL-safe alphabet, and skips other bytes or stops
    // at a `=` (which then yields fewer bytes than the length promises); both are refused here.
    const text = this.src.toString('latin1', this.b64Start, this.b64End);
    if (text.indexOf('-') < 0 && text.indexOf('_') < 0 && Buffer.from(out.buffer, out.byteOffset, out.byteLength).write(text, o, this.length, 'base64') === this.length) return;
    // Not strict base64: split.ts's parser says why (or, should it accept the line, decodes it).
    this.position--;
    const want = this.length;
    const payload = this.slow() === SEGMENT ? (this.payload as Uint8Array | undefined) : undefined;
    if (payload === undefined || payload.length !== want) {
      throw new BerthError('BERTH_INVALID_TAR', `reading ${this.what}: tar-split record ${this.position - 1}: payload does not decode`);
    }
    out.set(payload, o);
  }

  /** The record on the fast path, or -1 to hand the line to split.ts's parser. */
  private fast(buf: Buffer, s: number, e: number): number {
    if (s === e) return BLANK;
    if (buf[e - 1] !== 0x7d) return -1;
    let p: number;
    if (startsAt(buf, s, e, SEGMENT_PREFIX)) {
      const a = s + SEGMENT_PREFIX.length;
      const q = buf.indexOf(0x22, a);
      if (q < 0 || q >= e) return -1;
      const n = b64Length(buf, a, q);
      if (n < 0) return -1;
      p = q + 1;
      if (!this.positionAt(buf, p, e)) return -1;
      this.b64Start = a;
      this.b64End = q;
      this.length = n;
      this.position++;
      return SEGMENT;
    }
    if (!startsAt(buf, s, e, FILE_PREFIX)) return -1;
    p = s + FILE_PREFIX.length;
    if (!startsAt(buf, p, e, NAME_KEY)) return -1;
    const ns = p + NAME_KEY.length;
    const q = buf.indexOf(0x22, ns);
    if (q < 0 || q >= e) return -1;
    let high = false;
    for (let i = ns; i < q; i++) {
      const c = buf[i]!;
      if (c === 0x5c || c < 0x20) return -1;
      if (c >= 0x80) high = true;
    }
    if (high && !isUtf8(buf.subarray(ns, q))) return -1;
    p = q + 1;
    if (buf[p] !== 0x2c) return -1;
    p++;
    let size = 0;
    if (startsAt(buf, p, e, SIZE_KEY)) {
      const a = p + SIZE_KEY.length;
      let b = a;
      while (b < e && buf[b] !== 0x2c) b++;
      size = digits(buf, a, b);
      if (size < 0 || b >= e) return -1;
      p = b + 1;
    }
    if (!startsAt(buf, p, e, PAYLOAD_KEY)) return -1;
    p += PAYLOAD_KEY.length;
    let hasCrc: boolean;
    if (startsAt(buf, p, e, NULL)) {
      hasCrc = false;
      p += NULL.length;
    } else {
      if (buf[p] !== 0x22) return -1;
      const a = p + 1;
      const b = buf.indexOf(0x22, a);
      if (b < 0 || b >= e || b64Length(buf, a, b) !== 8 || (!this.measure && !b64Decode(buf, a, b, this.crc, 0))) return -1;
      hasCrc = true;
      p = b + 1;
    }
    if (!this.positionAt(buf, p, e)) return -1;
    this.size = size;
    this.position++;
    if (this.measure) return FILE;
    const name = high ? buf.toString('utf8', ns, q) : buf.toString('latin1', ns, q);
    const clean = simpleClean(name);
    const key = clean ?? cleanPath(name);
    this.checkDuplicate(key, name, this.position - 1);
    this.name = name;
    this.nameRaw = undefined;
    this.rel = clean ?? cleanPath(`/${name}`).slice(1);
    this.hasCrc = hasCrc;
    return FILE;
  }

  /** `,"position":N}` at p running to the end of the line, N the expected position. */
  private positionAt(buf: Buffer, p: number, e: number): boolean {
    return startsAt(buf, p, e, POSITION_KEY) && digits(buf, p + POSITION_KEY.length, e - 1) === this.position;
  }

  private checkDuplicate(key: string, name: string, record: number): void {
    if (this.measure) return;
    const n = this.seen.size;
    this.seen.add(key);
    if (this.seen.size === n) throw new BerthError('BERTH_INVALID_TAR', `reading ${this.what}: duplicate file path ${JSON.stringify(name)} (record ${record})`, { subject: name });
  }

  /** The line through split.ts's decoder: its record, or its error. */
  private slow(): number {
    let line: string;
    try {
      line = LINE_DECODER.decode(this.src.subarray(this.lineStart, this.lineEnd));
    } catch (err) {
      throw new BerthError('BERTH_INVALID_TAR', `reading ${this.what}: not UTF-8 text`, { cause: err });
    }
    if (line.trim() === '') return BLANK;
    let r;
    try {
      r = parseTarSplitRecord(line, this.position);
    } catch (err) {
      throw withContext(err, `reading ${this.what}`);
    }
    if (r.type === 'segment') {
      this.payload = r.payload;
      this.length = r.payload.length;
      this.position++;
      return SEGMENT;
    }
    const text = r.nameRaw === undefined ? r.name : Buffer.from(r.nameRaw).toString('latin1');
    this.checkDuplicate(r.nameRaw === undefined ? cleanPath(r.name) : `\0${cleanPath(text)}`, r.name, this.position);
    this.name = r.name;
    this.nameRaw = r.nameRaw;
    this.rel = relativeOf(r.name, r.nameRaw);
    this.size = r.size;
    this.hasCrc = r.crc !== undefined;
    if (r.crc !== undefined) this.crc.set(r.crc);
    this.position++;
    return FILE;
  }
}

// ---------------------------------------------------------------------------------------------
// Size and assembly

/**
 * Size of the tar the tar-split metadata `src` rebuilds (segment bytes plus file sizes), read
 * from the records without opening a file or decoding a payload: each line's shape and position
 * are checked as readTarSplit checks them, but base64 text is only measured and paths are not
 * compared, so those errors come when the layer is rebuilt.
 */
export async function tarSplitSize(src: ByteStream, opts: AssembleOptions = {}): Promise<number> {
  const source = opts.source ?? 'tar-split metadata';
  const lines = new LineCursor(source);
  const p = new RecordParser(source, true);
  let total = 0;
  for await (const chunk of textOf(src, source, opts)) {
    lines.feed(chunk);
    while (lines.next()) {
      const kind = p.parse(lines.buf, lines.start, lines.end);
      if (kind === SEGMENT) total += p.length;
      else if (kind === FILE) total += p.size;
    }
  }
  return total;
}

/** Throws BERTH_INVALID_LAYER unless `fd` is a regular file. */
function checkRegular(fd: number, label: string, name: string): void {
  let regular: boolean;
  try {
    regular = fstatSync(fd).isFile();
  } catch (err) {
    throw withContext(err, label);
  }
  if (!regular) throw new BerthError('BERTH_INVALID_LAYER', `${label}: is not a regular file in the layer directory`, { subject: name });
}

function readAsync(fd: number, buf: Uint8Array, n: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => readCallback(fd, buf, 0, n, position, (err, k) => (err ? reject(err) : resolve(k))));
}

function longer(label: string, name: string, size: number, got: number): BerthError {
  return new BerthError('BERTH_SIZE_MISMATCH', `${label}: file is longer than recorded (want ${size} bytes, got more)`, { subject: name, want: size, got });
}

function shorter(label: string, name: string, size: number, got: number): BerthError {
  return new BerthError('BERTH_SIZE_MISMATCH', `${label}: file is shorter than recorded (want ${size} bytes, got ${got})`, { subject: name, want: size, got });
}

function sameCrc(p: RecordParser, sum: Uint8Array): boolean {
  if (!p.hasCrc) return false;
  for (let i = 0; i < 8; i++) if (sum[i] !== p.crc[i]) return false;
  return true;
}

function crcMismatch(label: string, name: string, want: string, got: string): BerthError {
  return new BerthError('BERTH_DIGEST_MISMATCH', `${label}: content differs from the layer (crc64 want ${want}, got ${got})`, { subject: name, want, got });
}

function checkHasCrc(p: RecordParser, label: string): void {
  if (!p.hasCrc) throw new BerthError('BERTH_INVALID_TAR', `${label}: record of ${p.size} bytes has no checksum`, { subject: p.name });
}

function checkCrc(p: RecordParser, sum: Uint8Array, label: string): void {
  checkHasCrc(p, label);
  if (!sameCrc(p, sum)) throw crcMismatch(label, p.name, p.crc.toString('hex'), Buffer.from(sum).toString('hex'));
}

/**
 * Rebuilds the tar that the tar-split metadata `src` (gzip or plain JSON lines) records, reading
 * each file's data through `open`. Same bytes, checks and errors as
 * `assembleTar(readTarSplit(src), …)`: a file whose data has another CRC-64, or is shorter or
 * longer than recorded, fails naming it, before the piece holding it is yielded. Every piece is
 * a fresh buffer the consumer may keep. The caller still verifies the whole stream (diff_id).
 */
export async function* assembleTarSplit(src: ByteStream, open: FdOpener, opts: AssembleOptions = {}): ByteStream {
  const source = opts.source ?? 'tar-split metadata';
  const what = opts.what ?? 'rebuilding tar from tar-split';
  const lines = new LineCursor(source);
  const p = new RecordParser(source);
  const deferred = opts.deferredChecks;
  let out = Buffer.allocUnsafe(ASSEMBLE_CHUNK);
  let len = 0;
  try {
    yield* rebuild();
  } catch (err) {
    // Files checked later than read: one whose data is already in the unsent piece fails first,
    // as it would have when it was read.
    if (deferred !== undefined && deferred.pending > 0) new CrcChecker(what).check(out, deferred.take());
    throw err;
  }

  async function* rebuild(): ByteStream {
    for await (const chunk of textOf(src, source, opts)) {
      lines.feed(chunk);
      while (lines.next()) {
        const kind = p.parse(lines.buf, lines.start, lines.end);
        if (kind === SEGMENT) {
          const n = p.length;
          if (n === 0) continue;
          if (len + n > out.length) {
            if (len > 0) yield out.subarray(0, len);
            out = Buffer.allocUnsafe(Math.max(ASSEMBLE_CHUNK, n));
            len = 0;
          }
          p.segmentInto(out, len);
          len += n;
          continue;
        }
        if (kind !== FILE || p.size === 0) continue;
        if (opts.signal?.aborted === true) throw new BerthError('BERTH_ABORTED', `${what}: aborted`, { cause: opts.signal.reason });
        const size = p.size;
        const label = `${what}: file ${JSON.stringify(p.name)}`;
        let fd: number;
        try {
          const file: AssembleFile = { name: p.name, ...(p.nameRaw === undefined ? {} : { nameRaw: p.nameRaw }), rel: p.rel, size };
          const r = open(file);
          fd = typeof r === 'number' ? r : await r;
        } catch (err) {
          throw withContext(err, label);
        }
        try {
          if (size <= SMALL_FILE) {
            // One read of a byte more than recorded, straight into the output: a read that comes
            // back short has met the end of a regular file. The file is looked at (fstat) only when
            // something is off, to say why.
            if (len + size + 1 > out.length) {
              if (len > 0) yield out.subarray(0, len);
              out = Buffer.allocUnsafe(ASSEMBLE_CHUNK);
              len = 0;
            }
            let got: number;
            try {
              got = readSync(fd, out, len, size + 1, 0);
              while (got < size) {
                const k = readSync(fd, out, len + got, size + 1 - got, got);
                if (k === 0) break;
                got += k;
              }
            } catch (err) {
              checkRegular(fd, label, p.name);
              throw withContext(err, label);
            }
            if (got !== size) {
              checkRegular(fd, label, p.name);
              throw got > size ? longer(label, p.name, size, got) : shorter(label, p.name, size, got);
            }
            if (deferred !== undefined) {
              checkHasCrc(p, label);
              deferred.add(WHOLE, len, size, p.crc, p.name);
              len += size;
              continue;
            }
            const crc = new Crc64();
            crc.update(out.subarray(len, len + size));
            const sum = crc.digest();
            if (!sameCrc(p, sum)) checkRegular(fd, label, p.name);
            checkCrc(p, sum, label);
            len += size;
            continue;
          }
          checkRegular(fd, label, p.name);
          if (len > 0) yield out.subarray(0, len);
          out = Buffer.allocUnsafe(ASSEMBLE_CHUNK);
          len = 0;
          // A big file streams in pieces of its own; the last is held back until its checksum is known.
          const crc = deferred === undefined ? new Crc64() : undefined;
          let got = 0;
          let held: Uint8Array | undefined;
          while (got < size) {
            const piece = Buffer.allocUnsafe(Math.min(ASSEMBLE_CHUNK, size - got));
            let k: number;
            try {
              k = await readAsync(fd, piece, piece.length, got);
            } catch (err) {
              throw withContext(err, label);
            }
            if (k === 0) break;
            crc?.update(piece.subarray(0, k));
            got += k;
            if (held !== undefined) {
              deferred?.add(PART, 0, held.length, undefined, '');
              yield held;
            }
            held = piece.subarray(0, k);
          }
          if (got < size) throw shorter(label, p.name, size, got);
          let extra: number;
          try {
            extra = await readAsync(fd, Buffer.allocUnsafe(1), 1, size);
          } catch (err) {
            throw withContext(err, label);
          }
          if (extra > 0) throw longer(label, p.name, size, size + extra);
          if (crc !== undefined) checkCrc(p, crc.digest(), label);
          else checkHasCrc(p, label);
          if (held !== undefined) {
            deferred?.add(LAST, 0, held.length, p.crc, p.name);
            yield held;
          }
        } finally {
          closeSync(fd);
        }
      }
    }
    if (len > 0) yield out.subarray(0, len);
  }
}

/** The AssembleFile of a split.ts file record. */
export function assembleFileOf(file: TarSplitFile): AssembleFile {
  return { name: file.name, ...(file.nameRaw === undefined ? {} : { nameRaw: file.nameRaw }), rel: relativeOf(file.name, file.nameRaw), size: file.size };
}
