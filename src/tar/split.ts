/**
 * tar-split (github.com/vbatts/tar-split): the metadata dockerd keeps next to every layer
 * (`layerdb/sha256/<chainID>/tar-split.json.gz`) so the exact layer tar can be rebuilt from the
 * unpacked files. The format is gzip of JSON lines, one record per line, positions from 0:
 *
 * - type 2, segment: `payload` = base64 of raw archive bytes (headers, PAX/GNU extension blocks,
 *   padding after file data, end-of-archive blocks, anything after them);
 * - type 1, file: `name` (or `name_raw`, base64 of the raw bytes, when the name is not UTF-8),
 *   `size` (omitted when 0), `payload` = base64 of the big-endian CRC-64/ISO of the data, or null
 *   when the size is 0.
 *
 * `disassembleTar` records exactly what `tar-split disasm` records (docs/formats.md section 11),
 * `assembleTar` replays records against file contents and yields the original tar byte for byte.
 * Lines are written as Go's encoding/json writes them (key order, HTML-safe escapes), so the
 * uncompressed JSON equals the real tool's; the gzip around it is Node's, which dockerd accepts.
 */
import { BerthError, isBerthError, withContext } from '../core/errors.js';
import { compress, decompress, sniffCompression } from '../io/codec.js';
import { concatBytes, peek, type ByteStream, type IoOptions } from '../io/stream.js';
import type { TarHeader } from './header.js';
import { Crc64 } from './crc64.js';
import { limits } from '../io/limits.js';
import { checkEntries, checkPath, DEFAULT_MAX_TRAILER_BYTES, entryLabel, parseHeaderGroupAt, readTar, type ReadTarOptions } from './reader.js';

/** Raw archive bytes between file data: headers, padding, end-of-archive blocks. */
export interface TarSplitSegment {
  readonly type: 'segment';
  readonly payload: Uint8Array;
  readonly position: number;
}

/** One tar member whose data is kept outside (in the unpacked layer directory). */
export interface TarSplitFile {
  readonly type: 'file';
  /** The member name as the tar reader decoded it (may start with `./`, directories end in `/`). For `name_raw` records, the lossy UTF-8 decoding. */
  readonly name: string;
  /** Raw name bytes, present only when the name is not valid UTF-8 (`name_raw` in the JSON). */
  readonly nameRaw?: Uint8Array;
  /** Data length; 0 means nothing is read from a file. */
  readonly size: number;
  /** Big-endian CRC-64/ISO of the data (8 bytes), or undefined when size is 0. */
  readonly crc: Uint8Array | undefined;
  readonly position: number;
}

export type TarSplitRecord = TarSplitSegment | TarSplitFile;

// CRC-64/ISO lives in crc64.ts (JavaScript and WebAssembly); re-exported for existing callers.
export { Crc64, crc64 } from './crc64.js';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---------------------------------------------------------------------------------------------
// JSON lines

