/**
 * berth append / config-set / retag without a daemon, on the sample OCI layout: deterministic
 * layers from directories (same tree, same digests), config changes with one history entry per
 * change, the result readable by berth's own readers, and clean one-line errors for bad input.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { parseChange } from '../src/image/mutate.js';
import { layerFromDirectory, layerFromDirectoryDiff } from '../src/layer/generate.js';
import { toBytes } from '../src/io/stream.js';
import { readTar } from '../src/tar/reader.js';
import { assertCleanError, berth, json } from './support/cli.js';
import { repoRoot } from './support/paths.js';

const SAMPLE = `oci:${path.join(repoRoot, 'examples/sample')}`;
const EPOCH = '1700000000';

interface Result { manifest: string; config: string; layer?: { diffId: string; digest: string; entries: number }; history: string[] }
interface Config {
  created: string;
  architecture: string;
  config: { Env?: string[]; Cmd?: string[]; Entrypoint?: string[]; WorkingDir?: string; User?: string; Labels?: Record<string, string>; ExposedPorts?: Record<string, unknown>; Volumes?: Record<string, unknown> };
  rootfs: { diff_ids: string[] };
  history: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
}

async function tmp(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp('/tmp/bmu-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function makeTree(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'opt/app/sub'), { recursive: true });
  await writeFile(path.join(dir, 'opt/app/hello.txt'), 'hello from append\n');
  await writeFile(path.join(dir, 'opt/app/run.sh'), '#!/bin/sh\necho run\n');
  await chmod(path.join(dir, 'opt/app/run.sh'), 0o755);
  await writeFile(path.join(dir, 'opt/app/sub/z'), 'z');
  await symlink('hello.txt', path.join(dir, 'opt/app/link'));
}

test('append: a directory becomes a deterministic layer; twice the same tree gives the same digests', async (t) => {
  const dir = await tmp(t);
  const tree = path.join(dir, 'tree');
  await makeTree(tree);
  const out = path.join(dir, 'out');
  const runs: Result[] = [];
  for (const name of ['a', 'b']) {
    const r = await berth('append', SAMPLE, '--source-platform', 'linux/amd64', '--layer', tree, '-t', `oci:${out}:${name}`, '--source-date-epoch', EPOCH, '--json');
    assert.equal(r.code, 0, r.stderr);
    runs.push(json<Result>(r, 'append'));
    // Touching the files changes nothing: mtimes come from --source-date-epoch.
    await utimes(path.join(tree, 'opt/app/hello.txt'), new Date(), new Date());
  }
  assert.equal(runs[0]!.manifest, runs[1]!.manifest);
  assert.equal(runs[0]!.config, runs[1]!.config);
  assert.equal(runs[0]!.layer!.diffId, runs[1]!.layer!.diffId);

  const cat = await berth('cat', `oci:${out}:a`, '/opt/app/hello.txt');
  assert.equal(cat.stdout, 'hello from append\n');
  const cfg = json<Config>(await berth('config', `oci:${out}:a`), 'config');
  assert.equal(cfg.created, '2023-11-14T22:13:20Z');
  assert.equal(cfg.rootfs.diff_ids.at(-1), runs[0]!.layer!.diffId);
  assert.deepEqual(cfg.history.at(-1), { created: '2023-11-14T22:13:20Z', created_by: 'berth append tree' });
  // The layer itself: sorted, uid/gid 0, mtime = the epoch, no root entry.
  const entries = [];
  for await (const e of readTar(await layerFromDirectory(tree, { mtime: Number(EPOCH) }))) entries.push(e.header);
  assert.deepEqual(entries.map((h) => h.name), ['opt/', 'opt/app/', 'opt/app/hello.txt', 'opt/app/link', 'opt/app/run.sh', 'opt/app/sub/', 'opt/app/sub/z']);
  assert.ok(entries.every((h) => h.uid === 0 && h.gid === 0 && h.mtime === Number(EPOCH)));
  assert.equal(entries.find((h) => h.name === 'opt/app/run.sh')!.mode, 0o755);
  assert.equal(entries.find((h) => h.name === 'opt/app/link')!.linkname, 'hello.txt');
});

test('append: a layer tar is taken as it is (diff_id = its sha256)', async (t) => {
  const dir = await tmp(t);
  const tree = path.join(dir, 'tree');
  await makeTree(tree);
  const tar = path.join(dir, 'layer.tar');
  await writeFile(tar, await toBytes(await layerFromDirectory(tree, { mtime: 0 })));
  const r = await berth('append', SAMPLE, '--source-platform', 'linux/amd64', '--layer', tar, '-t', `oci-archive:${path.join(dir, 'o.tar')}:x`, '--json');
  assert.equal(r.code, 0, r.stderr);
  const res = json<Result>(r, 'append tar');
  const { createHash } = await import('node:crypto');
  const { readFile } = await import('node:fs/promises');
  assert.equal(res.layer!.diffId, `sha256:${createHash('sha256').update(await readFile(tar)).digest('hex')}`);
  assert.equal((await berth('cat', `oci-archive:${path.join(dir, 'o.tar')}:x`, '/opt/app/sub/z')).stdout, 'z');
});

test('config-set: flags and --change instructions, one empty_layer history entry each', async (t) => {
  const dir = await tmp(t);
  const target = `oci:${path.join(dir, 'out')}:cfg`;
  const r = await berth('config-set', SAMPLE, '--source-platform', 'linux/amd64', '-t', target, '--source-date-epoch', EPOCH,
    '--env', 'A=1', '--env', 'GREETING=replaced', '--entrypoint', '["/bin/sh","-c"]', '--cmd', 'echo hi', '--workdir', '/srv', '--user', '1000:1000',
    '--label', 'k=v', '--expose', '9090/udp', '--volume', '/cache', '--platform', 'linux/arm64/v8',
    '--change', 'ENV B="two words" C=3', '--change', 'LABEL x=y', '--change', 'WORKDIR sub', '--json');
  assert.equal(r.code, 0, r.stderr);
  const res = json<Result>(r, 'config-set');
  const cfg = json<Config>(await berth('config', target), 'config');
  assert.equal(cfg.architecture, 'arm64');
  const c = cfg.config;
  assert.ok(c.Env!.includes('A=1') && c.Env!.includes('B=two words') && c.Env!.includes('C=3'));
  assert.ok(c.Env!.includes('GREETING=replaced') && !c.Env!.includes('GREETING=hello from berth'), 'an existing variable is replaced in place');
  assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c']);
  assert.deepEqual(c.Cmd, ['/bin/sh', '-c', 'echo hi']);
  assert.equal(c.WorkingDir, '/srv/sub');
  assert.equal(c.User, '1000:1000');
  assert.equal(c.Labels!.k, 'v');
  assert.equal(c.Labels!.x, 'y');
  assert.ok('9090/udp' in c.ExposedPorts! && '8080/tcp' in c.ExposedPorts!);
  assert.ok('/cache' in c.Volumes!);
  const added = cfg.history.slice(-res.history.length);
  assert.equal(added.length, 14);
  assert.ok(added.every((h) => h.empty_layer === true && h.created === '2023-11-14T22:13:20Z' && h.comment === 'berth config-set'));
  assert.deepEqual(added.map((h) => h.created_by), res.history);
  assert.equal(cfg.created, '2023-11-14T22:13:20Z');
});

test('retag: the same image under another name', async (t) => {
  const dir = await tmp(t);
  const out = path.join(dir, 'out');
  const a = json<Result>(await berth('append', SAMPLE, '--source-platform', 'linux/amd64', '--layer', path.join(repoRoot, 'examples/sample'), '-t', `oci:${out}:one`, '--json'), 'append');
  const r = await berth('retag', `oci:${out}:one`, '-t', `oci:${out}:two`, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(json<Result>(r, 'retag').manifest, a.manifest);
  const noName = await berth('retag', `oci:${out}:one`, '-t', `oci:${path.join(dir, 'other')}`);
  assert.equal(noName.code, 2);
  assertCleanError(noName, 'retag without a name');
});

test('bad input: unknown --change instruction, missing layer dir, bad values: one clean line each', async (t) => {
  const dir = await tmp(t);
  const target = `oci:${path.join(dir, 'out')}:x`;
  const cases: Array<{ args: string[]; code: number; want: RegExp }> = [
    { args: ['config-set', SAMPLE, '-t', target, '--change', 'FROB x'], code: 2, want: /unknown instruction "FROB"/ },
    { args: ['config-set', SAMPLE, '-t', target, '--change', 'RUN echo'], code: 2, want: /unknown instruction "RUN"/ },
    { args: ['config-set', SAMPLE, '-t', target], code: 2, want: /nothing to change/ },
    { args: ['config-set', SAMPLE, '-t', target, '--env', 'NOEQUALS'], code: 2, want: /want KEY=VALUE/ },
    { args: ['config-set', SAMPLE, '-t', target, '--expose', 'http'], code: 2, want: /is not a port/ },
    { args: ['config-set', SAMPLE, '-t', target, '--cmd', '["a", 1]'], code: 2, want: /not an array of strings/ },
    { args: ['config-set', SAMPLE, '-t', target, '--env', 'A=1', '--source-date-epoch', 'yesterday'], code: 2, want: /whole seconds/ },
    { args: ['append', SAMPLE, '--source-platform', 'linux/amd64', '--layer', path.join(dir, 'does-not-exist'), '-t', target], code: 1, want: /does-not-exist: no such directory or file/ },
    { args: ['append', SAMPLE, '--layer', dir, '-t', path.join(dir, 'plain-path')], code: 2, want: /transport prefix|cannot write there/ },
  ];
  for (const c of cases) {
    const r = await berth(...c.args);
    assert.equal(r.code, c.code, `${c.args.join(' ')}: ${r.stderr}`);
    assertCleanError(r, c.args.join(' '));
    assert.match(r.stderr, c.want);
  }
  const { readdir } = await import('node:fs/promises');
  assert.deepEqual(await readdir(dir), [], 'failed mutations write nothing');
});

test('--change parsing follows docker commit', () => {
  assert.deepEqual(parseChange('ENV A B C').map((s) => s.text), ['ENV A="B C"']);
  assert.deepEqual(parseChange('expose 80 53/udp').map((s) => s.text), ['EXPOSE 80/tcp', 'EXPOSE 53/udp']);
  assert.deepEqual(parseChange('CMD ["a","b"]').map((s) => s.text), ['CMD ["a","b"]']);
  assert.deepEqual(parseChange('VOLUME ["/a", "/b"]').map((s) => s.text), ['VOLUME ["/a"]', 'VOLUME ["/b"]']);
  assert.throws(() => parseChange('ENV'), /needs an argument/);
  assert.throws(() => parseChange('LABEL a="b'), /unterminated/);
});

test('a layer from a directory diff: changes, additions and whiteouts', async (t) => {
  const dir = await tmp(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  for (const d of [a, b]) {
    await mkdir(path.join(d, 'keep'), { recursive: true });
    await writeFile(path.join(d, 'keep/same'), 'same');
    await utimes(path.join(d, 'keep/same'), 1000, 1000);
  }
  await writeFile(path.join(a, 'gone'), 'x');
  await mkdir(path.join(a, 'olddir'));
  await writeFile(path.join(a, 'olddir/f'), 'f');
  await writeFile(path.join(a, 'keep/changed'), 'v1');
  await writeFile(path.join(b, 'keep/changed'), 'version 2'); // another size: same-size files written in one clock tick look unchanged (as to dockerd)
  await writeFile(path.join(b, 'new'), 'n');
  const names: string[] = [];
  for await (const e of readTar(await layerFromDirectoryDiff(a, b, { mtime: 0 }))) names.push(e.header.name);
  assert.deepEqual(names.sort(), ['.wh.gone', '.wh.olddir', 'keep/', 'keep/changed', 'new'].sort());
});

test('targets in the local store: store:[ROOT]NAME, and bare NAME[:TAG] with --root', async (t) => {
  const dir = await tmp(t);
  const tree = path.join(dir, 'tree');
  await makeTree(tree);
  const root = path.join(dir, 'root');
  const a = await berth('append', SAMPLE, '--source-platform', 'linux/amd64', '--layer', tree, '-t', `store:[${root}]berth/appended:1`, '--source-date-epoch', EPOCH, '--json');
  assert.equal(a.code, 0, a.stderr);
  const ar = json<Result>(a, 'append to the store');
  const c = await berth('--root', root, 'config-set', 'berth/appended:1', '-t', 'berth/configured:1', '--env', 'X=1', '--json');
  assert.equal(c.code, 0, c.stderr);
  const cr = json<Result>(c, 'config-set in the store');
  const r = await berth('--root', root, 'retag', 'berth/configured:1', '-t', 'berth/configured:latest');
  assert.equal(r.code, 0, r.stderr);
  const images = json<{ images: Array<{ id: string; repoTags: string[] }> }>(await berth('--root', root, 'images', '--format', 'json'), 'images');
  const tags = new Map(images.images.flatMap((i) => i.repoTags.map((tag) => [tag, i.id] as const)));
  assert.equal(tags.get('berth/appended:1'), ar.config, 'the store names the image by its config digest');
  assert.equal(tags.get('berth/configured:1'), cr.config);
  assert.equal(tags.get('berth/configured:latest'), cr.config);
  assert.equal((await berth('--root', root, 'cat', 'berth/configured:1', '/opt/app/hello.txt')).stdout, 'hello from append\n');
});
