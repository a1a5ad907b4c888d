/**
 * The store transport on data roots built here by hand, laid out as dockerd lays them out
 * (docs/formats.md section 10): reference grammar, name resolution, what dockerd would reject,
 * tampering, the docker-like text of `images` and `history`. No daemon, no root privileges.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile, appendFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chainIds } from '../src/core/config.js';
import { isBerthError } from '../src/core/errors.js';
import { toBytes } from '../src/io/stream.js';
import { disassembleTar, writeTarSplit, type TarSplitRecord } from '../src/tar/split.js';
import { writeTar } from '../src/tar/writer.js';
import { parseImageName } from '../src/transports/all.js';
import { defaultStoreRoot, parseStoreReference } from '../src/transports/store/reference.js';
import { setStoreDefaults } from '../src/transports/store/transport.js';
import { dockerDuration, dockerSize } from '../cli/commands/store.js';
import { berth, json } from './support/cli.js';

const enc = new TextEncoder();

function sha256(b: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function hex(d: string): string {
  return d.slice('sha256:'.length);
}

interface FakeLayer {
  /** path → content; a path ending in / is a directory */
  readonly files: Record<string, string>;
}

interface FakeImage {
  readonly names: readonly string[];
  readonly layers: readonly FakeLayer[];
  readonly created: string;
  readonly parent?: number;
  /** history entries beyond the one per layer */
  readonly emptySteps?: number;
}

interface BuiltImage {
  readonly id: string;
  readonly diffIds: readonly string[];
  readonly chainIds: readonly string[];
  readonly cacheIds: readonly string[];
  readonly tars: readonly Uint8Array[];
}

/**
 * Writes a vfs or overlay2 data root: per layer a tar (berth's writer), its tar-split, a layerdb
 * entry and the driver directory; configs in imagedb; names in repositories.json.
 */
async function buildRoot(root: string, driver: 'vfs' | 'overlay2', images: readonly FakeImage[]): Promise<BuiltImage[]> {
  const img = path.join(root, 'image', driver);
  await mkdir(path.join(img, 'imagedb/content/sha256'), { recursive: true });
  await mkdir(path.join(img, 'layerdb/sha256'), { recursive: true });
  await mkdir(path.join(root, driver === 'vfs' ? 'vfs/dir' : 'overlay2/l'), { recursive: true });
  const repos: Record<string, Record<string, string>> = {};
  const built: BuiltImage[] = [];
  for (const image of images) {
    const tars: Uint8Array[] = [];
    for (const layer of image.layers) {
      const entries = Object.entries(layer.files).map(([name, content]) => name.endsWith('/')
        ? { header: { name, type: 'directory' as const, mtime: 1_700_000_000 } }
        : { header: { name, type: 'file' as const, mtime: 1_700_000_000 }, body: enc.encode(content) });
      tars.push(await toBytes(writeTar(entries)));
    }
    const diffIds = tars.map((t) => sha256(t));
    const chains = chainIds(diffIds as never) as string[];
    const cacheIds: string[] = [];
    const snapshot: Record<string, string> = {};
    for (const [i, tar] of tars.entries()) {
      const cacheId = hex(sha256(`cache ${chains[i]}`));
      cacheIds.push(cacheId);
      Object.assign(snapshot, image.layers[i]!.files);
      const files = driver === 'vfs' ? path.join(root, 'vfs/dir', cacheId) : path.join(root, 'overlay2', cacheId, 'diff');
      await mkdir(files, { recursive: true });
      for (const [name, content] of Object.entries(driver === 'vfs' ? snapshot : image.layers[i]!.files)) {
        if (name.endsWith('/')) await mkdir(path.join(files, name), { recursive: true });
        else {
          await mkdir(path.dirname(path.join(files, name)), { recursive: true });
          await writeFile(path.join(files, name), content);
        }
      }
      const dir = path.join(img, 'layerdb/sha256', hex(chains[i]!));
      await mkdir(dir, { recursive: true });
      const records: TarSplitRecord[] = [];
      await toBytes(disassembleTar((async function* () { yield tar; })(), { onRecord: (r) => void records.push(r) }));
      await writeFile(path.join(dir, 'tar-split.json.gz'), await toBytes(writeTarSplit(records)));
      await writeFile(path.join(dir, 'diff'), diffIds[i]!);
      await writeFile(path.join(dir, 'size'), String(tar.length));
      await writeFile(path.join(dir, 'cache-id'), cacheId);
      if (i > 0) await writeFile(path.join(dir, 'parent'), chains[i - 1]!);
    }
    const history = [
      ...image.layers.map((_, i) => ({ created: image.created, created_by: `/bin/sh -c step ${i} of a command line long enough to be cut by docker history` })),
      ...Array.from({ length: image.emptySteps ?? 0 }, () => ({ created: image.created, created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true })),
    ];
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', created: image.created, config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds }, history });
    const id = sha256(config);
    await writeFile(path.join(img, 'imagedb/content/sha256', hex(id)), config);
    if (image.parent !== undefined) {
      await mkdir(path.join(img, 'imagedb/metadata/sha256', hex(id)), { recursive: true });
      await writeFile(path.join(img, 'imagedb/metadata/sha256', hex(id), 'parent'), built[image.parent]!.id);
    }
    for (const name of image.names) {
      const repo = name.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
      (repos[repo] ??= {})[name] = id;
    }
    built.push({ id, diffIds, chainIds: chains, cacheIds, tars });
  }
  await writeFile(path.join(img, 'repositories.json'), JSON.stringify({ Repositories: repos }));
  return built;
}

