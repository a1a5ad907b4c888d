/**
 * A generated image of 200,000 files: the explorer opens its root listing and pages through the
 * big directory with bounded work — one library listing per directory (cached after), pages of
 * at most LIMITS.listPageMax entries — whatever the size of the image. No timing is asserted.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LIMITS, type FilesResponse, type SearchResponse } from '../ui/api.js';
import { startExplorer, type Explorer } from '../ui/server.js';
import { api, fileEntry, manyFiles, removeDir, tempDir, writeImageLayout } from './support/ui.js';

const FILES = 200_000;
let dir: string;
let ref: string;
let explorer: Explorer;

before(async () => {
  dir = await tempDir('berth-ui-large-');
  ref = await writeImageLayout(dir, [
    { createdBy: 'ADD many files', entries: manyFiles(FILES) },
    { createdBy: 'ADD readme', entries: [fileEntry('README', 'two hundred thousand files\n')] },
  ]);
  explorer = await startExplorer({ refs: [ref] });
});

after(async () => {
  await explorer?.close();
  if (dir) await removeDir(dir);
});

test('a 200k-file image: the root listing is small and costs one listing', async () => {
  const r = await api(explorer.url, 'files', { ref, path: '/' });
  assert.equal(r.status, 200);
  const body = r.json as FilesResponse;
  assert.deepEqual(body.entries.map((e) => [e.name, e.type, e.layer]), [['README', 'file', 1], ['many', 'directory', 0]]);
  assert.equal(body.total, 2);
  assert.equal(explorer.stats.calls.listFiles, 1);
  assert.equal(explorer.stats.calls['listFiles(recursive)'], undefined, 'no whole-tree walk for a directory listing');
  assert.ok(r.bytes.length < 4096, `root listing is ${r.bytes.length} bytes`);
});

test('a 200k-file directory comes in bounded pages, listed once', async () => {
  const first = await api(explorer.url, 'files', { ref, path: '/many' });
  const page = first.json as FilesResponse;
  assert.equal(page.total, FILES);
  assert.equal(page.entries.length, LIMITS.listPage);
  assert.equal(page.entries[0]!.path, '/many/f000000');
  const asked = await api(explorer.url, 'files', { ref, path: '/many', offset: 150_000, limit: 999_999 });
  const later = asked.json as FilesResponse;
  assert.equal(later.entries.length, LIMITS.listPageMax, 'a page never exceeds the maximum, whatever is asked');
  assert.equal(later.entries[0]!.path, '/many/f150000');
  const end = (await api(explorer.url, 'files', { ref, path: '/many', offset: FILES - 3 })).json as FilesResponse;
  assert.deepEqual(end.entries.map((e) => e.name), ['f199997', 'f199998', 'f199999']);
  assert.equal(explorer.stats.calls.listFiles, 2, 'one listing for / and one for /many; pages come from the cache');
  assert.ok(asked.bytes.length < LIMITS.listPageMax * 400, `a page is ${asked.bytes.length} bytes`);
});

test('search across 200k paths returns at most the cap', async () => {
  const r = (await api(explorer.url, 'search', { ref, q: 'f1' })).json as SearchResponse;
  assert.equal(r.total, 100_000, 'f100000 … f199999');
  assert.equal(r.entries.length, LIMITS.searchMax);
  assert.equal(explorer.stats.fileIndex.builds, 1, 'listings and search share one index of the image');
});