/** Go's encoding/json string escaping (HTML-safe, U+2028/U+2029 escaped). */
function goJsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** One record as the JSON line (without the newline) Go's encoder writes for it. */
export function encodeTarSplitRecord(r: TarSplitRecord): string {
  if (r.type === 'segment') return `{"type":2,"payload":"${b64(r.payload)}","position":${r.position}}`;
  const name = r.nameRaw !== undefined ? `"name_raw":"${b64(r.nameRaw)}",` : r.name === '' ? '' : `"name":${goJsonString(r.name)},`;
  const size = r.size === 0 ? '' : `"size":${r.size},`;
  const payload = r.crc === undefined ? 'null' : `"${b64(r.crc)}"`;
  return `{"type":1,${name}${size}"payload":${payload},"position":${r.position}}`;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(text: unknown, what: string): Uint8Array {
  if (typeof text !== 'string' || !BASE64.test(text) || text.length % 4 !== 0) {
    throw new BerthError('BERTH_INVALID_TAR', `${what}: not standard padded base64`, { got: typeof text === 'string' ? text.slice(0, 40) : typeof text });
  }
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** Parses one JSON line into a record; `expected` is the position it must have. Throws BERTH_INVALID_TAR. */
export function parseTarSplitRecord(line: string, expected: number): TarSplitRecord {
  const what = `tar-split record ${expected}`;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    throw new BerthError('BERTH_INVALID_TAR', `${what}: not JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BerthError('BERTH_INVALID_TAR', `${what}: not a JSON object`);
  const o = v as Record<string, unknown>;
  if (o.position !== expected) {
    throw new BerthError('BERTH_INVALID_TAR', `${what}: position out of order (want ${expected}, got ${JSON.stringify(o.position)})`, { want: expected, got: o.position });
  }
  if (o.type === 2) {
    return { type: 'segment', payload: o.payload === null || o.payload === undefined ? new Uint8Array(0) : decodeBase64(o.payload, `${what} payload`), position: expected };
  }
  if (o.type !== 1) throw new BerthError('BERTH_INVALID_TAR', `${what}: unknown type (want 1 or 2, got ${JSON.stringify(o.type)})`, { got: o.type });
  const size = o.size ?? 0;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new BerthError('BERTH_INVALID_TAR', `${what}: invalid size (got ${JSON.stringify(o.size)})`, { got: o.size });
  }
  let name: string;
  let nameRaw: Uint8Array | undefined;
  if (o.name_raw !== undefined && o.name_raw !== null && o.name_raw !== '') {
    nameRaw = decodeBase64(o.name_raw, `${what} name_raw`);
    name = new TextDecoder().decode(nameRaw);
  } else {
    if (o.name !== undefined && typeof o.name !== 'string') throw new BerthError('BERTH_INVALID_TAR', `${what}: name is not a string`);
    name = (o.name as string | undefined) ?? '';
  }
  let crc: Uint8Array | undefined;
  if (o.payload !== null && o.payload !== undefined) {
    crc = decodeBase64(o.payload, `${what} payload`);
    if (crc.length !== 8) throw new BerthError('BERTH_INVALID_TAR', `${what} ${JSON.stringify(name)}: checksum is not 8 bytes (got ${crc.length})`, { want: 8, got: crc.length });
  }
  return { type: 'file', name, ...(nameRaw === undefined ? {} : { nameRaw }), size, crc, position: expected };
}

/** Longest JSON line accepted (a segment holds at most a 1 MiB PAX header or a 1 MiB trailer chunk, base64'd). */
export const MAX_TAR_SPLIT_LINE = 8 << 20;

export interface ReadTarSplitOptions extends IoOptions {
  /** Names the input in errors, e.g. `layerdb/sha256/ab…/tar-split.json.gz`. */
  readonly what?: string;
}

/**
 * Parses tar-split metadata (gzip-compressed, as dockerd stores it, or plain JSON lines) into
 * records, streaming. Rejects malformed lines, gaps in positions and duplicate file names (as
 * tar-split's unpacker does) with BERTH_INVALID_TAR naming the input.
 */
export async function* readTarSplit(src: ByteStream, opts: ReadTarSplitOptions = {}): AsyncGenerator<TarSplitRecord> {
  const what = opts.what ?? 'tar-split metadata';
  const { head, stream } = await peek(src, 2);
  const text = sniffCompression(head) === 'gzip' ? decompress(stream, 'gzip', { what, ...(opts.signal ? { signal: opts.signal } : {}) }) : stream;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let pending = '';
  let position = 0;
  const seen = new Set<string>();
  const parse = (line: string): TarSplitRecord | undefined => {
    if (line.trim() === '') return undefined;
    let rec: TarSplitRecord;
    try {
      rec = parseTarSplitRecord(line, position);
    } catch (err) {
      throw withContext(err, `reading ${what}`);
    }
    position++;
    if (rec.type === 'file') {
      const key = pathKey(rec.name, rec.nameRaw);
      if (seen.has(key)) throw new BerthError('BERTH_INVALID_TAR', `reading ${what}: duplicate file path ${JSON.stringify(rec.name)} (record ${rec.position})`, { subject: rec.name });
      seen.add(key);
    }
    return rec;
  };
  try {
    for await (const chunk of text) {
      pending += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const rec = parse(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        if (rec !== undefined) yield rec;
      }
      if (pending.length > MAX_TAR_SPLIT_LINE) {
        throw new BerthError('BERTH_LIMIT', `reading ${what}: a line longer than ${MAX_TAR_SPLIT_LINE} characters`, { want: MAX_TAR_SPLIT_LINE });
      }
    }
    pending += decoder.decode();
  } catch (err) {
    if (err instanceof TypeError) throw new BerthError('BERTH_INVALID_TAR', `reading ${what}: not UTF-8 text`, { cause: err });
    throw err;
  }
  const last = parse(pending);
  if (last !== undefined) yield last;
}

/** The key duplicate detection uses: the cleaned path (raw names kept apart from UTF-8 ones). */
function pathKey(name: string, raw: Uint8Array | undefined): string {
  return raw === undefined ? cleanPath(name) : `\0${cleanPath(Buffer.from(raw).toString('latin1'))}`;
}

/**
 * Go's filepath.Clean (the key tar-split uses to refuse duplicate paths): `./a//b/` → `a/b`
 * relative, `..` resolved lexically.
 */
export function cleanPath(p: string): string {
  return simpleClean(p) ?? generalClean(p);
}

/**
 * The common case without arrays: a relative name whose parts are neither empty nor `.`/`..`,
 * after leading `./` and one trailing `/`. Undefined for anything else.
 */
function simpleClean(p: string): string | undefined {
  let start = 0;
  while (p.startsWith('./', start)) start += 2;
  let end = p.length;
  if (end > start && p.charCodeAt(end - 1) === 0x2f) end--;
  if (end === start) return undefined;
  let part = start;
  for (let i = start; i <= end; i++) {
    if (i < end && p.charCodeAt(i) !== 0x2f) continue;
    const n = i - part;
    if (n === 0) return undefined;
    if (p.charCodeAt(part) === 0x2e && (n === 1 || (n === 2 && p.charCodeAt(part + 1) === 0x2e))) return undefined;
    part = i + 1;
  }
  return start === 0 && end === p.length ? p : p.slice(start, end);
}

function generalClean(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

export interface WriteTarSplitOptions extends IoOptions {
  /** gzip the JSON lines (default true: what dockerd stores). */
  readonly gzip?: boolean;
}

/** Serialises records as tar-split metadata: JSON lines, gzip-compressed unless `gzip: false`. */
export function writeTarSplit(records: AsyncIterable<TarSplitRecord> | Iterable<TarSplitRecord>, opts: WriteTarSplitOptions = {}): ByteStream {
  const enc = new TextEncoder();
  async function* lines(): ByteStream {
    let batch = '';
    for await (const r of records) {
      batch += `${encodeTarSplitRecord(r)}\n`;
      if (batch.length >= 1 << 16) {
        yield enc.encode(batch);
        batch = '';
      }
    }
    if (batch !== '') yield enc.encode(batch);
  }
  return opts.gzip === false ? lines() : compress(lines(), 'gzip', opts.signal ? { signal: opts.signal } : {});
}

// ---------------------------------------------------------------------------------------------
// Assembly

/** Total size of the tar the records rebuild: segment bytes plus file sizes. Reads no file. */
export async function assembledSize(records: AsyncIterable<TarSplitRecord> | Iterable<TarSplitRecord>): Promise<number> {
  let n = 0;
  for await (const r of records) n += r.type === 'segment' ? r.payload.length : r.size;
  return n;
}

/** Opens the data of one file record; the stream is consumed up to `size` bytes and then closed. */
export type TarSplitFileOpener = (file: TarSplitFile, opts: IoOptions) => Promise<ByteStream>;

export interface AssembleTarOptions extends IoOptions {
  /** Names the layer in errors, e.g. `layer sha256:ab… (overlay2/<cache-id>/diff)`. */
  readonly what?: string;
}

/**
 * Rebuilds the tar the records were taken from: segments verbatim, each file's data from
 * `openFile`, streamed (never a whole file in memory). A file whose data has a different CRC-64,
 * or is shorter or longer than recorded, fails with BERTH_DIGEST_MISMATCH / BERTH_SIZE_MISMATCH
 * naming the file, before any byte after it is yielded. The caller still verifies the whole
 * stream against the diffID (segments are not checksummed by tar-split).
 */
export async function* assembleTar(
  records: AsyncIterable<TarSplitRecord> | Iterable<TarSplitRecord>,
  openFile: TarSplitFileOpener,
  opts: AssembleTarOptions = {},
): ByteStream {
  const what = opts.what ?? 'rebuilding tar from tar-split';
  const io: IoOptions = opts.signal ? { signal: opts.signal } : {};
  for await (const r of records) {
    if (opts.signal?.aborted === true) throw new BerthError('BERTH_ABORTED', `${what}: aborted`, { cause: opts.signal.reason });
    if (r.type === 'segment') {
      if (r.payload.length > 0) yield r.payload;
      continue;
    }
    if (r.size === 0) continue;
    const label = `${what}: file ${JSON.stringify(r.name)}`;
    let src: ByteStream;
    try {
      src = await openFile(r, io);
    } catch (err) {
      throw withContext(err, label);
    }
    const crc = new Crc64();
    let got = 0;
    const it = src[Symbol.asyncIterator]();
    try {
      while (got < r.size) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await it.next();
        } catch (err) {
          throw withContext(err, label);
        }
        if (next.done === true) break;
        const chunk = next.value;
        if (chunk.length === 0) continue;
        if (got + chunk.length > r.size) {
          throw new BerthError('BERTH_SIZE_MISMATCH', `${label}: file is longer than recorded (want ${r.size} bytes, got more)`, {
            subject: r.name, want: r.size, got: got + chunk.length,
          });
        }
        crc.update(chunk);
        got += chunk.length;
        // The last chunk of a file is held back until its checksum is known.
        if (got === r.size) {
          const sum = crc.digest();
          await checkEnd(it, r, label);
          checkCrc(r, sum, label);
          yield chunk;
          break;
        }
        yield chunk;
      }
      if (got < r.size) {
        throw new BerthError('BERTH_SIZE_MISMATCH', `${label}: file is shorter than recorded (want ${r.size} bytes, got ${got})`, {
          subject: r.name, want: r.size, got,
        });
      }
    } finally {
      await it.return?.();
    }
  }
}

async function checkEnd(it: AsyncIterator<Uint8Array>, r: TarSplitFile, label: string): Promise<void> {
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await it.next();
    } catch (err) {
      throw withContext(err, label);
    }
    if (next.done === true) return;
    if (next.value.length > 0) {
      throw new BerthError('BERTH_SIZE_MISMATCH', `${label}: file is longer than recorded (want ${r.size} bytes, got more)`, {
        subject: r.name, want: r.size, got: r.size + next.value.length,
      });
    }
  }
}

function checkCrc(r: TarSplitFile, sum: Uint8Array, label: string): void {
  if (r.crc === undefined) {
    throw new BerthError('BERTH_INVALID_TAR', `${label}: record of ${r.size} bytes has no checksum`, { subject: r.name });
  }
  if (!sameBytes(sum, r.crc)) {
    throw new BerthError('BERTH_DIGEST_MISMATCH', `${label}: content differs from the layer (crc64 want ${hex(r.crc)}, got ${hex(sum)})`, {
      subject: r.name, want: hex(r.crc), got: hex(sum),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Disassembly

/** tar-split reads what follows the end-of-archive blocks in chunks of this size, one segment each. */
const TRAILER_CHUNK = 1 << 20;

export interface DisassembleTarOptions extends ReadTarOptions {
  /** Receives each record in order, as soon as it is known (a file's after its data passed). */
  readonly onRecord: (record: TarSplitRecord) => void | Promise<void>;
}

/**
 * Passes a tar stream through unchanged while recording it as tar-split does: for each member a
 * segment of [padding of the previous member's data + this member's header blocks] and a file
 * record (CRC-64 of its data), then a segment of [last padding + the end-of-archive blocks], the
 * rest of the input in 1 MiB segments, and a final empty segment. Duplicate member paths are
 * refused (BERTH_INVALID_TAR), as tar-split and therefore dockerd refuse them.
 */
export async function* disassembleTar(tar: ByteStream, opts: DisassembleTarOptions): ByteStream {
  let position = 0;
  let pendingPadding: Uint8Array = new Uint8Array(0);
  let trailer: Uint8Array | undefined;
  const seen = new Set<string>();
  const emit = async (r: TarSplitRecord): Promise<void> => {
    await opts.onRecord(r);
  };
  const { onRecord: _onRecord, ...readOpts } = opts;
  for await (const e of readTar(tar, { ...readOpts, onTrailer: (b) => (trailer = b) })) {
    await emit({ type: 'segment', payload: concat(pendingPadding, e.raw), position: position++ });
    yield e.raw;
    const h = e.header;
    const key = pathKey(h.name, h.nameRaw);
    if (seen.has(key)) {
      throw new BerthError('BERTH_INVALID_TAR', `reading tar entry ${e.index} ${JSON.stringify(h.name)}: duplicate path (tar-split and dockerd refuse layers that name a path twice)`, {
        subject: h.name,
      });
    }
    seen.add(key);
    const crc = new Crc64();
    for await (const chunk of e.body()) {
      crc.update(chunk);
      yield chunk;
    }
    // Go's reader keeps the header's size for header-only types; tar-split records it as is.
    const size = h.size;
    await emit({
      type: 'file', name: h.name, ...(h.nameRaw === undefined ? {} : { nameRaw: h.nameRaw }), size, crc: size > 0 ? crc.digest() : undefined, position: position++,
    });
    pendingPadding = e.padding;
    if (e.padding.length > 0) yield e.padding;
  }
  const rest = trailer ?? new Uint8Array(0);
  // Go's reader stops after two zero blocks; what it read since the last member is one segment.
  const eoa = Math.min(rest.length, 1024);
  if (pendingPadding.length + eoa > 0) await emit({ type: 'segment', payload: concat(pendingPadding, rest.subarray(0, eoa)), position: position++ });
  for (let at = eoa; at < rest.length; at += TRAILER_CHUNK) {
    await emit({ type: 'segment', payload: rest.subarray(at, Math.min(rest.length, at + TRAILER_CHUNK)), position: position++ });
  }
  await emit({ type: 'segment', payload: new Uint8Array(0), position: position++ });
  if (rest.length > 0) yield rest;
}

// ---------------------------------------------------------------------------------------------
// One parse: tar-split recorded while a consumer reads the entries

/** Standard base64 alphabet, as byte values. */
const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');
const ASCII = (s: string): Buffer => Buffer.from(s, 'latin1');
const SEGMENT_HEAD = ASCII('{"type":2,"payload":"');
const SEGMENT_TAIL = ASCII('","position":');
const FILE_HEAD = ASCII('{"type":1,');
const NAME_RAW = ASCII('"name_raw":"');
const NAME = ASCII('"name":');
const SIZE = ASCII('"size":');
const PAYLOAD = ASCII('"payload":');
const NULL_POSITION = ASCII('null,"position":');
const POSITION = ASCII(',"position":');

/** Batch buffers handed out by take() and recycled by release(). */
const BATCH = 256 << 10;

/**
 * tar-split JSON lines written from entry fields straight into a reusable byte buffer (no record
 * objects, no strings for base64 payloads): the same bytes encodeTarSplitRecord's lines encode to.
 */
export class TarSplitLines {
  position = 0;
  /** Bytes of lines not taken yet. */
  length = 0;
  private buf: Buffer = Buffer.allocUnsafe(BATCH);
  private scratch = Buffer.allocUnsafe(64 << 10);
  private readonly free: Buffer[] = [];

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }

  private put(bytes: Uint8Array): void {
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** Decimal digits of a non-negative safe integer. */
  private digits(n: number): void {
    const out = this.buf;
    let len = 1;
    for (let v = n; v >= 10; v = Math.floor(v / 10)) len++;
    let o = this.length + len;
    this.length = o;
    let v = n;
    do {
      out[--o] = 0x30 + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
  }

  /** Base64 of src[start, end) with padding. */
  private base64(src: Uint8Array, start: number, end: number): void {
    if (end - start >= 48) {
      // Node's encoder plus a latin1 copy beats this loop two to three times on header-sized input.
      const b = Buffer.isBuffer(src) ? src : Buffer.from(src.buffer, src.byteOffset, src.byteLength);
      this.length += this.buf.write(b.toString('base64', start, end), this.length, 'latin1');
      return;
    }
    const out = this.buf;
    let o = this.length;
    let i = start;
    for (const stop = end - 2; i < stop; i += 3) {
      const v = (src[i]! << 16) | (src[i + 1]! << 8) | src[i + 2]!;
      out[o] = B64[v >>> 18]!;
      out[o + 1] = B64[(v >>> 12) & 63]!;
      out[o + 2] = B64[(v >>> 6) & 63]!;
      out[o + 3] = B64[v & 63]!;
      o += 4;
    }
    if (i < end) {
      const two = i + 1 < end;
      const v = (src[i]! << 16) | (two ? src[i + 1]! << 8 : 0);
      out[o] = B64[v >>> 18]!;
      out[o + 1] = B64[(v >>> 12) & 63]!;
      out[o + 2] = two ? B64[(v >>> 6) & 63]! : 0x3d;
      out[o + 3] = 0x3d;
      o += 4;
    }
    this.length = o;
  }

  private endLine(): void {
    this.digits(this.position++);
    this.buf[this.length++] = 0x7d;
    this.buf[this.length++] = 0x0a;
  }

  /** A segment record of the bytes `a` then `b` (either may be empty). */
  segment(a: Uint8Array, b: Uint8Array): void {
    const n = a.length + b.length;
    this.room(64 + Math.ceil(n / 3) * 4);
    this.put(SEGMENT_HEAD);
    if (a.length === 0) this.base64(b, 0, b.length);
    else if (b.length === 0) this.base64(a, 0, a.length);
    else {
      // base64 runs across the join, so the two are put side by side first
      if (n > this.scratch.length) this.scratch = Buffer.allocUnsafe(n);
      this.scratch.set(a, 0);
      this.scratch.set(b, a.length);
      this.base64(this.scratch, 0, n);
    }
    this.put(SEGMENT_TAIL);
    this.endLine();
  }

  /** A file record; `crc` undefined for size 0. */
  file(name: string, nameRaw: Uint8Array | undefined, size: number, crc: Crc64 | undefined): void {
    this.room(128 + (nameRaw === undefined ? name.length * 6 : Math.ceil(nameRaw.length / 3) * 4));
    this.put(FILE_HEAD);
    if (nameRaw !== undefined) {
      this.put(NAME_RAW);
      this.base64(nameRaw, 0, nameRaw.length);
      this.buf[this.length++] = 0x22;
      this.buf[this.length++] = 0x2c;
    } else if (name !== '') {
      this.put(NAME);
      if (JSON_SAFE.test(name)) {
        this.buf[this.length++] = 0x22;
        this.length += this.buf.write(name, this.length, 'latin1');
        this.buf[this.length++] = 0x22;
      } else {
        this.length += this.buf.write(goJsonString(name), this.length, 'utf8');
      }
      this.buf[this.length++] = 0x2c;
    }
    if (size !== 0) {
      this.put(SIZE);
      this.digits(size);
      this.buf[this.length++] = 0x2c;
    }
    this.put(PAYLOAD);
    if (crc === undefined) {
      this.put(NULL_POSITION);
    } else {
      crc.digestInto(this.scratch);
      this.buf[this.length++] = 0x22;
      this.base64(this.scratch, 0, 8);
      this.buf[this.length++] = 0x22;
      this.put(POSITION);
    }
    this.endLine();
  }

  /** The lines so far, removed from the batch; hand the buffer back with release() once written. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.length);
    this.buf = this.free.pop() ?? Buffer.allocUnsafe(BATCH);
    this.length = 0;
    return out;
  }

  /** A buffer take() returned, no longer in use. */
  release(bytes: Buffer): void {
    if (bytes.buffer.byteLength === BATCH && bytes.byteOffset === 0 && this.free.length < 4) this.free.push(Buffer.from(bytes.buffer, 0, BATCH));
  }
}

/** Names Go's encoder writes unescaped: printable ASCII but `"`, `\\`, `<`, `>`, `&`. */
const JSON_SAFE = /^[ !#-%'-;=?-[\]-~]*$/;

const EMPTY = new Uint8Array(0);
const BLOCK = 512;

/** What SplitFeed hands each member to. */
export interface SplitFeedSink {
  /** A new member; a returned promise pauses the feed until it settles (a rejection stops it). */
  entry(header: TarHeader, index: number, dataSize: number): Promise<void> | undefined;
  /** The next bytes of the current member's data: a view valid only during the call. */
  data(bytes: Uint8Array): void;
  /** The current member's data is complete (called for every member, after its data). */
  end(): void;
}

export interface SplitFeedOptions {
  /**
   * Where the lines go. Without it nothing is recorded (no lines, checksums or duplicate-path
   * check): for a consumer whose tar-split another feed of the same bytes records.
   */
  readonly lines?: TarSplitLines;
  /** Called with the batch taken (see TarSplitLines.release) once it holds `flushAt` bytes (default 64 KiB), and at the end. */
  readonly onLines?: (bytes: Buffer) => void;
  readonly flushAt?: number;
  /** As readTar's. */
  readonly maxEntries?: number;
  readonly maxPathBytes?: number;
  readonly maxTrailerBytes?: number;
}

/**
 * A tar parsed chunk by chunk and recorded as tar-split while a consumer (the sink) applies it,
 * so a layer that is applied and recorded is parsed once: each chunk is parsed synchronously,
 * member data goes to the sink as views of the chunk (no per-entry stream, generator step or
 * promise) through a CRC-64, and the lines disassembleTar's records encode to are written as the
 * members pass. Headers go through readTar's parser (parseHeaderGroupAt): the same checks and
 * errors; duplicate member paths are refused as disassembleTar refuses them. Only a sink entry
 * that returns a promise pauses the feed.
 */
export class SplitFeed {
  private index = 0;
  private prevName: string | undefined;
  private cur: TarHeader | undefined;
  private crc = new Crc64();
  private dataSize = 0;
  /** Data and padding of the current member still to come; inBody until end() was called. */
  private bodyLeft = 0;
  private padLeft = 0;
  private padSize = 0;
  private inBody = false;
  /** The padding after the last member's data (starts the next segment); copied, it may span chunks. */
  private readonly pad = new Uint8Array(BLOCK);
  private padLen = 0;
  /** A header group cut by the end of a chunk, and how many bytes the parser wants of it. */
  private carry: Uint8Array | undefined;
  private need = 0;
  private ended = false;
  private readonly trailer: Uint8Array[] = [];
  private trailerBytes = 0;
  private finished = false;
  private buf: Uint8Array = EMPTY;
  private pos = 0;
  private readonly seen = new Set<string>();
  private readonly lines: TarSplitLines | undefined;
  private readonly onLines: (bytes: Buffer) => void;
  private readonly flushAt: number;
  private readonly maxEntries: number;
  private readonly maxPath: number;
  private readonly maxTrailer: number;

  constructor(private readonly sink: SplitFeedSink, opts: SplitFeedOptions) {
    this.lines = opts.lines;
    this.onLines = opts.onLines ?? (() => undefined);
    this.flushAt = opts.flushAt ?? 1 << 16;
    this.maxEntries = opts.maxEntries ?? limits().maxStreamEntries;
    this.maxPath = opts.maxPathBytes ?? limits().maxPathBytes;
    this.maxTrailer = opts.maxTrailerBytes ?? DEFAULT_MAX_TRAILER_BYTES;
  }

  /** Consumes one chunk; a promise when a member's handler went asynchronous (feed again only after it settles). */
  feed(chunk: Uint8Array): Promise<void> | undefined {
    this.buf = chunk;
    this.pos = 0;
    return this.run();
  }

  /** The end of the input: what is left must be the end of the archive (or nothing). Writes the last lines. */
  finish(): void {
    if (this.finished) return;
    while (!this.ended) {
      if (this.bodyLeft > 0) throw this.truncated('body', this.dataSize, this.dataSize - this.bodyLeft);
      if (this.padLeft > 0) throw this.truncated('padding after the body', this.padSize, this.padSize - this.padLeft);
      const buf = this.carry ?? EMPTY;
      this.carry = undefined;
      // At the end of input a header group is either the end of the archive or an error.
      const g = parseHeaderGroupAt(buf, 0, buf.length, true, this.index, this.prevName);
      if (g.kind !== 'end') throw new BerthError('BERTH_INVALID_TAR', `${entryLabel(this.index, undefined, this.prevName)}: truncated archive`);
      this.ended = true;
      this.addTrailer(buf, 0, buf.length);
    }
    this.finished = true;
    if (this.lines === undefined) return;
    // As disassembleTar: the end-of-archive blocks (what Go's reader read) with the last padding, the rest in 1 MiB segments.
    const rest = concatBytes(this.trailer);
    const lines = this.lines;
    const eoa = Math.min(rest.length, 1024);
    if (this.padLen + eoa > 0) lines.segment(this.pad.subarray(0, this.padLen), rest.subarray(0, eoa));
    for (let at = eoa; at < rest.length; at += TRAILER_CHUNK) lines.segment(EMPTY, rest.subarray(at, Math.min(rest.length, at + TRAILER_CHUNK)));
    lines.segment(EMPTY, EMPTY);
    this.onLines(lines.take());
  }

  private run(): Promise<void> | undefined {
    const buf = this.buf;
    const len = buf.length;
    for (;;) {
      let pos = this.pos;
      if (this.carry !== undefined) {
        const take = Math.min(this.need - this.carry.length, len - pos);
        if (take > 0) {
          this.carry = concat(this.carry, buf.subarray(pos, pos + take));
          pos += take;
          this.pos = pos;
        }
        if (this.carry.length < this.need) return undefined;
        const carry = this.carry;
        const r = this.group(carry, 0);
        if (r === -1) continue;
        this.carry = undefined;
        // The parser stops where its last read ended, which is where the carry ends.
        if (r.used < carry.length) this.pos -= carry.length - r.used;
        if (r.wait !== undefined) return r.wait.then(() => this.run());
        continue;
      }
      if (this.bodyLeft > 0) {
        const t = Math.min(this.bodyLeft, len - pos);
        if (t > 0) {
          this.bodyLeft -= t;
          this.pos = pos + t;
          const view = buf.subarray(pos, pos + t);
          if (this.lines !== undefined) this.crc.update(view);
          this.sink.data(view);
        }
        if (this.bodyLeft > 0) return undefined;
        pos = this.pos;
      }
      if (this.inBody) {
        this.inBody = false;
        this.sink.end();
        const lines = this.lines;
        if (lines !== undefined) {
          const h = this.cur!;
          // Go's reader keeps the header's size for header-only types; tar-split records it as is.
          lines.file(h.name, h.nameRaw, h.size, h.size > 0 ? this.crc : undefined);
          if (lines.length >= this.flushAt) this.onLines(lines.take());
        }
      }
      if (this.padLeft > 0) {
        const t = Math.min(this.padLeft, len - pos);
        if (this.lines !== undefined) this.pad.set(buf.subarray(pos, pos + t), this.padLen);
        this.padLen += t;
        this.padLeft -= t;
        pos += t;
        this.pos = pos;
        if (this.padLeft > 0) return undefined;
      }
      if (this.ended) {
        this.addTrailer(buf, pos, len);
        this.pos = len;
        return undefined;
      }
      if (pos === len) return undefined;
      const r = this.group(buf, pos);
      if (r === -1) {
        // a copy: a Buffer's slice() is a view, and the reader may reuse the chunk's memory
        this.carry = new Uint8Array(buf.subarray(pos));
        this.pos = len;
        return undefined;
      }
      this.pos = pos + r.used;
      if (r.wait !== undefined) return r.wait.then(() => this.run());
    }
  }

  /** Parses the header group at buf[pos], records its segment and hands it to the sink; -1 (need set) when it runs past the end of buf. */
  private group(buf: Uint8Array, pos: number): -1 | { used: number; wait: Promise<void> | undefined } {
    const g = parseHeaderGroupAt(buf, pos, buf.length, false, this.index, this.prevName);
    if (g.kind === 'more') {
      this.need = g.need;
      return -1;
    }
    if (g.kind === 'end') {
      this.ended = true;
      // the rest of buf joins the trailer too; run() and the carry path account for it
      this.addTrailer(buf, pos, buf.length);
      return { used: buf.length - pos, wait: undefined };
    }
    const h = g.header;
    checkEntries(this.index, this.maxEntries, h.name);
    checkPath(this.index, this.maxPath, h);
    if (this.lines !== undefined) {
      const key = pathKey(h.name, h.nameRaw);
      if (this.seen.has(key)) {
        throw new BerthError('BERTH_INVALID_TAR', `reading tar entry ${this.index} ${JSON.stringify(h.name)}: duplicate path (tar-split and dockerd refuse layers that name a path twice)`, {
          subject: h.name,
        });
      }
      this.seen.add(key);
      this.lines.segment(this.pad.subarray(0, this.padLen), buf.subarray(pos, pos + g.consumed));
      this.crc = new Crc64();
    }
    this.padLen = 0;
    this.cur = h;
    this.dataSize = g.dataSize;
    this.bodyLeft = g.dataSize;
    this.padLeft = g.paddingSize;
    this.padSize = g.paddingSize;
    this.inBody = true;
    const index = this.index++;
    this.prevName = h.name;
    return { used: g.consumed, wait: this.sink.entry(h, index, g.dataSize) };
  }

  /** Keeps a copy of buf[from, to) as trailer bytes (limited as readTar limits them). */
  private addTrailer(buf: Uint8Array, from: number, to: number): void {
    if (to <= from) return;
    this.trailerBytes += to - from;
    if (this.trailerBytes > this.maxTrailer) {
      throw new BerthError('BERTH_LIMIT', `reading tar trailer: more than ${this.maxTrailer} bytes after the end-of-archive block (want at most ${this.maxTrailer})`, {
        want: this.maxTrailer, got: this.trailerBytes,
      });
    }
    if (this.lines !== undefined) this.trailer.push(new Uint8Array(buf.subarray(from, to))); // a copy, as the carry
  }

  private truncated(part: string, want: number, got: number): BerthError {
    const name = this.cur?.name;
    return new BerthError('BERTH_INVALID_TAR', `${entryLabel(this.index - 1, name)}: truncated ${part} (want ${want} bytes, got ${got})`, { want, got, subject: name });
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** True when `err` came from a file whose content no longer matches its tar-split record. */
export function isContentMismatch(err: unknown): boolean {
  return isBerthError(err, 'BERTH_DIGEST_MISMATCH') || isBerthError(err, 'BERTH_SIZE_MISMATCH');
}
