/**
 * OCI image manifests, Docker schema2 manifests, OCI image indexes and Docker manifest lists
 * (formats.md section 5): strict parsing that keeps the whole JSON object as `raw`, so unknown
 * fields stay available. Pure: no I/O. The bytes, not a re-serialisation, remain the digest truth.
 *
 * Error codes: BERTH_INVALID_JSON / BERTH_TOO_LARGE from json.ts; BERTH_INVALID_MANIFEST for a
 * bad manifest (or a document whose kind cannot be told), BERTH_INVALID_INDEX for a bad index,
 * both with messages that begin with the path of the bad field; BERTH_UNSUPPORTED for Docker
 * schema 1; BERTH_UNKNOWN_MEDIA_TYPE when the media type names something that is not a manifest
 * or index.
 */
import { BerthError, type ErrorCode } from './errors.js';
import { parseDescriptor, mediaTypeProblem, type Descriptor } from './descriptor.js';
import { JsonFields, parseJsonBytes, jsonTypeOf, type JsonObject } from './json.js';
import {
  ANNOTATION_DOCKER_REFERENCE_TYPE, DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
  REFERENCE_TYPE_ATTESTATION_MANIFEST, classifyMediaType,
} from './media-types.js';

/** An OCI image manifest or a Docker schema2 manifest. Docker ones carry no annotations, subject or artifactType by spec, but any present are read. */
export interface ImageManifest {
  readonly schemaVersion: 2;
  /** Which spec the manifest follows: from its `mediaType`, else from the descriptor's, else from `config.mediaType`. */
  readonly family: 'oci' | 'docker';
  /** The `mediaType` field as written (optional for OCI). */
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly config: Descriptor;
  /** Base layer first. A JSON `null` reads as empty. */
  readonly layers: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
  /** The whole JSON object, unknown fields included. */
  readonly raw: JsonObject;
}

export type OciImageManifest = ImageManifest & { readonly family: 'oci' };
export type DockerManifest = ImageManifest & { readonly family: 'docker' };

/** An OCI image index or a Docker manifest list. */
export interface IndexManifest {
  readonly schemaVersion: 2;
  readonly family: 'oci' | 'docker';
  readonly mediaType?: string;
  readonly artifactType?: string;
  /** A JSON `null` (written by Docker 25 for an empty list) reads as empty. */
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly raw: JsonObject;
}

export type OciImageIndex = IndexManifest & { readonly family: 'oci' };
export type DockerManifestList = IndexManifest & { readonly family: 'docker' };

export interface ParseManifestOptions {
  /** Names the document in JSON errors and as the error subject, e.g. `manifest sha256:ab12…`. */
  readonly what: string;
  /** The media type of the descriptor that pointed at these bytes, if any. */
  readonly mediaType?: string;
  /** Size cap; default MAX_MANIFEST_BYTES. */
  readonly maxBytes?: number;
}

export type ManifestOrIndex =
  | { readonly kind: 'manifest'; readonly manifest: ImageManifest }
  | { readonly kind: 'index'; readonly index: IndexManifest };

/**
 * Parses bytes that may be either a manifest or an index. The kind comes from the JSON
 * `mediaType`, else the descriptor's media type, else the shape (`manifests` → index, `config` →
 * manifest). When both media types are present they must be equal.
 */
export function parseManifestOrIndex(bytes: Uint8Array, opts: ParseManifestOptions): ManifestOrIndex {
  const { obj, kind, family } = examine(bytes, opts, 'BERTH_INVALID_MANIFEST');
  if (kind === 'index') return { kind, index: indexFromJson(obj, family, opts.what) };
  return { kind, manifest: manifestFromJson(obj, family, opts.what) };
}

/** Parses an image manifest (OCI or Docker schema2); an index here is BERTH_INVALID_MANIFEST. */
export function parseImageManifest(bytes: Uint8Array, opts: ParseManifestOptions): ImageManifest {
  const { obj, kind, family, declared } = examine(bytes, opts, 'BERTH_INVALID_MANIFEST');
  if (kind !== 'manifest') {
    throw new BerthError('BERTH_INVALID_MANIFEST', `${declared === undefined ? opts.what : 'mediaType'}: want an image manifest, got an index${declared === undefined ? '' : ` (${declared})`}`, {
      path: declared === undefined ? '' : 'mediaType', subject: opts.what, got: declared,
    });
  }
  return manifestFromJson(obj, family, opts.what);
}

