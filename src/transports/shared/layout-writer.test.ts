import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isBerthError } from '../../core/errors.js';
import type { Digest } from '../../core/digest.js';
import { toBytes } from '../../io/stream.js';
import { BlobDirectory, mergeIndex, refAnnotations, repoTag, TarAppender, tarStream } from './layout-writer.js';

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

test('BlobDirectory streams chunks of any size in order, and leaves nothing behind a failed source', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-blobdir-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // 11 MiB in chunks from 1 byte to 300 KiB: several batches, some written while later ones are read
  const data = randomBytes(11 * 1024 * 1024 + 17);
  const cuts: Uint8Array[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.min(data.length - at, [1, 7, 65536, 300 * 1024, 16384, 0][i % 6]!);
    cuts.push(data.subarray(at, at + n));
    at += n;
  }
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
  const blobs = new BlobDirectory(dir, { where: 'test layout', fsync: false });
  async function* slow(parts: readonly Uint8Array[], failAt?: number) {
    for (const [i, p] of parts.entries()) {
      if (i === failAt) throw new Error('source broke');
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      yield p;
    }
  }
  await t.test('the file holds the bytes in order', async () => {
    await blobs.put({ mediaType: 'application/octet-stream', digest, size: data.length }, slow(cuts));
    assert.ok(Buffer.from(await readFile(blobs.filePath(digest))).equals(data));
  });
  await t.test('a source failing after several batches leaves no temp file and no blob', async () => {
    const other = `sha256:${'c'.repeat(64)}` as Digest;
    await assert.rejects(blobs.put({ mediaType: 'application/octet-stream', digest: other, size: data.length }, slow(cuts, cuts.length - 3)), /source broke/);
    assert.deepEqual(await readdir(path.join(dir, 'tmp')), []);
    await assert.rejects(readFile(blobs.filePath(other)), { code: 'ENOENT' });
  });
  await t.test('wrong bytes are refused at the end', async () => {
    const wrong = [...cuts.slice(0, -1), Buffer.alloc(cuts.at(-1)!.length)];
    await assert.rejects(blobs.put({ mediaType: 'application/octet-stream', digest, size: data.length }, slow(wrong)), (err: unknown) => isBerthError(err) && err.code === 'BERTH_DIGEST_MISMATCH');
    assert.deepEqual(await readdir(path.join(dir, 'tmp')), []);
  });
});

test('TarAppender: each append extends one archive, a failed append is cut off, publish renames it', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-appender-'));
  try {
    const file = path.join(dir, 'archive.tar');
    const target = path.join(dir, 'out.tar');
    const a = await TarAppender.create(file);
    const body = randomBytes(3000);
    async function* chunks(fail: boolean): AsyncIterable<Uint8Array> {
      yield body.subarray(0, 1000);
      if (fail) throw new Error('source broke');
      yield body.subarray(1000);
    }
    await a.append([{ name: 'd', type: 'directory' }, { name: 'd/one', type: 'file', stream: chunks(false), size: body.length }]);
    const good = a.size;
    await assert.rejects(a.append([{ name: 'd/two', type: 'file', stream: chunks(true), size: body.length }]), /source broke/);
    assert.equal(a.size, good);
    assert.equal((await readFile(file)).length, good, 'the failed member is gone');
    await assert.rejects(a.append([{ name: 'd/short', type: 'file', stream: chunks(false), size: body.length + 1 }]), (err) => isBerthError(err) && err.code === 'BERTH_SIZE_MISMATCH');
    await a.append([{ name: 'last', type: 'file', bytes: new Uint8Array([1, 2, 3]) }]);
    await a.publish(target, { fsync: false });
    assert.deepEqual(await readdir(dir), ['out.tar']);
    // the same members written in one go give the same bytes
    const whole = await toBytes(tarStream([
      { name: 'd', type: 'directory' }, { name: 'd/one', type: 'file', bytes: body }, { name: 'last', type: 'file', bytes: new Uint8Array([1, 2, 3]) },
    ]));
    assert.ok(Buffer.from(await readFile(target)).equals(Buffer.from(whole)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
