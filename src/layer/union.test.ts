import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { isBerthError } from '../core/errors.js';
import { concatBytes, toBytes, type ByteStream } from '../io/stream.js';
import { encodeHeader } from '../tar/header.js';
import { readTar } from '../tar/reader.js';
import { writeTar, type TarWriteEntry } from '../tar/writer.js';
import { flattenUnion } from './flatten.js';
import { cleanEntryName, resolveInRoot, type ProbeResult } from './safe-path.js';
import { LayerUnion } from './union.js';
import { classifyEntry } from './whiteout.js';

type E = { name: string; type?: TarWriteEntry['header']['type']; body?: string; linkname?: string; mode?: number; uid?: number };

function layer(entries: readonly E[]): () => Promise<ByteStream> {
  return async () => writeTar(entries.map((e): TarWriteEntry => {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    return {
      header: { name: e.name, type, ...(e.linkname !== undefined ? { linkname: e.linkname } : {}), ...(e.mode !== undefined ? { mode: e.mode } : {}), ...(e.uid !== undefined ? { uid: e.uid } : {}) },
      ...(type === 'file' ? { body: new TextEncoder().encode(e.body ?? '') } : {}),
    };
  }));
}

async function unionOf(layers: ReadonlyArray<readonly E[]>): Promise<{ union: LayerUnion; openers: Array<() => Promise<ByteStream>> }> {
  const union = new LayerUnion();
  const openers = layers.map(layer);
  for (const open of openers) await union.addLayer(await open());
  return { union, openers };
}

/** `path` for dirs (`a/`), `path=body-ref` for files, `path->target` for symlinks. */
function listing(u: LayerUnion): string[] {
  const out: string[] = [];
  for (const [p, n] of u.walk()) {
    if (p === '') continue;
    if (n.type === 'directory') out.push(`${p}/`);
    else if (n.type === 'symlink') out.push(`${p}->${n.linkname}`);
    else if (n.type === 'file') out.push(`${p}@${n.body!.layer}.${n.body!.entry}`);
    else out.push(`${p}:${n.type}`);
  }
  return out;
}

/** The flattened tar as `name=content` / `name->link` lines. */
async function flatList(u: LayerUnion, openers: Array<() => Promise<ByteStream>>): Promise<string[]> {
  const out: string[] = [];
  for await (const e of readTar(flattenUnion(u, openers))) {
    const h = e.header;
    if (h.type === 'file') out.push(`${h.name}=${new TextDecoder().decode(await toBytes(e.body()))}`);
    else if (h.type === 'link') out.push(`${h.name}=>${h.linkname}`);
    else if (h.type === 'symlink') out.push(`${h.name}->${h.linkname}`);
    else out.push(h.name);
  }
  return out.sort();
}

test('cleanEntryName normalises and refuses escapes', () => {
  assert.equal(cleanEntryName('./a//b/'), 'a/b');
  assert.equal(cleanEntryName('./'), '');
  assert.equal(cleanEntryName('.'), '');
  assert.equal(cleanEntryName('/'), '', 'kaniko writes the root as "/"');
  assert.equal(cleanEntryName('a/./b'), 'a/b');
  for (const bad of ['/etc/passwd', '../x', 'a/../../x', 'a/..', 'a\0b', '/./x']) {
    assert.throws(() => cleanEntryName(bad), (e: unknown) => isBerthError(e, 'BERTH_UNSAFE_PATH'), bad);
  }
});

test('classifyEntry: whiteouts, opaque markers, AUFS metadata, escaping whiteouts', () => {
  assert.deepEqual(classifyEntry('a/.wh.b'), { kind: 'whiteout', dir: 'a', name: 'b', target: 'a/b' });
  assert.deepEqual(classifyEntry('.wh.foo.txt'), { kind: 'whiteout', dir: '', name: 'foo.txt', target: 'foo.txt' });
  assert.deepEqual(classifyEntry('a/.wh..wh..opq'), { kind: 'opaque', dir: 'a' });
  assert.deepEqual(classifyEntry('.wh..wh.plnk'), { kind: 'meta' });
  assert.deepEqual(classifyEntry('.wh..wh.plnk/123.4'), { kind: 'meta' });
  assert.deepEqual(classifyEntry('a/b'), { kind: 'normal' });
  for (const bad of ['a/.wh.', 'a/.wh..', 'a/.wh...']) {
    assert.throws(() => classifyEntry(bad), (e: unknown) => isBerthError(e, 'BERTH_UNSAFE_PATH'), bad);
  }
});

