/**
 * Compression codecs for layer bytes: identity, gzip (node:zlib) and zstd (the zstd-napi native
 * binding; Node 20 has no zstd). Everything streams: memory stays at a few fixed-size buffers
 * whatever the layer size, and a slow consumer slows the producer (pull-based generators).
 */
import { pipeline } from 'node:stream';
import { Readable, type Transform } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import type Binding from 'zstd-napi/binding.js';
import { BerthError, isBerthError } from '../core/errors.js';
import { gzipBlocks } from './gzip-blocks.js';
import { DECOMPRESSION_SLACK_BYTES, limits } from './limits.js';
import { peek, type ByteStream } from './stream.js';

// The native zstd binding loads on first zstd use: most commands never touch zstd, and loading
// the addon costs ~10 ms of every start-up.
const requireNative = createRequire(import.meta.url);
let zstdBinding: typeof Binding | undefined;
function zstd(): typeof Binding {
  return (zstdBinding ??= requireNative('zstd-napi/binding.js') as typeof Binding);
}

/** The compressions berth reads and writes. */
export type Compression = 'none' | 'gzip' | 'zstd';

/** What magic bytes can tell: a supported compression, or a recognised one berth does not support. */
export type SniffedCompression = Compression | 'xz' | 'bzip2' | 'lz4';

export const COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'zstd'];

export interface DecompressOptions {
  /** Fail with BERTH_LIMIT once more than this many bytes come out (decompression bombs). */
  readonly maxBytes?: number;
  /**
   * Fail with BERTH_LIMIT once the output exceeds this many times the compressed input read so
   * far, plus DECOMPRESSION_SLACK_BYTES (1 MiB). Default limits().maxRatio (1000); not applied to
   * 'none'.
   */
  readonly maxRatio?: number;
  /** Names the input in errors, e.g. `layer sha256:ab12…`. Defaults to "stream". */
  readonly what?: string;
  readonly signal?: AbortSignal;
}

export interface CompressOptions {
  /** gzip: 0–9 (default 6, as gzip(1)); zstd: 1–22 (default 3, as zstd(1)). Others are BERTH_USAGE. */
  readonly level?: number;
  /**
   * Compress on several threads: gzip in 1 MiB blocks (gzip-blocks.ts), zstd with libzstd's
   * worker threads (ZSTD_WORKERS). Deterministic, but not the same bytes as the single-threaded
   * default, so callers opt in where digests are new anyway.
   */
  readonly parallel?: boolean;
  readonly signal?: AbortSignal;
}

/** Bytes needed to recognise every format sniffCompression knows. */
export const SNIFF_BYTES = 6;

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const LZ4_MAGIC = [0x04, 0x22, 0x4d, 0x18];

function startsWith(head: Uint8Array, magic: readonly number[]): boolean {
  if (head.length < magic.length) return false;
  return magic.every((b, i) => head[i] === b);
}

/**
 * Names the compression of a stream from its first bytes (SNIFF_BYTES are enough). Anything
 * without a known magic number — a tar, JSON, an empty stream — is 'none'.
 */
export function sniffCompression(head: Uint8Array): SniffedCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (startsWith(head, ZSTD_MAGIC)) return 'zstd';
  // A zstd skippable frame (magic 0x184D2A50–5F, little-endian) may lead a zstd stream.
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return 'zstd';
  if (startsWith(head, XZ_MAGIC)) return 'xz';
  if (head.length >= 4 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68 && head[3]! >= 0x31 && head[3]! <= 0x39) return 'bzip2';
  if (startsWith(head, LZ4_MAGIC)) return 'lz4';
  return 'none';
}

/**
 * Sniffs the compression of `src` without losing bytes: the returned stream yields everything
 * from byte 0. A recognised but unsupported format (xz, bzip2, lz4) is BERTH_UNSUPPORTED.
 */
