/** The layer engine on real images from other projects' test data (docs: fixtures CATALOG.md). */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readFile as readHostFile, readdir, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { diffImages, exportFlattened, isBerthError, layersOf, listFiles, readFile, unpack } from '../src/index.js';
import { readTar } from '../src/tar/reader.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const REAL = path.resolve(repoRoot, '../shared/fixtures/real');
const TMP_BASE = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

const DIVE = 'wagoodman__dive/.data/test-docker-image.tar';
const DIVE_KANIKO = 'wagoodman__dive/.data/test-kaniko-image.tar';
const WHITEOUT_DIR = 'google__go-containerregistry/pkg/v1/mutate/testdata/whiteout_dir.tar';
const WHITEOUT_IMAGE = 'google__go-containerregistry/pkg/v1/mutate/testdata/whiteout_image.tar';
const SYMLINK_ATTACK = 'google__osv-scalibr/artifact/image/layerscanning/image/testdata/symlink-attack.tar';
const SYMLINK_CYCLE = 'google__osv-scalibr/artifact/image/layerscanning/image/testdata/symlink-cycle.tar';

function fixture(t: TestContext, rel: string): string | undefined {
  const file = path.join(REAL, rel);
  if (existsSync(file)) return `docker-archive:${file}`;
  if (process.env.CI === 'true') assert.fail(`fixture missing: ${file}`);
  t.skip(`fixture not present: ${rel}`);
  return undefined;
}

