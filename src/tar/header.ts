/**
 * Tar header codec: decode and encode 512-byte header blocks (v7, ustar, GNU, PAX).
 *
 * Decoding follows Go's archive/tar (the reader tar-split and dockerd use): octal fields may be
 * padded with spaces or NULs, a field whose first byte has the high bit set is a GNU base-256
 * number, the checksum is accepted as either the unsigned or the signed byte sum, the ustar
 * `prefix` is joined to the name only for ustar/PAX magic, and PAX records override GNU long
 * names which override the header fields. Encoding follows Go's writer with an unset format:
 * ustar when everything fits, otherwise one PAX `x` header with sorted records.
 *
 * Functions here throw BerthError(BERTH_INVALID_TAR) with a bare detail; the reader adds the
 * entry index and name in front.
 */
import { BerthError } from '../core/errors.js';

export const BLOCK_SIZE = 512;
/** Largest extension payload (PAX `x`/`g`, GNU `L`/`K`) accepted, as in Go. */
export const MAX_EXTENSION_BYTES = 1 << 20;

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo' | (string & {});
export type TarFormat = 'v7' | 'ustar' | 'pax' | 'gnu';

export interface TarHeader {
  /** Full member name as decoded (PAX path, GNU long name or ustar prefix applied). */
  readonly name: string;
  /** Raw name bytes, present only when the name is not valid UTF-8 (then `name` has U+FFFD). */
  readonly nameRaw?: Uint8Array;
  /** Permission and special bits only (12 bits); file-type bits in the field are dropped. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Size as recorded (PAX `size` applied). Header-only types (links, dirs, devices) have no data whatever it says. */
  readonly size: number;
  /** Seconds since the epoch; PAX mtimes keep their fraction. */
  readonly mtime: number;
  /** `file` (`0` and NUL), `link`, `symlink`, `char`, `block`, `directory`, `fifo`, else the type byte itself (e.g. `7`, `g`, `S`). */
  readonly type: TarType;
  /** The type byte as stored (one character, `\0` for old regular files). */
  readonly typeflag: string;
  readonly linkname: string;
  readonly uname: string;
  readonly gname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** Extended attributes from `SCHILY.xattr.<name>` records, values as raw bytes. */
  readonly xattrs: Readonly<Record<string, Uint8Array>>;
  /** Every PAX record that applied to this entry (values decoded as UTF-8). */
  readonly pax: Readonly<Record<string, string>>;
  readonly format: TarFormat;
}

const TYPE_BY_FLAG: Readonly<Record<string, TarType>> = {
  '0': 'file', '\0': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo',
};
const FLAG_BY_TYPE: Readonly<Record<string, string>> = {
  file: '0', link: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6',
};

export function typeFromFlag(flag: string): TarType {
  return TYPE_BY_FLAG[flag] ?? flag;
}

/** The type byte for a type name; a one-character type passes through. */
export function flagFromType(type: TarType): string {
  const flag = FLAG_BY_TYPE[type];
  if (flag !== undefined) return flag;
  if (type.length === 1) return type;
  throw new BerthError('BERTH_INVALID_TAR', `unknown entry type "${type}"`, { got: type });
}

