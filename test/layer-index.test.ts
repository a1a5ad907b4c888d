/**
 * The file index cache through the public library: cached listings, searches, reads and layer
 * tables equal uncached ones (whiteouts and opaque directories honoured, per-entry source layer),
 * and an index is keyed by the image's manifest digest and layer count, never by the reference:
 * two images never share one, even when one replaces the other at the same path.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FileIndexCache, layersOf, listFiles, readFile, searchFiles } from '../src/index.js';
import { toBytes } from '../src/io/stream.js';
import { dirEntry, fileEntry, removeDir, tempDir, writeImageLayout, type LayerSpec } from './support/ui.js';

const IMAGE_A: LayerSpec[] = [
  { createdBy: 'base', entries: [dirEntry('etc/'), fileEntry('etc/hosts', 'h'), fileEntry('etc/passwd', 'root'), dirEntry('app/'), fileEntry('app/old', 'o'), fileEntry('app/sub/x', 'x')] },
  { createdBy: 'change', entries: [fileEntry('etc/.wh.hosts', ''), fileEntry('app/.wh..wh..opq', ''), fileEntry('app/new', 'n'), fileEntry('etc/passwd', 'root2')] },
];
const IMAGE_B: LayerSpec[] = [
  { createdBy: 'other', entries: [dirEntry('srv/'), fileEntry('srv/data', 'b-data'), fileEntry('etc/passwd', 'b')] },
];

let dir: string;
let refA: string;
let refB: string;

before(async () => {
  dir = await tempDir('berth-layer-index-');
  refA = await writeImageLayout(path.join(dir, 'a'), IMAGE_A);
  refB = await writeImageLayout(path.join(dir, 'b'), IMAGE_B);
});

after(async () => {
  if (dir) await removeDir(dir);
});

const show = (r: { entries: ReadonlyArray<{ path: string; type: string; layer: number; size: number }> }): string[] => r.entries.map((e) => `${e.path} ${e.type} L${e.layer} ${e.size}`);

test('cached listings, searches and layer tables equal uncached ones', async () => {
  const cache = new FileIndexCache();
  for (const opts of [{ recursive: true }, { path: '/app' }, { path: '/etc/' }, { recursive: true, layer: 0 }, { path: '/app', layer: 0 }]) {
    const plain = await listFiles(refA, opts);
    const cached = await listFiles(refA, { ...opts, fileIndexCache: cache });
    const again = await listFiles(refA, { ...opts, fileIndexCache: cache });
    assert.deepEqual(cached, plain, JSON.stringify(opts));
    assert.deepEqual(again, plain, JSON.stringify(opts));
  }
  assert.deepEqual(show(await listFiles(refA, { recursive: true, fileIndexCache: cache })), [
    '/app directory L1 0', '/app/new file L1 1', '/etc directory L0 0', '/etc/passwd file L1 5',
  ], 'the whiteout removes etc/hosts, the opaque marker hides app/old and app/sub');
  assert.deepEqual(show(await listFiles(refA, { path: '/app', layer: 0, fileIndexCache: cache })), ['/app/old file L0 1', '/app/sub directory L0 0']);
  assert.deepEqual(cache.stats, { builds: 2, hits: 10 }, 'one index per layer count, then hits only');
  assert.deepEqual(await layersOf(refA, { fileIndexCache: cache }), await layersOf(refA));
  assert.deepEqual(await searchFiles(refA, 'PASS', { fileIndexCache: cache }), await searchFiles(refA, 'pass'.toUpperCase()));
  assert.equal((await searchFiles(refA, 'e', { limit: 1 })).entries.length, 1);
  assert.equal((await searchFiles(refA, 'e', { limit: 1 })).total, 3);
  const f = await readFile(refA, '/etc/passwd', { fileIndexCache: cache });
  assert.equal(Buffer.from(await toBytes(f.stream)).toString(), 'root2');
  assert.equal(f.layer, 1);
  assert.equal(cache.stats.builds, 2);
});

test('two images never share an index, even at the same reference', async () => {
  const cache = new FileIndexCache(4);
  const a = await listFiles(refA, { recursive: true, fileIndexCache: cache });
  const b = await listFiles(refB, { recursive: true, fileIndexCache: cache });
  assert.deepEqual(b, await listFiles(refB, { recursive: true }));
  assert.notDeepEqual(show(a), show(b));
  assert.equal(cache.stats.builds, 2);
  // Replace the layout behind one reference with another image: the new manifest digest is a new key.
  const moving = path.join(dir, 'moving');
  const ref = await writeImageLayout(moving, IMAGE_A);
  assert.deepEqual(await listFiles(ref, { recursive: true, fileIndexCache: cache }), { ...a, reference: (await listFiles(ref)).reference });
  assert.equal(cache.stats.builds, 2, 'same manifest digest as image A: its index is reused');
  await rm(moving, { recursive: true });
  await writeImageLayout(moving, IMAGE_B);
  const now = await listFiles(ref, { recursive: true, fileIndexCache: cache });
  assert.deepEqual(show(now), show(b), 'the new image is listed, not the cached one');
  assert.equal(Buffer.from(await toBytes((await readFile(ref, '/etc/passwd', { fileIndexCache: cache })).stream)).toString(), 'b');
  assert.equal(cache.stats.builds, 2, 'image B was indexed already');
});
