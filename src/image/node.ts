/**
 * Reading one node of the image graph (an index or a manifest) from any BlobSource, verified,
 * and classifying the entries of an index: images, attestation manifests, nested indexes,
 * artifacts.
 */
import type { Descriptor } from '../core/descriptor.js';
import { withContext } from '../core/errors.js';
import { parseManifestOrIndex, type ImageIndex, type ImageManifest } from '../core/manifest.js';
import {
  ANNOTATION_DOCKER_REFERENCE_DIGEST,
  ANNOTATION_DOCKER_REFERENCE_TYPE,
  REFERENCE_TYPE_ATTESTATION_MANIFEST,
  classifyMediaType,
} from '../core/media-types.js';
import { describeBlob, fetchBytes, type BlobSource } from '../content/store.js';
import type { IoOptions } from '../io/stream.js';

export type GraphNode =
  | { readonly kind: 'index'; readonly descriptor: Descriptor; readonly raw: Uint8Array; readonly index: ImageIndex }
  | { readonly kind: 'manifest'; readonly descriptor: Descriptor; readonly raw: Uint8Array; readonly manifest: ImageManifest };

/** Fetches (verified, capped) and parses the index or manifest `desc` names. */
export async function readNode(src: BlobSource, desc: Descriptor, opts: IoOptions = {}): Promise<GraphNode> {
  const what = describeBlob(desc, isIndexLike(desc) ? 'index' : 'manifest');
  const raw = await fetchBytes(src, desc, { ...opts, what });
  try {
    const parsed = parseManifestOrIndex(raw, { what, mediaType: desc.mediaType });
    return parsed.kind === 'index'
      ? { kind: 'index', descriptor: desc, raw, index: parsed.index }
      : { kind: 'manifest', descriptor: desc, raw, manifest: parsed.manifest };
  } catch (err) {
    throw withContext(err, `reading ${what}`);
  }
}

function isIndexLike(desc: Descriptor): boolean {
  return classifyMediaType(desc.mediaType).kind === 'index';
}

export type EntryRole = 'index' | 'image' | 'attestation' | 'artifact' | 'unknown';

/** What an index entry is, from its descriptor alone (no blob read). */
export function entryRole(desc: Descriptor): EntryRole {
  if (desc.annotations?.[ANNOTATION_DOCKER_REFERENCE_TYPE] === REFERENCE_TYPE_ATTESTATION_MANIFEST) return 'attestation';
  const kind = classifyMediaType(desc.mediaType).kind;
  if (kind === 'index') return 'index';
  if (kind === 'manifest') return desc.artifactType !== undefined ? 'artifact' : 'image';
  return 'unknown';
}

/** The digest of the image an attestation manifest describes (buildkit's annotation). */
export function attestationSubject(desc: Descriptor): string | undefined {
  return desc.annotations?.[ANNOTATION_DOCKER_REFERENCE_DIGEST];
}

/**
 * Whether a manifest is a runnable image rather than an artifact: an image config, no
 * artifactType, and only layer media types (regclient's "builder" entries use an image config
 * type with other layers).
 */
export function isImageManifest(manifest: ImageManifest): boolean {
  if (manifest.artifactType !== undefined) return false;
  if (classifyMediaType(manifest.config.mediaType).kind !== 'config') return false;
  return manifest.layers.every((l) => classifyMediaType(l.mediaType).kind === 'layer');
}