/** Types whose entries carry no data even when the size field says otherwise (Go's isHeaderOnlyType). */
export function isHeaderOnlyFlag(flag: string): boolean {
  return flag >= '1' && flag <= '6';
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Lossy = new TextDecoder('utf-8');
const encoder = new TextEncoder();

/** Bytes up to the first NUL. */
function cString(b: Uint8Array): Uint8Array {
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
}

function decodeText(b: Uint8Array): { text: string; raw?: Uint8Array } {
  try {
    return { text: utf8.decode(b) };
  } catch {
    return { text: utf8Lossy.decode(b), raw: new Uint8Array(b) };
  }
}

function ascii(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

/** Parses an octal field (or base-256 when the first byte has the high bit set). */
export function parseNumeric(b: Uint8Array, field: string): number {
  if (b.length > 0 && (b[0]! & 0x80) !== 0) return parseBase256(b, field);
  // Trim leading and trailing spaces and NULs, then stop at the first NUL, as Go does.
  let start = 0;
  let end = b.length;
  while (start < end && (b[start] === 0x20 || b[start] === 0)) start++;
  while (end > start && (b[end - 1] === 0x20 || b[end - 1] === 0)) end--;
  const digits = cString(b.subarray(start, end));
  if (digits.length === 0) return 0;
  let value = 0;
  for (const c of digits) {
    if (c < 0x30 || c > 0x37) {
      throw new BerthError('BERTH_INVALID_TAR', `${field} field is not an octal number (got ${JSON.stringify(ascii(b))})`, { got: ascii(b) });
    }
    value = value * 8 + (c - 0x30);
  }
  if (!Number.isSafeInteger(value)) {
    throw new BerthError('BERTH_INVALID_TAR', `${field} field is too large (got ${JSON.stringify(ascii(digits))})`);
  }
  return value;
}

function parseBase256(b: Uint8Array, field: string): number {
  const negative = (b[0]! & 0x40) !== 0;
  const inv = negative ? 0xff : 0;
  let x = 0n;
  for (let i = 0; i < b.length; i++) {
    let c = b[i]! ^ inv;
    if (i === 0) c &= 0x7f;
    x = (x << 8n) | BigInt(c);
  }
  const value = negative ? -(x + 1n) : x;
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new BerthError('BERTH_INVALID_TAR', `${field} field is out of range (base-256 value ${value})`);
  }
  return Number(value);
}

/** Unsigned and signed sums of the block with the checksum field counted as spaces. */
export function computeChecksums(block: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += c;
    signed += c >= 0x80 ? c - 256 : c;
  }
  return { unsigned, signed };
}

/** Header fields straight from one block, before extension headers are applied. */
export interface BlockFields {
  name: string;
  nameRaw?: Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  linkRaw?: Uint8Array;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  format: TarFormat;
}

/** Best-effort name of a block that may be corrupt (for error messages). */
export function peekName(block: Uint8Array): string {
  return utf8Lossy.decode(cString(block.subarray(0, 100)));
}

/** Decodes one header block; throws on a bad checksum or a malformed numeric field. */
export function decodeBlock(block: Uint8Array): BlockFields {
  if (block.length !== BLOCK_SIZE) {
    throw new BerthError('BERTH_INVALID_TAR', `truncated header (want ${BLOCK_SIZE} bytes, got ${block.length})`, { want: BLOCK_SIZE, got: block.length });
  }
  return decodeBlockAt(block, 0);
}

/**
 * decodeBlock on the 512 bytes at `at` of a larger buffer (no copy). Well-formed ASCII fields
 * take a fast path; anything unusual (non-ASCII text, base-256 or malformed numbers) goes
 * through the general code, so results and errors are the same either way.
 */
