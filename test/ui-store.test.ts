/**
 * The explorer's Store view API on a data root made here with `berth load` of the bundled sample:
 * the image list, the trace walk and "where on disk is this file?" agree with the library (and
 * with the files on disk), bad input gets a clear JSON error, and the explorer reads its own root
 * only (no store:[ROOT] names, no path that climbs out).
 */
import assert from 'node:assert/strict';
import { readFile as readFs, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listStoreImages, loadImages, parsePlatform, readFile, traceStore, treeOf } from '../src/index.js';
import type { ApiError, RefsResponse, StoreImagesResponse, StorePathResponse, StoreTraceResponse } from '../ui/api.js';
import { sampleReference, startExplorer, type Explorer } from '../ui/server.js';
import { api, removeDir, tempDir } from './support/ui.js';

const SAMPLE = sampleReference();
const NAME = 'berth-sample:latest';

function errorOf(json: unknown): ApiError['error'] {
  const e = (json as ApiError).error;
  assert.ok(e !== undefined, `expected a JSON error, got ${JSON.stringify(json)}`);
  assert.ok(e.message.length > 0);
  return e;
}

async function text(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

describe('explorer store API', () => {
  let dir: string;
  let root: string;
  let explorer: Explorer;
  let base: string;

  before(async () => {
    dir = await tempDir('berth-ui-store-');
    root = path.join(dir, 'root');
    await loadImages(SAMPLE, { root, fsync: false, platform: parsePlatform('linux/amd64') });
    explorer = await startExplorer({ storeRoot: root });
    base = explorer.url;
  });
  after(async () => {
    await explorer.close();
    await removeDir(dir);
  });

  test('images: the rows of `berth images` for the explorer\'s root', async () => {
    const r = await api(base, 'store/images');
    assert.equal(r.status, 200);
    const body = r.json as StoreImagesResponse;
    const lib = await listStoreImages({ root });
    assert.equal(body.root, root);
    assert.equal(body.driver, 'overlay2');
    assert.equal(body.total, 1);
    assert.equal(body.truncated, false);
    assert.deepEqual(body.images.map((i) => [i.repository, i.tag, i.name, i.id, i.size, i.layers, i.created]), [
      ['berth-sample', 'latest', NAME, lib.images[0]!.id, lib.images[0]!.size, 3, lib.images[0]!.created],
    ]);
  });

  test('refs: the store\'s images are listed as store:[ROOT]NAME and open in the other views', async () => {
    const refs = (await api(base, 'refs')).json as RefsResponse;
    assert.equal(refs.store.available, true);
    assert.equal(refs.store.root, root);
    const mine = refs.refs.find((x) => x.source === 'store');
    assert.equal(mine?.ref, `store:[${root}]${NAME}`);
    const tree = await api(base, 'tree', { ref: mine.ref });
    assert.equal(tree.status, 200);
    assert.deepEqual(tree.json, JSON.parse(JSON.stringify(await treeOf(mine.ref))));
  });

  test('trace: name → repositories.json → imagedb config → each layer\'s layerdb and driver directory, real paths', async () => {
    const r = await api(base, 'store/trace', { name: NAME });
    assert.equal(r.status, 200);
    const body = r.json as StoreTraceResponse;
    const { path: _none, ...lib } = await traceStore(NAME, { root });
    assert.deepEqual(body, JSON.parse(JSON.stringify({ ...lib, truncated: false })));
    assert.equal(body.resolution.via, 'repositories.json');
    assert.ok(body.resolution.via === 'repositories.json' && body.resolution.file.endsWith('/repositories.json'));
    const repos = JSON.parse(await readFs(path.join(root, body.resolution.file), 'utf8')) as { Repositories: Record<string, Record<string, string>> };
    assert.equal(repos.Repositories['berth-sample']?.[NAME], body.image.id);
    assert.equal((await stat(path.join(root, body.image.config))).size, body.image.configSize);
    assert.equal(body.layers.length, 3);
    assert.equal(body.layers[0]!.chainId, body.layers[0]!.diffId);
    for (const l of body.layers) {
      assert.ok(l.exists && l.filesExist && l.diffMatches, JSON.stringify(l));
      assert.equal(await readFs(path.join(root, l.layerdb, 'cache-id'), 'utf8'), l.cacheId);
      assert.equal(l.files, `overlay2/${l.cacheId}/diff`);
      assert.ok((await stat(path.join(root, l.files))).isDirectory());
      if (l.index > 0) assert.equal(l.parent, body.layers[l.index - 1]!.chainId);
    }
    // by ID and by ID prefix too
    const byId = (await api(base, 'store/trace', { name: body.image.id })).json as StoreTraceResponse;
    assert.equal(byId.resolution.via, 'id');
    assert.equal(byId.image.id, body.image.id);
    assert.equal((await api(base, 'store/trace', { name: body.image.id.slice('sha256:'.length, 'sha256:'.length + 12) })).status, 200);
  });

  test('path: the layer that provides a file, and where it lies on disk (same bytes as the image)', async () => {
    const r = await api(base, 'store/path', { name: NAME, path: '/etc/greeting' });
    assert.equal(r.status, 200);
    const body = r.json as StorePathResponse;
    const want = await readFile(SAMPLE, '/etc/greeting', { platform: parsePlatform('linux/amd64') });
    assert.equal(body.path.visibleFrom, want.layer);
    assert.deepEqual(body.path.events.map((e) => [e.layer, e.action]), [[0, 'adds'], [1, 'overrides']]);
    assert.equal(body.file, path.join(root, body.path.onDisk!));
    assert.ok(body.path.onDisk!.startsWith(`${body.layers[want.layer]!.files}/`));
    assert.equal(await readFs(body.file!, 'utf8'), await text(want.stream));
  });

  test('path: upper layers that delete (whiteout) or hide (opaque directory) a file', async () => {
    const del = (await api(base, 'store/path', { name: NAME, path: '/data/remove-me.txt' })).json as StorePathResponse;
    assert.equal(del.path.visibleFrom, undefined);
    assert.equal(del.file, undefined);
    assert.equal(del.path.removedBy?.action, 'deletes');
    assert.equal(del.path.removedBy?.member, 'data/.wh.remove-me.txt');
    if (process.getuid?.() === 0) assert.equal(del.path.removedBy?.disk?.kind, 'whiteout', 'as root, load writes overlay2 whiteouts (char 0/0)');
    const opq = (await api(base, 'store/path', { name: NAME, path: '/data/old/a.txt' })).json as StorePathResponse;
    assert.equal(opq.path.removedBy?.action, 'opaque-parent');
    assert.equal(opq.path.removedBy?.layer, 2);
    const none = (await api(base, 'store/path', { name: NAME, path: '/no/such/file' })).json as StorePathResponse;
    assert.deepEqual([none.path.events, none.path.visibleFrom, none.path.removedBy], [[], undefined, undefined]);
  });

  test('bad input: clear JSON errors', async () => {
    const cases: Array<[string, Record<string, string>, number, string]> = [
      ['store/trace', {}, 400, 'BAD_REQUEST'],
      ['store/trace', { name: 'no-such-image:1' }, 404, 'BERTH_NOT_FOUND'],
      ['store/trace', { name: 'sha256:0000000000000000000000000000000000000000000000000000000000000000' }, 404, 'BERTH_NOT_FOUND'],
      ['store/trace', { name: `store:[${dir}]x` }, 400, 'BAD_REQUEST'],
      ['store/trace', { name: '[/etc]passwd' }, 400, 'BAD_REQUEST'],
      ['store/trace', { name: '../../etc/passwd' }, 400, 'BERTH_INVALID_REFERENCE'],
      ['store/trace', { name: 'a b' }, 400, 'BERTH_INVALID_REFERENCE'],
      ['store/trace', { name: 'x'.repeat(600) }, 400, 'BAD_REQUEST'],
      ['store/path', { name: NAME }, 400, 'BAD_REQUEST'],
      ['store/path', { name: NAME, path: 'etc/greeting' }, 400, 'BAD_PATH'],
      ['store/path', { name: NAME, path: '/../../etc/passwd' }, 400, 'BAD_PATH'],
      ['store/path', { name: NAME, path: '/etc/../../../etc/shadow' }, 400, 'BAD_PATH'],
      ['store/path', { name: 'no-such-image', path: '/etc/greeting' }, 404, 'BERTH_NOT_FOUND'],
      ['store/nothing', {}, 404, 'NOT_FOUND'],
    ];
    for (const [route, q, status, code] of cases) {
      const r = await api(base, route, q);
      assert.equal(r.status, status, `${route} ${JSON.stringify(q)}: ${JSON.stringify(r.json)}`);
      assert.equal(errorOf(r.json).code, code, `${route} ${JSON.stringify(q)}`);
    }
    const noHeader = await api(base, 'store/images', {}, {});
    assert.equal(noHeader.status, 403);
  });

  test('a root that is not there: the list says so, as JSON', async () => {
    const other = await startExplorer({ storeRoot: path.join(dir, 'absent') });
    try {
      const r = await api(other.url, 'store/images');
      assert.equal(r.status, 404);
      assert.match(errorOf(r.json).message, /no such directory/);
      const refs = (await api(other.url, 'refs')).json as RefsResponse;
      assert.equal(refs.store.available, false);
    } finally {
      await other.close();
    }
  });
});
