/**
 * Files as ByteStreams that open on first read. A Node read stream opens its file at once and,
 * given an abort signal, errors when it fires; a stream nobody iterates then has no error
 * listener and the error crashes the process (copy aborts leave unread layer streams behind).
 *
 * Each read goes into a fresh buffer unless the consumer handed one back with recycleChunk:
 * a fresh 1 MiB buffer per read made a 400 MB load run ~15 full GCs (external memory), about a
 * tenth of its CPU. A chunk not handed back is never written again, so a consumer that keeps
 * chunks (or a slow one) sees no reuse.
 */
import { open } from 'node:fs/promises';
import type { ByteStream } from './stream.js';

export interface FileStreamOptions {
  /** First byte (default 0). */
  readonly start?: number;
  /** Last byte, inclusive (default: the end of the file). */
  readonly end?: number;
  /** Read size (default 1 MiB). */
  readonly highWaterMark?: number;
  readonly signal?: AbortSignal;
}

/** The buffers of a stream's chunks that are out, by their memory: what recycleChunk may return to its stream. */
const lent = new WeakMap<ArrayBufferLike, { readonly buf: Buffer; readonly free: Buffer[] }>();

/**
 * Hands a chunk read from a fileStream back for its next read. Only for the last holder of the
 * chunk: nothing (no stage it passed through) may read it afterwards. Anything else is ignored,
 * and so is a chunk handed back twice.
 */
export function recycleChunk(chunk: Uint8Array): void {
  const l = lent.get(chunk.buffer);
  if (l === undefined) return;
  lent.delete(chunk.buffer);
  if (l.free.length < 2) l.free.push(l.buf);
}

function abortError(signal: AbortSignal): Error {
  // as a Node read stream fails on abort (errors.ts maps the code to BERTH_ABORTED)
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

export async function* fileStream(file: string, opts: FileStreamOptions = {}): ByteStream {
  const signal = opts.signal;
  const check = (): void => {
    if (signal?.aborted === true) throw abortError(signal);
  };
  check();
  const size = opts.highWaterMark ?? 1 << 20;
  const end = opts.end ?? Infinity;
  let pos = opts.start ?? 0;
  const free: Buffer[] = [];
  const fh = await open(file, 'r');
  try {
    while (pos <= end) {
      // unpooled, so each chunk's memory is its own (Buffer.allocUnsafe may share a slab)
      const buf = free.pop() ?? Buffer.allocUnsafeSlow(size);
      const { bytesRead } = await fh.read(buf, 0, Math.min(size, end - pos + 1), pos);
      check();
      if (bytesRead === 0) break;
      pos += bytesRead;
      lent.set(buf.buffer, { buf, free });
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
