/**
 * CRC-64/ISO (polynomial 0x1B reflected = 0xD800000000000000, init and final XOR all ones), the
 * checksum Go's hash/crc64 computes with crc64.MakeTable(crc64.ISO) and tar-split stores per file.
 *
 * Two implementations of slicing-by-8 over the same tables: JavaScript on two 32-bit halves (two
 * table lookups per byte; BigInt would be far slower), and a tiny WebAssembly function on i64
 * (one lookup per byte, about twice as fast), assembled below from its instructions so no build
 * tool is involved. Inputs of at least WASM_MIN bytes go to WebAssembly when it is available.
 */

// Two flat Int32Array tables (16 × 256 entries for the high and low halves; JavaScript uses the
// first 8, WebAssembly all 16): signed 32-bit values stay small integers in V8, and one flat
// array indexes faster than several.
const HI = new Int32Array(16 * 256);
const LO = new Int32Array(16 * 256);
for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let k = 0; k < 8; k++) {
    const bit = lo & 1;
    lo = (lo >>> 1) | ((hi & 1) << 31);
    hi = hi >>> 1;
    if (bit) hi ^= 0xd8000000 | 0;
  }
  HI[i] = hi;
  LO[i] = lo;
}
for (let t = 1; t < 16; t++) {
  for (let i = 0; i < 256; i++) {
    // table[t][i] = table[0][table[t-1][i] & 0xff] ^ (table[t-1][i] >> 8)
    const ph = HI[(t - 1) * 256 + i]!;
    const pl = LO[(t - 1) * 256 + i]!;
    const idx = pl & 0xff;
    HI[t * 256 + i] = HI[idx]! ^ (ph >>> 8);
    LO[t * 256 + i] = LO[idx]! ^ ((pl >>> 8) | ((ph & 0xff) << 24));
  }
}

// ---------------------------------------------------------------------------------------------
// WebAssembly, slicing-by-16: memory holds the tables (16 × 256 i64, little-endian) at 0, the
// running CRC at STATE and the bytes to checksum at BUF; `update(n)` folds BUF[0, n) into STATE.
// Two words per step: the second word's lookups do not wait for the CRC.

const STATE = 32768;
const BUF = 32832;
/** Bytes copied into the module per call. */
const PIECE = 64 << 10;
/** Shorter inputs stay in JavaScript (the copy and the call cost more than they save). */
export const WASM_MIN = 1024;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** The module's bytes. Locals: 0 n, 1 p, 2 end, 3 end16 (i32); 4 crc, 5 w, 6 v (i64). */
function crcModule(): Uint8Array {
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const i32 = (v: number) => [0x41, ...sleb(v)];
  const i64 = (v: number) => [0x42, ...sleb(v)];
  const load64 = (offset: number) => [0x29, 0x03, ...uleb(offset)];
  const [ADD, AND, SHL, XOR32, GE_U, WRAP, XOR64, SHR_U64] = [0x6a, 0x71, 0x74, 0x73, 0x4f, 0xa7, 0x85, 0x88];
  const body: number[] = [
    ...i32(STATE), ...load64(0), ...set(4),
    ...i32(BUF), ...set(1),
    ...get(1), ...get(0), ADD, ...set(2),
    ...get(1), ...get(0), ...i32(-16), AND, ADD, ...set(3),
    // sixteen bytes at a time: byte j of (first word ^ crc) indexes table 15 - j, byte j of the
    // second word table 7 - j
    0x02, 0x40, 0x03, 0x40,
    ...get(1), ...get(3), GE_U, 0x0d, 1,
    ...get(1), 0x29, 0x00, 0x00, ...get(4), XOR64, ...set(5),
    ...get(1), 0x29, 0x00, 0x08, ...set(6),
    ...get(5), WRAP, ...i32(3), SHL, ...i32(0x7f8), AND, ...load64(15 * 2048),
  ];
  for (let j = 1; j < 8; j++) body.push(...get(5), ...i64(8 * j - 3), SHR_U64, WRAP, ...i32(0x7f8), AND, ...load64((15 - j) * 2048), XOR64);
  body.push(...get(6), WRAP, ...i32(3), SHL, ...i32(0x7f8), AND, ...load64(7 * 2048), XOR64);
  for (let j = 1; j < 8; j++) body.push(...get(6), ...i64(8 * j - 3), SHR_U64, WRAP, ...i32(0x7f8), AND, ...load64((7 - j) * 2048), XOR64);
  body.push(
    ...set(4), ...get(1), ...i32(16), ADD, ...set(1), 0x0c, 0, 0x0b, 0x0b,
    // the tail a byte at a time: crc = T0[(crc ^ b) & 0xff] ^ (crc >> 8)
    0x02, 0x40, 0x03, 0x40,
    ...get(1), ...get(2), GE_U, 0x0d, 1,
    ...get(4), WRAP, ...get(1), 0x2d, 0x00, 0x00, XOR32, ...i32(0xff), AND, ...i32(3), SHL, ...load64(0),
    ...get(4), ...i64(8), SHR_U64, XOR64, ...set(4),
    ...get(1), ...i32(1), ADD, ...set(1), 0x0c, 0, 0x0b, 0x0b,
    ...i32(STATE), ...get(4), 0x37, 0x03, 0x00,
    0x0b,
  );
  const code = [0x02, 0x03, 0x7f, 0x03, 0x7e, ...body];
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const name = (s: string) => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 1, 0x7f, 0]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0x00, 2]),
    ...section(7, [2, ...name('update'), 0x00, 0, ...name('mem'), 0x02, 0]),
    ...section(10, [1, ...uleb(code.length), ...code]),
  ]);
}

