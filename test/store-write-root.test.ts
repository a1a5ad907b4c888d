/**
 * The store's write side without a daemon: load (layouts, archives, copy to store:), tag, rmi
 * with shared layers, fsck and gc on damaged roots, bad input that must leave the store exactly
 * as it was, roots berth did not create, and processes killed (SIGKILL) at exact steps of load,
 * rmi and gc, after which gc + fsck must give a clean store.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, lstat, mkdtemp, readdir, readFile, readlink, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { berth, json, repoRoot } from './support/cli.js';

const SAMPLE = path.join(repoRoot, 'examples/sample');
const BIN = path.join(repoRoot, 'bin/berth');

function sha256(b: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Every path under `dir` with its kind, mode and content hash (device nodes by their numbers). */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    const full = path.join(dir, rel);
    const st = await lstat(full);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out[rel || '.'] = `dir ${mode}`;
      for (const n of (await readdir(full)).sort()) await walk(rel ? `${rel}/${n}` : n);
    } else if (st.isSymbolicLink()) out[rel] = `link ${await readlink(full)}`;
    else if (st.isFile()) out[rel] = `file ${mode} ${sha256(await readFile(full))}`;
    else out[rel] = `node ${mode} ${st.rdev}`;
  };
  await walk('');
  return out;
}

async function tmp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp('/tmp/bsw-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function writeBlob(layout: string, bytes: Buffer | string): Promise<{ digest: string; size: number }> {
  const b = Buffer.from(bytes);
  const digest = sha256(b);
  await writeFile(path.join(layout, 'blobs/sha256', digest.slice(7)), b);
  return { digest, size: b.length };
}

/**
 * An OCI layout with the sample's linux/amd64 image as `docker.io/library/sample:a`, and, when
 * asked, a second image `variant:b` with the same layers and a changed config (so two images share
 * every layer), or a copy whose config lies about a diff_id.
 */
async function makeLayout(dir: string, opts: { variant?: boolean; wrongDiffId?: boolean; repeatBase?: boolean } = {}): Promise<string> {
  const layout = path.join(dir, `layout-${opts.variant ? 'v' : ''}${opts.wrongDiffId ? 'w' : ''}${opts.repeatBase ? 'r' : ''}`);
  const r = await berth('copy', '--platform', 'linux/amd64', SAMPLE, `oci:${layout}:docker.io/library/sample:a`);
  assert.equal(r.code, 0, r.stderr);
  type Entry = { mediaType: string; digest: string; size: number; platform?: { architecture: string }; annotations?: Record<string, string> };
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: Entry[] };
  // The copy keeps an index (the image and its attestation): name the image manifest itself.
  const inner = JSON.parse(await readFile(path.join(layout, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { manifests: Entry[] };
  const mdesc = inner.manifests.find((m) => m.platform?.architecture === 'amd64')!;
  index.manifests = [{ mediaType: mdesc.mediaType, digest: mdesc.digest, size: mdesc.size, annotations: { 'io.containerd.image.name': 'docker.io/library/sample:a', 'org.opencontainers.image.ref.name': 'sample:a' } }];
  const manifest = JSON.parse(await readFile(path.join(layout, 'blobs/sha256', mdesc.digest.slice(7)), 'utf8')) as { config: { digest: string; size: number }; layers: unknown[] };
  const config = JSON.parse(await readFile(path.join(layout, 'blobs/sha256', manifest.config.digest.slice(7)), 'utf8')) as {
    config: { Env?: string[] }; rootfs: { diff_ids: string[] };
  };
  if (opts.variant) config.config.Env = [...(config.config.Env ?? []), 'VARIANT=b'];
  if (opts.wrongDiffId) config.rootfs.diff_ids[2] = sha256('not this layer');
  if (opts.repeatBase) {
    // the base layer once more on top: one blob, two chain positions, two driver directories
    manifest.layers.push(manifest.layers[0]);
    config.rootfs.diff_ids.push(config.rootfs.diff_ids[0]!);
  }
  const cfg = await writeBlob(layout, JSON.stringify(config));
  const m2 = await writeBlob(layout, JSON.stringify({ ...manifest, config: { ...manifest.config, digest: cfg.digest, size: cfg.size } }));
  const entry = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m2 };
  if (opts.wrongDiffId) index.manifests = [{ ...entry, annotations: { 'io.containerd.image.name': 'docker.io/library/wrong:1', 'org.opencontainers.image.ref.name': 'wrong:1' } }];
  else if (opts.repeatBase) index.manifests = [{ ...entry, annotations: index.manifests[0]!.annotations! }];
  else if (opts.variant) index.manifests.push({ ...entry, annotations: { 'io.containerd.image.name': 'docker.io/library/variant:b', 'org.opencontainers.image.ref.name': 'variant:b' } });
  await writeFile(path.join(layout, 'index.json'), JSON.stringify(index));
  return layout;
}

function berthChild(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; signal?: string }) | null;
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