test('resolveInRoot confines symlinks to the root', async (t) => {
  const tree: Record<string, ProbeResult> = {
    up: { kind: 'symlink', target: '..' },
    abs: { kind: 'symlink', target: '/' },
    etc: { kind: 'directory' },
    'etc/passwd': { kind: 'other' },
    loop: { kind: 'symlink', target: 'loop2' },
    loop2: { kind: 'symlink', target: '/loop' },
    deep: { kind: 'symlink', target: '../../../../etc' },
  };
  const probe = (p: string): ProbeResult => tree[p] ?? { kind: 'absent' };
  const rows: Array<[string, string]> = [
    ['up/etc/passwd', 'etc/passwd'],
    ['abs/etc/passwd', 'etc/passwd'],
    ['up/up/up/etc', 'etc'],
    ['deep/passwd', 'etc/passwd'],
    ['etc/../etc/passwd', 'etc/passwd'],
    ['missing/../etc', 'etc'],
  ];
  for (const [input, want] of rows) {
    await t.test(input, async () => {
      const r = await resolveInRoot(input, probe, { followFinal: true });
      assert.equal(r.path, want);
    });
  }
  await t.test('a cycle is BERTH_LIMIT', async () => {
    await assert.rejects(resolveInRoot('loop/x', probe), (e: unknown) => isBerthError(e, 'BERTH_LIMIT'));
  });
  await t.test('the last component is not followed unless asked', async () => {
    const r = await resolveInRoot('up', probe);
    assert.equal(r.path, 'up');
    assert.equal(r.last.kind, 'symlink');
  });
});

interface Row {
  readonly name: string;
  readonly layers: ReadonlyArray<readonly E[]>;
  readonly want: readonly string[];
  readonly flat?: readonly string[];
}