export function decodeBlockAt(buf: Uint8Array, at: number): BlockFields {
  const b = asBuffer(buf);
  let stored = fastOctal(b, at + 148, at + 156);
  if (stored < 0) stored = parseOctalOrNaN(b.subarray(at + 148, at + 156));
  // Both sums in one pass: the signed sum is the unsigned one minus 256 per byte ≥ 0x80.
  let { unsigned, high } = byteSums(b, at);
  for (let i = at + 148; i < at + 156; i++) {
    const c = b[i]!;
    unsigned -= c;
    high -= c >> 7;
  }
  unsigned += 8 * 0x20;
  const signed = unsigned - 256 * high;
  if (stored !== unsigned && stored !== signed) {
    throw new BerthError('BERTH_INVALID_TAR', `bad header checksum (want ${unsigned}, got ${Number.isNaN(stored) ? JSON.stringify(ascii(b.subarray(at + 148, at + 156))) : stored})`, {
      want: unsigned, got: stored,
    });
  }
  let format: TarFormat = 'v7';
  if (b[at + 257] === 0x75 && b[at + 258] === 0x73 && b[at + 259] === 0x74 && b[at + 260] === 0x61 && b[at + 261] === 0x72) {
    if (b[at + 262] === 0) format = 'ustar';
    else if (b[at + 262] === 0x20 && b[at + 263] === 0x20 && b[at + 264] === 0) format = 'gnu';
  }

  let nameText = asciiField(b, at, at + 100);
  let nameRaw: Uint8Array | undefined;
  if (format === 'ustar') {
    const star = b[at + 508] === 0x74 && b[at + 509] === 0x61 && b[at + 510] === 0x72 && b[at + 511] === 0;
    const prefixEnd = at + (star ? 476 : 500);
    const prefixText = asciiField(b, at + 345, prefixEnd);
    if (prefixText === undefined || nameText === undefined) {
      nameText = undefined;
    } else if (prefixText !== '') {
      nameText = `${prefixText}/${nameText}`;
    }
    if (nameText === undefined) {
      let nameBytes = cString(b.subarray(at, at + 100));
      const prefix = cString(b.subarray(at + 345, prefixEnd));
      if (prefix.length > 0) {
        const joined = new Uint8Array(prefix.length + 1 + nameBytes.length);
        joined.set(prefix, 0);
        joined[prefix.length] = 0x2f;
        joined.set(nameBytes, prefix.length + 1);
        nameBytes = joined;
      }
      const d = decodeText(nameBytes);
      nameText = d.text;
      nameRaw = d.raw;
    }
  } else if (nameText === undefined) {
    const d = decodeText(cString(b.subarray(at, at + 100)));
    nameText = d.text;
    nameRaw = d.raw;
  }
  let linkText = asciiField(b, at + 157, at + 257);
  let linkRaw: Uint8Array | undefined;
  if (linkText === undefined) {
    const d = decodeText(cString(b.subarray(at + 157, at + 257)));
    linkText = d.text;
    linkRaw = d.raw;
  }
  const typeflag = CHARS[b[at + 156]!]!;
  const v7 = format === 'v7';
  const fields: BlockFields = {
    name: nameText,
    mode: numericAt(b, at + 100, 8, 'mode') & 0o7777,
    uid: numericAt(b, at + 108, 8, 'uid'),
    gid: numericAt(b, at + 116, 8, 'gid'),
    size: numericAt(b, at + 124, 12, 'size'),
    mtime: numericAt(b, at + 136, 12, 'mtime'),
    typeflag,
    linkname: linkText,
    uname: v7 ? '' : (asciiField(b, at + 265, at + 297) ?? utf8Lossy.decode(cString(b.subarray(at + 265, at + 297)))),
    gname: v7 ? '' : (asciiField(b, at + 297, at + 329) ?? utf8Lossy.decode(cString(b.subarray(at + 297, at + 329)))),
    devmajor: v7 ? 0 : numericAt(b, at + 329, 8, 'devmajor'),
    devminor: v7 ? 0 : numericAt(b, at + 337, 8, 'devminor'),
    format,
  };
  if (nameRaw !== undefined) fields.nameRaw = nameRaw;
  if (linkRaw !== undefined) fields.linkRaw = linkRaw;
  if (fields.size < 0) {
    throw new BerthError('BERTH_INVALID_TAR', `negative size field (got ${fields.size})`, { got: fields.size });
  }
  return fields;
}

let wordsOf: ArrayBufferLike | undefined;
let words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

/**
 * Sum of the 512 bytes at `at` and the number of them ≥ 0x80. Four bytes at a time when the
 * block is 4-byte aligned (it is in reads from files and zlib): two 16-bit lanes of byte sums
 * (at most 2·255·128, no carry between them) and four 8-bit lanes of high-bit counts (at most 128).
 */
function byteSums(b: Uint8Array, at: number): { unsigned: number; high: number } {
  const start = b.byteOffset + at;
  if ((start & 3) !== 0) {
    let unsigned = 0;
    let high = 0;
    for (let i = at, end = at + BLOCK_SIZE; i < end; i++) {
      const c = b[i]!;
      unsigned += c;
      high += c >> 7;
    }
    return { unsigned, high };
  }
  if (wordsOf !== b.buffer) {
    wordsOf = b.buffer;
    words = new Uint32Array(b.buffer, 0, b.buffer.byteLength >>> 2);
  }
  let lanes = 0;
  let highs = 0;
  for (let i = start >>> 2, end = i + BLOCK_SIZE / 4; i < end; i++) {
    const w = words[i]!;
    lanes += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
    highs += (w >>> 7) & 0x01010101;
  }
  return {
    unsigned: (lanes % 0x10000) + Math.floor(lanes / 0x10000),
    high: (highs & 0xff) + ((highs >>> 8) & 0xff) + ((highs >>> 16) & 0xff) + Math.floor(highs / 0x1000000),
  };
}

