/**
 * Path tracing over layers from their tar-split records: whiteouts, opaque directories and
 * replaced parents give the events the OCI rules say; prebuilt indexes answer exactly as member
 * lists do; the per-process cache reads a tar-split file once, re-reads it when the file is
 * replaced, forgets it when it is gone, and stays bounded.
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isBerthError } from '../../core/errors.js';
import { drain, toBytes } from '../../io/stream.js';
import { assembledSize, disassembleTar, readTarSplit, writeTarSplit, type TarSplitRecord } from '../../tar/split.js';
import { writeTar, type TarWriteEntry } from '../../tar/writer.js';
import {
  cachedLayerIndex, clearLayerIndexCache, indexLayer, LAYER_CACHE_MAX_LAYERS, layerIndexCacheSize, layerMembers, readLayerIndex, resolvePath,
  type LayerIndex, type LayerMember, type PathResolution,
} from './trace.js';

const text = (s: string) => new TextEncoder().encode(s);
const dir = (name: string): TarWriteEntry => ({ header: { name, type: 'directory', mode: 0o755 } });
const file = (name: string, body = name): TarWriteEntry => ({ header: { name, type: 'file', mode: 0o644 }, body: text(body) });

/** The three layers traced: base, then deletions / opaque / a file over a directory, then more. */
const LAYERS: readonly (readonly TarWriteEntry[])[] = [
  [
    dir('app/'), file('app/a.txt'), file('app/old.txt'), dir('app/data/'), file('app/data/x'),
    { header: { name: 'app/link', type: 'symlink', linkname: 'a.txt' } }, dir('etc/'), file('etc/conf'), dir('./var/'), file('./var/log'),
  ],
  [
    file('app/.wh.old.txt', ''), dir('app/data/'), file('app/data/.wh..wh..opq', ''), file('app/data/y'), file('etc', 'now a file'), dir('var/'), file('var/more'),
  ],
  [
    file('app/a.txt', 'changed'), file('app/.wh.data', ''), dir('app/'), file('app/new'),
  ],
];

async function recordsOf(entries: readonly TarWriteEntry[]): Promise<{ records: TarSplitRecord[]; tarBytes: number }> {
  const records: TarSplitRecord[] = [];
  const tarBytes = await drain(disassembleTar(writeTar(entries), { onRecord: (r) => void records.push(r) }));
  return { records, tarBytes };
}

async function writeSplitFile(file: string, entries: readonly TarWriteEntry[]): Promise<void> {
  const { records } = await recordsOf(entries);
  const tmp = `${file}.new`;
  await writeFile(tmp, await toBytes(writeTarSplit(records)));
  await rename(tmp, file);
}

async function* streamOf(records: readonly TarSplitRecord[]): AsyncGenerator<TarSplitRecord> {
  yield* records;
}

function reading(file: string, counter: { reads: number }): () => AsyncIterable<TarSplitRecord> {
  return () => {
    counter.reads++;
    return readTarSplit(createReadStream(file), { what: path.basename(file) });
  };
}

/** Events as `layer action member`, for readable comparisons. */
function eventsOf(r: PathResolution): string[] {
  return r.events.map((e) => `${e.layer} ${e.action} ${e.member.path}`);
}

