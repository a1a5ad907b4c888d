/**
 * Digests as the OCI image-spec defines them: `algorithm ":" encoded`.
 * A Digest is a branded string: only parseDigest and the hashing functions create one.
 */
import { createHash, type Hash } from 'node:crypto';
import { BerthError } from './errors.js';

export type Digest = string & { readonly __digest: unique symbol };
export type DigestAlgorithm = 'sha256' | 'sha512';

const ALGORITHM = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*$/;
const ENCODED = /^[a-zA-Z0-9=_-]+$/;

export function isVerifiableAlgorithm(alg: string): alg is DigestAlgorithm {
  return alg === 'sha256' || alg === 'sha512';
}

/**
 * Why `text` is not a valid digest, or undefined when it is. Registered algorithms are held to
 * their exact hex length; unregistered ones only to the grammar (the spec lets them pass).
 */
export function digestProblem(text: unknown): string | undefined {
  if (typeof text !== 'string') return `must be a string, got ${text === null ? 'null' : typeof text}`;
  const colon = text.indexOf(':');
  if (colon < 0) return 'missing ":" between algorithm and hex';
  const alg = text.slice(0, colon);
  const encoded = text.slice(colon + 1);
  if (alg === '') return 'algorithm is empty';
  if (!ALGORITHM.test(alg)) return `algorithm "${alg}" does not match [a-z0-9]+([+._-][a-z0-9]+)*`;
  if (encoded === '') return 'encoded part is empty';
  if (!ENCODED.test(encoded)) return 'encoded part has characters outside [a-zA-Z0-9=_-]';
  if (alg === 'sha256' || alg === 'sha512' || alg === 'blake3') {
    const want = alg === 'sha512' ? 128 : 64;
    if (!/^[a-f0-9]*$/.test(encoded)) return `hex must be lowercase [a-f0-9] for ${alg}`;
    if (encoded.length !== want) return `hex must be ${want} characters, got ${encoded.length}`;
  }
  return undefined;
}

/** Parses and validates a digest; throws BERTH_INVALID_DIGEST naming `path` when given. */
export function parseDigest(text: unknown, path?: string): Digest {
  const problem = digestProblem(text);
  if (problem !== undefined) {
    const where = path === undefined ? '' : `${path}: `;
    // Not String(text): a JSON object with a "toString" key makes String() throw a TypeError.
    const shown = typeof text === 'string' ? JSON.stringify(truncate(text, 80)) : text === null ? 'null' : typeof text === 'object' ? (Array.isArray(text) ? 'array' : 'object') : String(text);
    throw new BerthError('BERTH_INVALID_DIGEST', `${where}${shown} is not a valid digest (${problem})`, {
      ...(path === undefined ? {} : { path }),
      got: text,
    });
  }
  return text as Digest;
}

export function isDigest(text: unknown): text is Digest {
  return digestProblem(text) === undefined;
}

export function digestAlgorithm(d: Digest): string {
  return d.slice(0, d.indexOf(':'));
}

export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/** `sha256:0123456789ab` (12 hex), the short form used in human output. */
export function shortDigest(d: string, length = 12): string {
  const colon = d.indexOf(':');
  return colon < 0 ? d.slice(0, length) : `${d.slice(0, colon)}:${d.slice(colon + 1, colon + 1 + length)}`;
}

/** Hashes bytes already in memory. */
export function digestOf(bytes: Uint8Array | string, alg: DigestAlgorithm = 'sha256'): Digest {
  return `${alg}:${createHash(alg).update(bytes).digest('hex')}` as Digest;
}

/** An incremental hasher that also counts bytes. */
export interface Digester {
  readonly algorithm: DigestAlgorithm;
  update(chunk: Uint8Array): void;
  readonly bytes: number;
  digest(): Digest;
}

export function createDigester(alg: DigestAlgorithm = 'sha256'): Digester {
  const hash: Hash = createHash(alg);
  let bytes = 0;
  let result: Digest | undefined;
  return {
    algorithm: alg,
    update(chunk) {
      hash.update(chunk);
      bytes += chunk.length;
    },
    get bytes() {
      return bytes;
    },
    digest() {
      result ??= `${alg}:${hash.digest('hex')}` as Digest;
      return result;
    },
  };
}


function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
