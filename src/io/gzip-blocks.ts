/**
 * gzip in independent blocks (the pigz scheme), so several cores compress one stream: the input is
 * cut into fixed blocks, each raw-deflated on the libuv thread pool with the 32 KiB before it as
 * dictionary and ended with a sync flush (the last one finished), and the pieces are joined in
 * order under one gzip header and a CRC-32/ISIZE trailer computed here. A block that a cheap sample
 * shows to be incompressible (compressed files in a layer) is written as stored deflate blocks
 * instead, which costs a copy where deflate would spend ~20 ms per MiB to gain nothing. The bytes
 * depend only on the input, the level, memLevel, the block size and that sampling rule, never on
 * how many blocks ran at once, so every machine writes the same digest. Memory: at most
 * `inFlight` blocks (input + output) at a time.
 */
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';
import { availableParallelism } from 'node:os';
import { BerthError } from '../core/errors.js';
import type { ByteStream } from './stream.js';

/** Input bytes per block: big enough that the per-block cost (a fresh deflate state) stays small. */
export const GZIP_BLOCK = 1 << 20;
/** deflate memLevel (1–9); part of what the bytes depend on. */
const MEM_LEVEL = 9;
/** Back-reference window carried into each block. */
const DICT = 32 << 10;
/** Incompressibility test: SAMPLES pieces of SAMPLE_PIECE bytes spread over the block. */
const SAMPLES = 16;
const SAMPLE_PIECE = 2 << 10;
/** Store the block when the sample deflates to more than this fraction of its size (under 3% gained). */
const STORE_RATIO = 0.97;
/** Longest stored deflate block (LEN is 16 bits). */
const STORED_MAX = 0xffff;
/** gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unix (as gzip -n / Node write it). */
const HEADER = Uint8Array.of(0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03);

export interface BlockGzipOptions {
  /** 0–9, checked by the caller. */
  readonly level: number;
  /** Blocks compressing at once; 1 compresses one block after the other (same bytes). Default: cores, at most 4. */
  readonly inFlight?: number;
  readonly blockSize?: number;
}

export function defaultInFlight(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** One block's raw deflate: stored when the sample says deflate would gain almost nothing. */
async function compressBlock(input: Uint8Array, dict: Uint8Array | undefined, level: number, last: boolean): Promise<Uint8Array> {
  if (level > 0 && input.length >= SAMPLES * SAMPLE_PIECE && await incompressible(input)) return storedBlocks(input, last);
  return deflateBlock(input, dict, level, last);
}

/**
 * Whether deflate would gain under 3% on `input`, judged on pieces from across the block: a byte
 * histogram first (integer maths, so every machine decides alike; tens of µs a block) clears typical
 * layer data, and only high-entropy samples are deflated at level 1 to catch repeats.
 */
async function incompressible(input: Uint8Array): Promise<boolean> {
  const sample = new Uint8Array(SAMPLES * SAMPLE_PIECE);
  const step = Math.floor((input.length - SAMPLE_PIECE) / (SAMPLES - 1));
  for (let i = 0; i < SAMPLES; i++) sample.set(input.subarray(i * step, i * step + SAMPLE_PIECE), i * SAMPLE_PIECE);
  if (!highEntropy(sample)) return false;
  const packed = await deflate(sample, { level: 1 });
  return packed.length > sample.length * STORE_RATIO;
}

/**
 * Σ count² over the byte histogram is n²/256 for uniform bytes and grows as the distribution
 * skews; under 1.25× that (Rényi entropy over ~7.7 bits a byte) is what compressed or random data
 * looks like, where text and code sit far above.
 */
function highEntropy(b: Uint8Array): boolean {
  const counts = new Uint32Array(256);
  for (let i = 0; i < b.length; i++) counts[b[i]!]!++;
  let sumSq = 0;
  for (let v = 0; v < 256; v++) sumSq += counts[v]! * counts[v]!;
  return sumSq * 256 * 4 < b.length * b.length * 5;
}

/**
 * `input` as stored deflate blocks (RFC 1951 3.2.4): a header byte (BFINAL on the very last),
 * LEN and its complement, the bytes. Blocks before start byte-aligned (they end in a sync flush
 * or are stored too), so no padding bits are needed.
 */
function storedBlocks(input: Uint8Array, last: boolean): Uint8Array {
  const count = Math.max(1, Math.ceil(input.length / STORED_MAX));
  const out = new Uint8Array(input.length + 5 * count);
  let o = 0;
  for (let i = 0; i < count; i++) {
    const from = i * STORED_MAX;
    const len = Math.min(STORED_MAX, input.length - from);
    out[o] = last && i === count - 1 ? 1 : 0;
    out[o + 1] = len & 0xff;
    out[o + 2] = len >>> 8;
    out[o + 3] = ~len & 0xff;
    out[o + 4] = (~len >>> 8) & 0xff;
    out.set(input.subarray(from, from + len), o + 5);
    o += 5 + len;
  }
  return out;
}

function deflateBlock(input: Uint8Array, dict: Uint8Array | undefined, level: number, last: boolean): Promise<Uint8Array> {
  return deflate(input, {
    level,
    // zlib's largest hash table: at level 4 about 12% less CPU than the default memLevel 8 for
    // 0.4% more bytes (debian layers), still smaller than skopeo's default gzip
    memLevel: MEM_LEVEL,
    chunkSize: 256 << 10,
    finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    ...(dict !== undefined && dict.length > 0 ? { dictionary: dict } : {}),
  });
}

function deflate(input: Uint8Array, opts: ZlibOptions): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    deflateRaw(input, opts, (err, out) => {
      if (err) reject(new BerthError('BERTH_COMPRESSION', `compressing stream (gzip): ${err.message}`, { cause: err }));
      else resolve(new Uint8Array(out.buffer, out.byteOffset, out.length));
    });
  });
}

