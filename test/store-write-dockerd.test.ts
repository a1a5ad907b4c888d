/**
 * Proof that what berth writes is a data root dockerd 20.10 accepts, on overlay2 and on vfs: a
 * first dockerd builds the test images and `docker save`s them; berth loads that archive and the
 * OCI sample (linux/amd64) into a fresh root; a second dockerd started on berth's root lists the
 * same IDs and tags, runs containers that see the union berth wrote (whiteouts and opaque
 * directories honoured), and `docker save`s the same layer tars. berth's own save, fsck and the
 * real `tar-split asm` agree, and berth refuses to write while that dockerd runs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readTar } from '../src/tar/reader.js';
import { toBytes } from '../src/io/stream.js';
import { berth, json, repoRoot } from './support/cli.js';
import { APP_IMAGE, APP_IMAGE_LATEST, BASE_IMAGE, buildTestImages, startDockerd, type StorageDriver } from './support/docker.js';
import { needPeer, requirePeer, needRoot } from './support/peers.js';

const run = promisify(execFile);


function sha256(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** diff_id → layer tar bytes of a docker save archive (legacy or Docker 25 layout: both list Layers in manifest.json). */
async function savedLayers(file: string): Promise<Map<string, Buffer>> {
  const members = new Map<string, Buffer>();
  const links = new Map<string, string>();
  for await (const e of readTar(createReadStream(file))) {
    if (e.header.type === 'file') members.set(e.header.name, Buffer.from(await toBytes(e.body())));
    // docker save stores a layer shared by several saved images once, then symlinks to it.
    if (e.header.type === 'symlink') links.set(e.header.name, path.posix.join(path.posix.dirname(e.header.name), e.header.linkname));
  }
  for (const [name, target] of links) if (members.has(target)) members.set(name, members.get(target)!);
  const manifest = JSON.parse(members.get('manifest.json')!.toString('utf8')) as Array<{ Config: string; Layers: string[] }>;
  const out = new Map<string, Buffer>();
  for (const item of manifest) {
    const config = JSON.parse(members.get(item.Config)!.toString('utf8')) as { rootfs: { diff_ids: string[] } };
    item.Layers.forEach((l, i) => out.set(config.rootfs.diff_ids[i]!, members.get(l)!));
  }
  return out;
}

const SAMPLE = path.join(repoRoot, 'examples/sample');
const drivers: StorageDriver[] = ['overlay2', 'vfs'];