export async function detectCompression(src: ByteStream, opts: { what?: string } = {}): Promise<{ compression: Compression; stream: ByteStream }> {
  const { head, stream } = await peek(src, SNIFF_BYTES);
  const sniffed = sniffCompression(head);
  if (sniffed === 'xz' || sniffed === 'bzip2' || sniffed === 'lz4') {
    const what = opts.what ?? 'stream';
    // Release the source (an open file, a socket) since nobody will read it.
    await stream[Symbol.asyncIterator]().return?.();
    throw new BerthError('BERTH_UNSUPPORTED', `detecting compression of ${what}: ${sniffed} is not supported (berth reads gzip and zstd)`, {
      subject: what, got: sniffed,
    });
  }
  return { compression: sniffed, stream };
}

/** Decompresses `src` as it streams. Corrupt or truncated input is BERTH_COMPRESSION naming `what`. */
export function decompress(src: ByteStream, c: Compression, opts: DecompressOptions = {}): ByteStream {
  const what = opts.what ?? 'stream';
  let out: ByteStream;
  const ratio = { max: opts.maxRatio ?? limits().maxRatio, in: 0 };
  switch (c) {
    case 'none':
      out = src;
      break;
    case 'gzip':
      out = gunzipStream(countInput(src, ratio), what);
      break;
    case 'zstd':
      out = zstdDecompressStream(countInput(src, ratio), what);
      break;
    default:
      throw unknownCompression(c);
  }
  return guard(out, opts.maxBytes, what, opts.signal, c === 'none' ? undefined : ratio);
}

/** Counts the compressed bytes read, for the ratio check. */
async function* countInput(src: ByteStream, ratio: { in: number }): ByteStream {
  for await (const chunk of src) {
    ratio.in += chunk.length;
    yield chunk;
  }
}

/** Compresses `src` as it streams. */
export function compress(src: ByteStream, c: Compression, opts: CompressOptions = {}): ByteStream {
  switch (c) {
    case 'none':
      return guard(src, undefined, 'stream', opts.signal);
    case 'gzip': {
      const level = checkLevel('gzip', opts.level ?? 6, 0, 9);
      if (opts.parallel === true) return guard(gzipBlocks(src, { level }), undefined, 'stream', opts.signal);
      // 256 KiB output chunks instead of 16 KiB: fewer writes and digest updates downstream.
      return guard(throughTransform(src, createGzip({ level, chunkSize: 256 << 10 }), 'gzip', 'compressing', 'stream'), undefined, 'stream', opts.signal);
    }
    case 'zstd': {
      const level = checkLevel('zstd', opts.level ?? 3, 1, zstd().maxCLevel());
      return guard(zstdCompressStream(src, level, opts.parallel === true ? zstdWorkers() : 0), undefined, 'stream', opts.signal);
    }
    default:
      throw unknownCompression(c);
  }
}

function checkLevel(format: string, level: number, min: number, max: number): number {
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new BerthError('BERTH_USAGE', `compressing with ${format}: bad level ${level} (want an integer ${min}…${max})`, { want: `${min}…${max}`, got: level });
  }
  return level;
}

function unknownCompression(c: unknown): BerthError {
  return new BerthError('BERTH_UNSUPPORTED', `choosing a codec: unknown compression ${JSON.stringify(c)} (want none, gzip or zstd)`, { got: c });
}

/** Enforces the output cap, the decompression ratio and the abort signal on a stream. */
async function* guard(src: ByteStream, maxBytes: number | undefined, what: string, signal: AbortSignal | undefined, ratio?: { readonly max: number; readonly in: number }): ByteStream {
  let total = 0;
  checkAbort(signal, what);
  for await (const chunk of src) {
    checkAbort(signal, what);
    total += chunk.length;
    if (maxBytes !== undefined && total > maxBytes) {
      throw new BerthError('BERTH_LIMIT', `decompressing ${what}: decompressed more than ${maxBytes} bytes`, {
        subject: what, want: maxBytes, got: total,
      });
    }
    if (ratio !== undefined && total > ratio.max * ratio.in + DECOMPRESSION_SLACK_BYTES) {
      throw new BerthError('BERTH_LIMIT', `decompressing ${what}: ${total} bytes out of ${ratio.in} compressed is over the ratio limit of ${ratio.max}:1 (a decompression bomb? --max-ratio)`, {
        subject: what, want: ratio.max, got: ratio.in === 0 ? total : total / ratio.in,
      });
    }
    yield chunk;
  }
}

