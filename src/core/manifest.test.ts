import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isBerthError, type ErrorCode } from './errors.js';
import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, classifyMediaType,
} from './media-types.js';
import {
  indexMediaType, isAttestationManifestDescriptor, manifestMediaType, parseImageIndex, parseImageManifest, parseManifestOrIndex,
} from './manifest.js';
import { repoRoot } from '../../test/support/paths.js';

/** The repository root: the nearest folder above this file with a package.json (works from src/ and dist/src/). */

const REAL = path.resolve(repoRoot, '../shared/fixtures/real/containers__image');
const enc = (value: unknown): Uint8Array => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

type Outcome =
  | { kind: 'manifest'; family: 'oci' | 'docker'; layers: number; layer0?: string }
  | { kind: 'index'; family: 'oci' | 'docker'; manifests: number }
  | { code: ErrorCode; path?: string };

test('real containers/image fixtures parse to the expected outcome', () => {
  const rows: { name: string; file: string; want: Outcome }[] = [
    { name: 'gzip bytes are not JSON', file: 'internal/manifest/testdata/non-json.manifest.json', want: { code: 'BERTH_INVALID_JSON' } },
    { name: 'index whose embedded data does not match its digest', file: 'internal/manifest/testdata/oci1.index.everything.json', want: { code: 'BERTH_INVALID_INDEX', path: 'manifests[0].data' } },
    { name: 'zstd selection index', file: 'internal/manifest/testdata/oci1.index.zstd-selection.json', want: { kind: 'index', family: 'oci', manifests: 6 } },
    { name: 'zstd selection index 2', file: 'internal/manifest/testdata/oci1.index.zstd-selection2.json', want: { kind: 'index', family: 'oci', manifests: 10 } },
    { name: 'oci index with an artifactType entry', file: 'internal/manifest/testdata/oci1index.json', want: { kind: 'index', family: 'oci', manifests: 3 } },
    { name: 'oci index with variants', file: 'internal/manifest/testdata/ocilist-variants.json', want: { kind: 'index', family: 'oci', manifests: 6 } },
    { name: 'artifact with an empty config digest', file: 'internal/manifest/testdata/ociv1.artifact.json', want: { code: 'BERTH_INVALID_MANIFEST', path: 'config.digest' } },
    { name: 'oci image index', file: 'internal/manifest/testdata/ociv1.image.index.json', want: { kind: 'index', family: 'oci', manifests: 2 } },
    { name: 'oci manifest', file: 'internal/manifest/testdata/ociv1.manifest.json', want: { kind: 'manifest', family: 'oci', layers: 3, layer0: 'application/vnd.oci.image.layer.v1.tar+gzip' } },
    { name: 'artifact without mediaType and an empty config digest', file: 'internal/manifest/testdata/ociv1nomime.artifact.json', want: { code: 'BERTH_INVALID_MANIFEST', path: 'config.digest' } },
    { name: 'oci index without mediaType, told by shape', file: 'internal/manifest/testdata/ociv1nomime.image.index.json', want: { kind: 'index', family: 'oci', manifests: 2 } },
    { name: 'oci manifest without mediaType, told by shape', file: 'internal/manifest/testdata/ociv1nomime.manifest.json', want: { kind: 'manifest', family: 'oci', layers: 3 } },
    { name: 'docker list with variants', file: 'internal/manifest/testdata/schema2list-variants.json', want: { kind: 'index', family: 'docker', manifests: 4 } },
    { name: 'docker list', file: 'internal/manifest/testdata/schema2list.json', want: { kind: 'index', family: 'docker', manifests: 7 } },
    { name: 'unknown schemaVersion', file: 'internal/manifest/testdata/unknown-version.manifest.json', want: { code: 'BERTH_INVALID_MANIFEST', path: 'schemaVersion' } },
    { name: 'docker list with every field', file: 'internal/manifest/testdata/v2list.everything.json', want: { kind: 'index', family: 'docker', manifests: 1 } },
    { name: 'docker list of schema1 manifests', file: 'internal/manifest/testdata/v2list.manifest.json', want: { kind: 'index', family: 'docker', manifests: 5 } },
    { name: 'schema1 with bad signatures', file: 'internal/manifest/testdata/v2s1-invalid-signatures.manifest.json', want: { code: 'BERTH_UNSUPPORTED', path: 'schemaVersion' } },
    { name: 'schema1 unsigned', file: 'internal/manifest/testdata/v2s1-unsigned.manifest.json', want: { code: 'BERTH_UNSUPPORTED', path: 'schemaVersion' } },
    { name: 'schema1 signed', file: 'internal/manifest/testdata/v2s1.manifest.json', want: { code: 'BERTH_UNSUPPORTED', path: 'schemaVersion' } },
    { name: 'docker schema2', file: 'internal/manifest/testdata/v2s2.manifest.json', want: { kind: 'manifest', family: 'docker', layers: 3, layer0: 'application/vnd.docker.image.rootfs.diff.tar.gzip' } },
    { name: 'docker schema2 without mediaType, family from config', file: 'internal/manifest/testdata/v2s2nomime.manifest.json', want: { kind: 'manifest', family: 'docker', layers: 0 } },
    { name: 'encrypted layers', file: 'manifest/fixtures/ociv1.encrypted.manifest.json', want: { kind: 'manifest', family: 'oci', layers: 3, layer0: 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted' } },
    { name: 'manifest whose embedded config data does not match', file: 'manifest/fixtures/ociv1.everything.json', want: { code: 'BERTH_INVALID_MANIFEST', path: 'config.data' } },
    { name: 'unknown layer compression parses (unknown media types are not fatal)', file: 'manifest/fixtures/ociv1.invalid.mediatype.manifest.json', want: { kind: 'manifest', family: 'oci', layers: 3, layer0: 'application/vnd.oci.image.layer.v1.tar+unknown' } },
    { name: 'oci nondistributable gzip', file: 'manifest/fixtures/ociv1.nondistributable.gzip.manifest.json', want: { kind: 'manifest', family: 'oci', layers: 1 } },
    { name: 'oci nondistributable tar', file: 'manifest/fixtures/ociv1.nondistributable.manifest.json', want: { kind: 'manifest', family: 'oci', layers: 1 } },
    { name: 'oci nondistributable zstd', file: 'manifest/fixtures/ociv1.nondistributable.zstd.manifest.json', want: { kind: 'manifest', family: 'oci', layers: 1 } },
    { name: 'oci uncompressed', file: 'manifest/fixtures/ociv1.uncompressed.manifest.json', want: { kind: 'manifest', family: 'oci', layers: 3 } },
    { name: 'oci zstd', file: 'manifest/fixtures/ociv1.zstd.manifest.json', want: { kind: 'manifest', family: 'oci', layers: 3 } },
    { name: 'schema1 with every field', file: 'manifest/fixtures/v2s1.everything.json', want: { code: 'BERTH_UNSUPPORTED', path: 'schemaVersion' } },
    { name: 'docker schema2 with urls', file: 'manifest/fixtures/v2s2.everything.json', want: { kind: 'manifest', family: 'docker', layers: 1 } },
    { name: 'docker foreign gzip layer', file: 'manifest/fixtures/v2s2.nondistributable.gzip.manifest.json', want: { kind: 'manifest', family: 'docker', layers: 1, layer0: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip' } },
    { name: 'docker foreign tar layer', file: 'manifest/fixtures/v2s2.nondistributable.manifest.json', want: { kind: 'manifest', family: 'docker', layers: 1 } },
    { name: 'docker uncompressed', file: 'manifest/fixtures/v2s2.uncompressed.manifest.json', want: { kind: 'manifest', family: 'docker', layers: 3 } },
  ];
  for (const row of rows) {
    const bytes = readFileSync(path.join(REAL, row.file));
    const what = `fixture ${path.basename(row.file)}`;
    const want = row.want;
    if ('code' in want) {
      assert.throws(() => parseManifestOrIndex(bytes, { what }), (err: unknown) => {
        assert.ok(isBerthError(err, want.code), `${row.name}: ${String(err)}`);
        if (want.path !== undefined) {
          assert.equal(err.path, want.path, row.name);
          if (want.code !== 'BERTH_UNSUPPORTED') assert.ok(err.message.startsWith(`${want.path}: `), `${row.name}: ${err.message}`);
        }
        return true;
      });
      continue;
    }
    const got = parseManifestOrIndex(bytes, { what });
    assert.equal(got.kind, want.kind, row.name);
    if (got.kind === 'manifest' && want.kind === 'manifest') {
      assert.equal(got.manifest.family, want.family, row.name);
      assert.equal(got.manifest.layers.length, want.layers, row.name);
      if (want.layer0 !== undefined) assert.equal(got.manifest.layers[0]?.mediaType, want.layer0, row.name);
      assert.deepEqual(parseImageManifest(bytes, { what }), got.manifest, `${row.name}: parseImageManifest agrees`);
      assert.throws(() => parseImageIndex(bytes, { what }), (err: unknown) => isBerthError(err, 'BERTH_INVALID_INDEX'), `${row.name}: not an index`);
    } else if (got.kind === 'index' && want.kind === 'index') {
      assert.equal(got.index.family, want.family, row.name);
      assert.equal(got.index.manifests.length, want.manifests, row.name);
      assert.deepEqual(parseImageIndex(bytes, { what }), got.index, `${row.name}: parseImageIndex agrees`);
      assert.throws(() => parseImageManifest(bytes, { what }), (err: unknown) => isBerthError(err, 'BERTH_INVALID_MANIFEST'), `${row.name}: not a manifest`);
    }
  }
});

test('fixture details survive parsing', () => {
  const read = (f: string): Uint8Array => readFileSync(path.join(REAL, f));
  const enc1 = parseImageManifest(read('manifest/fixtures/ociv1.encrypted.manifest.json'), { what: 'm' });
  assert.deepEqual(classifyMediaType(enc1.layers[0]!.mediaType), { kind: 'layer', family: 'oci', compression: 'gzip', nondistributable: false, encrypted: true });
  const unknown = parseImageManifest(read('manifest/fixtures/ociv1.invalid.mediatype.manifest.json'), { what: 'm' });
  assert.equal(classifyMediaType(unknown.layers[0]!.mediaType).kind, 'unknown');
  assert.equal(unknown.mediaType, undefined);
  assert.equal(manifestMediaType(unknown), OCI_MANIFEST);
  const everything = parseImageIndex(read('internal/manifest/testdata/v2list.everything.json'), { what: 'i' });
  assert.deepEqual(everything.manifests[0]?.platform, { architecture: 'a', os: 'b', osVersion: 'c', osFeatures: ['d'], variant: 'e' });
  assert.deepEqual(everything.manifests[0]?.urls, ['https://some.example/manifest']);
  const oci = parseImageManifest(read('internal/manifest/testdata/ociv1.manifest.json'), { what: 'm', mediaType: OCI_MANIFEST });
  assert.deepEqual(oci.annotations, { 'com.example.key1': 'value1', 'com.example.key2': 'value2' });
  assert.equal(oci.raw.schemaVersion, 2);
  const nomime = parseImageIndex(read('internal/manifest/testdata/ociv1nomime.image.index.json'), { what: 'i' });
  assert.equal(indexMediaType(nomime), OCI_INDEX);
});

test('parseManifestOrIndex detection and media-type checks', () => {
  const manifest = { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: A, size: 1 }, layers: [] };
  const index = { schemaVersion: 2, manifests: [] };
  const rows: { name: string; input: unknown; mediaType?: string; want: 'manifest' | 'index' }[] = [
    { name: 'shape: config means manifest', input: manifest, want: 'manifest' },
    { name: 'shape: manifests means index', input: index, want: 'index' },
    { name: 'descriptor type decides when content has none', input: { ...index, config: 1 }, mediaType: OCI_INDEX, want: 'index' },
    { name: 'content type decides', input: { ...manifest, mediaType: DOCKER_MANIFEST }, want: 'manifest' },
    { name: 'equal types', input: { ...index, mediaType: DOCKER_MANIFEST_LIST }, mediaType: DOCKER_MANIFEST_LIST, want: 'index' },
    { name: 'docker 25 "manifests": null is an empty list', input: { schemaVersion: 2, mediaType: OCI_INDEX, manifests: null }, want: 'index' },
    { name: 'layers null is an empty list', input: { ...manifest, layers: null }, want: 'manifest' },
    { name: 'unknown fields are kept', input: { ...index, 'x-extra': { a: 1 } }, want: 'index' },
  ];
  for (const row of rows) {
    const got = parseManifestOrIndex(enc(row.input), { what: 'doc', ...(row.mediaType ? { mediaType: row.mediaType } : {}) });
    assert.equal(got.kind, row.want, row.name);
  }
  const nullList = parseImageIndex(enc({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: null }), { what: 'doc' });
  assert.deepEqual(nullList.manifests, []);
  const extra = parseImageIndex(enc({ ...index, 'x-extra': { a: 1 } }), { what: 'doc' });
  assert.deepEqual(extra.raw['x-extra'], { a: 1 });
});

test('parseManifestOrIndex rejects, naming the field', () => {
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: A, size: 1 };
  const rows: { name: string; input: unknown; mediaType?: string; code: ErrorCode; path?: string; message?: string }[] = [
    { name: 'descriptor and content media types differ', input: { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }, mediaType: OCI_MANIFEST, code: 'BERTH_INVALID_MANIFEST', path: 'mediaType',
      message: `mediaType: the content says ${OCI_INDEX} but its descriptor says ${OCI_MANIFEST} (want ${OCI_MANIFEST}, got ${OCI_INDEX})` },
    { name: 'schemaVersion as a string', input: { schemaVersion: '2', manifests: [] }, code: 'BERTH_INVALID_MANIFEST', path: 'schemaVersion', message: 'schemaVersion: unsupported schema version (want 2, got "2")' },
    { name: 'schemaVersion missing', input: { manifests: [] }, code: 'BERTH_INVALID_MANIFEST', path: 'schemaVersion', message: 'schemaVersion: unsupported schema version (want 2, got missing)' },
    { name: 'schema1 by descriptor media type', input: { schemaVersion: 2, manifests: [] }, mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws', code: 'BERTH_UNSUPPORTED' },
    { name: 'top level is an array', input: [], code: 'BERTH_INVALID_MANIFEST', message: 'doc: must be a JSON object, got array' },
    { name: 'media type of a layer', input: { schemaVersion: 2, config, layers: [] }, mediaType: 'application/vnd.oci.image.layer.v1.tar', code: 'BERTH_UNKNOWN_MEDIA_TYPE' },
    { name: 'no type and no telling shape', input: { schemaVersion: 2 }, code: 'BERTH_INVALID_MANIFEST' },
    { name: 'bad layer digest', input: { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [{ mediaType: 'a/b', digest: 'sha256:abc', size: 1 }] }, code: 'BERTH_INVALID_MANIFEST', path: 'layers[0].digest',
      message: 'layers[0].digest: "sha256:abc" is not a valid digest (hex must be 64 characters, got 3)' },
    { name: 'config missing', input: { schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }, code: 'BERTH_INVALID_MANIFEST', path: 'config', message: 'config: missing' },
    { name: 'layers missing', input: { schemaVersion: 2, mediaType: OCI_MANIFEST, config }, code: 'BERTH_INVALID_MANIFEST', path: 'layers' },
    { name: 'layers an object', input: { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: {} }, code: 'BERTH_INVALID_MANIFEST', path: 'layers' },
    { name: 'subject bad size', input: { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [], subject: { mediaType: OCI_MANIFEST, digest: B, size: -3 } }, code: 'BERTH_INVALID_MANIFEST', path: 'subject.size' },
    { name: 'annotation not a string', input: { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [], annotations: { a: 1 } }, code: 'BERTH_INVALID_MANIFEST', path: 'annotations.a' },
    { name: 'bad artifactType', input: { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [], artifactType: 'nope' }, code: 'BERTH_INVALID_MANIFEST', path: 'artifactType' },
    { name: 'index entry platform without architecture', input: { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: A, size: 1, platform: { os: 'linux' } }] }, code: 'BERTH_INVALID_INDEX', path: 'manifests[0].platform.architecture' },
    { name: 'manifests missing with index media type', input: { schemaVersion: 2, mediaType: OCI_INDEX }, code: 'BERTH_INVALID_INDEX', path: 'manifests' },
    { name: 'manifests a string', input: { schemaVersion: 2, mediaType: OCI_INDEX, manifests: 'x' }, code: 'BERTH_INVALID_INDEX', path: 'manifests' },
    { name: 'bad JSON names what', input: '{"schemaVersion": 2,', code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid JSON at line 1, column 21: unexpected end of input' },
  ];
  for (const row of rows) {
    assert.throws(() => parseManifestOrIndex(enc(row.input), { what: 'doc', ...(row.mediaType ? { mediaType: row.mediaType } : {}) }), (err: unknown) => {
      assert.ok(isBerthError(err, row.code), `${row.name}: ${String(err)}`);
      if (row.path !== undefined) {
        assert.equal(err.path, row.path, row.name);
        assert.ok(err.message.startsWith(`${row.path}: `), `${row.name}: ${err.message}`);
      }
      if (row.message !== undefined) assert.equal(err.message, row.message, row.name);
      assert.equal(err.subject, 'doc', `${row.name}: subject`);
      return true;
    });
  }
  assert.throws(() => parseManifestOrIndex(enc({ schemaVersion: 1, name: 'x' }), { what: 'doc' }), (err: unknown) =>
    isBerthError(err, 'BERTH_UNSUPPORTED') && err.message.startsWith('doc: docker schema 1 manifests are deprecated and read-only'));
});

test('isAttestationManifestDescriptor', () => {
  const base = { mediaType: OCI_MANIFEST, digest: A as never, size: 1 };
  assert.ok(isAttestationManifestDescriptor({ ...base, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': B } }));
  assert.ok(!isAttestationManifestDescriptor({ ...base, annotations: { 'vnd.docker.reference.type': 'other' } }));
  assert.ok(!isAttestationManifestDescriptor(base));
});