/** One-character strings by byte value. */
const CHARS: readonly string[] = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Text of b[start, end) up to the first NUL when it is all ASCII; undefined otherwise (then UTF-8 rules apply). */
function asciiField(b: Buffer, start: number, end: number): string | undefined {
  let i = start;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === 0) break;
    if (c >= 0x80) return undefined;
  }
  return i === start ? '' : b.toString('latin1', start, i);
}

/**
 * The common octal field: optional leading spaces/NULs, octal digits, then only spaces/NULs.
 * -1 for anything else (base-256, other bytes), which parseNumeric then decides.
 */
export function fastOctal(b: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  let value = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x37) break;
    value = value * 8 + (c - 0x30);
  }
  for (; i < end; i++) {
    const c = b[i]!;
    if (c !== 0 && c !== 0x20) return -1;
  }
  return value;
}

function numericAt(b: Uint8Array, at: number, width: number, field: string): number {
  const v = fastOctal(b, at, at + width);
  return v >= 0 ? v : parseNumeric(b.subarray(at, at + width), field);
}

function parseOctalOrNaN(b: Uint8Array): number {
  try {
    return parseNumeric(b, 'checksum');
  } catch {
    return Number.NaN;
  }
}

export interface PaxRecord {
  readonly key: string;
  readonly value: Uint8Array;
}

/** Parses PAX extended-header data ("%d %s=%s\n" records); throws if a length field lies. */
export function parsePaxRecords(data: Uint8Array): PaxRecord[] {
  const out: PaxRecord[] = [];
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const lenText = space < 0 ? '' : ascii(data.subarray(at, space));
    if (space < 0 || !/^[0-9]{1,12}$/.test(lenText)) {
      throw new BerthError('BERTH_INVALID_TAR', `malformed pax record at byte ${at} (no decimal length before a space)`);
    }
    const n = Number(lenText);
    if (n < 5 || at + n > data.length || n <= lenText.length + 1) {
      throw new BerthError('BERTH_INVALID_TAR', `pax record at byte ${at} lies about its length (want at most ${data.length - at} bytes, got ${n})`, {
        want: data.length - at, got: n,
      });
    }
    const end = at + n;
    if (data[end - 1] !== 0x0a) {
      throw new BerthError('BERTH_INVALID_TAR', `pax record at byte ${at} lies about its length (no newline at byte ${end - 1})`);
    }
    const rec = data.subarray(space + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new BerthError('BERTH_INVALID_TAR', `malformed pax record at byte ${at} (no "key=value")`);
    const key = decodeText(rec.subarray(0, eq)).text;
    const value = new Uint8Array(rec.subarray(eq + 1));
    if (key.includes('\0') || (!key.startsWith('SCHILY.xattr.') && value.includes(0))) {
      throw new BerthError('BERTH_INVALID_TAR', `malformed pax record "${key}" (NUL byte)`);
    }
    out.push({ key, value });
    at = end;
  }
  return out;
}

