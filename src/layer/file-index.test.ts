import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toBytes, type ByteStream } from '../io/stream.js';
import { writeTar, type TarWriteEntry } from '../tar/writer.js';
import { FileIndex, FileIndexBuilder, FileIndexCache } from './file-index.js';
import { flattenIndex, flattenUnion, wantedEntries } from './flatten.js';
import { LayerUnion } from './union.js';

type E = { name: string; type?: TarWriteEntry['header']['type']; body?: string; linkname?: string; mode?: number; uid?: number; devmajor?: number };

function layer(entries: readonly E[]): ByteStream {
  return writeTar(entries.map((e): TarWriteEntry => {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    return {
      header: {
        name: e.name, type, ...(e.linkname !== undefined ? { linkname: e.linkname } : {}), ...(e.mode !== undefined ? { mode: e.mode } : {}),
        ...(e.uid !== undefined ? { uid: e.uid } : {}), ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: 7 } : {}),
      },
      ...(type === 'file' ? { body: new TextEncoder().encode(e.body ?? '') } : {}),
    };
  }));
}

async function build(layers: ReadonlyArray<readonly E[]>): Promise<{ union: LayerUnion; ix: FileIndex }> {
  const union = new LayerUnion();
  const b = new FileIndexBuilder();
  for (const l of layers) {
    await union.addLayer(layer(l));
    await b.addLayer(layer(l));
  }
  return { union, ix: b.finish() };
}

/** Every field a listing shows, per path, in walk order. */
function fromUnion(u: LayerUnion): string[] {
  const links = new Map<unknown, number>();
  for (const [, n] of u.walk()) if (n.body !== undefined) links.set(n.body, (links.get(n.body) ?? 0) + 1);
  return [...u.walk()].map(([p, n]) => JSON.stringify([
    p, n.type, n.mode, n.uid, n.gid, n.type === 'file' ? n.size : 0, n.mtime, n.linkname, n.devmajor, n.devminor, n.layer,
    n.body === undefined ? null : [n.body.layer, n.body.entry, n.body.size], n.body === undefined ? 1 : links.get(n.body),
  ]));
}

function fromIndex(ix: FileIndex): string[] {
  return [...ix.walk()].map(([id, p]) => {
    const e = ix.entry(id, p);
    assert.equal(ix.pathOf(id), p);
    return JSON.stringify([
      e.path, e.type, e.mode, e.uid, e.gid, e.size, e.mtime, e.linkname, e.devmajor, e.devminor, e.layer,
      e.body === undefined ? null : [e.body.layer, e.body.entry, e.body.size], e.links,
    ]);
  });
}

const STACK: ReadonlyArray<readonly E[]> = [
  [
    { name: 'etc/' }, { name: 'etc/passwd', body: 'root' }, { name: 'etc/hosts', body: 'h' }, { name: 'opt/app/', mode: 0o700 },
    { name: 'opt/app/a', body: 'a' }, { name: 'opt/app/sub/b', body: 'b' }, { name: 'gone/x', body: 'x' },
    { name: 'bin/sh', body: 'sh' }, { name: 'bin/bash', type: 'link', linkname: 'bin/sh' }, { name: 'dev/null', type: 'char', devmajor: 1 },
    { name: 'usr/lib/', uid: 5 }, { name: 'lib', type: 'symlink', linkname: 'usr/lib' }, { name: 'usr/lib/libc.so', body: 'c' },
  ],
  [
    { name: 'etc/.wh.hosts' }, { name: 'opt/app/.wh..wh..opq' }, { name: 'opt/app/new', body: 'n' }, { name: 'gone', body: 'now a file' },
    { name: 'etc/passwd', body: 'root2', mode: 0o600 }, { name: 'z/é', body: 'accent' }, { name: 'z/\u{1F600}', body: 'astral' }, { name: 'z/\uFF01', body: 'bmp' },
  ],
];

