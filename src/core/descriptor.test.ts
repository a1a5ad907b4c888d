import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf } from './digest.js';
import { isBerthError } from './errors.js';
import { EMPTY_DESCRIPTOR, EMPTY_JSON, descriptorData, isValidMediaType, parseDescriptor, sameContent, type Descriptor } from './descriptor.js';
import { OCI_EMPTY, OCI_LAYER_GZIP } from './media-types.js';

const A = `sha256:${'a'.repeat(64)}`;
const HELLO = digestOf('hello');

test('parseDescriptor accepts valid descriptors', () => {
  const rows: { name: string; input: unknown; want: unknown }[] = [
    { name: 'minimal', input: { mediaType: OCI_LAYER_GZIP, digest: A, size: 3 }, want: { mediaType: OCI_LAYER_GZIP, digest: A, size: 3 } },
    { name: 'unknown fields dropped', input: { mediaType: 'a/b', digest: A, size: 0, extra: 1 }, want: { mediaType: 'a/b', digest: A, size: 0 } },
    { name: 'null optionals read as absent', input: { mediaType: 'a/b', digest: A, size: 0, urls: null, annotations: null, platform: null }, want: { mediaType: 'a/b', digest: A, size: 0 } },
    { name: 'every field', input: { mediaType: 'a/b', digest: HELLO, size: 5, data: 'aGVsbG8=', urls: ['https://x/y'], annotations: { k: 'v' }, artifactType: 'application/x', platform: { os: 'linux', architecture: 'arm64', variant: 'v8', 'os.version': '1', 'os.features': ['f'], features: ['ignored'] } },
      want: { mediaType: 'a/b', digest: HELLO, size: 5, data: 'aGVsbG8=', urls: ['https://x/y'], annotations: { k: 'v' }, artifactType: 'application/x', platform: { os: 'linux', architecture: 'arm64', variant: 'v8', osVersion: '1', osFeatures: ['f'] } } },
    { name: 'unregistered algorithm passes syntax only', input: { mediaType: 'a/b', digest: 'foo+bar:ABC_=', size: 1, data: 'YQ==' }, want: { mediaType: 'a/b', digest: 'foo+bar:ABC_=', size: 1, data: 'YQ==' } },
    { name: 'empty descriptor with data', input: { ...EMPTY_DESCRIPTOR }, want: EMPTY_DESCRIPTOR },
    { name: 'largest safe size', input: { mediaType: 'a/b', digest: A, size: Number.MAX_SAFE_INTEGER }, want: { mediaType: 'a/b', digest: A, size: Number.MAX_SAFE_INTEGER } },
  ];
  for (const row of rows) assert.deepEqual(parseDescriptor(row.input, 'd'), row.want, row.name);
});

