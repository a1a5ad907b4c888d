/** The filesystem commands end to end (in process): layers, ls, cat, export, unpack, diff. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { readTar } from '../src/tar/reader.js';
import { berth, fixture } from './support/cli.js';

const TMP_BASE = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

function dive(t: TestContext): string | undefined {
  const file = fixture('wagoodman__dive/.data/test-docker-image.tar');
  if (existsSync(file)) return `docker-archive:${file}`;
  if (process.env.CI === 'true') assert.fail(`fixture missing: ${file}`);
  t.skip('fixture not present');
  return undefined;
}

async function tempDir(t: TestContext): Promise<string> {
  const d = await mkdtemp(path.join(TMP_BASE, 'berth-layer-cli-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('berth layers: table and json', async (t) => {
  const ref = dive(t);
  if (ref === undefined) return;
  const text = await berth('layers', ref);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^#\s+DIGEST\s+SIZE\s+DIFF_ID\s+UNCOMPRESSED\s+ADDED\s+MODIFIED\s+DELETED\s+WASTED\s+CREATED BY/);
  assert.match(text.stdout, /14 layers, .* 31 KiB wasted/);
  const json = await berth('layers', ref, '--format', 'json');
  const r = JSON.parse(json.stdout) as { layers: Array<{ index: number; diffId: string; filesDeleted: number; wastedBytes: number }> };
  assert.equal(r.layers.length, 14);
  assert.equal(r.layers[9]!.filesDeleted, 5);
  assert.match(r.layers[0]!.diffId, /^sha256:/);
});

test('berth ls: names, -l, -R, --layer, json', async (t) => {
  const ref = dive(t);
  if (ref === undefined) return;
  const plain = await berth('ls', ref, '/root');
  assert.equal(plain.stdout, '/root/.data\n/root/.saved.txt\n/root/saved.txt\n');
  const long = await berth('ls', ref, '/root', '-l');
  assert.match(long.stdout, /^drwxr-xr-x\s+0\/0\s+0\s+L12\s+\/root\/.data$/m);
  assert.match(long.stdout, /^-rwxr-xr-x\s+0\/0\s+6405\s+L13\s+\/root\/saved.txt$/m);
  const rec = await berth('ls', ref, '/root', '-R');
  assert.equal(rec.stdout.split('\n').filter(Boolean).length, 6);
  const early = await berth('ls', ref, '/root/example', '--layer', '6', '-l');
  assert.match(early.stdout, /^-r--r--r-- .* \/root\/example\/somefile1.txt$/m);
  const json = JSON.parse((await berth('ls', ref, '/bin/sh', '--format', 'json')).stdout) as { entries: Array<{ path: string; type: string; links?: number }> };
  assert.equal(json.entries[0]!.path, '/bin/sh');
  assert.ok((json.entries[0]!.links ?? 1) > 1, 'busybox applets are hard links');
  const missing = await berth('ls', ref, '/nope');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^berth: .*no "\/nope" in the image/);
  const bad = await berth('ls', ref, '--layer', 'x');
  assert.equal(bad.code, 2);
});

test('berth cat: a file, through a symlink, and a directory refused', async (t) => {
  const ref = dive(t);
  if (ref === undefined) return;
  const r = await berth('cat', ref, '/root/saved.txt');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.bytes.length, 6405);
  assert.match(r.stdout, /^# dive/);
  const dir = await berth('cat', ref, '/root');
  assert.equal(dir.code, 1);
  assert.match(dir.stderr, /is a directory, not a regular file/);
});

test('berth export -o FILE and -o -: the same tar, no markers', async (t) => {
  const ref = dive(t);
  if (ref === undefined) return;
  const dir = await tempDir(t);
  const out = path.join(dir, 'flat.tar');
  const r = await berth('export', ref, '-o', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^wrote .*flat\.tar/);
  assert.deepEqual((await readdir(dir)).sort(), ['flat.tar'], 'no temp file left behind');
  const file = await readFile(out);
  const piped = await berth('export', ref, '-o', '-');
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(piped.bytes.equals(file), 'stdout and file hold the same bytes');
  const names: string[] = [];
  for await (const e of readTar((async function* () { yield file; })())) names.push(e.header.name);
  assert.ok(names.includes('root/saved.txt'));
  assert.ok(!names.some((n) => n.includes('.wh.') || n.startsWith('root/example')));
});

test('berth unpack: a directory, force for a non-empty one, limits', async (t) => {
  const ref = dive(t);
  if (ref === undefined) return;
  const dir = await tempDir(t);
  const target = path.join(dir, 'rootfs');
  const r = await berth('unpack', ref, target);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^unpacked 14 layers \(451 entries/);
  assert.equal((await readFile(path.join(target, 'root/saved.txt'))).length, 6405);
  const again = await berth('unpack', ref, target);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /directory is not empty \(use force/);
  assert.equal((await berth('unpack', ref, target, '--force')).code, 0);
  const limited = await berth('unpack', ref, path.join(dir, 'small'), '--max-entries', '100');
  assert.equal(limited.code, 1);
  assert.match(limited.stderr, /more than 100 entries/);
  const json = JSON.parse((await berth('unpack', ref, path.join(dir, 'j'), '--format', 'json')).stdout) as { layers: number; warnings: string[] };
  assert.equal(json.layers, 14);
});

test('berth diff: an image against itself and against its kaniko rebuild', async (t) => {
  const ref = dive(t);
  if (ref === undefined) return;
  const same = await berth('diff', ref, ref);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /0 added \(0 B\), 0 removed \(0 B\), 0 modified, \d+ unchanged/);
  const kaniko = `docker-archive:${fixture('wagoodman__dive/.data/test-kaniko-image.tar')}`;
  const d = await berth('diff', ref, kaniko);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^M {2}\/root\/saved.txt {2}\(content, size\)$/m);
  const json = JSON.parse((await berth('diff', ref, kaniko, '--format', 'json')).stdout) as { summary: { modified: number } };
  assert.ok(json.summary.modified > 0);
});