test('the index lists exactly what the union holds: whiteouts, opaque dirs, hard links, source layers', async () => {
  const { union, ix } = await build(STACK);
  assert.deepEqual(fromIndex(ix), fromUnion(union));
  assert.equal(ix.count(), union.count());
  assert.equal(ix.lookup('etc/hosts'), -1, 'whited out');
  assert.equal(ix.lookup('opt/app/a'), -1, 'hidden by the opaque marker');
  assert.equal(ix.lookup('opt/app/sub'), -1);
  assert.equal(ix.entry(ix.lookup('opt/app/new')).layer, 1);
  assert.equal(ix.entry(ix.lookup('opt/app')).layer, 1, 'an opaque directory belongs to the layer that marks it');
  assert.equal(ix.entry(ix.lookup('gone')).type, 'file');
  assert.equal(ix.entry(ix.lookup('etc/passwd')).layer, 1);
  assert.equal(ix.entry(ix.lookup('etc/passwd')).mode, 0o600);
  assert.equal(ix.entry(ix.lookup('bin/bash')).links, 2);
  assert.deepEqual(ix.entry(ix.lookup('bin/bash')).body, ix.entry(ix.lookup('bin/sh')).body);
  assert.equal(ix.entry(ix.lookup('dev/null')).devmajor, 1);
  assert.deepEqual(ix.layers.map((s) => [s.whiteouts, s.opaqueDirs]), union.layers.map((s) => [s.whiteouts, s.opaqueDirs]));
});

test('children are O(children), in name order (bytewise UTF-8), and found by binary search', async () => {
  const { union, ix } = await build(STACK);
  for (const [id, p] of ix.walk()) {
    if (ix.typeOf(id) !== 'directory') {
      assert.equal(ix.children(id).length, 0);
      continue;
    }
    const want = [...union.walk(p)].map(([q]) => q).filter((q) => q !== p && q.lastIndexOf('/') === (p === '' ? -1 : p.length));
    const got = [...ix.children(id)].map((c) => ix.pathOf(c));
    assert.deepEqual(got, want, `children of ${JSON.stringify(p)}`);
    for (const c of ix.children(id)) assert.equal(ix.child(id, ix.nameOf(c)), c);
    assert.equal(ix.child(id, 'no-such-name'), -1);
  }
  assert.deepEqual([...ix.children(ix.lookup('z'))].map((c) => ix.nameOf(c)), ['é', '\uFF01', '\u{1F600}']);
});

test('a subtree is one id range, and resolve follows symlinks inside the root only', async () => {
  const { union, ix } = await build(STACK);
  const usr = ix.lookup('usr');
  const { from, to } = ix.subtree(usr);
  assert.deepEqual([...ix.walk(usr)].map(([, p]) => p), [...union.walk('usr')].map(([p]) => p));
  assert.equal(to - from, 3);
  assert.deepEqual(await ix.resolve('/lib/libc.so'), { path: 'usr/lib/libc.so', id: ix.lookup('usr/lib/libc.so') });
  assert.equal((await ix.resolve('/lib', { followFinal: false })).id, ix.lookup('lib'));
  assert.equal((await ix.resolve('/../../etc/passwd')).id, ix.lookup('etc/passwd'));
  assert.equal((await ix.resolve('/nope/x')).id, -1);
  assert.throws(() => ix.entry(ix.size), /no node/);
});