/** Compresses `src` into one gzip member, blocks deflated in parallel; see the module comment. */
export async function* gzipBlocks(src: ByteStream, opts: BlockGzipOptions): ByteStream {
  const size = opts.blockSize ?? GZIP_BLOCK;
  const inFlight = Math.max(1, opts.inFlight ?? defaultInFlight());
  const queue: Array<Promise<Uint8Array>> = [];
  let crc = 0;
  let total = 0;
  let dict: Uint8Array | undefined;
  let block = new Uint8Array(size);
  let fill = 0;
  // Rejections are observed when the queue is drained; a failing stream must not leave one unhandled.
  const start = (input: Uint8Array, last: boolean): void => {
    crc = crc32(input, crc);
    total += input.length;
    const p = compressBlock(input, dict, opts.level, last);
    p.catch(() => undefined);
    queue.push(p);
    dict = input.length >= DICT ? input.subarray(input.length - DICT) : joinTail(dict, input);
  };
  yield HEADER;
  try {
    for await (const chunk of src) {
      let at = 0;
      while (at < chunk.length) {
        const n = Math.min(size - fill, chunk.length - at);
        block.set(chunk.subarray(at, at + n), fill);
        fill += n;
        at += n;
        if (fill === size) {
          start(block, false);
          block = new Uint8Array(size);
          fill = 0;
          while (queue.length >= inFlight) yield await queue.shift()!;
        }
      }
    }
    start(block.subarray(0, fill), true);
    while (queue.length > 0) yield await queue.shift()!;
  } finally {
    // On an early stop, wait for the blocks still on the thread pool so nothing outlives the stream.
    await Promise.allSettled(queue);
  }
  const trailer = new Uint8Array(8);
  const view = new DataView(trailer.buffer);
  view.setUint32(0, crc >>> 0, true);
  view.setUint32(4, total % 2 ** 32, true);
  yield trailer;
}

/** The last DICT bytes of `prev` followed by `next` (blocks shorter than the window: only the last one). */
function joinTail(prev: Uint8Array | undefined, next: Uint8Array): Uint8Array {
  const keep = prev === undefined ? 0 : Math.min(prev.length, DICT - next.length);
  const out = new Uint8Array(keep + next.length);
  if (keep > 0) out.set(prev!.subarray(prev!.length - keep), 0);
  out.set(next, keep);
  return out;
}