const ROWS: readonly Row[] = [
  {
    name: 'a whiteout deletes a lower file',
    layers: [[{ name: 'a/' }, { name: 'a/x', body: '1' }, { name: 'a/y', body: '2' }], [{ name: 'a/.wh.x' }]],
    want: ['a/', 'a/y@0.2'],
  },
  {
    name: 'a whiteout deletes a lower directory recursively',
    layers: [[{ name: 'a/' }, { name: 'a/b/' }, { name: 'a/b/c', body: '1' }], [{ name: 'a/.wh.b' }]],
    want: ['a/'],
  },
  {
    name: 'a whiteout does not hide an entry of its own layer, before or after it',
    layers: [[{ name: 'x', body: 'old' }, { name: 'y', body: 'old' }], [{ name: '.wh.x' }, { name: 'x', body: 'new' }, { name: 'y', body: 'new' }, { name: '.wh.y' }]],
    want: ['x@1.1', 'y@1.2'],
    flat: ['x=new', 'y=new'],
  },
  {
    name: 'an opaque directory hides lower children and keeps its own, wherever the marker is',
    layers: [
      [{ name: 'd/' }, { name: 'd/old', body: 'o' }, { name: 'd/sub/' }, { name: 'd/sub/deep', body: 'o' }, { name: 'e/' }, { name: 'e/old', body: 'o' }],
      [{ name: 'd/' }, { name: 'd/.wh..wh..opq' }, { name: 'd/new', body: 'n' }, { name: 'e/' }, { name: 'e/new', body: 'n' }, { name: 'e/.wh..wh..opq' }],
    ],
    want: ['d/', 'd/new@1.2', 'e/', 'e/new@1.4'],
  },
  {
    name: 'an opaque marker over a re-listed subdirectory hides its lower grandchildren too',
    layers: [[{ name: 'd/' }, { name: 'd/sub/' }, { name: 'd/sub/x', body: '1' }], [{ name: 'd/' }, { name: 'd/.wh..wh..opq' }, { name: 'd/sub/' }, { name: 'd/sub/y', body: '2' }]],
    want: ['d/', 'd/sub/', 'd/sub/y@1.3'],
  },
  {
    name: 'a directory replaced by a file and back',
    layers: [[{ name: 'p/' }, { name: 'p/child', body: 'c' }], [{ name: 'p', body: 'file' }], [{ name: 'p/' }, { name: 'p/again', body: 'a' }]],
    want: ['p/', 'p/again@2.1'],
  },
  {
    name: 'a file replaced by a directory keeps no trace of the file',
    layers: [[{ name: 'p', body: 'file' }], [{ name: 'p/' }, { name: 'p/x', body: 'x' }]],
    want: ['p/', 'p/x@1.1'],
  },
  {
    name: 'a directory over a directory keeps the children and takes the new metadata',
    layers: [[{ name: 'd/', mode: 0o700 }, { name: 'd/x', body: '1' }], [{ name: 'd/', mode: 0o755 }, { name: 'd/y', body: '2' }]],
    want: ['d/', 'd/x@0.1', 'd/y@1.1'],
  },
  {
    name: 'a hard link shares the body; the link survives its target being deleted',
    layers: [[{ name: 'a', body: 'data' }, { name: 'b', type: 'link', linkname: 'a' }], [{ name: '.wh.a' }]],
    want: ['b@0.0'],
    flat: ['b=data'],
  },
  {
    name: 'a hard link survives its target being replaced',
    layers: [[{ name: 'a', body: 'data' }, { name: 'b', type: 'link', linkname: './a' }], [{ name: 'a', body: 'new' }]],
    want: ['a@1.0', 'b@0.0'],
    flat: ['a=new', 'b=data'],
  },
  {
    name: 'hard links flatten to one file and links to it',
    layers: [[{ name: 'a', body: 'data' }, { name: 'b', type: 'link', linkname: 'a' }, { name: 'c', type: 'link', linkname: 'b' }]],
    want: ['a@0.0', 'b@0.0', 'c@0.0'],
    flat: ['a=data', 'b=>a', 'c=>a'],
  },
  {
    name: 'symlinks are not followed while stacking: a path under a symlink replaces it with a directory',
    layers: [[{ name: 'etc/' }, { name: 'etc/passwd', body: 'root' }, { name: 'lnk', type: 'symlink', linkname: 'etc' }], [{ name: 'lnk/passwd', body: 'evil' }]],
    want: ['etc/', 'etc/passwd@0.1', 'lnk/', 'lnk/passwd@1.0'],
    flat: ['etc/', 'etc/passwd=root', 'lnk/', 'lnk/passwd=evil'],
  },
  {
    name: 'a whiteout through a symlinked directory deletes nothing behind it',
    layers: [[{ name: 'etc/' }, { name: 'etc/passwd', body: 'root' }, { name: 'lnk', type: 'symlink', linkname: '/etc' }], [{ name: 'lnk/.wh.passwd' }]],
    want: ['etc/', 'etc/passwd@0.1', 'lnk->/etc'],
  },
  {
    name: 'duplicate entries in one layer: the last wins',
    layers: [[{ name: 'x', body: 'first' }, { name: 'x', body: 'second' }, { name: 'y', type: 'symlink', linkname: 'a' }, { name: 'y', body: 'file' }]],
    want: ['x@0.1', 'y@0.3'],
    flat: ['x=second', 'y=file'],
  },
  {
    name: 'missing parents are created; ./ prefixes and the root entry are accepted',
    layers: [[{ name: './' }, { name: './a/b/c', body: '1' }]],
    want: ['a/', 'a/b/', 'a/b/c@0.1'],
  },
  {
    name: 'AUFS metadata is skipped',
    layers: [[{ name: '.wh..wh.plnk/' }, { name: '.wh..wh.plnk/1.2', body: 'x' }, { name: '.wh..wh.aufs', body: '' }, { name: 'f', body: 'f' }]],
    want: ['f@0.3'],
  },
  {
    name: 'a whiteout for something absent is a no-op',
    layers: [[{ name: 'a', body: '1' }], [{ name: 'nope/.wh.x' }, { name: '.wh.y' }]],
    want: ['a@0.0'],
  },
];

