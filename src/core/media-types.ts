/**
 * Media types and annotation keys of the OCI image-spec (v1.1), Docker distribution (schema2) and
 * BuildKit, with classifiers. See formats.md section 3. Pure: no I/O.
 */

// OCI image-spec
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
/** Deprecated in image-spec v1.1 ("do not push" layers); may carry `urls`. */
export const OCI_LAYER_NONDISTRIBUTABLE_TAR = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
export const OCI_LAYER_NONDISTRIBUTABLE_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
export const OCI_LAYER_NONDISTRIBUTABLE_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';
/** The 2-byte blob `{}` (image-spec v1.1), used as config or layer of artifacts. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const OCI_DESCRIPTOR = 'application/vnd.oci.descriptor.v1+json';
export const OCI_LAYOUT_HEADER = 'application/vnd.oci.layout.header.v1+json';

// Docker distribution, schema 2
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** Uncompressed Docker-style layer name (used by containers/image and some tools; not in the Docker spec). */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
/** Non-standard Docker-style zstd layer name used by some tools (formats.md lists it as family "other"). */
export const DOCKER_LAYER_ZSTD = 'application/vnd.docker.image.rootfs.diff.tar.zstd';
/** Foreign layer: never pushed, fetched from `urls`. */
export const DOCKER_FOREIGN_LAYER_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
export const DOCKER_FOREIGN_LAYER_TAR = 'application/vnd.docker.image.rootfs.foreign.diff.tar';
export const DOCKER_PLUGIN_CONFIG = 'application/vnd.docker.plugin.v1+json';
/** Docker schema 1 (deprecated; berth reads it at most). */
export const DOCKER_SCHEMA1_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+json';
export const DOCKER_SCHEMA1_SIGNED_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

// BuildKit and in-toto
export const IN_TOTO = 'application/vnd.in-toto+json';
/** `artifactType` of BuildKit attestation manifests in OCI-artifact form. */
export const DOCKER_ATTESTATION_MANIFEST = 'application/vnd.docker.attestation.manifest.v1+json';
export const BUILDKIT_CACHE_CONFIG = 'application/vnd.buildkit.cacheconfig.v0';

// Annotation keys (formats.md 2.4 and 12.1)
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
export const ANNOTATION_AUTHORS = 'org.opencontainers.image.authors';
export const ANNOTATION_URL = 'org.opencontainers.image.url';
export const ANNOTATION_DOCUMENTATION = 'org.opencontainers.image.documentation';
export const ANNOTATION_SOURCE = 'org.opencontainers.image.source';
export const ANNOTATION_VERSION = 'org.opencontainers.image.version';
export const ANNOTATION_REVISION = 'org.opencontainers.image.revision';
export const ANNOTATION_VENDOR = 'org.opencontainers.image.vendor';
export const ANNOTATION_LICENSES = 'org.opencontainers.image.licenses';
export const ANNOTATION_TITLE = 'org.opencontainers.image.title';
export const ANNOTATION_DESCRIPTION = 'org.opencontainers.image.description';
export const ANNOTATION_BASE_DIGEST = 'org.opencontainers.image.base.digest';
export const ANNOTATION_BASE_NAME = 'org.opencontainers.image.base.name';
/** containerd / Docker 25+: the full reference, e.g. `docker.io/library/bb:2`. */
export const ANNOTATION_CONTAINERD_IMAGE_NAME = 'io.containerd.image.name';
export const ANNOTATION_DOCKER_REFERENCE_TYPE = 'vnd.docker.reference.type';
export const ANNOTATION_DOCKER_REFERENCE_DIGEST = 'vnd.docker.reference.digest';
export const ANNOTATION_IN_TOTO_PREDICATE_TYPE = 'in-toto.io/predicate-type';
/** The value of `vnd.docker.reference.type` on BuildKit attestation manifest descriptors. */
export const REFERENCE_TYPE_ATTESTATION_MANIFEST = 'attestation-manifest';

export type MediaTypeKind = 'index' | 'manifest' | 'config' | 'layer' | 'attestation' | 'empty' | 'schema1' | 'unknown';
export type MediaTypeFamily = 'oci' | 'docker' | 'other';
export type LayerCompression = 'none' | 'gzip' | 'zstd';

export interface MediaTypeInfo {
  readonly kind: MediaTypeKind;
  readonly family: MediaTypeFamily;
  /** Layers only. */
  readonly compression?: LayerCompression;
  /** Layers only: OCI non-distributable or Docker foreign. */
  readonly nondistributable?: boolean;
  /** Layers only: `+encrypted` (ocicrypt). */
  readonly encrypted?: boolean;
}