test('the cache keys by manifest digest and layer count, shares builds, evicts the least recently used', async () => {
  const a = (await build([[{ name: 'a', body: 'A' }]])).ix;
  const b = (await build([[{ name: 'b', body: 'B' }]])).ix;
  const cache = new FileIndexCache(2);
  let builds = 0;
  const make = (ix: FileIndex) => async () => { builds++; return ix; };
  const [x, y] = await Promise.all([cache.get('sha256:aa', 1, make(a)), cache.get('sha256:aa', 1, make(b))]);
  assert.equal(x, a);
  assert.equal(y, a, 'concurrent requests share one build');
  assert.equal(await cache.get('sha256:bb', 1, make(b)), b, 'another manifest never gets the first one\'s index');
  assert.equal(await cache.get('sha256:aa', 0, make(b)), b, 'fewer layers applied is another index');
  assert.equal(builds, 3);
  assert.deepEqual(cache.stats, { builds: 3, hits: 1 });
  assert.deepEqual(cache.keys(), ['sha256:bb 1', 'sha256:aa 0']);
  await assert.rejects(cache.get('sha256:cc', 1, async () => { throw new Error('boom'); }), /boom/);
  await new Promise((r) => setImmediate(r));
  assert.ok(!cache.keys().includes('sha256:cc 1'), 'a failed build is forgotten');
  assert.throws(() => new FileIndexCache(0), /positive integer/);
});

test('wantedEntries stops parsing after the last wanted entry but still reads the layer to its end', async () => {
  const entries: E[] = [{ name: 'a', body: 'A' }, { name: 'b', body: 'B' }, { name: 'c', body: 'C' }];
  let tail = 0;
  // A layer whose last bytes fail (as a digest mismatch does at the end of a verifying stream).
  const failing = async (): Promise<ByteStream> => (async function* () {
    yield* layer(entries);
    tail++;
    throw new Error('digest mismatch at the end');
  })();
  const got: string[] = [];
  await assert.rejects((async () => {
    for await (const { entry } of wantedEntries([failing], new Map([[0, new Map([[0, 'a']])]]))) got.push(new TextDecoder().decode(await toBytes(entry.body())));
  })(), /digest mismatch/);
  assert.deepEqual(got, ['A']);
  assert.equal(tail, 1, 'the rest of the layer was read');
  let closed = false;
  const watched = async (): Promise<ByteStream> => (async function* () {
    try {
      yield* layer(entries);
    } finally {
      closed = true;
    }
  })();
  for await (const { item } of wantedEntries([watched], new Map([[0, new Map([[1, 'b'], [2, 'c']])]]))) {
    assert.equal(item, 'b');
    break;
  }
  assert.ok(closed, 'a consumer that stops early closes the layer');
});

/** The changeset of layer L as the explorer used to compute it: the full listings as of L and L - 1, compared. */
async function changesByListing(layers: ReadonlyArray<readonly E[]>, L: number): Promise<string[][]> {
  const walkAt = async (upTo: number): Promise<Map<string, string>> => {
    const u = new LayerUnion();
    for (let i = 0; i <= upTo; i++) await u.addLayer(layer(layers[i]!));
    const m = new Map<string, string>();
    for (const [p, n] of u.walk()) if (p !== '') m.set(p, JSON.stringify([p, n.type, n.type === 'file' ? n.size : 0, n.mode, n.type === 'symlink' ? n.linkname : '', n.layer]));
    return m;
  };
  const now = await walkAt(L);
  const before = L === 0 ? new Map<string, string>() : await walkAt(L - 1);
  const added: string[] = [];
  const modified: string[] = [];
  for (const [p, row] of now) {
    if (JSON.parse(row)[5] !== L) continue;
    (before.has(p) ? modified : added).push(row.replace(/,-?\d+\]$/, ']'));
  }
  const deleted = [...before].filter(([p]) => !now.has(p)).map(([, row]) => row.replace(/,-?\d+\]$/, ']'));
  return [added, modified, deleted];
}

function changesOfIndex(ix: FileIndex, L: number): string[][] {
  const c = ix.changes(L);
  const rows = (l: readonly { path: string; type: string; size: number; mode: number; linkname: string }[]): string[] => l.map((e) => JSON.stringify([e.path, e.type, e.size, e.mode, e.linkname]));
  assert.deepEqual([c.counts.added, c.counts.modified, c.counts.deleted], [c.added.length, c.modified.length, c.deleted.length]);
  return [rows(c.added), rows(c.modified), rows(c.deleted)];
}