const IMAGES: FakeImage[] = [
  { names: ['base:1', 'example.com/team/base:1'], created: '2020-01-01T00:00:00Z', layers: [{ files: { 'etc/': '', 'etc/os-release': 'fake\n', 'bin/': '', 'bin/sh': '#!fake\n' } }] },
  {
    names: ['app:1', 'app:latest', `app@sha256:${'a'.repeat(64)}`], created: '2021-06-01T12:00:00Z', parent: 0, emptySteps: 1,
    layers: [{ files: { 'etc/': '', 'etc/os-release': 'fake\n', 'bin/': '', 'bin/sh': '#!fake\n' } }, { files: { 'app/': '', 'app/hello.txt': 'hello\n', 'etc/': '', 'etc/os-release': 'changed\n' } }],
  },
  { names: [], created: '2019-01-01T00:00:00Z', layers: [{ files: { 'x': 'dangling\n' } }] },
];

for (const driver of ['vfs', 'overlay2'] as const) {
  describe(`a hand-built ${driver} data root`, () => {
    let root = '';
    let built: BuiltImage[] = [];
    before(async () => {
      root = await mkdtemp('/tmp/bsr-');
      built = await buildRoot(root, driver, IMAGES);
    });
    after(async () => {
      setStoreDefaults({});
      await rm(root, { recursive: true, force: true });
    });

    test('every spelling of a name or ID resolves to the right image', async () => {
      const [base, app, dangling] = built as [BuiltImage, BuiltImage, BuiltImage];
      const rows: Array<{ name: string; ref: string; id: string }> = [
        { name: 'tag', ref: 'app:1', id: app.id },
        { name: 'no tag means latest', ref: 'app', id: app.id },
        { name: 'docker.io/library spelling', ref: 'docker.io/library/app:1', id: app.id },
        { name: 'registry name', ref: 'example.com/team/base:1', id: base.id },
        { name: 'digest reference', ref: `app@sha256:${'a'.repeat(64)}`, id: app.id },
        { name: 'full ID', ref: app.id, id: app.id },
        { name: 'full hex ID', ref: hex(app.id), id: app.id },
        { name: 'short ID', ref: hex(base.id).slice(0, 12), id: base.id },
        { name: '@ short ID', ref: `@${hex(dangling.id).slice(0, 8)}`, id: dangling.id },
        { name: 'store: prefix', ref: 'store:base:1', id: base.id },
        { name: 'store:[ROOT] form', ref: `store:[${root}]app:latest`, id: app.id },
      ];
      for (const r of rows) {
        const res = await berth('--root', root, 'inspect', r.ref, '--format', 'json');
        assert.equal(res.code, 0, `${r.name}: ${res.stderr}`);
        assert.equal(json<{ configDigest: string }>(res, r.name).configDigest, r.id, r.name);
      }
    });

    test('unknown names keep the old error; store: names list what is there', async () => {
      const bare = await berth('--root', root, 'inspect', 'nosuch:1');
      assert.equal(bare.code, 1);
      assert.match(bare.stderr, /^berth: nosuch:1: no such file or directory, and not a reference berth knows/);
      const prefixed = await berth('--root', root, 'inspect', 'store:nosuch:1');
      assert.equal(prefixed.code, 1);
      assert.match(prefixed.stderr, /no image "nosuch:1" in store .* \(it has app:1, app:latest, base:1, example\.com\/team\/base:1\)/);
      const bad = await berth('--root', root, 'inspect', 'store:[unclosed');
      assert.equal(bad.code, 2);
    });

    test('layers rebuild byte for byte; the manifest is deterministic', async () => {
      const app = built[1]!;
      const a = json<{ digest: string; layers: Array<{ digest: string; size: number }> }>(await berth('--root', root, 'inspect', 'app:1', '--format', 'json'), 'app');
      assert.deepEqual(a.layers.map((l) => [l.digest, l.size]), app.diffIds.map((d, i) => [d, app.tars[i]!.length]));
      const b = json<{ digest: string }>(await berth('--root', root, 'inspect', `store:[${root}]@${hex(app.id)}`, '--format', 'json'), 'again');
      assert.equal(b.digest, a.digest);
      for (const [i, diffId] of app.diffIds.entries()) {
        const r = await berth('--root', root, 'blob', 'app:1', diffId);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.bytes.equals(Buffer.from(app.tars[i]!)));
      }
      const v = await berth('--root', root, 'verify', 'app:1');
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const manifest = await berth('--root', root, 'manifest', 'app:1');
      assert.equal(sha256(manifest.bytes), a.digest);
    });

    test('images: docker-like listing, intermediate parents hidden, filter by name', async () => {
      const r = json<{ images: Array<{ id: string; repoTags: string[]; repoDigests: string[]; dangling: boolean; size: number }> }>(await berth('--root', root, 'images', '--format', 'json'), 'images');
      assert.deepEqual(r.images.map((i) => i.id), [built[1]!.id, built[0]!.id, built[2]!.id], 'newest first');
      assert.deepEqual(r.images[0]!.repoTags, ['app:1', 'app:latest']);
      assert.deepEqual(r.images[0]!.repoDigests, [`app@sha256:${'a'.repeat(64)}`]);
      assert.equal(r.images[2]!.dangling, true);
      assert.equal(r.images[0]!.size, built[1]!.tars.reduce((n, t) => n + t.length, 0));
      const text = await berth('--root', root, 'images');
      const lines = text.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/);
      assert.match(lines[1]!, new RegExp(`^app +1 +${hex(built[1]!.id).slice(0, 12)} +\\S.* ago +\\d`));
      assert.match(text.stdout, new RegExp(`^<none> +<none> +${hex(built[2]!.id).slice(0, 12)} `, 'm'));
      const filtered = json<{ images: Array<{ repoTags: string[] }> }>(await berth('--root', root, 'images', 'app:latest', '--format', 'json'), 'filter');
      assert.deepEqual(filtered.images.map((i) => i.repoTags), [['app:latest']]);
      const glob = json<{ images: Array<{ repoTags: string[] }> }>(await berth('--root', root, 'images', '*/team/*', '--format', 'json'), 'glob');
      assert.deepEqual(glob.images.map((i) => i.repoTags), [['example.com/team/base:1']]);
    });

    test('history: newest first, IDs through imagedb parents, sizes from layerdb', async () => {
      const r = json<{ entries: Array<{ id: string | null; size: number; emptyLayer: boolean; createdBy: string }> }>(await berth('--root', root, 'history', 'app:1', '--format', 'json'), 'history');
      assert.deepEqual(r.entries.map((e) => [e.id ?? null, e.emptyLayer]), [[built[1]!.id, true], [built[0]!.id, false], [null, false]]);
      assert.equal(r.entries[1]!.size, built[1]!.tars[1]!.length);
      const text = await berth('--root', root, 'history', 'app:1');
      const lines = text.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$/);
      assert.match(lines[2]!, /^[0-9a-f]{12} +.* ago +\/bin\/sh -c step 1 of a command line long eno… +\d/);
      assert.match(lines[3]!, /^<missing> /);
    });

    test('trace: the walk, and which layer provides a path', async () => {
      const app = built[1]!;
      const r = json<{ resolution: { via: string; reference: string }; layers: Array<{ chainId: string; files: string; filesExist: boolean; cacheId: string }>; path: { visibleFrom: number; events: Array<{ layer: number; action: string }>; onDisk: string } }>(
        await berth('--root', root, 'trace', 'app', '/etc/os-release', '--format', 'json'), 'trace');
      assert.equal(r.resolution.via, 'repositories.json');
      assert.equal(r.resolution.reference, 'app:latest');
      assert.deepEqual(r.layers.map((l) => l.chainId), app.chainIds);
      assert.deepEqual(r.layers.map((l) => l.cacheId), app.cacheIds);
      assert.ok(r.layers.every((l) => l.filesExist));
      assert.equal(r.path.visibleFrom, 1);
      assert.deepEqual(r.path.events.map((e) => [e.layer, e.action]), [[0, 'adds'], [1, 'overrides']]);
      assert.equal(r.path.onDisk, `${driver === 'vfs' ? `vfs/dir/${app.cacheIds[1]}` : `overlay2/${app.cacheIds[1]}/diff`}/etc/os-release`);
      const text = await berth('--root', root, 'trace', 'app', '/etc/os-release');
      assert.match(text.stdout, /the container sees \/etc\/os-release from layer 1/);
      const missing = await berth('--root', root, 'trace', 'app', '/nowhere');
      assert.match(missing.stdout, /the container does not see \/nowhere: no layer has it/);
    });

    test('save: names as docker save gives them, every format readable', async () => {
      const out = path.join(root, 'saved.tar');
      const r = json<{ images: Array<{ id: string; names: string[] }> }>(await berth('--root', root, 'save', 'app', `@${hex(built[2]!.id).slice(0, 10)}`, 'base:1', '-o', out, '--format', 'docker-legacy', '--json'), 'save');
      assert.deepEqual(r.images.map((i) => [i.id, i.names]), [[built[1]!.id, ['app:1', 'app:latest']], [built[2]!.id, []], [built[0]!.id, ['base:1']]]);
      const tree = json<{ tree: { children: Array<{ names?: string[] }> } }>(await berth('tree', `docker-archive:${out}`, '--format', 'json'), 'tree');
      assert.deepEqual(tree.tree.children.map((c) => c.names ?? []), [['app:1', 'app:latest'], [], ['base:1']]);
      for (const format of ['docker', 'oci'] as const) {
        const file = path.join(root, `saved-${format}.tar`);
        const s = await berth('--root', root, 'save', 'app:1', '-o', file, '--format', format);
        assert.equal(s.code, 0, s.stderr);
        const v = await berth('verify', `${format === 'oci' ? 'oci-archive' : 'docker-archive'}:${file}`);
        assert.equal(v.code, 0, v.stdout + v.stderr);
      }
      const again = await berth('--root', root, 'save', 'app:1', '-o', out);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already exists/);
      const missing = await berth('--root', root, 'save', 'nosuch', '-o', path.join(root, 'x.tar'));
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no image "nosuch"/);
    });

    test('a changed file fails with a digest mismatch naming the layer and the file', async () => {
      const app = built[1]!;
      const files = driver === 'vfs' ? path.join(root, 'vfs/dir', app.cacheIds[1]!) : path.join(root, 'overlay2', app.cacheIds[1]!, 'diff');
      const file = path.join(files, 'app/hello.txt');
      await writeFile(file, 'HELLO\n');
      try {
        const r = await berth('--root', root, 'blob', 'app:1', app.diffIds[1]!);
        assert.equal(r.code, 1);
        assert.match(r.stderr, new RegExp(`rebuilding layer ${app.diffIds[1]} from .*: file "app/hello.txt": content differs from the layer \\(crc64 want`));
        const v = await berth('--root', root, 'verify', 'app:1');
        assert.equal(v.code, 1);
        assert.match(v.stdout + v.stderr, /app\/hello\.txt/);
        // save streams the layer into the archive: the failure names layer and file, and leaves no output or temp file
        for (const format of ['docker-legacy', 'docker'] as const) {
          const bad = path.join(root, `bad-${format}.tar`);
          const sv = await berth('--root', root, 'save', 'app:1', '-o', bad, '--format', format);
          assert.equal(sv.code, 1, format);
          assert.match(sv.stderr, new RegExp(`layer 2/2 .*rebuilding layer ${app.diffIds[1]} from .*: file "app/hello.txt": content differs`), format);
          assert.deepEqual((await readdir(root)).filter((n) => n.includes(`bad-${format}`)), [], `${format}: nothing left`);
        }
        await appendFile(file, 'more');
        const longer = await berth('--root', root, 'blob', 'app:1', app.diffIds[1]!);
        assert.match(longer.stderr, /file "app\/hello.txt": file is longer than recorded/);
      } finally {
        await writeFile(file, 'hello\n');
      }
    });
  });
}