for (const row of ROWS) {
  test(`union: ${row.name}`, async () => {
    const { union, openers } = await unionOf(row.layers);
    assert.deepEqual(listing(union), row.want);
    if (row.flat !== undefined) assert.deepEqual(await flatList(union, openers), [...row.flat].sort());
  });
}

test('union: per-layer statistics and wasted bytes', async () => {
  const { union } = await unionOf([
    [{ name: 'a', body: '12345' }, { name: 'b', body: '123' }, { name: 'd/' }, { name: 'd/x', body: '1' }],
    [{ name: 'a', body: '1234567' }, { name: '.wh.b' }, { name: 'c', body: '12' }, { name: 'd/', mode: 0o700 }],
    [{ name: '.wh.d' }, { name: 'c', body: 'zz' }, { name: 'c', body: 'zzz' }],
  ]);
  const s = union.layers;
  assert.deepEqual(s.map((l) => [l.added, l.modified, l.deleted, l.whiteouts]), [[4, 0, 0, 0], [1, 2, 1, 1], [0, 1, 2, 1]]);
  assert.deepEqual(s.map((l) => l.fileBytes), [9, 9, 5]);
  // layer 0: a (5) and b (3) and d/x (1) gone; layer 1: c (2) overwritten; layer 2: the first c (2) was a duplicate.
  assert.deepEqual(s.map((l) => l.wastedBytes), [9, 2, 2]);
  assert.ok(s.every((l) => l.tarBytes > 0 && l.tarBytes % 512 === 0));
});

test('union: a hard link to a missing target is BERTH_INVALID_LAYER', async () => {
  await assert.rejects(unionOf([[{ name: 'b', type: 'link', linkname: 'nope' }]]), (e: unknown) => isBerthError(e, 'BERTH_INVALID_LAYER'));
});

test('union: resolve follows symlinks inside the image only', async () => {
  const { union } = await unionOf([[
    { name: 'etc/' }, { name: 'etc/passwd', body: 'x' },
    { name: 'a', type: 'symlink', linkname: '../../../etc/passwd' },
    { name: 'b', type: 'symlink', linkname: '/../etc/passwd' },
    { name: 'c', type: 'symlink', linkname: 'c' },
  ]]);
  assert.equal((await union.resolve('/a')).path, 'etc/passwd');
  assert.equal((await union.resolve('b')).node?.type, 'file');
  await assert.rejects(union.resolve('/c'), (e: unknown) => isBerthError(e, 'BERTH_LIMIT'));
});

/** A tar of many empty files, built fast from one header template (the writer is not under test here). */
async function* manyEntries(dirs: number, filesPerDir: number): ByteStream {
  const template = encodeHeader({
    name: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: {}, pax: {},
  });
  const enc = new TextEncoder();
  template.fill(0, 0, 100);
  template.fill(0x20, 148, 156);
  template[156] = 0x30;
  let base = 0;
  for (const c of template) base += c;
  const block = (name: string, flag: string): Uint8Array => {
    const b = template.slice();
    const n = enc.encode(name);
    b.set(n, 0);
    b[156] = flag.charCodeAt(0);
    let sum = base + b[156]! - 0x30;
    for (const c of n) sum += c;
    b.set(enc.encode(`${sum.toString(8).padStart(6, '0')}\0 `), 148);
    return b;
  };
  const chunk: Uint8Array[] = [];
  for (let d = 0; d < dirs; d++) {
    chunk.push(block(`usr/share/d${d}/`, '5'));
    for (let f = 0; f < filesPerDir; f++) chunk.push(block(`usr/share/d${d}/file-${f}.txt`, '0'));
    yield concatBytes(chunk.splice(0));
  }
  yield new Uint8Array(1024);
}

/** A full garbage collection (without --expose-gc on the command line). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

test('union: 200 000 entries in one layer with modest memory', async () => {
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  const union = new LayerUnion();
  await union.addLayer(manyEntries(200, 999));
  collectGarbage();
  const retained = process.memoryUsage().heapUsed - before;
  assert.equal(union.count(), 2 + 200 * 1000);
  assert.ok(retained < 400 * 200_000, `the union retains ${retained} bytes for 200 000 paths (want under 400 per path)`);
});