function checkAbort(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) {
    throw new BerthError('BERTH_ABORTED', `processing ${what}: aborted`, { subject: what, cause: signal.reason });
  }
}

/**
 * gunzip. Concatenated members decode as one stream (as gzip(1) does); bytes after the last member
 * that are not another member are an error. Zero bytes after the last member are tolerated as
 * padding, as gzip(1) and Node's zlib do.
 */
function gunzipStream(src: ByteStream, what: string): ByteStream {
  // 1 MiB output buffers instead of zlib's 16 KiB: far fewer chunks through every stage downstream
  // (digests, tar reader, writes); 1 GiB gunzip + sha256 took 2.8 instead of 4.6 CPU s at 256 KiB,
  // and 1 MiB saves ~4% more of verify and oci -> docker-archive (debian).
  return throughTransform(src, createGunzip({ chunkSize: GUNZIP_CHUNK }), 'gzip', 'decompressing', what);
}

const GUNZIP_CHUNK = 1 << 20;

/** Runs a Node Transform over a ByteStream with backpressure; errors become BERTH_COMPRESSION. */
async function* throughTransform(src: ByteStream, t: Transform, format: string, verb: string, what: string): ByteStream {
  let sourceError: unknown;
  // Node's zlib pauses mid-chunk when its readable side is full, so even one huge input chunk
  // (a gzip bomb) buffers only ~highWaterMark of output while the consumer is slow.
  const input = Readable.from(tagErrors(src, (e) => { sourceError = e; }), { objectMode: false });
  const out = pipeline(input, t, () => { /* errors surface through the iterator below */ });
  try {
    for await (const chunk of out as AsyncIterable<Buffer>) {
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    }
  } catch (err) {
    if (sourceError !== undefined) throw sourceError;
    if (isBerthError(err)) throw err;
    throw codecError(err, format, verb, what);
  } finally {
    t.destroy();
    input.destroy();
  }
  if (sourceError !== undefined) throw sourceError;
}

/** Remembers an error raised by the source itself, so it is not mistaken for corrupt data. */
async function* tagErrors(src: ByteStream, onError: (e: unknown) => void): ByteStream {
  const it = src[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await it.next();
      } catch (err) {
        // Only errors from reading the source count; an error the stream machinery throws in at
        // the yield below (the codec failed) must not be blamed on the source.
        done = true;
        onError(err);
        throw err;
      }
      if (r.done) {
        done = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!done) await it.return?.();
  }
}

function codecError(err: unknown, format: string, verb: string, what: string): BerthError {
  const code = (err as { code?: unknown } | null)?.code;
  let detail = err instanceof Error ? err.message : String(err);
  if (code === 'Z_BUF_ERROR' || /unexpected end/i.test(detail)) detail = `truncated input (${detail})`;
  else if (code === 'Z_DATA_ERROR' || code === 'ERR_ZSTD') detail = `corrupt ${format} data (${detail})`;
  return new BerthError('BERTH_COMPRESSION', `${verb} ${what} (${format}): ${detail}`, { subject: what, cause: err });
}


/**
 * zstd decompression driven by the consumer: each call produces at most one output buffer and
 * yields it before doing more, so even a zstd bomb (RLE blocks reach ~30000×) costs one buffer.
 * Concatenated frames and skippable frames are read; a stream ending inside a frame is an error.
 */
