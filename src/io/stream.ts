/**
 * Byte plumbing with no format knowledge. A ByteStream is any async iterable of byte chunks
 * (Node Readables and web streams both qualify); an Opener returns a fresh one from byte 0.
 */
import { BerthError } from '../core/errors.js';

export type ByteStream = AsyncIterable<Uint8Array>;

export interface IoOptions {
  readonly signal?: AbortSignal;
}

export type Opener = (opts?: IoOptions) => Promise<ByteStream>;

/** Reads a whole stream into memory, refusing more than `maxBytes` (small JSON blobs only). */
export async function toBytes(src: ByteStream, maxBytes = Number.MAX_SAFE_INTEGER, what = 'stream'): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of src) {
    total += chunk.length;
    if (total > maxBytes) {
      throw new BerthError('BERTH_TOO_LARGE', `reading ${what}: more than ${maxBytes} bytes (the limit for this kind of object)`, {
        subject: what, want: maxBytes, got: total,
      });
    }
    chunks.push(chunk);
  }
  return concatBytes(chunks, total);
}

export function concatBytes(chunks: readonly Uint8Array[], total?: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total ?? chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export async function* fromBytes(bytes: Uint8Array): ByteStream {
  if (bytes.length > 0) yield bytes;
}

/** Drains a stream, discarding its bytes (still runs any verification wrapped around it). */
export async function drain(src: ByteStream): Promise<number> {
  let n = 0;
  for await (const chunk of src) n += chunk.length;
  return n;
}

/**
 * Peeks at the first `n` bytes without losing them: returns those bytes (fewer at end of stream)
 * and a stream that yields everything from byte 0.
 */
export async function peek(src: ByteStream, n: number): Promise<{ head: Uint8Array; stream: ByteStream }> {
  const it = src[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    taken.push(r.value);
    have += r.value.length;
  }
  const head = concatBytes(taken, have).subarray(0, n);
  async function* rest(): ByteStream {
    for (const c of taken) yield c;
    if (done) return;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
  }
  return { head, stream: rest() };
}
