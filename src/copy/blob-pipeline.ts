/**
 * Copying one blob, as a chain of streaming stages: read from the source → verify size and digest
 * → count progress → (when the compression changes) detect the real compression → decompress →
 * verify the diff_id → compress → put at the destination, which verifies again or computes the
 * new digest. Memory stays at a few chunk buffers whatever the blob size; nothing is buffered whole.
 */
import type { Descriptor } from '../core/descriptor.js';
import { shortDigest, type Digest } from '../core/digest.js';
import { withContext } from '../core/errors.js';
import type { LayerCompression } from '../core/media-types.js';
import { openVerified, type BlobSource } from '../content/store.js';
import { compress, decompress, detectCompression } from '../io/codec.js';
import type { ByteStream } from '../io/stream.js';
import { verifyStream } from '../io/verify.js';
import type { ImageDestination } from '../transports/transport.js';
import type { BlobRole, CopyEventListener } from './events.js';

export interface BlobJob {
  /** The blob at the source. */
  readonly desc: Descriptor;
  readonly role: BlobRole;
  /** Compression of the source bytes (undefined: not a layer, copied as is). */
  readonly from: LayerCompression | undefined;
  /** Compression wanted at the destination. */
  readonly to: LayerCompression | undefined;
  /** Media type of the written blob. */
  readonly mediaType: string;
  /** The expected digest of the uncompressed bytes, checked whenever they are produced. */
  readonly diffId?: Digest;
  /** Names the blob in errors, e.g. `layer 2/4`. */
  readonly label: string;
}

export interface BlobOutcome {
  /** The descriptor of the blob at the destination. */
  readonly written: Descriptor;
  readonly skipped: boolean;
  /** Source bytes read. */
  readonly bytes: number;
}

export interface BlobContext {
  readonly signal: AbortSignal;
  readonly onEvent?: CopyEventListener;
}

function counting(src: ByteStream, desc: Descriptor, ctx: BlobContext, total: { bytes: number }): ByteStream {
  return (async function* () {
    for await (const chunk of src) {
      total.bytes += chunk.length;
      ctx.onEvent?.({ type: 'blob-progress', desc, bytes: total.bytes });
      yield chunk;
    }
  })();
}

/** Copies one blob; a blob already at the destination is skipped when its bytes would not change. */
export async function copyBlob(src: BlobSource, dst: ImageDestination, job: BlobJob, ctx: BlobContext): Promise<BlobOutcome> {
  const { desc } = job;
  const io = { signal: ctx.signal };
  const what = `${job.label} ${shortDigest(desc.digest)}`;
  const recompress = job.to !== undefined && job.to !== job.from;
  try {
    if (!recompress) {
      const written = { ...desc, mediaType: job.mediaType };
      if (await dst.has(desc, io)) {
        ctx.onEvent?.({ type: 'blob-skip', desc, reason: 'exists' });
        return { written, skipped: true, bytes: 0 };
      }
      ctx.onEvent?.({ type: 'blob-start', desc, role: job.role });
      const total = { bytes: 0 };
      const stream = counting(await openVerified(src, desc, { ...io, what }), desc, ctx, total);
      await dst.put(written, stream, io);
      ctx.onEvent?.({ type: 'blob-done', desc, written, bytes: total.bytes });
      return { written, skipped: false, bytes: total.bytes };
    }
    ctx.onEvent?.({ type: 'blob-start', desc, role: job.role });
    const total = { bytes: 0 };
    const raw = counting(await openVerified(src, desc, { ...io, what }), desc, ctx, total);
    // The media type may lie (a docker-archive's synthesised manifest says gzip for plain tars):
    // the bytes decide how to decompress.
    const { compression, stream } = await detectCompression(raw, { what });
    let plain = decompress(stream, compression, { what, signal: ctx.signal });
    if (job.diffId !== undefined) plain = verifyStream(plain, { digest: job.diffId, what: `uncompressed ${what} (diff_id)` });
    const out = compress(plain, job.to!, { signal: ctx.signal });
    const written = await dst.putComputed(job.mediaType, out, io);
    ctx.onEvent?.({ type: 'blob-done', desc, written, bytes: total.bytes });
    return { written, skipped: false, bytes: total.bytes };
  } catch (err) {
    throw withContext(err, `copying ${what}`);
  }
}
