import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mt from './media-types.js';

test('classifyMediaType', () => {
  const rows: { name: string; input: string; want: mt.MediaTypeInfo }[] = [
    { name: 'oci index', input: mt.OCI_INDEX, want: { kind: 'index', family: 'oci' } },
    { name: 'oci manifest', input: mt.OCI_MANIFEST, want: { kind: 'manifest', family: 'oci' } },
    { name: 'oci config', input: mt.OCI_CONFIG, want: { kind: 'config', family: 'oci' } },
    { name: 'oci empty', input: mt.OCI_EMPTY, want: { kind: 'empty', family: 'oci' } },
    { name: 'oci descriptor is no image part', input: mt.OCI_DESCRIPTOR, want: { kind: 'unknown', family: 'oci' } },
    { name: 'oci layout header', input: mt.OCI_LAYOUT_HEADER, want: { kind: 'unknown', family: 'oci' } },
    { name: 'oci tar layer', input: mt.OCI_LAYER_TAR, want: { kind: 'layer', family: 'oci', compression: 'none', nondistributable: false, encrypted: false } },
    { name: 'oci gzip layer', input: mt.OCI_LAYER_GZIP, want: { kind: 'layer', family: 'oci', compression: 'gzip', nondistributable: false, encrypted: false } },
    { name: 'oci zstd layer', input: mt.OCI_LAYER_ZSTD, want: { kind: 'layer', family: 'oci', compression: 'zstd', nondistributable: false, encrypted: false } },
    { name: 'oci nondistributable tar', input: mt.OCI_LAYER_NONDISTRIBUTABLE_TAR, want: { kind: 'layer', family: 'oci', compression: 'none', nondistributable: true, encrypted: false } },
    { name: 'oci nondistributable gzip', input: mt.OCI_LAYER_NONDISTRIBUTABLE_GZIP, want: { kind: 'layer', family: 'oci', compression: 'gzip', nondistributable: true, encrypted: false } },
    { name: 'oci nondistributable zstd', input: mt.OCI_LAYER_NONDISTRIBUTABLE_ZSTD, want: { kind: 'layer', family: 'oci', compression: 'zstd', nondistributable: true, encrypted: false } },
    { name: 'encrypted gzip layer', input: `${mt.OCI_LAYER_GZIP}+encrypted`, want: { kind: 'layer', family: 'oci', compression: 'gzip', nondistributable: false, encrypted: true } },
    { name: 'encrypted tar layer', input: `${mt.OCI_LAYER_TAR}+encrypted`, want: { kind: 'layer', family: 'oci', compression: 'none', nondistributable: false, encrypted: true } },
    { name: 'unknown compression is unknown', input: 'application/vnd.oci.image.layer.v1.tar+unknown', want: { kind: 'unknown', family: 'oci' } },
    { name: 'two compressions are unknown', input: 'application/vnd.oci.image.layer.v1.tar+gzip+zstd', want: { kind: 'unknown', family: 'oci' } },
    { name: 'docker manifest', input: mt.DOCKER_MANIFEST, want: { kind: 'manifest', family: 'docker' } },
    { name: 'docker manifest list', input: mt.DOCKER_MANIFEST_LIST, want: { kind: 'index', family: 'docker' } },
    { name: 'docker config', input: mt.DOCKER_CONFIG, want: { kind: 'config', family: 'docker' } },
    { name: 'docker plugin config is not an image config', input: mt.DOCKER_PLUGIN_CONFIG, want: { kind: 'unknown', family: 'docker' } },
    { name: 'docker gzip layer', input: mt.DOCKER_LAYER_GZIP, want: { kind: 'layer', family: 'docker', compression: 'gzip', nondistributable: false, encrypted: false } },
    { name: 'docker tar layer', input: mt.DOCKER_LAYER_TAR, want: { kind: 'layer', family: 'docker', compression: 'none', nondistributable: false, encrypted: false } },
    { name: 'docker-style zstd layer is family other', input: mt.DOCKER_LAYER_ZSTD, want: { kind: 'layer', family: 'other', compression: 'zstd', nondistributable: false, encrypted: false } },
    { name: 'docker foreign gzip', input: mt.DOCKER_FOREIGN_LAYER_GZIP, want: { kind: 'layer', family: 'docker', compression: 'gzip', nondistributable: true, encrypted: false } },
    { name: 'docker foreign tar', input: mt.DOCKER_FOREIGN_LAYER_TAR, want: { kind: 'layer', family: 'docker', compression: 'none', nondistributable: true, encrypted: false } },
    { name: 'schema1', input: mt.DOCKER_SCHEMA1_MANIFEST, want: { kind: 'schema1', family: 'docker' } },
    { name: 'schema1 signed', input: mt.DOCKER_SCHEMA1_SIGNED_MANIFEST, want: { kind: 'schema1', family: 'docker' } },
    { name: 'in-toto', input: mt.IN_TOTO, want: { kind: 'attestation', family: 'other' } },
    { name: 'attestation artifact type', input: mt.DOCKER_ATTESTATION_MANIFEST, want: { kind: 'attestation', family: 'other' } },
    { name: 'buildkit cache config', input: mt.BUILDKIT_CACHE_CONFIG, want: { kind: 'unknown', family: 'other' } },
    { name: 'parameters and case are ignored', input: 'Application/VND.OCI.image.manifest.v1+json; charset=utf-8', want: { kind: 'manifest', family: 'oci' } },
    { name: 'withdrawn oci artifact manifest', input: 'application/vnd.oci.artifact.manifest.v1+json', want: { kind: 'unknown', family: 'oci' } },
    { name: 'unknown docker type', input: 'application/vnd.docker.something', want: { kind: 'unknown', family: 'docker' } },
    { name: 'anything else', input: 'text/plain', want: { kind: 'unknown', family: 'other' } },
    { name: 'empty string', input: '', want: { kind: 'unknown', family: 'other' } },
  ];
  for (const row of rows) assert.deepEqual(mt.classifyMediaType(row.input), row.want, row.name);
});