test('parseDescriptor rejects bad fields, naming the path', () => {
  const base = { mediaType: 'a/b', digest: A, size: 1 };
  const rows: { name: string; input: unknown; path: string }[] = [
    { name: 'not an object', input: [], path: 'layers[2]' },
    { name: 'missing mediaType', input: { digest: A, size: 1 }, path: 'layers[2].mediaType' },
    { name: 'mediaType without slash', input: { ...base, mediaType: 'nonsense' }, path: 'layers[2].mediaType' },
    { name: 'mediaType with space', input: { ...base, mediaType: 'a/b c' }, path: 'layers[2].mediaType' },
    { name: 'empty mediaType', input: { ...base, mediaType: '' }, path: 'layers[2].mediaType' },
    { name: 'missing digest', input: { mediaType: 'a/b', size: 1 }, path: 'layers[2].digest' },
    { name: 'empty digest', input: { ...base, digest: '' }, path: 'layers[2].digest' },
    { name: 'short sha256', input: { ...base, digest: 'sha256:xyz' }, path: 'layers[2].digest' },
    { name: 'uppercase hex', input: { ...base, digest: `sha256:${'A'.repeat(64)}` }, path: 'layers[2].digest' },
    { name: 'missing size', input: { mediaType: 'a/b', digest: A }, path: 'layers[2].size' },
    { name: 'negative size', input: { ...base, size: -1 }, path: 'layers[2].size' },
    { name: 'fractional size', input: { ...base, size: 1.5 }, path: 'layers[2].size' },
    { name: 'size beyond 2^53', input: { ...base, size: 2 ** 53 }, path: 'layers[2].size' },
    { name: 'size as string', input: { ...base, size: '1' }, path: 'layers[2].size' },
    { name: 'urls not an array', input: { ...base, urls: 'http://x' }, path: 'layers[2].urls' },
    { name: 'urls with a number', input: { ...base, urls: ['http://x', 3] }, path: 'layers[2].urls[1]' },
    { name: 'annotation value not a string', input: { ...base, annotations: { a: 1 } }, path: 'layers[2].annotations.a' },
    { name: 'bad artifactType', input: { ...base, artifactType: 'x' }, path: 'layers[2].artifactType' },
    { name: 'platform without os', input: { ...base, platform: { architecture: 'amd64' } }, path: 'layers[2].platform.os' },
    { name: 'platform os.features not strings', input: { ...base, platform: { os: 'linux', architecture: 'amd64', 'os.features': [1] } }, path: 'layers[2].platform["os.features"][0]' },
    { name: 'data not base64', input: { ...base, data: 'a!==' }, path: 'layers[2].data' },
    { name: 'data unpadded', input: { ...base, data: 'YQ' }, path: 'layers[2].data' },
    { name: 'data url-safe alphabet', input: { mediaType: 'a/b', digest: A, size: 3, data: '-_-_' }, path: 'layers[2].data' },
    { name: 'data length differs from size', input: { ...base, size: 2, data: 'YQ==' }, path: 'layers[2].data' },
    { name: 'data digest differs', input: { ...base, data: 'YQ==' }, path: 'layers[2].data' },
  ];
  for (const row of rows) {
    assert.throws(() => parseDescriptor(row.input, 'layers[2]'), (err: unknown) => {
      assert.ok(isBerthError(err, 'BERTH_INVALID_DESCRIPTOR'), `${row.name}: ${String(err)}`);
      assert.equal(err.path, row.path, row.name);
      assert.ok(err.message.startsWith(`${row.path}: `), `${row.name}: ${err.message}`);
      return true;
    });
  }
});

test('parseDescriptor message for a bad digest and a caller-chosen code', () => {
  assert.throws(() => parseDescriptor({ mediaType: 'a/b', digest: 'sha256:abc', size: 1 }, 'manifests[2]', 'BERTH_INVALID_INDEX'), (err: unknown) =>
    isBerthError(err, 'BERTH_INVALID_INDEX') && err.message === 'manifests[2].digest: "sha256:abc" is not a valid digest (hex must be 64 characters, got 3)');
  assert.throws(() => parseDescriptor({ mediaType: 'a/b', digest: A, size: 1, data: 'YQ==' }, 'config'), (err: unknown) =>
    isBerthError(err, 'BERTH_INVALID_DESCRIPTOR')
    && err.message === `config.data: embedded data does not match the descriptor's digest (want ${A}, got sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb)`);
});

test('sameContent, descriptorData and the empty descriptor', () => {
  const d: Descriptor = { mediaType: 'a/b', digest: HELLO, size: 5 };
  assert.ok(sameContent(d, { ...d, annotations: { x: 'y' } }), 'annotations do not matter');
  assert.ok(!sameContent(d, { ...d, mediaType: 'a/c' }), 'media type matters');
  assert.ok(!sameContent(d, { ...d, size: 6 }), 'size matters');
  assert.equal(descriptorData(d), undefined);
  assert.deepEqual(descriptorData({ ...d, data: 'aGVsbG8=' }), new TextEncoder().encode('hello'));
  assert.equal(EMPTY_DESCRIPTOR.mediaType, OCI_EMPTY);
  assert.equal(EMPTY_DESCRIPTOR.digest, digestOf(EMPTY_JSON));
  assert.equal(EMPTY_DESCRIPTOR.digest, 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  assert.equal(EMPTY_DESCRIPTOR.size, EMPTY_JSON.length);
  assert.deepEqual(descriptorData(EMPTY_DESCRIPTOR), EMPTY_JSON);
  assert.ok(Object.isFrozen(EMPTY_DESCRIPTOR));
  assert.ok(isValidMediaType('application/vnd.oci.image.manifest.v1+json'));
  assert.ok(!isValidMediaType('application/'));
});
