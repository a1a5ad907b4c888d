/**
 * Verifying pass-through: counts and hashes bytes as they stream. Oversize is caught as soon as
 * it happens (memory stays bounded); a short stream or a wrong digest fails on the last read.
 * A consumer that stops early has verified nothing.
 */
import { createDigester, digestAlgorithm, isVerifiableAlgorithm, type Digest } from '../core/digest.js';
import { BerthError } from '../core/errors.js';
import type { ByteStream } from './stream.js';

export interface VerifyWant {
  readonly digest: Digest;
  readonly size?: number;
  /** Names the object in errors, e.g. `blob sha256:ab12… (layer 2)`. Defaults to the digest. */
  readonly what?: string;
}

export async function* verifyStream(src: ByteStream, want: VerifyWant): ByteStream {
  const what = want.what ?? `blob ${want.digest}`;
  const alg = digestAlgorithm(want.digest);
  if (!isVerifiableAlgorithm(alg)) {
    throw new BerthError('BERTH_UNSUPPORTED', `verifying ${what}: digest algorithm "${alg}" cannot be verified (berth verifies sha256 and sha512)`, { subject: what });
  }
  const digester = createDigester(alg);
  const size = want.size;
  for await (const chunk of src) {
    if (size !== undefined && digester.bytes + chunk.length > size) {
      throw new BerthError('BERTH_SIZE_MISMATCH', `verifying ${what}: more bytes than the descriptor's size (want ${size}, got at least ${digester.bytes + chunk.length})`, {
        subject: what, want: size, got: digester.bytes + chunk.length,
      });
    }
    digester.update(chunk);
    yield chunk;
  }
  if (size !== undefined && digester.bytes !== size) {
    throw new BerthError('BERTH_SIZE_MISMATCH', `verifying ${what}: fewer bytes than the descriptor's size (want ${size}, got ${digester.bytes})`, {
      subject: what, want: size, got: digester.bytes,
    });
  }
  const got = digester.digest();
  if (got !== want.digest) {
    throw new BerthError('BERTH_DIGEST_MISMATCH', `verifying ${what}: digest mismatch after ${digester.bytes} bytes (want ${want.digest}, got ${got})`, {
      subject: what, want: want.digest, got,
    });
  }
}

/** Checks bytes already in memory against a digest and size. */
export function verifyBytes(bytes: Uint8Array, want: VerifyWant): void {
  const what = want.what ?? `blob ${want.digest}`;
  if (want.size !== undefined && bytes.length !== want.size) {
    throw new BerthError('BERTH_SIZE_MISMATCH', `verifying ${what}: size mismatch (want ${want.size}, got ${bytes.length})`, {
      subject: what, want: want.size, got: bytes.length,
    });
  }
  const alg = digestAlgorithm(want.digest);
  if (!isVerifiableAlgorithm(alg)) {
    throw new BerthError('BERTH_UNSUPPORTED', `verifying ${what}: digest algorithm "${alg}" cannot be verified`, { subject: what });
  }
  const d = createDigester(alg);
  d.update(bytes);
  const got = d.digest();
  if (got !== want.digest) {
    throw new BerthError('BERTH_DIGEST_MISMATCH', `verifying ${what}: digest mismatch after ${bytes.length} bytes (want ${want.digest}, got ${got})`, {
      subject: what, want: want.digest, got,
    });
  }
}