test('media type predicates and layerCompression', () => {
  const rows = [
    { name: 'oci index', input: mt.OCI_INDEX, want: { index: true, manifest: false, layer: false, config: false, compression: undefined } },
    { name: 'docker list', input: mt.DOCKER_MANIFEST_LIST, want: { index: true, manifest: false, layer: false, config: false, compression: undefined } },
    { name: 'docker manifest', input: mt.DOCKER_MANIFEST, want: { index: false, manifest: true, layer: false, config: false, compression: undefined } },
    { name: 'schema1 is not a manifest here', input: mt.DOCKER_SCHEMA1_MANIFEST, want: { index: false, manifest: false, layer: false, config: false, compression: undefined } },
    { name: 'oci config', input: mt.OCI_CONFIG, want: { index: false, manifest: false, layer: false, config: true, compression: undefined } },
    { name: 'docker gzip', input: mt.DOCKER_LAYER_GZIP, want: { index: false, manifest: false, layer: true, config: false, compression: 'gzip' } },
    { name: 'oci zstd', input: mt.OCI_LAYER_ZSTD, want: { index: false, manifest: false, layer: true, config: false, compression: 'zstd' } },
    { name: 'oci tar', input: mt.OCI_LAYER_TAR, want: { index: false, manifest: false, layer: true, config: false, compression: 'none' } },
    { name: 'in-toto is no layer', input: mt.IN_TOTO, want: { index: false, manifest: false, layer: false, config: false, compression: undefined } },
  ];
  for (const row of rows) {
    const got = {
      index: mt.isIndexMediaType(row.input), manifest: mt.isManifestMediaType(row.input), layer: mt.isLayerMediaType(row.input),
      config: mt.isConfigMediaType(row.input), compression: mt.layerCompression(row.input),
    };
    assert.deepEqual(got, row.want, row.name);
  }
});

test('annotation keys', () => {
  assert.equal(mt.ANNOTATION_REF_NAME, 'org.opencontainers.image.ref.name');
  assert.equal(mt.ANNOTATION_CONTAINERD_IMAGE_NAME, 'io.containerd.image.name');
  assert.equal(mt.ANNOTATION_DOCKER_REFERENCE_TYPE, 'vnd.docker.reference.type');
  assert.equal(mt.ANNOTATION_IN_TOTO_PREDICATE_TYPE, 'in-toto.io/predicate-type');
});