function parsePaxInt(key: string, v: string): number {
  if (!/^-?[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new BerthError('BERTH_INVALID_TAR', `pax record "${key}" is not an integer (got ${JSON.stringify(v)})`, { got: v });
  }
  return Number(v);
}

function parsePaxTime(key: string, v: string): number {
  if (!/^-?[0-9]+(\.[0-9]*)?$/.test(v) || !Number.isFinite(Number(v))) {
    throw new BerthError('BERTH_INVALID_TAR', `pax record "${key}" is not a time (got ${JSON.stringify(v)})`, { got: v });
  }
  return Number(v);
}

/** Extension state gathered before a main header. */
export interface Extensions {
  longName?: Uint8Array;
  longLink?: Uint8Array;
  pax?: PaxRecord[];
  gnu?: boolean;
}

/** Combines a main block with the GNU long name/link and PAX records that preceded it. */
export function buildHeader(f: BlockFields, ext: Extensions): TarHeader {
  let name = f.name;
  let nameRaw = f.nameRaw;
  let linkname = f.linkname;
  let { uid, gid, size, mtime, uname, gname } = f;
  let format = f.format;
  if (ext.gnu === true) format = 'gnu';
  if (ext.longName !== undefined) {
    const d = decodeText(cString(ext.longName));
    name = d.text;
    nameRaw = d.raw;
  }
  if (ext.longLink !== undefined) linkname = decodeText(cString(ext.longLink)).text;
  const xattrs: Record<string, Uint8Array> = {};
  const pax: Record<string, string> = {};
  if (ext.pax !== undefined) {
    format = 'pax';
    for (const { key, value } of ext.pax) {
      const v = utf8Lossy.decode(value);
      pax[key] = v;
      if (value.length === 0) continue; // an empty value keeps the header field (Go)
      switch (key) {
        case 'path': {
          const d = decodeText(value);
          name = d.text;
          nameRaw = d.raw;
          break;
        }
        case 'linkpath': linkname = v; break;
        case 'uname': uname = v; break;
        case 'gname': gname = v; break;
        case 'uid': uid = parsePaxInt(key, v); break;
        case 'gid': gid = parsePaxInt(key, v); break;
        case 'mtime': mtime = parsePaxTime(key, v); break;
        case 'atime': case 'ctime': parsePaxTime(key, v); break;
        case 'size':
          size = parsePaxInt(key, v);
          if (size < 0) throw new BerthError('BERTH_INVALID_TAR', `pax record "size" is negative (got ${size})`, { got: size });
          break;
        default:
          if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice('SCHILY.xattr.'.length)] = value;
      }
    }
  }
  let typeflag = f.typeflag;
  // Old tars mark directories with a regular-file type and a trailing slash (Go does the same).
  if (typeflag === '\0' && name.endsWith('/')) typeflag = '5';
  const header: TarHeader = {
    name, mode: f.mode, uid, gid, size, mtime, type: typeFromFlag(typeflag), typeflag: f.typeflag, linkname,
    uname, gname, devmajor: f.devmajor, devminor: f.devminor, xattrs, pax, format,
  };
  return nameRaw === undefined ? header : { ...header, nameRaw };
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** File-type bits dockerd puts in the mode field (Go's c_IS* constants). */
const TYPE_BITS: Readonly<Record<string, number>> = {
  '0': 0o100000, '1': 0o100000, '2': 0o120000, '3': 0o020000, '4': 0o060000, '5': 0o040000, '6': 0o010000,
};

export interface EncodeOptions {
  /** Put file-type bits in the mode field (`0100644`), as dockerd does. Default true. */
  readonly modeTypeBits?: boolean;
}

/** What the writer encodes: a full header (defaults already applied). */
export interface EncodableHeader {
  readonly name: string;
  readonly type: TarType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly linkname: string;
  readonly uname: string;
  readonly gname: string;
  readonly devmajor: number;
  readonly devminor: number;
  readonly xattrs: Readonly<Record<string, Uint8Array>>;
  /** Extra PAX records to write (keys that the header fields own are ignored). */
  readonly pax: Readonly<Record<string, string>>;
}

const BASIC_PAX_KEYS = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime', 'atime', 'ctime']);

function isAscii(b: Uint8Array): boolean {
  for (const c of b) if (c >= 0x80 || c === 0) return false;
  return true;
}

function fitsInOctal(width: number, x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0 && (width >= 22 || x < 2 ** ((width - 1) * 3));
}

/** Go's splitUSTARPath on bytes: prefix ≤ 155, suffix ≤ 100, split at a slash. */
function splitUstarPath(name: Uint8Array): { prefix: Uint8Array; suffix: Uint8Array } | undefined {
  let length = name.length;
  if (length <= 100 || !isAscii(name)) return undefined;
  if (length > 156) length = 156;
  else if (name[length - 1] === 0x2f) length--;
  const i = name.subarray(0, length).lastIndexOf(0x2f);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > 100 || nlen === 0 || i > 155) return undefined;
  return { prefix: name.subarray(0, i), suffix: name.subarray(i + 1) };
}

/** Go's formatter.formatString: copy, NUL-terminate when shorter, avoid a trailing slash when cut. */
function putString(block: Uint8Array, at: number, width: number, s: Uint8Array): void {
  block.set(s.subarray(0, width), at);
  if (s.length < width) block[at + s.length] = 0;
  if (s.length > width && block[at + width - 1] === 0x2f) {
    let n = width - 1;
    while (n > 0 && block[at + n - 1] === 0x2f) n--;
    block[at + n] = 0;
  }
}

/** Go's formatOctal: zero-padded digits leaving room for a NUL; 0 when the value does not fit. */
function putOctal(block: Uint8Array, at: number, width: number, x: number): void {
  const s = (fitsInOctal(width, x) ? x : 0).toString(8).padStart(width - 1, '0');
  putString(block, at, width, encoder.encode(s));
}

function toAscii(b: Uint8Array): Uint8Array {
  return b.filter((c) => c < 0x80 && c !== 0);
}

function setChecksum(block: Uint8Array): void {
  const { unsigned } = computeChecksums(block);
  putOctal(block, 148, 7, unsigned);
  block[155] = 0x20;
}

function setUstarMagic(block: Uint8Array): void {
  block.set(encoder.encode('ustar\0'), 257);
  block.set(encoder.encode('00'), 263);
}

/** One PAX record as bytes, its length prefix counting itself (Go's formatPAXRecord). */
export function formatPaxRecord(key: string, value: Uint8Array | string): Uint8Array {
  const k = encoder.encode(key);
  const v = typeof value === 'string' ? encoder.encode(value) : value;
  let size = k.length + v.length + 3;
  size += String(size).length;
  if (String(size).length + k.length + v.length + 3 !== size) size = String(size).length + k.length + v.length + 3;
  const head = encoder.encode(`${size} ${key}=`);
  const out = new Uint8Array(head.length + v.length + 1);
  out.set(head, 0);
  out.set(v, head.length);
  out[out.length - 1] = 0x0a;
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function zeroPadding(n: number): Uint8Array {
  return new Uint8Array((BLOCK_SIZE - (n % BLOCK_SIZE)) % BLOCK_SIZE);
}

/**
 * Encodes a header as Go's archive/tar writer does with no format set: a single ustar block
 * when every field fits, otherwise a PAX `x` header (its data and padding) then the ustar block.
 * Returns the blocks to write before the entry's data.
 */
export function encodeHeader(h: EncodableHeader, opts: EncodeOptions = {}): Uint8Array {
  const block = new Uint8Array(BLOCK_SIZE);
  if (encodeUstarInto(h, opts.modeTypeBits !== false, block, 0)) return block;
  return encodeHeaderGeneral(h, opts);
}

/** Whether a string is 1–0x7f characters only (so its UTF-8 bytes are its char codes) and at most `width` long. */
function isShortAscii(s: string, width: number): boolean {
  if (s.length > width) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c >= 0x80) return false;
  }
  return true;
}