/** Parses an image index or manifest list; a manifest here is BERTH_INVALID_INDEX. */
export function parseImageIndex(bytes: Uint8Array, opts: ParseManifestOptions): IndexManifest {
  const { obj, kind, family, declared } = examine(bytes, opts, 'BERTH_INVALID_INDEX');
  if (kind !== 'index') {
    throw new BerthError('BERTH_INVALID_INDEX', `${declared === undefined ? opts.what : 'mediaType'}: want an image index, got a manifest${declared === undefined ? '' : ` (${declared})`}`, {
      path: declared === undefined ? '' : 'mediaType', subject: opts.what, got: declared,
    });
  }
  return indexFromJson(obj, family, opts.what);
}

/** True for the index entry BuildKit adds for an attestation manifest (`vnd.docker.reference.type: attestation-manifest`). */
export function isAttestationManifestDescriptor(desc: Descriptor): boolean {
  return desc.annotations?.[ANNOTATION_DOCKER_REFERENCE_TYPE] === REFERENCE_TYPE_ATTESTATION_MANIFEST;
}

interface Examined {
  readonly obj: JsonObject;
  readonly kind: 'manifest' | 'index';
  readonly family: 'oci' | 'docker';
  /** The media type that decided the kind, when one did. */
  readonly declared: string | undefined;
}

/** JSON, schemaVersion and media-type checks shared by the three parsers. */
function examine(bytes: Uint8Array, opts: ParseManifestOptions, code: ErrorCode): Examined {
  const { what } = opts;
  const value = parseJsonBytes(bytes, what, opts.maxBytes);
  const f: JsonFields = new JsonFields(code, what);
  const obj = f.object(value, '');

  const sv = obj.schemaVersion;
  if (sv === 1) {
    throw new BerthError('BERTH_UNSUPPORTED', `${what}: docker schema 1 manifests are deprecated and read-only: berth does not parse them, use a schema 2 or OCI copy of the image (want schemaVersion 2, got 1)`, {
      path: 'schemaVersion', subject: what, want: 2, got: 1,
    });
  }
  if (sv !== 2) {
    const got = sv === undefined ? 'missing' : JSON.stringify(sv);
    throw new BerthError('BERTH_INVALID_MANIFEST', `schemaVersion: unsupported schema version (want 2, got ${got})`, {
      path: 'schemaVersion', subject: what, want: 2, got: sv,
    });
  }

  const own = f.optionalString(obj, 'mediaType', '');
  if (own !== undefined) {
    const p = mediaTypeProblem(own);
    if (p !== undefined) f.fail('mediaType', `${JSON.stringify(own)} ${p}`, { got: own });
  }
  const outer = opts.mediaType;
  if (own !== undefined && outer !== undefined && own !== outer) {
    throw new BerthError(code, `mediaType: the content says ${own} but its descriptor says ${outer} (want ${outer}, got ${own})`, {
      path: 'mediaType', subject: what, want: outer, got: own,
    });
  }
  const declared = own ?? outer;
  if (declared !== undefined) {
    const info = classifyMediaType(declared);
    if (info.kind === 'schema1') {
      throw new BerthError('BERTH_UNSUPPORTED', `${what}: docker schema 1 manifests are deprecated and read-only: berth does not parse them (media type ${declared})`, {
        subject: what, got: declared,
      });
    }
    if (info.kind === 'manifest' || info.kind === 'index') {
      return { obj, kind: info.kind, family: info.family === 'docker' ? 'docker' : 'oci', declared };
    }
    throw new BerthError('BERTH_UNKNOWN_MEDIA_TYPE', `${what}: media type ${declared} is not an image manifest or index`, {
      ...(own === undefined ? {} : { path: 'mediaType' }), subject: what, got: declared,
    });
  }

  // No media type anywhere: tell by shape.
  const hasManifests = 'manifests' in obj;
  const hasConfig = 'config' in obj || 'layers' in obj;
  if (hasManifests && !hasConfig) return { obj, kind: 'index', family: 'oci', declared: undefined };
  if (hasConfig && !hasManifests) {
    const config = obj.config;
    const configType = typeof config === 'object' && config !== null ? (config as JsonObject).mediaType : undefined;
    return { obj, kind: 'manifest', family: configType === DOCKER_CONFIG ? 'docker' : 'oci', declared: undefined };
  }
  throw new BerthError(code, `${what}: cannot tell a manifest from an index (no mediaType, and ${hasManifests ? 'both "manifests" and "config"/"layers"' : 'neither "manifests" nor "config"'})`, {
    subject: what,
  });
}