async function checkStack(layers: ReadonlyArray<readonly E[]>, what: string): Promise<FileIndex> {
  const { union, ix } = await build(layers);
  assert.deepEqual(fromIndex(ix), fromUnion(union), `${what}: listing`);
  assert.deepEqual(ix.layers, union.layers, `${what}: layer statistics`);
  for (let L = 0; L < layers.length; L++) assert.deepEqual(changesOfIndex(ix, L), await changesByListing(layers, L), `${what}: changes of layer ${L}`);
  // search by name components gives what matching every full path gives
  for (const needle of ['a', 'B', 'é', 'É', '/a', 'a/b', '', 'x', '-', '\u{1F600}', 'ETC/']) {
    const naive = [...ix.walk()].filter(([id, p]) => id > 0 && `/${p}`.toLowerCase().includes(needle.toLowerCase())).map(([id]) => id);
    assert.deepEqual([...ix.matching(needle)], naive, `${what}: search ${JSON.stringify(needle)}`);
  }
  // export flattens from the index: the same tar, byte for byte, as from the union
  const openers = layers.map((l) => async () => layer(l));
  assert.deepEqual(Buffer.from(await toBytes(flattenIndex(ix, openers))), Buffer.from(await toBytes(flattenUnion(union, openers))), `${what}: flattened tar`);
  return ix;
}

test('stacking cases: the index, its statistics and each layer\'s changeset match the union and the listings it replaces', async () => {
  const cases: Record<string, ReadonlyArray<readonly E[]>> = {
    'whited-out directory re-created above': [
      [{ name: 'a/' }, { name: 'a/x', body: '1' }, { name: 'a/sub/y', body: '2' }],
      [{ name: '.wh.a' }],
      [{ name: 'a/', mode: 0o700 }, { name: 'a/z', body: '3' }],
    ],
    'whiteout then re-create in one layer': [
      [{ name: 'a/x', body: '1' }, { name: 'a/keep', body: 'k' }],
      [{ name: 'a/.wh.x' }, { name: 'a/x', body: 'again' }],
      [{ name: 'a/x', body: 'third' }, { name: 'a/.wh.x' }],
    ],
    'opaque directory with new children': [
      [{ name: 'd/' }, { name: 'd/old', body: 'o' }, { name: 'd/sub/deep', body: 'd' }],
      [{ name: 'd/new', body: 'n' }, { name: 'd/.wh..wh..opq' }, { name: 'd/sub/fresh', body: 'f' }],
      [{ name: 'e/.wh..wh..opq' }],
    ],
    'hard link to a file later whited out': [
      [{ name: 'f', body: 'body', mode: 0o751 }, { name: 'g', type: 'link', linkname: 'f' }, { name: 'h', type: 'link', linkname: './f' }],
      [{ name: '.wh.f' }],
      [{ name: 'h', body: 'replaced' }],
    ],
    'hard links that survive (one body, three paths, one replaced)': [
      [{ name: 'bin/sh', body: 'shell' }, { name: 'bin/bash', type: 'link', linkname: 'bin/sh' }, { name: 'usr/bin/dash', type: 'link', linkname: './bin/sh' }, { name: 'bin/rbash', type: 'link', linkname: 'bin/sh' }],
      [{ name: 'bin/rbash', body: 'restricted' }],
    ],
    'file replaced by a directory and back': [
      [{ name: 'p', body: 'file' }, { name: 'q/' }, { name: 'q/in', body: 'i' }, { name: 'r', type: 'symlink', linkname: 'q' }],
      [{ name: 'p/' }, { name: 'p/c', body: 'c' }, { name: 'q', body: 'now a file' }, { name: 'r/x', body: 'under a former symlink' }],
      [{ name: 'p', type: 'symlink', linkname: 'q' }, { name: 'q/' }, { name: 'q/in', body: 'back' }],
    ],
    'duplicates within a layer (last wins)': [
      [{ name: 'x', body: 'one' }, { name: 'x', body: 'two!' }, { name: 'y/', mode: 0o700 }, { name: 'y/', mode: 0o750 }, { name: 'z', body: 'f' }, { name: 'z/' }],
      [{ name: 'x', body: '3' }, { name: 'x', type: 'symlink', linkname: 'y' }, { name: 'y/', mode: 0o755 }, { name: 'y/', mode: 0o711 }, { name: 'z', body: 'gone dir' }],
    ],
    './ prefixes and non-ASCII names': [
      [{ name: './' }, { name: './etc/' }, { name: './etc/é', body: 'e' }, { name: './etc/\u{1F600}', body: 's' }, { name: './etc/\uFF01', body: 'f' }, { name: 'etc/日本/語', body: 'j' }],
      [{ name: './etc/.wh.é' }, { name: 'etc/\u{1F600}', body: 'again' }, { name: './etc/日本/.wh..wh..opq' }],
    ],
    'parent directories re-listed with other modes, then removed': [
      [{ name: 'u/', mode: 0o755 }, { name: 'u/v/', mode: 0o755 }, { name: 'u/v/w', body: 'w' }],
      [{ name: 'u/', mode: 0o700 }, { name: 'u/v/', mode: 0o701 }, { name: 'u', body: 'u is a file now' }],
      [{ name: 'u/v/w', body: 'w again' }],
    ],
  };
  for (const [what, layers] of Object.entries(cases)) await checkStack(layers, what);
  const ix = await checkStack(cases['whited-out directory re-created above']!, 'again');
  assert.deepEqual(ix.changes(1).deleted.map((e) => e.path), ['a', 'a/sub', 'a/sub/y', 'a/x']);
  assert.deepEqual(ix.changes(2).added.map((e) => e.path), ['a', 'a/z']);
  assert.equal(ix.changes(2, 1).added.length, 1, 'lists are cut at max, counts are not');
  assert.equal(ix.changes(2, 1).counts.added, 2);
  assert.throws(() => ix.changes(3), /no layer 3/);
});

