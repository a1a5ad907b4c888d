import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBerthError } from '../core/errors.js';
import { configMediaType, layerMediaType } from './plan.js';

const OCI = 'application/vnd.oci.image.layer.v1.tar';
const DOCKER_GZ = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

test('layer media types for a family and compression', async (t) => {
  const rows: Array<{ name: string; from: string; family: 'oci' | 'docker'; c: [ 'none' | 'gzip' | 'zstd', 'none' | 'gzip' | 'zstd'] ; want: string }> = [
    { name: 'unchanged keeps the exact string', from: 'application/vnd.docker.image.rootfs.diff.tar.zstd', family: 'docker', c: ['zstd', 'zstd'], want: 'application/vnd.docker.image.rootfs.diff.tar.zstd' },
    { name: 'docker gzip → oci gzip', from: DOCKER_GZ, family: 'oci', c: ['gzip', 'gzip'], want: `${OCI}+gzip` },
    { name: 'oci gzip → docker gzip', from: `${OCI}+gzip`, family: 'docker', c: ['gzip', 'gzip'], want: DOCKER_GZ },
    { name: 'oci gzip recompressed to zstd', from: `${OCI}+gzip`, family: 'oci', c: ['gzip', 'zstd'], want: `${OCI}+zstd` },
    { name: 'uncompressed in docker', from: OCI, family: 'docker', c: ['none', 'none'], want: 'application/vnd.docker.image.rootfs.diff.tar' },
    { name: 'foreign docker layer → oci non-distributable', from: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', family: 'oci', c: ['gzip', 'gzip'], want: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip' },
    { name: 'a non-layer blob is never renamed', from: 'application/vnd.in-toto+json', family: 'docker', c: ['gzip', 'none'], want: 'application/vnd.in-toto+json' },
  ];
  for (const row of rows) {
    await t.test(row.name, () => assert.equal(layerMediaType(row.from, row.family, row.c[0], row.c[1]), row.want));
  }
  await t.test('zstd cannot be expressed in docker schema 2', () => {
    assert.throws(() => layerMediaType(`${OCI}+gzip`, 'docker', 'gzip', 'zstd'), (err) => isBerthError(err, 'BERTH_UNSUPPORTED'));
  });
});

test('config media types follow the family; other configs stay', () => {
  assert.equal(configMediaType('application/vnd.docker.container.image.v1+json', 'oci'), 'application/vnd.oci.image.config.v1+json');
  assert.equal(configMediaType('application/vnd.oci.image.config.v1+json', 'docker'), 'application/vnd.docker.container.image.v1+json');
  assert.equal(configMediaType('application/vnd.oci.empty.v1+json', 'docker'), 'application/vnd.oci.empty.v1+json');
});