describe('what dockerd would reject is reported', () => {
  test('a tampered config, a missing tar-split, a size with a newline, a dangling name', async () => {
    const root = await mkdtemp('/tmp/bsr-');
    try {
      const built = await buildRoot(root, 'vfs', IMAGES);
      const img = path.join(root, 'image/vfs');
      await writeFile(path.join(img, 'imagedb/content/sha256', hex(built[2]!.id)), '{"tampered":true}');
      await unlink(path.join(img, 'layerdb/sha256', hex(built[1]!.chainIds[1]!), 'tar-split.json.gz'));
      await writeFile(path.join(img, 'layerdb/sha256', hex(built[0]!.chainIds[0]!), 'size'), '14\n');
      const repos = JSON.parse(await (await import('node:fs/promises')).readFile(path.join(img, 'repositories.json'), 'utf8')) as { Repositories: Record<string, Record<string, string>> };
      repos.Repositories.gone = { 'gone:1': `sha256:${'0'.repeat(64)}` };
      await writeFile(path.join(img, 'repositories.json'), JSON.stringify(repos));

      const list = json<{ images: Array<{ id: string; problems: string[] }>; notes: string[] }>(await berth('--root', root, 'images', '--format', 'json'), 'images');
      assert.ok(!list.images.some((i) => i.id === built[2]!.id), 'the tampered image is dropped');
      assert.ok(list.notes.some((n) => n.includes('content hashes to') && n.includes(hex(built[2]!.id))));
      assert.ok(list.notes.some((n) => n.startsWith('gone:1')));
      const app = list.images.find((i) => i.id === built[1]!.id)!;
      assert.ok(app.problems.some((p) => /size "14\\n" is not a plain integer/.test(p)), app.problems.join('\n'));
      assert.ok(app.problems.some((p) => /no tar-split\.json\.gz/.test(p)), app.problems.join('\n'));

      const tampered = await berth('--root', root, 'inspect', `@${hex(built[2]!.id)}`);
      assert.equal(tampered.code, 1);
      assert.match(tampered.stderr, /content hashes to/);
      const v = await berth('--root', root, 'verify', 'app:1');
      assert.equal(v.code, 1, 'a layer without tar-split cannot be verified');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('an ambiguous ID prefix', async () => {
    const root = await mkdtemp('/tmp/bsr-');
    try {
      const many: FakeImage[] = Array.from({ length: 40 }, (_, i) => ({ names: [], created: '2020-01-01T00:00:00Z', layers: [{ files: { [`f${i}`]: `${i}\n` } }] }));
      const built = await buildRoot(root, 'vfs', many);
      const firsts = built.map((b) => hex(b.id)[0]);
      const dup = firsts.find((c, i) => firsts.indexOf(c) !== i)!;
      const r = await berth('--root', root, 'inspect', `@${dup}`);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /ID prefix .* matches \d+ images/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('store references and defaults', () => {
  const rows: Array<{ name: string; input: string; root?: string; image?: string }> = [
    { name: 'name and tag', input: 'app:1', image: 'app:1' },
    { name: 'bracketed root', input: '[/data/root]app:1', root: '/data/root', image: 'app:1' },
    { name: 'root only: every image', input: '[/data/root]', root: '/data/root' },
    { name: 'image ID', input: '@abc123', image: '@abc123' },
    { name: 'nothing: every image of the default root', input: '' },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const p = parseStoreReference(r.input);
      assert.equal(p.root, r.root);
      assert.equal(p.name, r.image);
    });
  }
  const rejects = [
    { name: 'unclosed bracket', input: '[/data' },
    { name: 'empty root', input: '[]app' },
    { name: 'bare @', input: '@' },
  ];
  for (const r of rejects) {
    test(`reject: ${r.name}`, () => {
      assert.throws(() => parseStoreReference(r.input), (err) => isBerthError(err, 'BERTH_INVALID_REFERENCE'));
    });
  }
  test('default root: --root, then BERTH_ROOT, then XDG_DATA_HOME/berth, then ~/.local/share/berth', () => {
    assert.equal(defaultStoreRoot({ root: '/r', env: { BERTH_ROOT: '/b' } }), '/r');
    assert.equal(defaultStoreRoot({ env: { BERTH_ROOT: '/b', XDG_DATA_HOME: '/x' } }), '/b');
    assert.equal(defaultStoreRoot({ env: { XDG_DATA_HOME: '/x' } }), '/x/berth');
    assert.equal(defaultStoreRoot({ env: { HOME: '/home/u' } }), '/home/u/.local/share/berth');
  });
  test('a bare name is a store reference only when the store has it', async () => {
    const root = await mkdtemp('/tmp/bsr-');
    try {
      await buildRoot(root, 'vfs', IMAGES.slice(0, 1));
      setStoreDefaults({ env: { BERTH_ROOT: root } });
      const ref = await parseImageName('base:1');
      assert.equal(ref.toString(), 'store:base:1');
      assert.equal(ref.path, root);
      await assert.rejects(parseImageName('other:1'), (err) => isBerthError(err, 'BERTH_NOT_FOUND') && /no such file or directory, and not a reference berth knows/.test((err as Error).message));
      setStoreDefaults({ env: { BERTH_ROOT: path.join(root, 'nonexistent') } });
      await assert.rejects(parseImageName('base:1'), (err) => isBerthError(err, 'BERTH_NOT_FOUND'));
    } finally {
      setStoreDefaults({});
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('docker\'s human units', () => {
  const sizes: Array<[number, string]> = [[0, '0B'], [27, '27B'], [999, '999B'], [1000, '1kB'], [1500, '1.5kB'], [1982402, '1.98MB'], [1146369, '1.15MB'], [999_999, '1e+03kB'], [12_345_678_901, '12.3GB']];
  for (const [n, want] of sizes) test(`size ${n} → ${want}`, () => assert.equal(dockerSize(n), want));
  const durations: Array<[number, string]> = [[500, 'Less than a second'], [1000, '1 second'], [59_000, '59 seconds'], [60_000, 'About a minute'], [5 * 60_000, '5 minutes'], [3_600_000, 'About an hour'], [47 * 3_600_000, '47 hours'], [3 * 86_400_000, '3 days'], [20 * 86_400_000, '2 weeks'], [90 * 86_400_000, '3 months'], [800 * 86_400_000, '2 years']];
  for (const [ms, want] of durations) test(`duration ${ms} ms → ${want}`, () => assert.equal(dockerDuration(ms), want));
});