interface Wasm {
  readonly update: (n: number) => void;
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
}

/** The part of the WebAssembly global used here (the project's type libraries do not declare it). */
interface WebAssemblyApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: Record<string, unknown> };
}

function loadWasm(): Wasm | undefined {
  const api = (globalThis as { WebAssembly?: WebAssemblyApi }).WebAssembly;
  if (api === undefined) return undefined;
  try {
    const instance = new api.Instance(new api.Module(crcModule()));
    const mem = instance.exports.mem as { readonly buffer: ArrayBuffer };
    const words = new Int32Array(mem.buffer);
    for (let i = 0; i < 16 * 256; i++) {
      words[i * 2] = LO[i]!;
      words[i * 2 + 1] = HI[i]!;
    }
    return { update: instance.exports.update as (n: number) => void, bytes: new Uint8Array(mem.buffer), words };
  } catch {
    return undefined;
  }
}

const wasm = loadWasm();

/** Which implementation long inputs use (for tests and measurements). */
export const crc64Engine: 'wasm' | 'js' = wasm === undefined ? 'js' : 'wasm';

let viewOf: ArrayBufferLike | undefined;
let view: Int32Array<ArrayBufferLike> = new Int32Array(0);

/** Incremental CRC-64/ISO as tar-split stores it. */
export class Crc64 {
  private hi = -1;
  private lo = -1;

  update(bytes: Uint8Array): void {
    if (wasm !== undefined && bytes.length >= WASM_MIN) this.updateWasm(bytes, wasm);
    else this.updateJs(bytes);
  }

  private updateWasm(bytes: Uint8Array, w: Wasm): void {
    const words = w.words;
    words[STATE >>> 2] = this.lo;
    words[(STATE >>> 2) + 1] = this.hi;
    for (let at = 0; at < bytes.length; at += PIECE) {
      const end = Math.min(bytes.length, at + PIECE);
      w.bytes.set(bytes.subarray(at, end), BUF);
      w.update(end - at);
    }
    this.lo = words[STATE >>> 2]!;
    this.hi = words[(STATE >>> 2) + 1]!;
  }

  /** The JavaScript slicing-by-8 (short inputs, or no WebAssembly). */
  updateJs(bytes: Uint8Array): void {
    let hi = this.hi;
    let lo = this.lo;
    let i = 0;
    const n = bytes.length;
    // Bytes up to a 4-byte boundary one at a time, then 8 at a time through a little-endian word
    // view (every platform Node runs on is little-endian), then the tail.
    for (; i < n && ((bytes.byteOffset + i) & 3) !== 0; i++) {
      const idx = (lo ^ bytes[i]!) & 0xff;
      lo = ((lo >>> 8) | ((hi & 0xff) << 24)) ^ LO[idx]!;
      hi = (hi >>> 8) ^ HI[idx]!;
    }
    const words = ((n - i) >>> 3) << 1;
    if (words > 0) {
      // One word view per underlying buffer, kept: tar bodies are many small slices of one chunk.
      if (viewOf !== bytes.buffer) {
        viewOf = bytes.buffer;
        view = new Int32Array(bytes.buffer, 0, bytes.buffer.byteLength >>> 2);
      }
      const w = view;
      const first = (bytes.byteOffset + i) >>> 2;
      for (let k = first, end = first + words; k < end; k += 2) {
        const a = lo ^ w[k]!;
        const b = hi ^ w[k + 1]!;
        hi = HI[1792 + (a & 0xff)]! ^ HI[1536 + ((a >>> 8) & 0xff)]! ^ HI[1280 + ((a >>> 16) & 0xff)]! ^ HI[1024 + (a >>> 24)]! ^
          HI[768 + (b & 0xff)]! ^ HI[512 + ((b >>> 8) & 0xff)]! ^ HI[256 + ((b >>> 16) & 0xff)]! ^ HI[b >>> 24]!;
        lo = LO[1792 + (a & 0xff)]! ^ LO[1536 + ((a >>> 8) & 0xff)]! ^ LO[1280 + ((a >>> 16) & 0xff)]! ^ LO[1024 + (a >>> 24)]! ^
          LO[768 + (b & 0xff)]! ^ LO[512 + ((b >>> 8) & 0xff)]! ^ LO[256 + ((b >>> 16) & 0xff)]! ^ LO[b >>> 24]!;
      }
      i += words * 4;
    }
    for (; i < n; i++) {
      const idx = (lo ^ bytes[i]!) & 0xff;
      lo = ((lo >>> 8) | ((hi & 0xff) << 24)) ^ LO[idx]!;
      hi = (hi >>> 8) ^ HI[idx]!;
    }
    this.hi = hi;
    this.lo = lo;
  }

  /** Writes the 8 checksum bytes, big-endian, at out[0..8). */
  digestInto(out: Buffer): void {
    out.writeInt32BE(~this.hi, 0);
    out.writeInt32BE(~this.lo, 4);
  }

  /** The 8 checksum bytes, big-endian (as tar-split stores it). */
  digest(): Uint8Array {
    const out = new Uint8Array(8);
    const v = new DataView(out.buffer);
    v.setInt32(0, ~this.hi);
    v.setInt32(4, ~this.lo);
    return out;
  }
}

/** CRC-64/ISO of bytes, big-endian, as tar-split stores it. */
export function crc64(bytes: Uint8Array): Uint8Array {
  const c = new Crc64();
  c.update(bytes);
  return c.digest();
}
