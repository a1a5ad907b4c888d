/**
 * A stream that verifies itself, and says so in a way no other object can imitate: a destination
 * handed one may skip hashing the bytes again, because the stream fails on its last read unless
 * size and digest match, i.e. before the destination names anything. The proof lives in a
 * module-private WeakMap (not in fields a caller could set), and only a stream nobody has started
 * reading counts: bytes read before the hand-over would be verified but never written.
 */
import type { Digest } from '../core/digest.js';
import type { ByteStream } from './stream.js';
import { verifyStream, type VerifyWant } from './verify.js';

export interface Verification {
  readonly digest: Digest;
  /** Checked too when set; otherwise the consumer counts the bytes itself. */
  readonly size?: number;
}

interface State {
  readonly want: Verification;
  started: boolean;
}

const states = new WeakMap<object, State>();

class VerifiedStream implements AsyncIterable<Uint8Array> {
  constructor(private readonly src: ByteStream) {}

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const state = states.get(this)!;
    if (state.started) throw new Error('a verified stream can be read only once');
    state.started = true;
    return this.src[Symbol.asyncIterator]();
  }
}

/** Wraps `src` in verifyStream and marks the result as verified against `want`. */
export function verifiedStream(src: ByteStream, want: VerifyWant): ByteStream {
  const out = new VerifiedStream(verifyStream(src, want));
  states.set(out, { want: { digest: want.digest, ...(want.size !== undefined ? { size: want.size } : {}) }, started: false });
  return out;
}

/**
 * What `stream` will have verified by the time it ends, when it is an unread stream made by
 * verifiedStream; undefined for anything else (which the caller must then hash itself).
 */
export function verificationOf(stream: AsyncIterable<Uint8Array>): Verification | undefined {
  const state = states.get(stream);
  if (state === undefined || state.started) return undefined;
  return state.want;
}
