/**
 * The OCI content descriptor (formats.md 2.1): what a manifest or index says about a blob.
 * Pure: no I/O.
 */
import { digestAlgorithm, digestOf, digestProblem, isVerifiableAlgorithm, type Digest } from './digest.js';
import type { ErrorCode } from './errors.js';
import { JsonFields, childPath, jsonTypeOf } from './json.js';
import { OCI_EMPTY } from './media-types.js';
import { platformFromJson, type Platform } from './platform.js';

/** A media type string; known values are constants in media-types.ts. */
export type MediaType = string;

/** The OCI content descriptor, immutable. Docker schema2 descriptors use the same keys. */
export interface Descriptor {
  readonly mediaType: MediaType;
  readonly digest: Digest;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
  readonly artifactType?: string;
  readonly urls?: readonly string[];
  /** Base64 (standard alphabet, padded) of the whole target; checked against digest and size on parse. */
  readonly data?: string;
}

/** RFC 6838 `type/subtype` as the image-spec schema restricts it (127 characters each side at most). */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Why `mt` is not a valid media type, or undefined when it is. */
export function mediaTypeProblem(mt: string): string | undefined {
  if (mt === '') return 'is empty';
  if (!MEDIA_TYPE.test(mt)) return 'does not have the RFC 6838 form type/subtype';
  return undefined;
}

export function isValidMediaType(mt: string): boolean {
  return mediaTypeProblem(mt) === undefined;
}

/**
 * Validates a JSON descriptor found at `path` and returns it with known fields only (the source
 * bytes stay the truth for digests). Checks: mediaType and artifactType have the RFC 6838 shape;
 * digest follows the grammar; size is a non-negative safe integer; urls is an array of strings;
 * annotations map strings to strings; platform per platform.ts; data is strict base64 that
 * decodes to exactly `size` bytes with the descriptor's digest (unverifiable algorithms are only
 * length-checked). Optional fields that are `null` read as absent.
 *
 * Throws `code` (default BERTH_INVALID_DESCRIPTOR; manifest and index parsers pass their own) with
 * a message that begins with the path of the bad field, e.g. `layers[0].digest: …`.
 */
export function parseDescriptor(value: unknown, path: string, code: ErrorCode = 'BERTH_INVALID_DESCRIPTOR', subject?: string): Descriptor {
  const f: JsonFields = new JsonFields(code, subject);
  const obj = f.object(value, path);

  const mediaType = f.string(obj, 'mediaType', path);
  const mtProblem = mediaTypeProblem(mediaType);
  if (mtProblem !== undefined) f.fail(childPath(path, 'mediaType'), `${JSON.stringify(mediaType)} ${mtProblem}`, { got: mediaType });

  const rawDigest = f.required(obj, 'digest', path);
  const dProblem = digestProblem(rawDigest);
  if (dProblem !== undefined) {
    const shown = typeof rawDigest === 'string' ? JSON.stringify(rawDigest.length > 80 ? `${rawDigest.slice(0, 80)}…` : rawDigest) : jsonTypeOf(rawDigest);
    f.fail(childPath(path, 'digest'), `${shown} is not a valid digest (${dProblem})`, { got: rawDigest });
  }
  const digest = rawDigest as Digest;

  const size = f.required(obj, 'size', path);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    f.fail(childPath(path, 'size'), `must be a non-negative safe integer, got ${typeof size === 'number' ? String(size) : JSON.stringify(size)}`, { got: size });
  }

  const urls = f.optionalStringArray(obj, 'urls', path);
  const annotations = f.optionalStringMap(obj, 'annotations', path);
  const artifactType = f.optionalString(obj, 'artifactType', path);
  if (artifactType !== undefined) {
    const p = mediaTypeProblem(artifactType);
    if (p !== undefined) f.fail(childPath(path, 'artifactType'), `${JSON.stringify(artifactType)} ${p}`, { got: artifactType });
  }
  const platform = obj.platform === undefined || obj.platform === null ? undefined : platformFromJson(obj.platform, childPath(path, 'platform'), code, subject);

  const data = f.optionalString(obj, 'data', path);
  if (data !== undefined) {
    const p = childPath(path, 'data');
    if (!BASE64.test(data)) f.fail(p, 'is not padded standard base64 (RFC 4648 section 4)');
    const bytes = Buffer.from(data, 'base64');
    if (bytes.length !== size) {
      f.fail(p, `decodes to ${bytes.length} bytes but the descriptor's size is ${size} (want ${size}, got ${bytes.length})`, { want: size, got: bytes.length });
    }
    const alg = digestAlgorithm(digest);
    if (isVerifiableAlgorithm(alg)) {
      const got = digestOf(bytes, alg);
      if (got !== digest) f.fail(p, `embedded data does not match the descriptor's digest (want ${digest}, got ${got})`, { want: digest, got });
    }
  }

  return {
    mediaType, digest, size,
    ...(annotations === undefined ? {} : { annotations }),
    ...(platform === undefined ? {} : { platform }),
    ...(artifactType === undefined ? {} : { artifactType }),
    ...(urls === undefined ? {} : { urls }),
    ...(data === undefined ? {} : { data }),
  };
}

/** True when both describe the same bytes with the same meaning: equal digest, size and media type. */
export function sameContent(a: Descriptor, b: Descriptor): boolean {
  return a.digest === b.digest && a.size === b.size && a.mediaType === b.mediaType;
}

/**
 * The embedded bytes of a descriptor, or undefined when it has no `data`. Does not re-verify:
 * descriptors from parseDescriptor were checked at parse time; hand-built ones are the builder's
 * responsibility.
 */
export function descriptorData(desc: Descriptor): Uint8Array | undefined {
  if (desc.data === undefined) return undefined;
  return new Uint8Array(Buffer.from(desc.data, 'base64'));
}

/** The two bytes `{}` of the OCI empty blob. Treat as read-only. */
export const EMPTY_JSON: Uint8Array = new TextEncoder().encode('{}');

/** Digest of EMPTY_JSON (image-spec v1.1). */
export const EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' as Digest;

/** The OCI empty descriptor, with the blob embedded as `data` (`e30=`), as the image-spec shows it. */
export const EMPTY_DESCRIPTOR: Descriptor = Object.freeze({
  mediaType: OCI_EMPTY,
  digest: EMPTY_DIGEST,
  size: 2,
  data: 'e30=',
});
