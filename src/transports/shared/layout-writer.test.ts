import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBerthError } from '../../core/errors.js';
import { mergeIndex, refAnnotations, repoTag } from './layout-writer.js';

const A = 'sha256:' + 'a'.repeat(64);
const B = 'sha256:' + 'b'.repeat(64);
const entry = (digest: string, name?: string) => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1,
  ...(name ? { annotations: { 'org.opencontainers.image.ref.name': name } } : {}),
});
const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const names = (b: Uint8Array) => (JSON.parse(new TextDecoder().decode(b)) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> })
  .manifests.map((m) => `${m.annotations?.['org.opencontainers.image.ref.name'] ?? '-'}=${m.digest.slice(7, 8)}`);

test('index.json names: both keys for full references (formats.md 4.3)', async (t) => {
  const rows = [
    { name: 'a bare word is only a ref.name', input: 'latest', style: 'oci' as const, want: { 'org.opencontainers.image.ref.name': 'latest' } },
    { name: 'skopeo style keeps the name as given', input: 'bb:2', style: 'oci' as const, want: { 'io.containerd.image.name': 'docker.io/library/bb:2', 'org.opencontainers.image.ref.name': 'bb:2' } },
    { name: 'docker 25 style keeps the tag', input: 'localhost:5000/team/bb:v3', style: 'docker' as const, want: { 'io.containerd.image.name': 'localhost:5000/team/bb:v3', 'org.opencontainers.image.ref.name': 'v3' } },
    { name: 'not a docker reference: ref.name only', input: 'Weird:Name', style: 'oci' as const, want: { 'org.opencontainers.image.ref.name': 'Weird:Name' } },
  ];
  for (const row of rows) await t.test(row.name, () => assert.deepEqual(refAnnotations(row.input, row.style), row.want));
});

test('RepoTags from names', () => {
  assert.equal(repoTag('docker.io/library/app:1'), 'app:1');
  assert.equal(repoTag('app'), 'app:latest');
  assert.equal(repoTag('app@' + A), undefined);
});

test('mergeIndex adds, keeps, refuses and replaces names', async (t) => {
  const existing = bytes({ schemaVersion: 2, manifests: [entry(A, 'one'), entry(B)], annotations: { keep: 'me' } });
  await t.test('a new name is appended, unknown fields kept', () => {
    const out = mergeIndex(existing, [entry(B, 'two')], { overwrite: false, where: 'x' });
    assert.deepEqual(names(out), ['one=a', '-=b', 'two=b']);
    assert.match(new TextDecoder().decode(out), /"keep":"me"/);
  });
  await t.test('the same digest under the same name is a no-op', () => {
    assert.deepEqual(names(mergeIndex(existing, [entry(A, 'one')], { overwrite: false, where: 'x' })), ['one=a', '-=b']);
  });
  await t.test('a taken name is refused', () => {
    assert.throws(() => mergeIndex(existing, [entry(B, 'one')], { overwrite: false, where: 'x' }), (err) => isBerthError(err, 'BERTH_EXISTS'));
  });
  await t.test('a taken name is replaced with overwrite', () => {
    assert.deepEqual(names(mergeIndex(existing, [entry(B, 'one')], { overwrite: true, where: 'x' })), ['-=b', 'one=b']);
  });
  await t.test('an unnamed duplicate is not added twice', () => {
    assert.deepEqual(names(mergeIndex(existing, [entry(B)], { overwrite: false, where: 'x' })), ['one=a', '-=b']);
  });
});
