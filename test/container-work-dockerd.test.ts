/**
 * Proof against dockerd 20.10 (overlay2 and vfs) for working containers made by berth, offline:
 * a first dockerd builds the test images and saves berth-test/app:1; berth loads the archive
 * (and the OCI sample) into a fresh root and then, with no daemon:
 *
 * - `container create` makes two containers on the app image; one is mounted the kernel way
 *   (overlay mount, or a bind mount of the vfs copy), one as a materialised copy (--copy); in
 *   both a file is added, one changed, one deleted and a directory replaced; `container
 *   unmount` folds the copy back (whiteouts, opaque directory);
 * - bad input leaves the root unchanged and prints one error line: a non-empty mount point, rm
 *   of a mounted container, commit of a missing container, commit of a container whose image
 *   was removed (rmi --force);
 * - `container commit` makes images of both containers.
 *
 * Then a second dockerd started on berth's root lists the committed images and berth's
 * containers (`docker ps -a`), `docker run` sees the changes (deleted file gone, replaced
 * directory without its old child), `docker save` gives the diff_ids berth recorded, and
 * `docker start -a` runs a berth-created container.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { toBytes } from '../src/io/stream.js';
import { readTar } from '../src/tar/reader.js';
import { isMountPoint, unmount } from '../src/transports/store/container-mount.js';
import { assertCleanError, berth, json, repoRoot } from './support/cli.js';
import { APP_IMAGE, buildTestImages, startDockerd, type StorageDriver } from './support/docker.js';
import { needPeer, needRoot } from './support/peers.js';


/** Every path under `dir` with type, mode, size and mtime: compared before and after a refused command. */
async function listing(dir: string): Promise<string> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const full = rel === '' ? dir : path.join(dir, rel);
    const st = await lstat(full);
    // Directory mtimes move when the writer lock file comes and goes; contents are what count.
    out.push(`${rel} ${st.mode.toString(8)} ${st.isDirectory() ? '-' : `${st.size} ${st.mtimeMs}`}`);
    if (st.isDirectory()) for (const n of (await readdir(full)).sort()) await walk(rel === '' ? n : `${rel}/${n}`);
  };
  await walk('');
  return out.join('\n');
}

/** diff_id → sha256 of each layer tar of a docker save archive. */
async function savedDiffIds(file: string): Promise<string[]> {
  const members = new Map<string, Buffer>();
  const links = new Map<string, string>();
  for await (const e of readTar(createReadStream(file))) {
    if (e.header.type === 'file') members.set(e.header.name, Buffer.from(await toBytes(e.body())));
    if (e.header.type === 'symlink') links.set(e.header.name, path.posix.join(path.posix.dirname(e.header.name), e.header.linkname));
  }
  for (const [name, target] of links) if (members.has(target)) members.set(name, members.get(target)!);
  const manifest = JSON.parse(members.get('manifest.json')!.toString('utf8')) as Array<{ Layers: string[] }>;
  return manifest[0]!.Layers.map((l) => `sha256:${createHash('sha256').update(members.get(l)!).digest('hex')}`);
}

/** What each container does to its file system (through the mount or in the copy). */
async function change(dir: string): Promise<void> {
  await writeFile(path.join(dir, 'app/added.txt'), 'added\n');
  await writeFile(path.join(dir, 'app/config.ini'), 'version=3\n');
  await rm(path.join(dir, 'app/hello.txt'));
  await rm(path.join(dir, 'app/data'), { recursive: true });
  await mkdir(path.join(dir, 'app/data'));
  await writeFile(path.join(dir, 'app/data/fresh'), 'fresh\n');
}

const SAMPLE = path.join(repoRoot, 'examples/sample');
const drivers: StorageDriver[] = ['overlay2', 'vfs'];