function hasOwnKeys(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/** Writes an ASCII string; returns the sum of its bytes (for the checksum). */
function writeAscii(buf: Uint8Array, at: number, s: string): number {
  let sum = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    buf[at + i] = c;
    sum += c;
  }
  return sum;
}

/** putOctal for a value known to fit: width-1 zero-padded digits (the NUL is already there); returns the sum of the bytes. */
function writeOctal(buf: Uint8Array, at: number, width: number, x: number): number {
  let sum = 0;
  let i = at + width - 2;
  for (; i >= at && x > 0x7fffffff; i--) {
    const d = x % 8;
    buf[i] = 0x30 + d;
    sum += 0x30 + d;
    x = (x - d) / 8;
  }
  for (; i >= at; i--) {
    const d = x & 7;
    buf[i] = 0x30 + d;
    sum += 0x30 + d;
    x >>>= 3;
  }
  return sum;
}

/**
 * The common case of encodeHeader: one plain ustar block (ASCII names that fit, numbers that
 * fit, no xattrs or extra records), written into the 512 ZERO bytes at `buf[at]`. Returns false,
 * having written nothing, when the header needs the general encoder (which also raises its errors).
 */
export function encodeUstarInto(h: EncodableHeader, modeTypeBits: boolean, buf: Uint8Array, at: number): boolean {
  const flag = Object.hasOwn(FLAG_BY_TYPE, h.type) ? FLAG_BY_TYPE[h.type] : undefined;
  if (flag === undefined) return false;
  if ((flag === '0' || flag === '3' || flag === '4' || flag === '6') && h.name.endsWith('/')) return false;
  const mtime = h.mtime >= 0 ? Math.floor(h.mtime + 0.5) : -Math.floor(-h.mtime + 0.5);
  if (!isShortAscii(h.name, 100) || !isShortAscii(h.linkname, 100) || !isShortAscii(h.uname, 32) || !isShortAscii(h.gname, 32)) return false;
  if (!fitsInOctal(8, h.uid) || !fitsInOctal(8, h.gid) || !fitsInOctal(12, h.size) || !fitsInOctal(12, mtime)) return false;
  if (!fitsInOctal(8, h.devmajor) || !fitsInOctal(8, h.devminor) || hasOwnKeys(h.xattrs)) return false;
  for (const k in h.pax) if (Object.hasOwn(h.pax, k) && !BASIC_PAX_KEYS.has(k)) return false;
  const typeBits = modeTypeBits ? (TYPE_BITS[flag] ?? 0) : 0;
  // The checksum is the sum of what is written here, the checksum field counted as 8 spaces.
  let sum = 8 * 0x20;
  sum += writeAscii(buf, at, h.name);
  sum += writeOctal(buf, at + 100, 8, (h.mode & 0o7777) | typeBits);
  sum += writeOctal(buf, at + 108, 8, h.uid);
  sum += writeOctal(buf, at + 116, 8, h.gid);
  sum += writeOctal(buf, at + 124, 12, h.size);
  sum += writeOctal(buf, at + 136, 12, mtime);
  buf[at + 156] = flag.charCodeAt(0);
  sum += buf[at + 156]!;
  sum += writeAscii(buf, at + 157, h.linkname);
  sum += writeAscii(buf, at + 257, 'ustar');
  buf[at + 263] = 0x30;
  buf[at + 264] = 0x30;
  sum += 2 * 0x30;
  sum += writeAscii(buf, at + 265, h.uname);
  sum += writeAscii(buf, at + 297, h.gname);
  sum += writeOctal(buf, at + 329, 8, h.devmajor);
  sum += writeOctal(buf, at + 337, 8, h.devminor);
  writeOctal(buf, at + 148, 7, sum);
  buf[at + 155] = 0x20;
  return true;
}

