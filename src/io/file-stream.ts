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

/**
 * Marks a chunk's memory as lent by a stream: what recycleChunk may return to it. A property on
 * the ArrayBuffer itself, not a WeakMap entry: ephemerons kept every read buffer alive until a
 * full GC (+35 MB RSS and more CPU on a 200 MB read).
 */
const LEASE = Symbol('berth.fileStream.lease');
interface Lease {
  readonly buf: Buffer;
  readonly free: Buffer[];
}
type Leased = ArrayBufferLike & { [LEASE]?: Lease | undefined };

/**
 * Hands a chunk read from a fileStream back for its next read. Only for the last holder of the
 * chunk: nothing (no stage it passed through) may read it afterwards. Anything else is ignored,
 * and so is a chunk handed back twice.
 */
export function recycleChunk(chunk: Uint8Array): void {
  const memory = chunk.buffer as Leased;
  const l = memory[LEASE];
  if (l === undefined) return;
  memory[LEASE] = undefined;
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
  // One read ahead: the next chunk is read while the consumer works on this one (as a Node read
  // stream does); it takes a handed-back buffer if there is one, never the chunk still out.
  const readAt = async (at: number): Promise<{ buf: Buffer; n: number }> => {
    // unpooled, so each chunk's memory is its own (Buffer.allocUnsafe may share a slab)
    const buf = free.pop() ?? Buffer.allocUnsafeSlow(size);
    const { bytesRead } = await fh.read(buf, 0, Math.min(size, end - at + 1), at);
    return { buf, n: bytesRead };
  };
  let ahead: Promise<{ buf: Buffer; n: number }> | undefined = pos <= end ? readAt(pos) : undefined;
  try {
    while (ahead !== undefined) {
      const { buf, n } = await ahead;
      ahead = undefined;
      check();
      if (n === 0) break;
      pos += n;
      if (pos <= end) ahead = readAt(pos);
      (buf.buffer as Leased)[LEASE] = { buf, free };
      yield buf.subarray(0, n);
    }
  } finally {
    // a read still in flight finishes before the handle closes (its result is dropped)
    if (ahead !== undefined) await ahead.catch(() => undefined);
    await fh.close();
  }
}