describe('store trace', () => {
  let work: string;
  let lists: (readonly LayerMember[])[];
  let indexes: LayerIndex[];

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-trace-'));
    lists = [];
    indexes = [];
    for (const entries of LAYERS) {
      const { records } = await recordsOf(entries);
      lists.push(await layerMembers(streamOf(records)));
      indexes.push(await readLayerIndex(streamOf(records)));
    }
  });

  after(async () => {
    clearLayerIndexCache();
    await rm(work, { recursive: true, force: true });
  });

  test('whiteouts, opaque directories and replaced parents resolve by the layer rules', () => {
    const cases: Array<[string, string[], number | undefined, number[]]> = [
      ['/app/old.txt', ['0 adds app/old.txt', '1 deletes app/.wh.old.txt'], undefined, []],
      ['app/a.txt', ['0 adds app/a.txt', '2 overrides app/a.txt'], 2, [2]],
      ['./app/data/x', ['0 adds app/data/x', '1 opaque-parent app/data/.wh..wh..opq', '2 deletes-parent app/.wh.data'], undefined, []],
      // the marker is listed in its own layer too, though it hides only what lies below
      ['/app/data/y', ['1 opaque-parent app/data/.wh..wh..opq', '1 adds app/data/y', '2 deletes-parent app/.wh.data'], undefined, []],
      ['/app/data/', ['0 adds app/data', '1 overrides app/data', '1 opaque app/data/.wh..wh..opq', '2 deletes app/.wh.data'], undefined, []],
      ['/etc/conf', ['0 adds etc/conf', '1 replaces-parent etc'], undefined, []],
      ['/etc', ['0 adds etc', '1 overrides etc'], 1, [1]],
      ['/var', ['0 adds var', '1 overrides var'], 1, [0, 1]],
      ['/var/log', ['0 adds var/log'], 0, [0]],
      ['/app', ['0 adds app', '2 overrides app'], 2, [0, 2]],
      ['/app/link', ['0 adds app/link'], 0, [0]],
      ['/nowhere/at/all', [], undefined, []],
    ];
    for (const [p, events, visible, merged] of cases) {
      const r = resolvePath(p, indexes);
      assert.deepEqual(eventsOf(r), events, p);
      assert.equal(r.visibleFrom, visible, p);
      assert.deepEqual(r.mergedFrom, merged, p);
      assert.equal(r.removedBy === undefined, visible !== undefined || events.length === 0, p);
    }
    assert.equal(resolvePath('/app/old.txt', indexes).removedBy?.member.path, 'app/.wh.old.txt');
    assert.equal(resolvePath('/etc/conf', indexes).removedBy?.action, 'replaces-parent');
  });

  test('member lists and prebuilt indexes give the same answers for every path', () => {
    const paths = new Set<string>(['/', 'missing', 'app/data/x/deeper']);
    for (const list of lists) for (const m of list) paths.add(m.path);
    for (const p of paths) assert.deepEqual(resolvePath(p, indexes), resolvePath(p, lists), p);
    // indexLayer over a list keeps the last member of a path, as the list-based lookup does
    const twice = [...lists[0]!, { ...lists[0]![1]!, size: 99 }];
    assert.equal(indexLayer(twice).byPath.get(lists[0]![1]!.path)?.size, 99);
    assert.deepEqual(resolvePath(lists[0]![1]!.path, [indexLayer(twice)]), resolvePath(lists[0]![1]!.path, [twice]));
  });

  test('an index carries the members and the size of the tar the records rebuild', async () => {
    for (const [i, entries] of LAYERS.entries()) {
      const { records, tarBytes } = await recordsOf(entries);
      assert.equal(indexes[i]!.tarSize, tarBytes);
      assert.equal(indexes[i]!.tarSize, await assembledSize(records));
      assert.deepEqual(indexes[i]!.members, lists[i]);
      assert.equal(indexes[i]!.members.length, entries.length);
    }
    assert.deepEqual(indexes[0]!.members.map((m) => [m.path, m.type]).slice(5, 7), [['app/link', 'symlink'], ['etc', 'directory']]);
  });

  test('the cache reads a file once, again when it is replaced, and not when it is gone', async () => {
    clearLayerIndexCache();
    const f = path.join(work, 'layer.tar-split.json.gz');
    await writeSplitFile(f, LAYERS[0]!);
    const counter = { reads: 0 };
    const first = await cachedLayerIndex(f, reading(f, counter));
    const again = await cachedLayerIndex(f, reading(f, counter));
    assert.equal(counter.reads, 1);
    assert.equal(again, first);
    assert.deepEqual(first.members, lists[0]);
    // concurrent lookups share one read
    clearLayerIndexCache();
    const both = await Promise.all([cachedLayerIndex(f, reading(f, counter)), cachedLayerIndex(f, reading(f, counter))]);
    assert.equal(counter.reads, 2);
    assert.equal(both[0], both[1]);

    await writeSplitFile(f, LAYERS[1]!);
    const replaced = await cachedLayerIndex(f, reading(f, counter));
    assert.equal(counter.reads, 3);
    assert.deepEqual(replaced.members, lists[1]);

    await rm(f);
    await assert.rejects(cachedLayerIndex(f, reading(f, counter)), (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT');
    assert.equal(layerIndexCacheSize(), 0);
  });

  test('a file that fails to parse is not cached', async () => {
    clearLayerIndexCache();
    const f = path.join(work, 'bad.json');
    await writeFile(f, '{"type":2,"payload":"AAAA","position":0}\n{"type":7,"position":1}\n');
    const counter = { reads: 0 };
    for (let i = 0; i < 2; i++) {
      await assert.rejects(cachedLayerIndex(f, reading(f, counter)), (err: unknown) => isBerthError(err, 'BERTH_INVALID_TAR'));
    }
    assert.equal(counter.reads, 2);
    assert.equal(layerIndexCacheSize(), 0);
  });

  test('the cache holds a bounded number of layers, dropping the least recently used', async () => {
    clearLayerIndexCache();
    const files: string[] = [];
    for (let i = 0; i < LAYER_CACHE_MAX_LAYERS + 3; i++) {
      const f = path.join(work, `many-${i}.json.gz`);
      await writeSplitFile(f, [file(`f${i}`)]);
      files.push(f);
    }
    const counter = { reads: 0 };
    await cachedLayerIndex(files[0]!, reading(files[0]!, counter));
    for (const f of files.slice(1)) {
      await cachedLayerIndex(f, reading(f, counter));
      // the first stays the most recently used, so others go before it
      await cachedLayerIndex(files[0]!, reading(files[0]!, counter));
    }
    assert.equal(layerIndexCacheSize(), LAYER_CACHE_MAX_LAYERS);
    assert.equal(counter.reads, files.length);
    await cachedLayerIndex(files[0]!, reading(files[0]!, counter));
    await cachedLayerIndex(files.at(-1)!, reading(files.at(-1)!, counter));
    assert.equal(counter.reads, files.length);
    await cachedLayerIndex(files[1]!, reading(files[1]!, counter));
    assert.equal(counter.reads, files.length + 1);
  });
});