test('random stacks: the index, statistics and changesets match the union', async () => {
  // A small deterministic generator (no timing, no randomness between runs).
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const names = ['a', 'b', 'c', 'é', 'a-b'];
  const path = (): string => Array.from({ length: 1 + rnd(3) }, () => names[rnd(names.length)]!).join('/');
  let checked = 0;
  for (let round = 0; round < 60; round++) {
    const layers: E[][] = [];
    const made: string[] = [];
    for (let L = 0; L < 1 + rnd(4); L++) {
      const entries: E[] = [];
      for (let i = 0; i < 1 + rnd(8); i++) {
        const p = path();
        const k = rnd(10);
        if (k < 3) entries.push({ name: p, body: 'x'.repeat(rnd(5)) });
        else if (k < 5) entries.push({ name: `${p}/`, mode: 0o700 + rnd(8) });
        else if (k === 5) entries.push({ name: p, type: 'symlink', linkname: path() });
        else if (k === 6) entries.push({ name: p.includes('/') ? p.replace(/[^/]+$/, (b) => `.wh.${b}`) : `.wh.${p}` });
        else if (k === 7) entries.push({ name: `${p}/.wh..wh..opq` });
        else if (k === 8 && made.length > 0) entries.push({ name: p, type: 'link', linkname: made[rnd(made.length)]! });
        else entries.push({ name: `./${p}`, body: 'y' });
        if (k < 3) made.push(p);
      }
      layers.push(entries);
    }
    // A hard link to a path that is not a file by then is an invalid layer: such stacks are skipped (both refuse them).
    try {
      const u = new LayerUnion();
      for (const l of layers) await u.addLayer(layer(l));
    } catch {
      continue;
    }
    await checkStack(layers, `round ${round}: ${JSON.stringify(layers)}`);
    checked++;
  }
  assert.ok(checked >= 30, `only ${checked} of 60 random stacks were valid`);
});