async function text(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

async function tempDir(t: TestContext): Promise<string> {
  const d = await mkdtemp(path.join(TMP_BASE, 'berth-layer-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** Relative paths of a directory tree with a type letter. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const s = await lstat(path.join(dir, p));
      out.push(s.isDirectory() ? `${p}/` : s.isSymbolicLink() ? `${p} -> ${await readlink(path.join(dir, p))}` : p);
      if (s.isDirectory()) await walk(p);
    }
  };
  await walk('');
  return out;
}

test('dive test image: 14 layers, whiteouts root/example/.wh.somefile3.txt and root/.wh.example, wasted bytes', async (t) => {
  const ref = fixture(t, DIVE);
  if (ref === undefined) return;
  const r = await layersOf(ref);
  assert.equal(r.layers.length, 14);
  // Every diff_id was checked while reading; uncompressed sizes are the tar sizes (plain tar layers).
  for (const l of r.layers) assert.equal(l.uncompressedSize, l.size);
  const mv = r.layers[7]!;
  assert.match(mv.history?.createdBy ?? '', /mv \/root\/example\/somefile3.txt \/root\/saved.txt/);
  assert.equal(mv.whiteouts, 1);
  assert.equal(mv.filesDeleted, 1);
  const rmLayer = r.layers[9]!;
  assert.match(rmLayer.history?.createdBy ?? '', /rm -rf \/root\/example/);
  assert.equal(rmLayer.whiteouts, 1);
  // root/example held: really/, really/nested/, somefile1.txt, somefile2.txt, and itself.
  assert.equal(rmLayer.filesDeleted, 5);
  // Layers 3–7 each store a 6405-byte copy that a later layer deletes or overwrites.
  assert.deepEqual(r.layers.map((l) => l.wastedBytes), [0, 0, 0, 6405, 6405, 6405, 6405, 6405, 0, 0, 0, 0, 0, 0]);
  assert.equal(r.totals.wastedBytes, 5 * 6405);

  const root = await listFiles(ref, { path: '/root', recursive: true });
  assert.deepEqual(root.entries.map((e) => `${e.path} L${e.layer}`), [
    '/root/.data L12', '/root/.data/saved.again2.txt L12', '/root/.data/tag.sh L10', '/root/.data/test.sh L10', '/root/.saved.txt L8', '/root/saved.txt L13',
  ]);
  assert.equal(root.entries.find((e) => e.path === '/root/saved.txt')!.mode, 0o755);
  // As of layer 6, the example directory is still there.
  const early = await listFiles(ref, { path: '/root/example', layer: 6 });
  assert.deepEqual(early.entries.map((e) => e.path), ['/root/example/really', '/root/example/somefile1.txt', '/root/example/somefile2.txt', '/root/example/somefile3.txt']);
  assert.equal(early.entries[1]!.mode, 0o444);

  const file = await readFile(ref, '/root/saved.txt');
  assert.equal(file.size, 6405);
  assert.equal(file.layer, 13);
  assert.match(await text(file.stream), /^# dive/);
});

test('dive: the docker and kaniko builds of the same Dockerfile differ only where expected', async (t) => {
  const a = fixture(t, DIVE);
  const b = fixture(t, DIVE_KANIKO);
  if (a === undefined || b === undefined) return;
  const d = await diffImages(a, b);
  // Same whiteouts applied: neither has /root/example.
  assert.ok(!d.added.some((e) => e.path.startsWith('/root/example')));
  assert.ok(!d.removed.some((e) => e.path.startsWith('/root/example')));
  const saved = d.modified.find((e) => e.path === '/root/saved.txt');
  assert.ok(saved?.changes?.includes('content'));
  assert.match(saved!.before!.digest!, /^sha256:[0-9a-f]{64}$/);
  assert.equal(d.summary.added, d.added.length);
  // An image compared with itself: no reads of bodies needed, nothing differs.
  const same = await diffImages(a, a);
  assert.deepEqual([same.added.length, same.removed.length, same.modified.length], [0, 0, 0]);
});

test('ggcr whiteout_dir.tar: flattening gives exactly a/baz and b/bar', async (t) => {
  const ref = fixture(t, WHITEOUT_DIR);
  if (ref === undefined) return;
  const names: string[] = [];
  for await (const e of readTar(exportFlattened(ref))) {
    names.push(e.header.name);
    assert.ok(!e.header.name.includes('.wh.'), `marker in the output: ${e.header.name}`);
  }
  assert.deepEqual(names.filter((n) => !n.endsWith('/')).sort(), ['a/baz', 'b/bar']);
  assert.deepEqual(names.filter((n) => n.endsWith('/')).sort(), ['a/', 'b/']);
  const dir = await tempDir(t);
  await unpack(ref, dir, { force: true });
  assert.deepEqual(await tree(dir), ['a/', 'a/baz', 'b/', 'b/bar']);
});

test('ggcr whiteout_image.tar: the "./.wh.foo.txt" whiteout and an all-zero layer', async (t) => {
  const ref = fixture(t, WHITEOUT_IMAGE);
  if (ref === undefined) return;
  const r = await layersOf(ref);
  assert.deepEqual(r.layers.map((l) => [l.whiteouts, l.filesDeleted]), [[0, 0], [1, 1], [0, 0]]);
  assert.equal(r.layers[2]!.entries, 0);
  const ls = await listFiles(ref, { recursive: true });
  assert.deepEqual(ls.entries.map((e) => e.path), ['/bar.txt']);
  const before = await listFiles(ref, { layer: 0 });
  assert.deepEqual(before.entries.map((e) => e.path).sort(), ['/bar.txt', '/foo.txt']);
  await assert.rejects(readFile(ref, '/foo.txt'), (e: unknown) => isBerthError(e, 'BERTH_NOT_FOUND'));
});

test('osv-scalibr symlink-attack.tar: symlinks that climb out resolve inside the image, and unpack keeps them as links', async (t) => {
  const ref = fixture(t, SYMLINK_ATTACK);
  if (ref === undefined) return;
  const ls = await listFiles(ref, { path: '/dir1', recursive: true });
  assert.deepEqual(ls.entries.map((e) => `${e.path} -> ${e.linkTarget}`), [
    '/dir1/attack-symlink-absolute.txt -> /../secret.txt',
    '/dir1/attack-symlink.txt -> ../../secret.txt',
  ]);
  // Both resolve to /secret.txt inside the image, which does not exist: never to a host file.
  for (const p of ['/dir1/attack-symlink.txt', '/dir1/attack-symlink-absolute.txt']) {
    await assert.rejects(readFile(ref, p), (e: unknown) => isBerthError(e, 'BERTH_NOT_FOUND') && /no /.test(e.message));
  }
  const dir = await tempDir(t);
  const box = path.join(dir, 'root');
  await unpack(ref, box);
  assert.equal(await readlink(path.join(box, 'dir1/attack-symlink.txt')), '../../secret.txt');
  assert.deepEqual(await readdir(dir), ['root']);
});

test('osv-scalibr symlink-cycle.tar: reading through the cycle is BERTH_LIMIT', async (t) => {
  const ref = fixture(t, SYMLINK_CYCLE);
  if (ref === undefined) return;
  await assert.rejects(readFile(ref, '/dir1/sample.txt'), (e: unknown) => isBerthError(e, 'BERTH_LIMIT') && /too many levels of symbolic links/.test(e.message));
  const ls = await listFiles(ref, { path: '/dir1/sample.txt' });
  assert.equal(ls.entries[0]!.type, 'symlink');
  const dir = await tempDir(t);
  await unpack(ref, dir, { force: true });
  assert.equal(await readlink(path.join(dir, 'dir1/sample.txt')), '/dir1/chain-symlink.txt');
  assert.equal(await readHostFile(path.join(dir, 'dir1/sample.txt'), 'utf8').catch((e: NodeJS.ErrnoException) => e.code), 'ENOENT');
});
