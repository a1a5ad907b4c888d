/**
 * Gathers a stream of many small chunks (a layer rebuilt from tar-split: 512-byte headers and
 * tiny files) into large ones, so each downstream step (hashing, a file write through the thread
 * pool) runs once per megabyte instead of once per chunk.
 */
import type { ByteStream } from './stream.js';

/** Default size of a gathered chunk. */
export const COALESCE_BYTES = 1 << 20;

/**
 * Re-chunks `src` into pieces of about `size` bytes. Chunks of a quarter of `size` or more pass
 * through uncopied (after what is pending), so large files are not copied twice. Every piece
 * yielded is a fresh buffer the consumer may keep. Bytes and order are unchanged.
 */
export async function* coalesce(src: ByteStream, size = COALESCE_BYTES): ByteStream {
  const direct = Math.max(1, size >>> 2);
  let buf: Uint8Array | undefined;
  let len = 0;
  for await (const chunk of src) {
    const n = chunk.length;
    if (n === 0) continue;
    if (n >= direct) {
      if (len > 0) {
        yield buf!.subarray(0, len);
        buf = undefined;
        len = 0;
      }
      yield chunk;
      continue;
    }
    if (buf !== undefined && len + n > buf.length) {
      yield buf.subarray(0, len);
      buf = undefined;
      len = 0;
    }
    // allocUnsafe: only the written prefix is ever handed out
    buf ??= Buffer.allocUnsafe(size);
    buf.set(chunk, len);
    len += n;
  }
  if (len > 0) yield buf!.subarray(0, len);
}
