/**
 * Proof against dockerd 20.10 (both storage drivers): a container on the test app image adds,
 * changes and deletes files, replaces one directory and deletes another, then exits; while the
 * daemon still runs we record `docker diff`, `docker export` and `docker ps -s`; then the daemon
 * stops and berth reads its data root offline:
 *
 * - `berth containers` finds the container with its ID, image, name and writable-layer size;
 * - `berth container diff` prints the same lines as `docker diff` (dockerd's naive diff walks Go
 *   maps, so lines are compared as sorted lists);
 * - `berth container export` gives the same tree as `docker export` (types, modes, owners,
 *   sizes, mtimes, contents, link targets, hard links);
 * - `berth container layer` appended to the image with `berth append` and flattened with
 *   `berth export` gives the same tree as `docker export`, apart from the init layer's files;
 * - `berth container commit` writes the container as an image into the same root (with
 *   --allow-write), and dockerd, started again on that root, runs it;
 * - a missing container is one clean error line.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { toBytes } from '../src/io/stream.js';
import { readTar } from '../src/tar/reader.js';
import { assertCleanError, berth, json } from './support/cli.js';
import { APP_IMAGE, buildTestImages, startDockerd, type StorageDriver } from './support/docker.js';
import { needPeer, needRoot } from './support/peers.js';


interface TreeEntry {
  type: string;
  mode: string;
  owner: string;
  size: number;
  mtime: number;
  link: string;
  sha: string;
}

/** name (clean, no trailing slash) → what a tar says about it; bodies hashed. */
async function tarTree(file: string): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  for await (const e of readTar(createReadStream(file))) {
    const h = e.header;
    const name = h.name.replace(/^\.\//, '').replace(/\/$/, '');
    if (name === '' || name === '.') continue;
    const body = h.type === 'file' ? Buffer.from(await toBytes(e.body())) : undefined;
    out.set(name, {
      type: h.type, mode: h.mode.toString(8), owner: `${h.uid}:${h.gid}`, size: body?.length ?? 0, mtime: Math.trunc(h.mtime),
      link: h.type === 'symlink' || h.type === 'link' ? h.linkname.replace(/^\.\//, '') : '', sha: body === undefined ? '' : createHash('sha256').update(body).digest('hex').slice(0, 16),
    });
  }
  return out;
}

function assertSameTree(got: Map<string, TreeEntry>, want: Map<string, TreeEntry>, what: string): void {
  const diffs: string[] = [];
  for (const name of [...new Set([...got.keys(), ...want.keys()])].sort()) {
    const a = JSON.stringify(got.get(name));
    const b = JSON.stringify(want.get(name));
    if (a !== b) diffs.push(`${name}:\n  berth:  ${a}\n  docker: ${b}`);
  }
  assert.equal(diffs.length, 0, `${what}: ${diffs.length} paths differ:\n${diffs.slice(0, 30).join('\n')}`);
}

/** What the container does: add, change, delete files; replace one directory, delete another; links; chmod. */
const SCRIPT = [
  'echo added > /app/added.txt',
  'echo changed >> /app/config.ini',
  'rm /app/hello.txt',
  'rm -rf /app/data && mkdir /app/data && echo fresh > /app/data/fresh',
  'rm -rf /app/bin',
  'mkdir -p /srv/new/deep && echo x > /srv/new/deep/x',
  'ln /app/config.ini /app/cfg-hard',
  'ln -s /app/added.txt /srv/link',
  'chmod 0600 /etc/motd',
].join(' && ');

/** Paths only the init layer provides (docker export has them; the image plus the container layer does not). */
const INIT_PATHS = new Set(['.dockerenv', 'dev', 'dev/console', 'dev/pts', 'dev/shm', 'etc/hostname', 'etc/hosts', 'etc/mtab', 'etc/resolv.conf', 'proc', 'sys']);

const drivers: StorageDriver[] = ['overlay2', 'vfs'];

for (const driver of drivers) {
  test(`berth reads a stopped container offline as dockerd showed it: ${driver}`, { timeout: 900_000 }, async (t) => {
    if (!needPeer(t, 'dockerd') || !needPeer(t, 'docker') || !needPeer(t, 'busybox') || !needRoot(t)) return;
    const d = await startDockerd({ driver, keepDataRoot: true });
    const base = path.dirname(d.dataRoot);
    const work = await mkdtemp('/tmp/bct-');
    t.after(async () => {
      await d.stop();
      await rm(base, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
    });
    assert.equal(d.driver, driver);
    const images = await buildTestImages(d);
    const name = `bct-${driver}`;
    await d.docker(['run', '--name', name, '--network', 'none', APP_IMAGE, '/bin/sh', '-c', SCRIPT]);

    // What dockerd says, while it runs.
    const status = JSON.parse((await d.docker(['info', '--format', '{{json .DriverStatus}}'])).stdout) as Array<[string, string]> | null;
    const native = (status ?? []).find(([k]) => k === 'Native Overlay Diff')?.[1] === 'true';
    const dockerDiff = (await d.docker(['diff', name])).stdout.split('\n').filter((l) => l !== '');
    const dockerExport = path.join(work, 'docker-export.tar');
    await d.docker(['export', '-o', dockerExport, name]);
    const ps = (await d.docker(['ps', '-a', '-s', '--no-trunc', '--filter', `name=${name}`, '--format', '{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.Size}}'])).stdout.trim().split('\t');
    const [id, psName, psImage, psSize] = ps as [string, string, string, string];
    t.diagnostic(`${driver}: Native Overlay Diff ${native}; docker diff:\n${dockerDiff.join('\n')}`);
    await d.stop();

    const root = d.dataRoot;
    // berth containers
    const list = json<{ containers: Array<{ id: string; name?: string; image?: string; imageId?: string; size?: number }> }>(await berth('--root', root, 'containers', '--format', 'json'), 'containers');
    const c = list.containers.find((x) => x.id === id);
    assert.ok(c, `berth containers lists ${id}: ${JSON.stringify(list)}`);
    assert.equal(c.name, psName);
    assert.equal(c.image, psImage);
    assert.equal(c.imageId, images.app.id);
    assert.equal(`${c.size}B`, psSize.split(' ')[0], `size of the writable layer (docker ps -s: ${psSize})`);
    const text = await berth('--root', root, 'containers');
    assert.match(text.stdout, new RegExp(`${id.slice(0, 12)}\\s+${APP_IMAGE.replace(/[/.]/g, '\\$&')}.*${name}`));

    // berth container diff = docker diff. dockerd 20.10 answered `docker diff` with its naive
    // tree comparison here even where `docker info` says "Native Overlay Diff: true" (the lines
    // come in Go map order), so the default mode is compared.
    const mode: string[] = [];
    const diff = await berth('--root', root, 'container', 'diff', name, ...mode);
    assert.equal(diff.code, 0, diff.stderr);
    const lines = diff.stdout.split('\n').filter((l) => l !== '');
    assert.deepEqual([...lines].sort(), [...dockerDiff].sort(), 'berth container diff vs docker diff');
    for (const want of ['A /app/added.txt', 'C /app/config.ini', 'D /app/hello.txt', 'D /app/bin', 'A /srv/new/deep/x']) assert.ok(lines.includes(want), `diff has ${want}`);
    const byPrefix = await berth('--root', root, 'container', 'diff', id.slice(0, 10), '--format', 'json', ...mode);
    assert.deepEqual(json<{ changes: Array<{ kind: string; path: string }> }>(byPrefix, 'diff json').changes.map((x) => `${x.kind} ${x.path}`), lines);

    // berth container export = docker export
    const ourExport = path.join(work, 'berth-export.tar');
    const exp = await berth('--root', root, 'container', 'export', name, '-o', ourExport);
    assert.equal(exp.code, 0, exp.stderr);
    const dockerTree = await tarTree(dockerExport);
    assertSameTree(await tarTree(ourExport), dockerTree, 'berth container export vs docker export');

    // berth container layer, applied on the image with berth's union, = docker export minus the init layer
    const layer = path.join(work, 'rw.tar');
    const lr = await berth('--root', root, 'container', 'layer', name, '-o', layer, '--format', 'json');
    assert.equal(lr.code, 0, lr.stderr);
    const layerNames = [...(await tarTree(layer)).keys()];
    for (const want of ['app/.wh.hello.txt', 'app/.wh.bin', 'app/added.txt', 'srv/new/deep/x']) assert.ok(layerNames.includes(want), `layer has ${want}: ${layerNames.join(' ')}`);
    if (json<{ method: string }>(lr, 'layer').method === 'upper') assert.ok(layerNames.includes('app/data/.wh..wh..opq'), 'the replaced directory is opaque');
    else assert.ok(layerNames.includes('app/data/.wh.c'), 'the replaced directory\'s old child is whited out');
    const layout = path.join(work, 'oci');
    const app = await berth('append', `store:[${root}]@${images.app.id.replace(/^sha256:/, '')}`, '--layer', layer, '-t', `oci:${layout}:committed`, '--json');
    assert.equal(app.code, 0, app.stderr);
    const flat = path.join(work, 'flat.tar');
    const fx = await berth('export', `oci:${layout}:committed`, '-o', flat);
    assert.equal(fx.code, 0, fx.stderr);
    const withoutInit = new Map([...dockerTree].filter(([n]) => !INIT_PATHS.has(n)));
    assertSameTree(await tarTree(flat), withoutInit, 'image + berth container layer vs docker export');

    // berth container commit into the same root, then dockerd runs the committed image.
    const noWrite = await berth('--root', root, 'container', 'commit', name, 'berth-test/committed:1');
    assert.equal(noWrite.code, 2, 'a root berth did not create is read-only without --allow-write');
    assertCleanError(noWrite, 'commit without --allow-write');
    const badChange = await berth('--root', root, '--allow-write', 'container', 'commit', name, 'berth-test/committed:1', '-c', 'FROB x');
    assert.equal(badChange.code, 2);
    assertCleanError(badChange, 'commit with an unknown --change instruction');
    const commit = await berth('--root', root, '--allow-write', 'container', 'commit', name, 'berth-test/committed:1', '-m', 'offline commit', '-c', 'ENV COMMITTED=yes', '--json');
    assert.equal(commit.code, 0, commit.stderr);
    const committed = json<{ config: string }>(commit, 'commit');
    const d2 = await startDockerd({ driver, dataRoot: root });
    t.after(() => d2.stop());
    const ran = await d2.docker(['run', '--rm', '--network', 'none', 'berth-test/committed:1', '/bin/sh', '-c', 'cat /app/added.txt /srv/new/deep/x; ls /app; echo $COMMITTED; test -e /app/hello.txt || echo no-hello']);
    assert.equal(ran.stdout, 'added\nx\nadded.txt\ncfg-hard\nconfig.ini\ncurrent\ndata\nyes\nno-hello\n');
    const id2 = (JSON.parse((await d2.docker(['image', 'inspect', 'berth-test/committed:1'])).stdout) as Array<{ Id: string }>)[0]!.Id;
    assert.equal(id2, committed.config);
    const top = (await d2.docker(['history', '--no-trunc', '--format', '{{.Comment}}', 'berth-test/committed:1'])).stdout.split('\n');
    assert.deepEqual(top.slice(0, 2), ['offline commit', 'offline commit']);
    await d2.stop();

    // a missing container
    const missing = await berth('--root', root, 'container', 'diff', 'no-such-container');
    assert.equal(missing.code, 1);
    assertCleanError(missing, 'missing container');
    assert.match(missing.stderr, /no such container "no-such-container"/);
  });
}