test('load, tag, rmi, fsck and gc on a root berth creates', async (t) => {
  const dir = await tmp(t);
  const R = path.join(dir, 'root');
  const layout = await makeLayout(dir, { variant: true });

  const load = await berth('--root', R, 'load', layout);
  assert.equal(load.code, 0, load.stderr);
  assert.equal(load.stdout, 'Loaded image: sample:a\nLoaded image: variant:b\n');
  assert.equal(await readFile(path.join(R, 'image/overlay2/repositories.json'), 'utf8').then((s) => s.includes('"variant:b"')), true);
  const fsck = await berth('--root', R, 'store', 'fsck', '--format', 'json');
  assert.equal(fsck.code, 0, fsck.stdout);
  const fr = json<{ images: number; layers: number; layersVerified: number; problems: unknown[] }>(fsck, 'fsck');
  assert.deepEqual([fr.images, fr.layers, fr.layersVerified, fr.problems.length], [2, 3, 3, 0], 'two images share all three layers');

  await t.test('loading again reuses every layer', async () => {
    const r = await berth('--root', R, 'load', layout, '--format', 'json');
    assert.equal(r.code, 0, r.stderr);
    const res = json<{ images: Array<{ newLayers: number; layers: number }> }>(r, 'load');
    assert.deepEqual(res.images.map((i) => [i.newLayers, i.layers]), [[0, 3], [0, 3]]);
  });

  await t.test('copy to store: goes through the same destination', async () => {
    const r = await berth('copy', '--platform', 'linux/arm64', SAMPLE, `store:[${R}]arm:1`);
    assert.equal(r.code, 0, r.stderr);
    const images = json<{ images: Array<{ repoTags: string[] }> }>(await berth('--root', R, 'images', '--format', 'json'), 'images');
    assert.deepEqual(images.images.flatMap((i) => i.repoTags).sort(), ['arm:1', 'sample:a', 'variant:b']);
    const v = await berth('--root', R, 'verify', 'arm:1');
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  await t.test('tag names an image, with lastUpdated', async () => {
    const r = await berth('--root', R, 'tag', 'sample:a', 'example.com/team/sample', '--format', 'json');
    assert.equal(r.code, 0, r.stderr);
    const res = json<{ id: string; name: string }>(r, 'tag');
    assert.equal(res.name, 'example.com/team/sample:latest');
    assert.match(await readFile(path.join(R, 'image/overlay2/imagedb/metadata/sha256', res.id.slice(7), 'lastUpdated'), 'utf8'), /^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    const bad = await berth('--root', R, 'tag', 'sample:a', `x@${sha256('y')}`);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /digest reference/);
    const missing = await berth('--root', R, 'tag', 'nope:1', 'x:1');
    assert.equal(missing.code, 1);
  });

  await t.test('rmi: a name is untagged; an image goes with the layers only it used', async () => {
    let r = await berth('--root', R, 'rmi', 'example.com/team/sample:latest');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Untagged: example.com/team/sample:latest\n');
    r = await berth('--root', R, 'rmi', 'variant:b', '--format', 'json');
    assert.equal(r.code, 0, r.stderr);
    const res = json<{ untagged: string[]; deleted: string[]; layers: string[] }>(r, 'rmi');
    assert.deepEqual(res.untagged, ['variant:b']);
    assert.equal(res.deleted.length, 1);
    assert.deepEqual(res.layers, [], 'sample:a still uses every layer');
    assert.equal((await berth('--root', R, 'verify', 'sample:a')).code, 0);
    r = await berth('--root', R, 'rmi', 'sample:a', 'arm:1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Untagged: sample:a\nDeleted: sha256:[a-f0-9]{64}\n(Deleted: sha256:[a-f0-9]{64}\n){3}Untagged: arm:1\nDeleted: sha256:[a-f0-9]{64}\n(Deleted: sha256:[a-f0-9]{64}\n){3}$/);
    assert.equal((await readdir(path.join(R, 'image/overlay2/layerdb/sha256'))).length, 0);
    assert.deepEqual((await readdir(path.join(R, 'overlay2'))).sort(), ['l']);
    assert.deepEqual(await readdir(path.join(R, 'overlay2/l')), []);
    const f = await berth('--root', R, 'store', 'fsck');
    assert.equal(f.code, 0, f.stdout);
    assert.equal((await berth('--root', R, 'rmi', 'sample:a')).code, 1);
  });

  await t.test('--help of every write command', async () => {
    for (const args of [['load'], ['tag'], ['rmi'], ['store', 'fsck'], ['store', 'gc'], ['store']]) {
      const r = await berth(...args, '--help');
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^Usage: berth /, args.join(' '));
    }
  });
});

test('a layer blob used at two chain positions gets a driver directory for each', async (t) => {
  const dir = await tmp(t);
  const R = path.join(dir, 'root');
  const load = await berth('--root', R, 'load', await makeLayout(dir, { repeatBase: true }));
  assert.equal(load.code, 0, load.stderr);
  const fsck = json<{ layers: number; layersVerified: number; problems: unknown[] }>(await berth('--root', R, 'store', 'fsck', '--format', 'json'), 'fsck');
  assert.deepEqual([fsck.layers, fsck.layersVerified, fsck.problems.length], [4, 4, 0]);
  const cacheIds = new Set<string>();
  for (const d of await readdir(path.join(R, 'image/overlay2/layerdb/sha256'))) cacheIds.add(await readFile(path.join(R, 'image/overlay2/layerdb/sha256', d, 'cache-id'), 'utf8'));
  assert.equal(cacheIds.size, 4);
  assert.deepEqual((await readdir(path.join(R, 'image/overlay2/layerdb/tmp'))).length, 0, 'nothing staged is left');
  const v = await berth('--root', R, 'verify', 'sample:a');
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

test('fsck finds damage, one line each; gc removes orphans', async (t) => {
  const dir = await tmp(t);
  const R = path.join(dir, 'root');
  assert.equal((await berth('--root', R, 'load', SAMPLE, '--platform', 'linux/amd64')).code, 0);
  const trace = json<{ layers: Array<{ chainId: string; cacheId: string; files: string; overlay: { link: string } }> }>(await berth('--root', R, 'trace', 'berth-sample', '--format', 'json'), 'trace');
  const [l0, l1, l2] = trace.layers as [typeof trace.layers[0], typeof trace.layers[0], typeof trace.layers[0]];
  // A changed file, a broken l/ link, a tagged name pointing nowhere, an orphan driver dir and a temp leftover.
  await writeFile(path.join(R, l0.files, 'etc/greeting'), 'tampered\n');
  await unlink(path.join(R, 'overlay2/l', l1.overlay.link));
  const repos = JSON.parse(await readFile(path.join(R, 'image/overlay2/repositories.json'), 'utf8')) as { Repositories: Record<string, Record<string, string>> };
  repos.Repositories['ghost'] = { 'ghost:1': sha256('no such image') };
  await writeFile(path.join(R, 'image/overlay2/repositories.json'), JSON.stringify(repos));
  await promisify(execFile)('cp', ['-a', path.join(R, 'overlay2', l2.cacheId), path.join(R, 'overlay2', 'f'.repeat(64))]);
  await writeFile(path.join(R, 'image/overlay2/layerdb/tmp/.berth-tmp-999999999-x-000000000000'), '');
  const r = await berth('--root', R, 'store', 'fsck');
  assert.equal(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.some((l) => /^layer: layer sha256:[a-f0-9]{12} .*file "\.?\/?etc\/greeting": file is longer than recorded/.test(l)), r.stdout);
  assert.ok(lines.some((l) => l.startsWith('layer: ') && l.includes(`overlay2/l/${l1.overlay.link} is missing`)), r.stdout);
  assert.ok(lines.some((l) => l.startsWith('names: ') && l.includes('ghost:1')), r.stdout);
  assert.ok(lines.some((l) => l.startsWith('orphan: ') && l.includes(`overlay2/${'f'.repeat(64)}`)), r.stdout);
  assert.ok(lines.some((l) => l.startsWith('orphan: ') && l.includes('.berth-tmp-999999999')), r.stdout);
  assert.match(lines.at(-1)!, /^\d+ problems in 1 image, 3 layers/);

  const dry = await berth('--root', R, 'store', 'gc', '--dry-run');
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would remove driver-dir overlay2\/f{64}/);
  const gc = await berth('--root', R, 'store', 'gc', '--format', 'json');
  assert.equal(gc.code, 0, gc.stderr);
  const removed = json<{ removed: Array<{ kind: string; path: string }> }>(gc, 'gc').removed.map((x) => x.kind).sort();
  assert.deepEqual(removed, ['driver-dir', 'temp']);
  const after = await berth('--root', R, 'store', 'fsck');
  assert.equal(after.code, 1, 'gc does not repair content: the tampered file and the missing link stay problems');
  assert.ok(!after.stdout.includes('orphan:'), after.stdout);
});

test('bad input leaves the store exactly as it was', async (t) => {
  const dir = await tmp(t);
  const R = path.join(dir, 'root');
  assert.equal((await berth('--root', R, 'load', SAMPLE, '--platform', 'linux/arm64')).code, 0);
  const archive = path.join(dir, 'sample.tar');
  assert.equal((await berth('copy', '--platform', 'linux/amd64', SAMPLE, `docker-archive:${archive}:trunc:1`)).code, 0);
  const before = await snapshot(R);
  const { size } = await lstat(archive);
  await truncate(archive, Math.floor(size * 0.6));
  const truncated = await berth('--root', R, 'load', '-i', archive);
  assert.equal(truncated.code, 1, truncated.stdout);
  assert.deepEqual(await snapshot(R), before, 'a truncated archive changes nothing');
  const wrong = await berth('--root', R, 'load', await makeLayout(dir, { wrongDiffId: true }));
  assert.equal(wrong.code, 1, wrong.stdout);
  assert.match(wrong.stderr, /diff_id/);
  assert.deepEqual(await snapshot(R), before, 'a wrong diff_id changes nothing');
  const notAnImage = await berth('--root', R, 'load', '-i', path.join(dir, 'missing.tar'));
  assert.equal(notAnImage.code, 1);
  assert.deepEqual(await snapshot(R), before);
});

test('roots berth did not create are read-only unless --allow-write', async (t) => {
  const dir = await tmp(t);
  const R = path.join(dir, 'root');
  assert.equal((await berth('--root', R, 'load', SAMPLE, '--platform', 'linux/amd64')).code, 0);
  await unlink(path.join(R, '.berth-root'));
  const before = await snapshot(R);
  for (const args of [['load', SAMPLE, '--platform', 'linux/arm64'], ['tag', 'berth-sample', 'x:1'], ['rmi', 'berth-sample'], ['store', 'gc']]) {
    const r = await berth('--root', R, ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /berth did not create this data root .*--allow-write/, args.join(' '));
  }
  const copy = await berth('copy', '--platform', 'linux/arm64', SAMPLE, `store:[${R}]y:1`);
  assert.equal(copy.code, 2, copy.stderr);
  assert.deepEqual(await snapshot(R), before);
  assert.equal((await berth('--root', R, 'store', 'fsck')).code, 0, 'reading is always allowed');
  const ok = await berth('--root', R, '--allow-write', 'tag', 'berth-sample', 'x:1');
  assert.equal(ok.code, 0, ok.stderr);
});

test('vfs roots: load, save, rmi without a daemon', async (t) => {
  const dir = await tmp(t);
  const R = path.join(dir, 'root');
  const r = await berth('--root', R, 'load', SAMPLE, '--platform', 'linux/amd64', '--driver', 'vfs');
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await berth('--root', R, 'store', 'fsck')).code, 0);
  const top = json<{ layers: Array<{ files: string }> }>(await berth('--root', R, 'trace', 'berth-sample', '--format', 'json'), 'trace').layers.at(-1)!;
  // vfs keeps full snapshots: the top layer's directory is the flattened image.
  assert.deepEqual((await readdir(path.join(R, top.files, 'data/old'))).sort(), ['new.txt']);
  assert.deepEqual((await readdir(path.join(R, top.files, 'data'))).sort(), ['old']);
  assert.equal((await berth('--root', R, 'rmi', 'berth-sample')).code, 0);
  assert.deepEqual(await readdir(path.join(R, 'vfs/dir')), []);
});

test('a write killed at any step leaves a store that gc + fsck make clean', async (t) => {
  const dir = await tmp(t);
  const layout = await makeLayout(dir, { variant: true });
  const steps: Array<{ point: string; args: string[]; setup?: boolean }> = [
    { point: 'layer-prepared', args: ['load', layout] },
    { point: 'layer-driver-dir', args: ['load', layout] },
    { point: 'layer-published', args: ['load', layout] },
    { point: 'all-prepared', args: ['load', layout] },
    { point: 'config-written', args: ['load', layout] },
    { point: 'names-written', args: ['load', layout] },
    { point: 'rmi-untagged', args: ['rmi', 'sample:a', 'variant:b'], setup: true },
    { point: 'image-removed', args: ['rmi', 'sample:a', 'variant:b'], setup: true },
    { point: 'layer-unlinked', args: ['rmi', 'sample:a', 'variant:b'], setup: true },
    { point: 'gc-layer-removed', args: ['store', 'gc'], setup: true },
  ];
  for (const step of steps) {
    await t.test(`killed at ${step.point} (${step.args[0]})`, async () => {
      const R = path.join(dir, `root-${step.point}`);
      if (step.setup) {
        assert.equal((await berth('--root', R, 'load', layout)).code, 0);
        if (step.point === 'gc-layer-removed') {
          // Unreferenced layers for gc to remove: drop the images' records by hand.
          for (const id of await readdir(path.join(R, 'image/overlay2/imagedb/content/sha256'))) await unlink(path.join(R, 'image/overlay2/imagedb/content/sha256', id));
          await writeFile(path.join(R, 'image/overlay2/repositories.json'), '{"Repositories":{}}');
        }
      }
      const killed = await berthChild(['--root', R, ...step.args], { BERTH_FAILPOINT: step.point });
      assert.equal(killed.signal, 'SIGKILL', `${step.point}: the failpoint was reached (${killed.code} ${killed.stderr})`);
      const gc = await berth('--root', R, 'store', 'gc');
      assert.equal(gc.code, 0, gc.stderr);
      const f = await berth('--root', R, 'store', 'fsck');
      assert.equal(f.code, 0, `${step.point}: ${f.stdout}`);
      // And the store still works: the write can be done again.
      const again = await berth('--root', R, ...(step.args[0] === 'load' ? ['load', layout] : ['load', layout]));
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await berth('--root', R, 'store', 'fsck')).code, 0);
    });
  }
});

test('without root: whiteouts and owners stay in tar-split, said once; the layers still rebuild byte-exact', async (t) => {
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  if (process.getuid?.() !== 0 || setpriv === undefined) {
    t.skip('needs root (to drop to an unprivileged user) and setpriv');
    return;
  }
  const dir = await tmp(t);
  await chown(dir, 65534, 65534);
  const R = path.join(dir, 'root');
  const asNobody = (args: readonly string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, '--root', R, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
  const load = await asNobody(['load', SAMPLE, '--platform', 'linux/amd64']);
  assert.equal(load.code, 0, load.stderr);
  const notes = load.stderr.split('\n').filter((l) => l.startsWith('note: not running as root'));
  assert.equal(notes.length, 1, load.stderr);
  assert.match(notes[0]!, /1 whiteout .*1 opaque directory .*kept in tar-split only/);
  const fsck = await asNobody(['store', 'fsck']);
  assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  const out = path.join(dir, 'saved.tar');
  const save = await asNobody(['save', 'berth-sample', '-o', out]);
  assert.equal(save.code, 0, save.stderr);
  const v = await berth('verify', out);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});