function encodeHeaderGeneral(h: EncodableHeader, opts: EncodeOptions): Uint8Array {
  const flag = flagFromType(h.type);
  if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
    throw new BerthError('BERTH_INVALID_TAR', `entry type "${flag}" cannot be written directly`, { got: flag });
  }
  if ((flag === '0' || flag === '3' || flag === '4' || flag === '6') && h.name.endsWith('/')) {
    throw new BerthError('BERTH_INVALID_TAR', `name of a non-directory ends with "/"`, { got: h.name });
  }
  const mtime = h.mtime >= 0 ? Math.floor(h.mtime + 0.5) : -Math.floor(-h.mtime + 0.5);
  const records = new Map<string, Uint8Array>();
  let ustar = true;
  const name = encoder.encode(h.name);
  const link = encoder.encode(h.linkname);

  const checkString = (s: Uint8Array, width: number, key: string, canSplit: boolean): void => {
    if (!isAscii(s) || s.length > width) {
      if (!canSplit || splitUstarPath(s) === undefined) ustar = false;
      records.set(key, s);
    }
  };
  checkString(name, 100, 'path', true);
  checkString(link, 100, 'linkpath', false);
  checkString(encoder.encode(h.uname), 32, 'uname', false);
  checkString(encoder.encode(h.gname), 32, 'gname', false);
  const checkNumber = (x: number, width: number, key: string): void => {
    if (!fitsInOctal(width, x)) {
      ustar = false;
      records.set(key, encoder.encode(String(x)));
    }
  };
  checkNumber(h.uid, 8, 'uid');
  checkNumber(h.gid, 8, 'gid');
  checkNumber(h.size, 12, 'size');
  checkNumber(mtime, 12, 'mtime');
  for (const [k, v] of [['devmajor', h.devmajor], ['devminor', h.devminor]] as const) {
    if (!fitsInOctal(8, v)) throw new BerthError('BERTH_INVALID_TAR', `${k} ${v} does not fit in a tar header`, { got: v });
  }
  for (const [k, v] of Object.entries(h.xattrs)) records.set(`SCHILY.xattr.${k}`, v);
  for (const [k, v] of Object.entries(h.pax)) {
    if (!records.has(k) && !BASIC_PAX_KEYS.has(k)) records.set(k, encoder.encode(v));
  }
  for (const k of records.keys()) {
    if (k.startsWith('SCHILY.xattr.') || !BASIC_PAX_KEYS.has(k)) ustar = false;
  }

  const typeBits = opts.modeTypeBits === false ? 0 : (TYPE_BITS[flag] ?? 0);
  const block = new Uint8Array(BLOCK_SIZE);
  const fill = (nameField: Uint8Array, linkField: Uint8Array, uname: Uint8Array, gname: Uint8Array): void => {
    putString(block, 0, 100, nameField);
    putOctal(block, 100, 8, (h.mode & 0o7777) | typeBits);
    putOctal(block, 108, 8, h.uid);
    putOctal(block, 116, 8, h.gid);
    putOctal(block, 124, 12, h.size);
    putOctal(block, 136, 12, mtime);
    block[156] = flag.charCodeAt(0);
    putString(block, 157, 100, linkField);
    setUstarMagic(block);
    putString(block, 265, 32, uname);
    putString(block, 297, 32, gname);
    putOctal(block, 329, 8, h.devmajor);
    putOctal(block, 337, 8, h.devminor);
  };

  if (ustar) {
    const split = splitUstarPath(name);
    fill(split?.suffix ?? name, link, encoder.encode(h.uname), encoder.encode(h.gname));
    if (split !== undefined) putString(block, 345, 155, split.prefix);
    setChecksum(block);
    return block;
  }

  // PAX: records sorted bytewise by key, then the main block with ASCII-only, truncated fields.
  const keys = [...records.keys()].sort((a, b) => compareBytes(encoder.encode(a), encoder.encode(b)));
  const data = concat(keys.map((k) => formatPaxRecord(k, records.get(k)!)));
  if (data.length > MAX_EXTENSION_BYTES) {
    throw new BerthError('BERTH_LIMIT', `pax records too large (want at most ${MAX_EXTENSION_BYTES} bytes, got ${data.length})`, {
      want: MAX_EXTENSION_BYTES, got: data.length,
    });
  }
  const slash = h.name.lastIndexOf('/');
  const paxName = slash < 0 ? `PaxHeaders.0/${h.name}` : `${h.name.slice(0, slash + 1)}PaxHeaders.0/${h.name.slice(slash + 1)}`;
  let xName = toAscii(encoder.encode(cleanJoin(paxName))).subarray(0, 100);
  let end = xName.length;
  while (end > 0 && xName[end - 1] === 0x2f) end--;
  xName = xName.subarray(0, end);
  const x = new Uint8Array(BLOCK_SIZE);
  putString(x, 0, 100, xName);
  putOctal(x, 100, 8, 0);
  putOctal(x, 108, 8, 0);
  putOctal(x, 116, 8, 0);
  putOctal(x, 124, 12, data.length);
  putOctal(x, 136, 12, 0);
  x[156] = 0x78;
  setUstarMagic(x);
  setChecksum(x);

  fill(toAscii(name), toAscii(link), toAscii(encoder.encode(h.uname)), toAscii(encoder.encode(h.gname)));
  setChecksum(block);
  return concat([x, data, zeroPadding(data.length), block]);
}

/** Go's path.Join for the PAX header name: clean `//` and `.` components (no `..` handling needed). */
function cleanJoin(p: string): string {
  const out = p.split('/').filter((s) => s !== '' && s !== '.').join('/');
  return p.startsWith('/') ? `/${out}` : out === '' ? '.' : out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function paddingLength(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}