for (const driver of drivers) {
  test(`dockerd 20.10 accepts a data root berth wrote: ${driver}`, { timeout: 1_200_000 }, async (t) => {
    if (!needPeer(t, 'dockerd') || !needPeer(t, 'docker') || !needPeer(t, 'busybox') || !needPeer(t, 'tar-split') || !needRoot(t)) return;
    const work = await mkdtemp('/tmp/bsw-');
    const R = path.join(work, 'root');
    const first = await startDockerd({ driver });
    t.after(async () => {
      await first.stop();
      await rm(work, { recursive: true, force: true });
    });
    const images = await buildTestImages(first);
    const names = [BASE_IMAGE, APP_IMAGE, APP_IMAGE_LATEST];
    const archive = path.join(work, 'all.tar');
    await first.docker(['save', '-o', archive, ...names]);
    const want = new Map<string, { id: string; diffIds: string[] }>();
    for (const name of names) {
      const [info] = JSON.parse((await first.docker(['image', 'inspect', name])).stdout) as Array<{ Id: string; RootFS: { Layers: string[] } }>;
      want.set(name, { id: info!.Id, diffIds: info!.RootFS.Layers });
    }
    const dockerLayers = await savedLayers(archive);
    await first.stop();

    // berth loads the docker save archive and the OCI sample into a fresh root.
    const load = await berth('--root', R, 'load', '-i', archive, '--driver', driver, '--format', 'json');
    assert.equal(load.code, 0, load.stderr);
    const loaded = json<{ images: Array<{ id: string; names: string[] }> }>(load, 'load');
    for (const name of names) assert.ok(loaded.images.some((i) => i.id === want.get(name)!.id && i.names.includes(name)), `${name} loaded with ID ${want.get(name)!.id}`);
    const sample = await berth('--root', R, 'load', SAMPLE, '--platform', 'linux/amd64');
    assert.equal(sample.code, 0, sample.stderr);
    assert.equal(sample.stdout, 'Loaded image: berth-sample:latest\n');
    const sampleInfo = json<{ configDigest: string; layers: Array<{ diffId: string }> }>(await berth('inspect', SAMPLE, '--platform', 'linux/amd64', '--format', 'json'), 'sample');
    const again = await berth('--root', R, 'load', '-i', archive);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^Loaded image: berth-test\/base:1$/m, 'loading again reuses every layer and keeps the names');

    await t.test('fsck passes on berth\'s root', async () => {
      const r = await berth('--root', R, 'store', 'fsck');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^ok: 3 images, /m, 'base, app (two names) and the sample');
    });

    await t.test('berth save from berth\'s root gives docker save\'s layer tars byte for byte', async () => {
      const out = path.join(work, 'berth-save.tar');
      const r = await berth('--root', R, 'save', APP_IMAGE, '-o', out, '--format', 'docker-legacy');
      assert.equal(r.code, 0, r.stderr);
      const ours = await savedLayers(out);
      assert.deepEqual([...ours.keys()], want.get(APP_IMAGE)!.diffIds);
      for (const [diffId, bytes] of ours) assert.ok(bytes.equals(dockerLayers.get(diffId)!), `layer ${diffId}`);
    });

    await t.test('tar-split asm accepts berth\'s tar-split files with berth\'s driver directories', async () => {
      const tool = requirePeer('tar-split');
      for (const name of [APP_IMAGE, 'berth-sample:latest']) {
        const trace = json<{ layers: Array<{ diffId: string; tarSplit: string; files: string }> }>(await berth('--root', R, 'trace', name, '--format', 'json'), 'trace');
        for (const l of trace.layers) {
          const { stdout } = await run(tool, ['asm', '--input', path.join(R, l.tarSplit), '--path', path.join(R, l.files)], { encoding: 'buffer', maxBuffer: 64 << 20 });
          assert.equal(sha256(stdout), l.diffId, `${name} ${l.files}`);
        }
      }
    });

    const second = await startDockerd({ driver, dataRoot: R });
    t.after(() => second.stop());
    const bb = requirePeer('busybox');

    await t.test('docker images on berth\'s root lists the same IDs and names', async () => {
      const listing = (await second.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout.trim().split('\n').sort();
      const expected = [...names.map((n) => `${n} ${want.get(n)!.id}`), `berth-sample:latest ${sampleInfo.configDigest}`].sort();
      assert.deepEqual(listing, expected);
      for (const name of names) {
        const [info] = JSON.parse((await second.docker(['image', 'inspect', name])).stdout) as Array<{ Id: string; RootFS: { Layers: string[] } }>;
        assert.deepEqual(info!.RootFS.Layers, want.get(name)!.diffIds);
      }
    });

    await t.test('docker run sees the union berth wrote: files, deletions, opaque directories, links', async () => {
      const sh = async (image: string, script: string) => (await second.docker(['run', '--rm', '--network', 'none', image, '/bin/sh', '-c', script])).stdout;
      assert.equal(await sh(APP_IMAGE, 'cat /app/hello.txt /app/config.ini'), 'hello from berth\nversion=2\n');
      assert.equal(await sh(APP_IMAGE, 'ls /app/data'), 'c\n', 'the replaced directory shows only its new child');
      assert.equal(await sh(APP_IMAGE, 'test -e /app/old.txt && echo present || echo gone'), 'gone\n');
      assert.equal(await sh(APP_IMAGE, 'cat /app/bin/tool-hardlink; ls /app/current'), '#!/bin/sh\necho tool\nc\n');
      for (const f of images.files) if (f.type === 'file' && f.content !== undefined) assert.equal(await sh(APP_IMAGE, `cat /${f.path}`), f.content, f.path);
      // The sample has no shell: a static busybox is mounted in.
      const sampleRun = async (...args: string[]) => (await second.docker(['run', '--rm', '--network', 'none', '-v', `${bb}:/busybox:ro`, '--entrypoint', '/busybox', 'berth-sample:latest', ...args])).stdout;
      assert.equal(await sampleRun('ls', '/data', '/data/old'), '/data:\nold\n\n/data/old:\nnew.txt\n', 'remove-me.txt whited out, a.txt and b.txt hidden by the opaque directory');
      assert.match(await sampleRun('cat', '/etc/greeting'), /hello from berth/);
    });

    await t.test('docker save from berth\'s root gives the same diff_ids and layer tars', async () => {
      const out = path.join(work, 'second-save.tar');
      await second.docker(['save', '-o', out, APP_IMAGE, 'berth-sample:latest']);
      const layers = await savedLayers(out);
      for (const d of want.get(APP_IMAGE)!.diffIds) assert.ok(layers.get(d)?.equals(dockerLayers.get(d)!), `layer ${d}`);
      for (const l of sampleInfo.layers) assert.equal(sha256(layers.get(l.diffId)!), l.diffId);
    });

    await t.test('berth refuses to write while dockerd runs on the root', async () => {
      const r = await berth('--root', R, '--allow-write', 'load', '-i', archive);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /a running dockerd \(pid \d+\) uses this data root/);
      const tag = await berth('--root', R, '--allow-write', 'tag', APP_IMAGE, 'x:1');
      assert.equal(tag.code, 1);
      assert.match(tag.stderr, /running dockerd/);
      const gc = await berth('--root', R, 'store', 'gc');
      assert.equal(gc.code, 1);
      const list = await berth('--root', R, 'images');
      assert.equal(list.code, 0, 'reading stays allowed');
    });

    // A container that keeps using the app image after the daemon stops.
    await second.docker(['create', '--name', 'berth-write-c1', '--network', 'none', APP_IMAGE, '/bin/sh']);
    await second.stop();
    await t.test('after dockerd used it, fsck still passes', async () => {
      const r = await berth('--root', R, 'store', 'fsck');
      assert.equal(r.code, 0, r.stdout + r.stderr);
    });

    await t.test('rmi: an image a container uses needs --force, its layers stay; dockerd accepts the result', async () => {
      assert.equal((await berth('--root', R, 'rmi', APP_IMAGE)).stdout, `Untagged: ${APP_IMAGE}\n`);
      const refused = await berth('--root', R, 'rmi', APP_IMAGE_LATEST);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /container [a-f0-9]{12} \(berth-write-c1\) is using its referenced image/);
      const forced = await berth('--root', R, 'rmi', '--force', APP_IMAGE_LATEST, '--format', 'json');
      assert.equal(forced.code, 0, forced.stderr);
      assert.deepEqual(json<{ deleted: string[]; layers: string[] }>(forced, 'rmi').layers, [], 'the container still needs every layer');
      const f = await berth('--root', R, 'store', 'fsck');
      assert.equal(f.code, 0, f.stdout + f.stderr);
      const third = await startDockerd({ driver, dataRoot: R });
      try {
        const listing = (await third.docker(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.trim().split('\n').sort();
        assert.deepEqual(listing, [BASE_IMAGE, 'berth-sample:latest'].sort());
        await third.docker(['rm', 'berth-write-c1']);
      } finally {
        await third.stop();
      }
      // With the container gone the app's own layers are unused: dockerd released them itself, or gc does.
      const gc = await berth('--root', R, 'store', 'gc');
      assert.equal(gc.code, 0, gc.stderr);
      const after = await berth('--root', R, 'store', 'fsck', '--format', 'json');
      assert.equal(after.code, 0, after.stdout);
      assert.equal(json<{ layers: number }>(after, 'fsck').layers, want.get(BASE_IMAGE)!.diffIds.length + sampleInfo.layers.length);
    });
  });
}
