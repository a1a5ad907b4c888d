/**
 * Proof against the real thing: a private dockerd 20.10 builds a data root (test images, one
 * created container), is stopped, and berth then reads that root offline and must agree with
 * what dockerd said while it ran: the same IDs and tags as `docker images`, configs whose digest
 * is the image ID, the diff_ids of `docker image inspect`, layers rebuilt from dockerd's tar-split
 * that hash to the diff_ids and equal the layer tars of `docker save` byte for byte, tar-split
 * files the real `tar-split asm` accepts, and a trace that reaches every layer's directory.
 * Both storage drivers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readTar } from '../src/tar/reader.js';
import { toBytes } from '../src/io/stream.js';
import { berth, json } from './support/cli.js';
import { APP_IMAGE, buildTestImages, startDockerd, type StorageDriver } from './support/docker.js';
import { needPeer, requirePeer, needRoot } from './support/peers.js';

const run = promisify(execFile);


function sha256(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

interface DockerInspect {
  Id: string;
  RepoTags: string[];
  RootFS: { Layers: string[] };
}

interface SavedImage {
  /** diff_id → layer.tar bytes from `docker save` */
  layers: Map<string, Buffer>;
  file: string;
}

/** Reads the layer tars of a legacy `docker save` archive (manifest.json → Layers, config → diff_ids). */
async function savedLayers(file: string): Promise<Map<string, Buffer>> {
  const members = new Map<string, Buffer>();
  for await (const e of readTar(createReadStream(file))) {
    if (e.header.type === 'file') members.set(e.header.name, Buffer.from(await toBytes(e.body())));
  }
  const manifest = JSON.parse(members.get('manifest.json')!.toString('utf8')) as Array<{ Config: string; Layers: string[] }>;
  const out = new Map<string, Buffer>();
  for (const item of manifest) {
    const config = JSON.parse(members.get(item.Config)!.toString('utf8')) as { rootfs: { diff_ids: string[] } };
    item.Layers.forEach((l, i) => out.set(config.rootfs.diff_ids[i]!, members.get(l)!));
  }
  return out;
}

const drivers: StorageDriver[] = ['overlay2', 'vfs'];