function manifestFromJson(obj: JsonObject, family: 'oci' | 'docker', what: string): ImageManifest {
  const code: ErrorCode = 'BERTH_INVALID_MANIFEST';
  const f: JsonFields = new JsonFields(code, what);
  const mediaType = f.optionalString(obj, 'mediaType', '');
  const artifactType = optionalMediaType(f, obj, 'artifactType');
  if (obj.config === undefined || obj.config === null) f.fail('config', obj.config === null ? 'must not be null' : 'missing');
  const config = parseDescriptor(obj.config, 'config', code, what);
  const layersJson = obj.layers;
  if (layersJson === undefined) f.fail('layers', 'missing (want an array)');
  if (layersJson !== null && !Array.isArray(layersJson)) f.fail('layers', `must be an array, got ${jsonTypeOf(layersJson)}`);
  const layers = ((layersJson ?? []) as unknown[]).map((l, i) => parseDescriptor(l, `layers[${i}]`, code, what));
  const subject = obj.subject === undefined || obj.subject === null ? undefined : parseDescriptor(obj.subject, 'subject', code, what);
  const annotations = f.optionalStringMap(obj, 'annotations', '');
  return {
    schemaVersion: 2, family,
    ...(mediaType === undefined ? {} : { mediaType }),
    ...(artifactType === undefined ? {} : { artifactType }),
    config, layers,
    ...(subject === undefined ? {} : { subject }),
    ...(annotations === undefined ? {} : { annotations }),
    raw: obj,
  };
}

function indexFromJson(obj: JsonObject, family: 'oci' | 'docker', what: string): IndexManifest {
  const code: ErrorCode = 'BERTH_INVALID_INDEX';
  const f: JsonFields = new JsonFields(code, what);
  const mediaType = f.optionalString(obj, 'mediaType', '');
  const artifactType = optionalMediaType(f, obj, 'artifactType');
  const list = obj.manifests;
  if (list === undefined) f.fail('manifests', 'missing (want an array)');
  if (list !== null && !Array.isArray(list)) f.fail('manifests', `must be an array, got ${jsonTypeOf(list)}`);
  const manifests = ((list ?? []) as unknown[]).map((m, i) => parseDescriptor(m, `manifests[${i}]`, code, what));
  const subject = obj.subject === undefined || obj.subject === null ? undefined : parseDescriptor(obj.subject, 'subject', code, what);
  const annotations = f.optionalStringMap(obj, 'annotations', '');
  return {
    schemaVersion: 2, family,
    ...(mediaType === undefined ? {} : { mediaType }),
    ...(artifactType === undefined ? {} : { artifactType }),
    manifests,
    ...(subject === undefined ? {} : { subject }),
    ...(annotations === undefined ? {} : { annotations }),
    raw: obj,
  };
}

function optionalMediaType(f: JsonFields, obj: JsonObject, key: string): string | undefined {
  const v = f.optionalString(obj, key, '');
  if (v !== undefined) {
    const p = mediaTypeProblem(v);
    if (p !== undefined) f.fail(key, `${JSON.stringify(v)} ${p}`, { got: v });
  }
  return v;
}

/** The media type a manifest should be served with: its own, else the one its family implies. */
export function manifestMediaType(m: ImageManifest): string {
  return m.mediaType ?? (m.family === 'docker' ? DOCKER_MANIFEST : OCI_MANIFEST);
}

/** The media type an index should be served with: its own, else the one its family implies. */
export function indexMediaType(i: IndexManifest): string {
  return i.mediaType ?? (i.family === 'docker' ? DOCKER_MANIFEST_LIST : OCI_INDEX);
}

/** The parsed index type under the name the image layer uses. */
export type ImageIndex = IndexManifest;