for (const driver of drivers) {
  test(`containers berth creates, mounts, changes and commits offline are dockerd's: ${driver}`, { timeout: 1_200_000 }, async (t) => {
    if (!needPeer(t, 'dockerd') || !needPeer(t, 'docker') || !needPeer(t, 'busybox') || !needRoot(t)) return;
    const work = await mkdtemp('/tmp/bcw-');
    const R = path.join(work, 'root');
    const mounts = [path.join(work, 'm1'), path.join(work, 'm2')];
    const first = await startDockerd({ driver });
    t.after(async () => {
      await first.stop();
      // Unmount whatever this test mounted, even when it failed half-way.
      for (const m of mounts) if (await isMountPoint(m)) await unmount(m).catch(() => undefined);
      await rm(work, { recursive: true, force: true });
    });
    await buildTestImages(first);
    const archive = path.join(work, 'app.tar');
    await first.docker(['save', '-o', archive, APP_IMAGE]);
    await first.stop();

    let r = await berth('--root', R, 'load', '--driver', driver, archive);
    assert.equal(r.code, 0, r.stderr);
    r = await berth('--root', R, 'load', '--platform', 'linux/amd64', SAMPLE);
    assert.equal(r.code, 0, r.stderr);

    // Two containers on the app image; the first runs `cat /app/added.txt` when started.
    r = await berth('--root', R, 'container', 'create', '--name', 'work1', '--network', 'none', APP_IMAGE, '--', '/bin/sh', '-c', 'cat /app/added.txt /app/data/fresh');
    assert.equal(r.code, 0, r.stderr);
    const id1 = r.stdout.trim();
    assert.match(id1, /^[a-f0-9]{64}$/);
    r = await berth('--root', R, 'container', 'create', '--name', 'work2', '--network', 'none', APP_IMAGE, '--json');
    assert.equal(r.code, 0, r.stderr);
    const id2 = json<{ id: string }>(r, 'create').id;
    const dup = await berth('--root', R, 'container', 'create', '--name', 'work1', APP_IMAGE);
    assert.equal(dup.code, 1);
    assertCleanError(dup, 'a taken name');

    // Layout as dockerd makes it.
    const img = path.join(R, 'image', driver);
    const mountId = (await readFile(path.join(img, 'layerdb/mounts', id1, 'mount-id'), 'utf8'));
    assert.equal(await readFile(path.join(img, 'layerdb/mounts', id1, 'init-id'), 'utf8'), `${mountId}-init`);
    const initDir = driver === 'overlay2' ? path.join(R, 'overlay2', `${mountId}-init`, 'diff') : path.join(R, 'vfs/dir', `${mountId}-init`);
    for (const f of ['.dockerenv', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'dev/console']) {
      const st = await lstat(path.join(initDir, f));
      assert.ok(st.isFile() && (st.mode & 0o7777) === 0o755 && st.size === 0, `${f} in the init layer`);
    }
    assert.ok((await lstat(path.join(initDir, 'etc/mtab'))).isSymbolicLink());
    if (driver === 'overlay2') {
      const lower = await readFile(path.join(R, 'overlay2', mountId, 'lower'), 'utf8');
      const initLink = await readFile(path.join(R, 'overlay2', `${mountId}-init`, 'link'), 'utf8');
      assert.ok(lower.startsWith(`l/${initLink}:`), `lower of the writable layer starts with the init layer: ${lower}`);
      assert.ok((await lstat(path.join(R, 'overlay2', `${mountId}-init`, 'committed'))).isFile());
    }

    // Mount the kernel way and as a copy; change both.
    r = await berth('--root', R, 'container', 'mount', 'work1', mounts[0]!, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json<{ kind: string }>(r, 'mount').kind, driver === 'overlay2' ? 'overlay' : 'bind');
    r = await berth('--root', R, 'container', 'mount', 'work2', mounts[1]!, '--copy', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json<{ kind: string }>(r, 'mount').kind, 'copy');
    for (const m of mounts) await change(m);

    // Bad input: one line, the root unchanged.
    const before = await listing(R);
    const full = path.join(work, 'full');
    await mkdir(full);
    await writeFile(path.join(full, 'x'), 'x');
    const refused = [
      await berth('--root', R, 'container', 'mount', id1.slice(0, 12), full),
      await berth('--root', R, 'container', 'rm', 'work1'),
      await berth('--root', R, 'container', 'rm', 'work2'),
      await berth('--root', R, 'container', 'commit', 'work2', 'berth-test/nope:1'),
      await berth('--root', R, 'container', 'commit', 'no-such-container', 'berth-test/nope:1'),
      await berth('--root', R, 'container', 'mount', 'no-such-container', path.join(work, 'm3')),
    ];
    for (const [i, x] of refused.entries()) {
      assert.notEqual(x.code, 0, `refused command ${i}`);
      assertCleanError(x, `refused command ${i}`);
    }
    assert.match(refused[0]!.stderr, /already mounted|not empty/);
    assert.match(refused[1]!.stderr, /is mounted at/);
    assert.match(refused[3]!.stderr, /is mounted at/);
    assert.match(refused[4]!.stderr, /no such container/);
    assert.equal(await listing(R), before, 'the root is unchanged after refused commands');

    for (const name of ['work1', 'work2']) {
      r = await berth('--root', R, 'container', 'unmount', name, '--json');
      assert.equal(r.code, 0, r.stderr);
    }
    for (const m of mounts) {
      assert.equal(await isMountPoint(m), false);
      assert.deepEqual(await readdir(m), [], `${m} is empty after unmount`);
    }
    const folded = json<{ folded?: { deleted: number; opaque: number; whiteouts: number } }>(r, 'unmount').folded;
    assert.ok(folded !== undefined, 'unmount of the copy reports what it folded');
    // Where the file system has birth times, `rm -rf app/data; mkdir app/data` is seen as a
    // replaced directory even when the inode number is reused: one deletion and one opaque
    // directory (overlay2). Without them it is the old child deleted: the same view.
    if ((await lstat(work, { bigint: true })).birthtimeNs !== 0n) {
      assert.deepEqual([folded.deleted, folded.whiteouts, folded.opaque], driver === 'overlay2' ? [1, 1, 1] : [1, 0, 0], JSON.stringify(folded));
    }

    // berth's own diff agrees for both containers.
    for (const name of ['work1', 'work2']) {
      const d = await berth('--root', R, 'container', 'diff', name);
      assert.equal(d.code, 0, d.stderr);
      for (const want of ['A /app/added.txt', 'C /app/config.ini', 'D /app/hello.txt', 'A /app/data/fresh']) assert.ok(d.stdout.split('\n').includes(want), `${name} diff has ${want}:\n${d.stdout}`);
    }

    // Commit of a container whose image was removed: refused, root unchanged.
    r = await berth('--root', R, 'container', 'create', '--name', 'orphan', 'berth-sample');
    assert.equal(r.code, 0, r.stderr);
    r = await berth('--root', R, 'rmi', '--force', 'berth-sample');
    assert.equal(r.code, 0, r.stderr);
    const before2 = await listing(R);
    const orphan = await berth('--root', R, 'container', 'commit', 'orphan', 'berth-test/orphan:1');
    assert.equal(orphan.code, 1);
    assertCleanError(orphan, 'commit of a container whose image was removed');
    assert.match(orphan.stderr, /no longer in store/);
    assert.equal(await listing(R), before2, 'the root is unchanged after the refused commit');
    r = await berth('--root', R, 'container', 'rm', 'orphan');
    assert.equal(r.code, 0, r.stderr);

    // Commit both.
    const committed = new Map<string, { config: string; diffIds: string[] }>();
    for (const [name, tag] of [['work1', 'berth-test/work1:1'], ['work2', 'berth-test/work2:1']] as const) {
      r = await berth('--root', R, 'container', 'commit', name, tag, '-m', `offline ${name}`, '--json');
      assert.equal(r.code, 0, r.stderr);
      const config = json<{ config: string }>(r, 'commit').config;
      const cfg = JSON.parse(await readFile(path.join(img, 'imagedb/content/sha256', config.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] } };
      committed.set(tag, { config, diffIds: cfg.rootfs.diff_ids });
    }

    // dockerd on berth's root.
    const d2 = await startDockerd({ driver, dataRoot: R });
    t.after(() => d2.stop());
    const ps = (await d2.docker(['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}} {{.Image}} {{.Status}}'])).stdout.trim().split('\n').sort();
    t.diagnostic(`${driver}: docker ps -a:\n${ps.join('\n')}`);
    assert.deepEqual(ps, [`${id1} work1 ${APP_IMAGE} Created`, `${id2} work2 ${APP_IMAGE} Created`].sort());
    const images = (await d2.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout;
    for (const [tag, c] of committed) {
      assert.ok(images.includes(`${tag} ${c.config}`), `docker images lists ${tag} ${c.config}:\n${images}`);
      const ran = await d2.docker(['run', '--rm', '--network', 'none', tag, '/bin/sh', '-c', 'cat /app/added.txt /app/config.ini; test -e /app/hello.txt || echo no-hello; ls /app/data']);
      assert.equal(ran.stdout, 'added\nversion=3\nno-hello\nfresh\n', `docker run ${tag}`);
      const saved = path.join(work, `${tag.replace(/[/:]/g, '_')}.tar`);
      await d2.docker(['save', '-o', saved, tag]);
      assert.deepEqual(await savedDiffIds(saved), c.diffIds, `docker save ${tag}: the diff_ids berth recorded`);
    }
    const started = await d2.docker(['start', '-a', 'work1']);
    assert.equal(started.stdout, 'added\nfresh\n', 'docker start -a of a container berth created');
    await d2.stop();
  });
}