for (const driver of drivers) {
  test(`berth reads a stopped dockerd's data root offline: ${driver}`, { timeout: 900_000 }, async (t) => {
    if (!needPeer(t, 'dockerd') || !needPeer(t, 'docker') || !needPeer(t, 'busybox') || !needPeer(t, 'tar-split') || !needRoot(t)) return;
    const d = await startDockerd({ driver, keepDataRoot: true });
    const base = path.dirname(d.dataRoot);
    const work = await mkdtemp('/tmp/bst-');
    t.after(async () => {
      await d.stop();
      await rm(base, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
    });
    assert.equal(d.driver, driver);
    const images = await buildTestImages(d);
    // A container on the app image: its RW layer lives beside the image layers and must not confuse berth.
    await d.docker(['create', '--name', 'berth-store-c1', '--network', 'none', APP_IMAGE, '/bin/sh']);
    const listing = (await d.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout.trim().split('\n').sort();
    const listingAll = (await d.docker(['images', '-a', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout.trim().split('\n').sort();
    const names = [images.base.name, ...images.app.names];
    const inspected = new Map<string, DockerInspect>();
    const saved = new Map<string, SavedImage>();
    for (const name of names) {
      const [info] = JSON.parse((await d.docker(['image', 'inspect', name])).stdout) as DockerInspect[];
      inspected.set(name, info!);
      const file = path.join(work, `${name.replace(/[/:]/g, '_')}.tar`);
      await d.docker(['save', '-o', file, name]);
      saved.set(name, { file, layers: await savedLayers(file) });
    }
    await d.stop();
    const R = d.dataRoot;

    await t.test('berth images lists the IDs and tags docker images listed', async () => {
      const r = await berth('--root', R, 'images', '--format', 'json');
      assert.equal(r.code, 0, r.stderr);
      const result = json<{ driver: string; images: Array<{ id: string; repoTags: string[]; dangling: boolean }> }>(r, 'images');
      assert.equal(result.driver, driver);
      const ours = result.images.flatMap((i) => (i.dangling ? [`<none>:<none> ${i.id}`] : i.repoTags.map((tag) => `${tag} ${i.id}`))).sort();
      assert.deepEqual(ours, listing);
      const all = json<{ images: Array<{ id: string; repoTags: string[]; dangling: boolean }> }>(await berth('--root', R, 'images', '-a', '--format', 'json'), 'images -a');
      assert.deepEqual(all.images.flatMap((i) => (i.dangling ? [`<none>:<none> ${i.id}`] : i.repoTags.map((tag) => `${tag} ${i.id}`))).sort(), listingAll);
      const text = await berth('--root', R, 'images');
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n/);
      for (const line of listing) {
        const [ref, id] = line.split(' ') as [string, string];
        const colon = ref.lastIndexOf(':');
        assert.match(text.stdout, new RegExp(`^${ref.slice(0, colon).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} +${ref.slice(colon + 1)} +${id.slice(7, 19)} `, 'm'), line);
      }
    });

    await t.test('berth inspect: config digest = image ID, diff_ids of docker image inspect', async () => {
      for (const name of names) {
        const want = inspected.get(name)!;
        for (const ref of [name, `store:${name}`, `store:[${R}]${name}`, `store:@${want.Id.slice(7, 19)}`]) {
          const r = await berth('--root', R, 'inspect', ref, '--format', 'json');
          assert.equal(r.code, 0, `${ref}: ${r.stderr}`);
          const got = json<{ configDigest: string; layers: Array<{ diffId: string; digest: string }>; names: string[]; synthesized: boolean }>(r, ref);
          assert.equal(got.configDigest, want.Id, ref);
          assert.deepEqual(got.layers.map((l) => l.diffId), want.RootFS.Layers, ref);
          assert.deepEqual(got.layers.map((l) => l.digest), want.RootFS.Layers, `${ref}: layer digests are the diff_ids`);
          assert.deepEqual([...got.names].sort(), [...want.RepoTags].sort(), ref);
          assert.equal(got.synthesized, true);
        }
      }
    });

    await t.test('layers rebuilt from tar-split hash to the diff_ids and equal docker save byte for byte', async () => {
      let compared = 0;
      for (const name of names) {
        const { layers } = saved.get(name)!;
        for (const diffId of inspected.get(name)!.RootFS.Layers) {
          const r = await berth('--root', R, 'blob', name, diffId);
          assert.equal(r.code, 0, `${name} ${diffId}: ${r.stderr}`);
          assert.equal(sha256(r.bytes), diffId);
          assert.ok(r.bytes.equals(layers.get(diffId)!), `${name}: layer ${diffId} differs from docker save's layer.tar`);
          compared++;
        }
      }
      assert.ok(compared >= 5);
      for (const name of names) {
        const v = await berth('--root', R, 'verify', name);
        assert.equal(v.code, 0, `${name}: ${v.stdout}${v.stderr}`);
      }
    });

    await t.test('the synthesised manifest is the one berth gives the docker save archive', async () => {
      for (const name of names) {
        const fromStore = json<{ digest: string }>(await berth('--root', R, 'inspect', name, '--format', 'json'), name);
        const fromArchive = json<{ digest: string }>(await berth('inspect', `docker-archive:${saved.get(name)!.file}`, '--format', 'json'), name);
        assert.equal(fromStore.digest, fromArchive.digest, name);
        const again = json<{ digest: string }>(await berth('--root', R, 'inspect', name, '--format', 'json'), name);
        assert.equal(again.digest, fromStore.digest, 'deterministic');
      }
    });

    await t.test('berth save writes what docker save wrote: same names, same layer tars', async () => {
      for (const format of ['docker-legacy', 'docker', 'oci'] as const) {
        const out = path.join(work, `berth-save-${format}.tar`);
        const r = await berth('--root', R, 'save', APP_IMAGE, '-o', out, '--format', format);
        assert.equal(r.code, 0, r.stderr);
        const v = await berth('verify', `${format === 'oci' ? 'oci-archive' : 'docker-archive'}:${out}`);
        assert.equal(v.code, 0, `${format}: ${v.stdout}${v.stderr}`);
        if (format === 'oci') continue;
        const layers = await savedLayers(out);
        const want = saved.get(APP_IMAGE)!.layers;
        assert.deepEqual([...layers.keys()], [...want.keys()]);
        for (const [diffId, bytes] of want) assert.ok(layers.get(diffId)!.equals(bytes), `${format}: layer ${diffId}`);
        const members = new Map<string, Buffer>();
        for await (const e of readTar(createReadStream(out))) if (e.header.name === 'manifest.json') members.set(e.header.name, Buffer.from(await toBytes(e.body())));
        const manifest = JSON.parse(members.get('manifest.json')!.toString('utf8')) as Array<{ RepoTags: string[] }>;
        assert.deepEqual(manifest.map((m) => m.RepoTags), [[APP_IMAGE]]);
      }
    });

    // one driver is enough here: the saved archive does not depend on it
    if (driver === 'overlay2') await t.test('docker load takes berth save\'s archives (both layouts, images sharing layers) with the same IDs and tags', async () => {
      for (const format of ['docker-legacy', 'docker'] as const) {
        const out = path.join(work, `load-${format}.tar`);
        const r = await berth('--root', R, 'save', ...names, '-o', out, '--format', format);
        assert.equal(r.code, 0, r.stderr);
        const fresh = await startDockerd({ driver });
        try {
          await fresh.docker(['load', '-i', out]);
          for (const name of names) {
            const [info] = JSON.parse((await fresh.docker(['image', 'inspect', name])).stdout) as DockerInspect[];
            assert.equal(info!.Id, inspected.get(name)!.Id, `${format}: ${name}`);
            assert.deepEqual(info!.RootFS.Layers, inspected.get(name)!.RootFS.Layers, `${format}: ${name}`);
          }
        } finally {
          await fresh.stop();
        }
      }
    });

    await t.test('tar-split asm accepts dockerd\'s files with the driver directories', async () => {
      const tool = requirePeer('tar-split');
      const trace = json<{ layers: Array<{ diffId: string; chainId: string; tarSplit: string; files: string }> }>(await berth('--root', R, 'trace', APP_IMAGE, '--format', 'json'), 'trace');
      for (const l of trace.layers) {
        const { stdout } = await run(tool, ['asm', '--input', path.join(R, l.tarSplit), '--path', path.join(R, l.files)], { encoding: 'buffer', maxBuffer: 64 << 20 });
        assert.equal(sha256(stdout), l.diffId);
      }
    });

    await t.test('berth trace resolves every layer to an existing directory', async () => {
      for (const name of names) {
        const r = await berth('--root', R, 'trace', name, '--format', 'json');
        assert.equal(r.code, 0, r.stderr);
        const tr = json<{ resolution: { via: string; id: string }; image: { id: string; config: string }; layers: Array<{ exists: boolean; diffMatches: boolean; files: string; filesExist: boolean; problems: string[] }>; problems: string[] }>(r, name);
        assert.equal(tr.resolution.via, 'repositories.json');
        assert.equal(tr.image.id, inspected.get(name)!.Id);
        assert.equal(sha256(await readFile(path.join(R, tr.image.config))), tr.image.id);
        assert.equal(tr.layers.length, inspected.get(name)!.RootFS.Layers.length);
        for (const l of tr.layers) {
          assert.ok(l.exists && l.diffMatches && l.filesExist, JSON.stringify(l));
          assert.ok((await stat(path.join(R, l.files))).isDirectory());
          assert.deepEqual(l.problems, []);
        }
        assert.deepEqual(tr.problems, []);
        const text = await berth('--root', R, 'trace', name);
        assert.equal(text.code, 0, text.stderr);
        assert.match(text.stdout, /Repositories\[/);
      }
    });

    await t.test('berth trace PATH: which layer provides a file and which delete it', async () => {
      type Trace = { path: { visibleFrom: number | null; onDisk?: string; removedBy?: { layer: number; action: string }; events: Array<{ layer: number; action: string; member: string; disk?: { kind: string } }> } };
      const trace = async (p: string): Promise<Trace['path']> => json<Trace>(await berth('--root', R, 'trace', APP_IMAGE, p, '--format', 'json'), p).path;
      const hello = await trace('/app/hello.txt');
      assert.equal(hello.visibleFrom, 1);
      assert.equal(await readFile(path.join(R, hello.onDisk!), 'utf8'), 'hello from berth\n');
      const config = await trace('app/config.ini');
      assert.equal(config.visibleFrom, 2);
      assert.deepEqual(config.events.map((e) => [e.layer, e.action]), [[1, 'adds'], [2, 'overrides']]);
      assert.equal(await readFile(path.join(R, config.onDisk!), 'utf8'), 'version=2\n');
      const old = await trace('/app/old.txt');
      assert.equal(old.visibleFrom ?? undefined, undefined);
      assert.equal(old.removedBy?.layer, 2);
      assert.equal(old.removedBy?.action, 'deletes');
      const wh = old.events.find((e) => e.action === 'deletes')!;
      assert.equal(wh.member, 'app/.wh.old.txt');
      if (driver === 'overlay2') assert.equal(wh.disk?.kind, 'whiteout', 'overlay2 keeps the deletion as a 0/0 char device');
      const gone = await trace('/app/data/a');
      assert.equal(gone.visibleFrom ?? undefined, undefined);
      assert.equal(gone.removedBy?.action, driver === 'overlay2' ? 'opaque-parent' : 'deletes');
      const c = await trace('/app/data/c');
      assert.equal(c.visibleFrom, 2);
      const link = await trace('/app/bin/tool-hardlink');
      assert.equal(link.visibleFrom, 3);
    });
  });
}