const EXACT: ReadonlyMap<string, MediaTypeInfo> = new Map<string, MediaTypeInfo>([
  [OCI_INDEX, { kind: 'index', family: 'oci' }],
  [OCI_MANIFEST, { kind: 'manifest', family: 'oci' }],
  [OCI_CONFIG, { kind: 'config', family: 'oci' }],
  [OCI_EMPTY, { kind: 'empty', family: 'oci' }],
  [OCI_DESCRIPTOR, { kind: 'unknown', family: 'oci' }],
  [OCI_LAYOUT_HEADER, { kind: 'unknown', family: 'oci' }],
  [DOCKER_MANIFEST, { kind: 'manifest', family: 'docker' }],
  [DOCKER_MANIFEST_LIST, { kind: 'index', family: 'docker' }],
  [DOCKER_CONFIG, { kind: 'config', family: 'docker' }],
  // A plugin config is not an image config: nothing may parse it as one.
  [DOCKER_PLUGIN_CONFIG, { kind: 'unknown', family: 'docker' }],
  [DOCKER_SCHEMA1_MANIFEST, { kind: 'schema1', family: 'docker' }],
  [DOCKER_SCHEMA1_SIGNED_MANIFEST, { kind: 'schema1', family: 'docker' }],
  [DOCKER_LAYER_GZIP, { kind: 'layer', family: 'docker', compression: 'gzip', nondistributable: false, encrypted: false }],
  [DOCKER_LAYER_TAR, { kind: 'layer', family: 'docker', compression: 'none', nondistributable: false, encrypted: false }],
  [DOCKER_LAYER_ZSTD, { kind: 'layer', family: 'other', compression: 'zstd', nondistributable: false, encrypted: false }],
  [DOCKER_FOREIGN_LAYER_GZIP, { kind: 'layer', family: 'docker', compression: 'gzip', nondistributable: true, encrypted: false }],
  [DOCKER_FOREIGN_LAYER_TAR, { kind: 'layer', family: 'docker', compression: 'none', nondistributable: true, encrypted: false }],
  [IN_TOTO, { kind: 'attestation', family: 'other' }],
  [DOCKER_ATTESTATION_MANIFEST, { kind: 'attestation', family: 'other' }],
  [BUILDKIT_CACHE_CONFIG, { kind: 'unknown', family: 'other' }],
]);

const OCI_LAYER = /^application\/vnd\.oci\.image\.layer\.(nondistributable\.)?v1\.tar((?:\+[a-z0-9.-]+)*)$/;

/**
 * What a media type names. Parameters (`; charset=…`) and case are ignored. OCI layer types are
 * recognised with any suffix chain: `+gzip`, `+zstd`, none, each optionally followed by
 * `+encrypted`; any other suffix (e.g. `tar+unknown`) gives kind `unknown`, family `oci`.
 * Types berth does not know give `{ kind: 'unknown', family: 'other' }`; they are not an error.
 */
export function classifyMediaType(mt: string): MediaTypeInfo {
  const bare = bareMediaType(mt);
  const exact = EXACT.get(bare);
  if (exact !== undefined) return exact;
  const m = OCI_LAYER.exec(bare);
  if (m !== null) {
    const suffixes = (m[2] ?? '').split('+').filter((s) => s !== '');
    const encrypted = suffixes[suffixes.length - 1] === 'encrypted';
    if (encrypted) suffixes.pop();
    const compression: LayerCompression | undefined =
      suffixes.length === 0 ? 'none' : suffixes.length === 1 && (suffixes[0] === 'gzip' || suffixes[0] === 'zstd') ? suffixes[0] : undefined;
    if (compression === undefined) return { kind: 'unknown', family: 'oci' };
    return { kind: 'layer', family: 'oci', compression, nondistributable: m[1] !== undefined, encrypted };
  }
  if (bare.startsWith('application/vnd.oci.')) return { kind: 'unknown', family: 'oci' };
  if (bare.startsWith('application/vnd.docker.')) return { kind: 'unknown', family: 'docker' };
  return { kind: 'unknown', family: 'other' };
}

/** The media type without parameters, trimmed and lower-cased (media types are case-insensitive). */
export function bareMediaType(mt: string): string {
  const semi = mt.indexOf(';');
  return (semi < 0 ? mt : mt.slice(0, semi)).trim().toLowerCase();
}

/** OCI image index or Docker manifest list. */
export function isIndexMediaType(mt: string): boolean {
  return classifyMediaType(mt).kind === 'index';
}

/** OCI image manifest or Docker schema2 manifest (schema 1 is not included). */
export function isManifestMediaType(mt: string): boolean {
  return classifyMediaType(mt).kind === 'manifest';
}

/** A layer berth knows how to read (encrypted layers included: check `encrypted` before unpacking). */
export function isLayerMediaType(mt: string): boolean {
  return classifyMediaType(mt).kind === 'layer';
}

/** An image config (OCI or Docker); plugin and cache configs are not. */
export function isConfigMediaType(mt: string): boolean {
  return classifyMediaType(mt).kind === 'config';
}

/** The compression of a layer media type, or undefined when `mt` is not a known layer type. */
export function layerCompression(mt: string): LayerCompression | undefined {
  return classifyMediaType(mt).compression;
}
