import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { APP_IMAGE, APP_IMAGE_LATEST, BASE_IMAGE, buildTestImages, startDockerd, type StorageDriver } from './docker.js';
import { needPeer, needRoot } from './peers.js';

const run = promisify(execFile);

interface SavedManifest {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}


/** `tar -tv` listing of one layer: name → the rest of the line (mode, link info). */
async function listLayer(file: string): Promise<Map<string, string>> {
  const { stdout } = await run('tar', ['--numeric-owner', '-tvf', file], { maxBuffer: 16 * 1024 * 1024 });
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    // -rwxr-xr-x 0/0 1982256 1970-01-01 00:00 bin/busybox[ -> target | link to target]
    const m = /^(\S+)\s+\S+\s+\d+\s+\S+\s+\S+\s+(.*)$/.exec(line);
    assert.ok(m, `unparsed tar line: ${line}`);
    const rest = m[2]!;
    const name = rest.replace(/ (->|link to) .*$/, '').replace(/^\.\//, '').replace(/\/$/, '');
    out.set(name, `${m[1]} ${rest}`);
  }
  return out;
}

const drivers: Array<{ name: string; driver: StorageDriver | undefined }> = [
  { name: 'default driver (overlay2 where it works)', driver: undefined },
  { name: 'vfs', driver: 'vfs' },
];

for (const row of drivers) {
  test(`a private dockerd builds, lists and saves the test images: ${row.name}`, { timeout: 240_000 }, async (t) => {
    if (!needPeer(t, 'dockerd') || !needPeer(t, 'docker') || !needPeer(t, 'busybox') || !needRoot(t)) return;
    const d = await startDockerd(row.driver === undefined ? {} : { driver: row.driver });
    t.after(() => d.stop());
    t.diagnostic(`storage driver: ${d.driver}`);
    if (row.driver !== undefined) assert.equal(d.driver, row.driver);
    assert.match(d.host, /^unix:\/\//);
    assert.ok(d.host.length - 'unix://'.length < 108, `socket path too long: ${d.host}`);
    const info = JSON.parse((await d.docker(['info', '--format', '{{json .}}'])).stdout) as { Driver: string; DockerRootDir: string; ServerVersion: string };
    assert.equal(info.Driver, d.driver);
    assert.equal(info.DockerRootDir, d.dataRoot);
    assert.match(info.ServerVersion, /^20\.10\./);

    const images = await buildTestImages(d);

    await t.test('docker images lists every name', async () => {
      const { stdout } = await d.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
      const listed = new Map(stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
      assert.equal(listed.get(BASE_IMAGE), images.base.id);
      assert.equal(listed.get(APP_IMAGE), images.app.id);
      assert.equal(listed.get(APP_IMAGE_LATEST), images.app.id);
    });

    await t.test('the app image config carries the committed changes', async () => {
      const [inspect] = JSON.parse((await d.docker(['image', 'inspect', APP_IMAGE])).stdout) as Array<{
        Config: { Env: string[]; Cmd: string[]; WorkingDir: string; Labels: Record<string, string>; ExposedPorts: Record<string, object> };
        RootFS: { Layers: string[] };
      }>;
      assert.ok(inspect);
      assert.ok(inspect.Config.Env.includes(images.config.env));
      assert.deepEqual(inspect.Config.Cmd, images.config.cmd);
      assert.equal(inspect.Config.WorkingDir, images.config.workingDir);
      assert.deepEqual(inspect.Config.Labels, images.config.labels);
      assert.deepEqual(Object.keys(inspect.Config.ExposedPorts), images.config.exposedPorts);
      assert.equal(inspect.RootFS.Layers.length, images.layers.length);
    });

    await t.test('the app image runs its Cmd', async () => {
      const { stdout } = await d.docker(['run', '--rm', '--network', 'none', APP_IMAGE]);
      assert.equal(stdout, 'hello from berth\n');
    });

    await t.test('docker save writes the layers the facts describe', async (t) => {
      const dir = await mkdtemp('/tmp/bs-');
      t.after(() => rm(dir, { recursive: true, force: true }));
      const archive = path.join(dir, 'app.tar');
      await d.docker(['save', '-o', archive, APP_IMAGE, APP_IMAGE_LATEST]);
      await run('tar', ['-xf', archive, '-C', dir]);
      const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as SavedManifest[];
      assert.equal(manifest.length, 1);
      const entry = manifest[0]!;
      assert.deepEqual([...(entry.RepoTags ?? [])].sort(), [APP_IMAGE, APP_IMAGE_LATEST].sort());
      assert.equal(entry.Layers.length, images.layers.length);
      for (const [i, facts] of images.layers.entries()) {
        const listing = await listLayer(path.join(dir, entry.Layers[i]!));
        for (const p of facts.adds) assert.ok(listing.has(p), `layer ${i} (${facts.summary}) lacks ${p}: ${[...listing.keys()].join(', ')}`);
        for (const p of facts.whiteouts) {
          const wh = path.posix.join(path.posix.dirname(p), `.wh.${path.posix.basename(p)}`);
          assert.ok(listing.has(wh), `layer ${i} lacks whiteout ${wh}`);
        }
        for (const p of facts.opaqueDirs) assert.ok(listing.has(`${p}/.wh..wh..opq`), `layer ${i} lacks opaque marker in ${p}`);
      }
      const last = await listLayer(path.join(dir, entry.Layers[images.layers.length - 1]!));
      for (const f of images.files) {
        const line = last.get(f.path);
        if (line === undefined) continue;
        if (f.type === 'hardlink') assert.match(line, new RegExp(`link to ${f.target}$`));
        if (f.type === 'symlink') assert.match(line, new RegExp(`-> ${f.target}$`));
        if (f.type === 'file' && f.mode === 0o4755) assert.match(line, /^-rwsr-xr-x /);
      }
    });

    await t.test('stop removes the daemon and its temp dirs', async () => {
      const socket = d.host.slice('unix://'.length);
      await d.stop();
      assert.equal(existsSync(socket), false);
      assert.equal(existsSync(d.dataRoot), false);
      assert.throws(() => process.kill(d.pid, 0), /ESRCH/);
    });
  });
}