async function* zstdDecompressStream(src: ByteStream, what: string): ByteStream {
  const dctx = new (zstd().DCtx)();
  let inFrame = false;
  let sawInput = false;
  for await (const chunk of src) {
    let input = chunk;
    if (input.length > 0) sawInput = true;
    while (input.length > 0) {
      const dst = Buffer.allocUnsafe(zstd().dStreamOutSize());
      let ret: number;
      let produced: number;
      let consumed: number;
      try {
        [ret, produced, consumed] = dctx.decompressStream(dst, input);
      } catch (err) {
        throw codecError(Object.assign(err as Error, { code: 'ERR_ZSTD' }), 'zstd', 'decompressing', what);
      }
      input = input.subarray(consumed);
      if (produced > 0 || consumed > 0) inFrame = ret !== 0;
      if (produced > 0) yield new Uint8Array(dst.buffer, dst.byteOffset, produced);
      // The decoder may still hold output for input it has already consumed: drain it.
      if (input.length === 0 && produced === dst.length) {
        yield* zstdFlush(dctx, what, (r) => { inFrame = r !== 0; });
      }
    }
  }
  if (inFrame || !sawInput) {
    throw new BerthError('BERTH_COMPRESSION', `decompressing ${what} (zstd): truncated input (${sawInput ? 'the stream ends inside a frame' : 'no data'})`, { subject: what });
  }
}

async function* zstdFlush(dctx: Binding.DCtx, what: string, setRet: (r: number) => void): ByteStream {
  const empty = new Uint8Array(0);
  for (;;) {
    const dst = Buffer.allocUnsafe(zstd().dStreamOutSize());
    let ret: number;
    let produced: number;
    try {
      [ret, produced] = dctx.decompressStream(dst, empty);
    } catch (err) {
      throw codecError(Object.assign(err as Error, { code: 'ERR_ZSTD' }), 'zstd', 'decompressing', what);
    }
    // A call that moves nothing reports the next frame's header size, not the state of this one.
    if (produced > 0) setRet(ret);
    if (produced > 0) yield new Uint8Array(dst.buffer, dst.byteOffset, produced);
    if (produced < dst.length) return;
  }
}


/**
 * libzstd worker threads for parallel zstd. Any count >= 1 gives the same bytes (jobs are cut at
 * a size set by the parameters, not by the thread count; codec.test.ts checks it), so this
 * follows the machine; 0, the single-threaded mode, gives other bytes.
 */
function zstdWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/**
 * Job size and overlap (a quarter of the window) for parallel zstd at levels 1–3. libzstd's
 * default at level 3 is 8 MiB jobs, whose buffers cost ~90 MiB per stream against ~35 MiB
 * single-threaded, and copy runs three streams at once; 2 MiB jobs cost ~50 MiB and ~10% more
 * CPU than one thread, for an output within 0.3% of it. Higher levels keep libzstd's defaults: there
 * reloading the overlap is dear and the caller chose ratio over speed.
 */
const ZSTD_FAST_JOB = 2 << 20;
const ZSTD_FAST_OVERLAP_LOG = 7;
const ZSTD_FAST_MAX_LEVEL = 3;

/**
 * With workers > 0 libzstd compresses on its own threads: compressStream2 copies the input into
 * its job buffers and returns, blocking only while every job buffer is full.
 */
async function* zstdCompressStream(src: ByteStream, level: number, workers: number): ByteStream {
  const cctx = new (zstd().CCtx)();
  const P = zstd().CParameter;
  cctx.setParameter(P.compressionLevel, level);
  if (workers > 0) {
    cctx.setParameter(P.nbWorkers, workers);
    if (level <= ZSTD_FAST_MAX_LEVEL) {
      cctx.setParameter(P.jobSize, ZSTD_FAST_JOB);
      cctx.setParameter(P.overlapLog, ZSTD_FAST_OVERLAP_LOG);
    }
  }
  for await (const chunk of src) {
    let input = chunk;
    while (input.length > 0) {
      const dst = Buffer.allocUnsafe(zstd().cStreamOutSize());
      const [, produced, consumed] = cctx.compressStream2(dst, input, zstd().EndDirective.continue);
      input = input.subarray(consumed);
      if (produced > 0) yield new Uint8Array(dst.buffer, dst.byteOffset, produced);
    }
  }
  const empty = new Uint8Array(0);
  for (;;) {
    const dst = Buffer.allocUnsafe(zstd().cStreamOutSize());
    const [remaining, produced] = cctx.compressStream2(dst, empty, zstd().EndDirective.end);
    if (produced > 0) yield new Uint8Array(dst.buffer, dst.byteOffset, produced);
    if (remaining === 0) return;
  }
}
