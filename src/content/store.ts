/**
 * Content-addressed storage contracts. A BlobSource hands out RAW bytes; every read above the
 * transports goes through openVerified()/fetchBytes(), which check size and digest as the bytes
 * stream, so no unverified byte ever reaches a parser or the user.
 */
import type { Descriptor } from '../core/descriptor.js';
import { shortDigest } from '../core/digest.js';
import { BerthError } from '../core/errors.js';
import { toBytes, type ByteStream, type IoOptions } from '../io/stream.js';
import { verifyStream } from '../io/verify.js';
import { limits } from '../io/limits.js';

export interface BlobSource {
  /** Raw, unverified bytes of the blob `desc` names; throws BERTH_NOT_FOUND when absent. */
  open(desc: Descriptor, opts?: IoOptions): Promise<ByteStream>;
  /** Whether the blob is present, without reading it. */
  has(desc: Descriptor, opts?: IoOptions): Promise<boolean>;
}

/** Names a blob in messages: `blob sha256:0123456789ab (application/vnd.oci.image.config.v1+json)`. */
export function describeBlob(desc: Pick<Descriptor, 'digest' | 'mediaType'>, role?: string): string {
  return `${role ?? 'blob'} ${shortDigest(desc.digest)}`;
}

/** A fresh stream of the blob that fails on the last read unless size and digest match. */
export async function openVerified(src: BlobSource, desc: Descriptor, opts: IoOptions & { what?: string } = {}): Promise<ByteStream> {
  const raw = await src.open(desc, opts);
  return verifyStream(raw, { digest: desc.digest, size: desc.size, what: opts.what ?? describeBlob(desc) });
}

/** The whole (small) blob in memory, verified; refuses descriptors over `maxBytes` before reading. */
export async function fetchBytes(src: BlobSource, desc: Descriptor, opts: IoOptions & { maxBytes?: number; what?: string } = {}): Promise<Uint8Array> {
  const max = opts.maxBytes ?? limits().maxManifestBytes;
  const what = opts.what ?? describeBlob(desc);
  if (desc.size > max) {
    throw new BerthError('BERTH_TOO_LARGE', `reading ${what}: size ${desc.size} is over the limit of ${max} bytes for this kind of object`, {
      subject: desc.digest, want: max, got: desc.size,
    });
  }
  return toBytes(await openVerified(src, desc, { ...opts, what }), max, what);
}
