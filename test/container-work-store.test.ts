/**
 * Working containers in a root berth made from the OCI sample, without dockerd (overlay2 and vfs):
 * a container mounted as a materialised copy is changed in every way a layer can express (add,
 * change, chmod, delete, replace a directory, hard link, symlink), unmounted (folded into the
 * writable layer), then mounted the kernel way: the kernel's view equals the copy as it was left.
 * rm --force of a mounted container, and bad input (missing image, bad or taken name, unmount of a
 * container that is not mounted) leaves one error line and the root unchanged; fsck and gc find
 * nothing wrong with containers berth made or removed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { isMountPoint, unmount } from '../src/transports/store/container-mount.js';
import { assertCleanError, berth, json, repoRoot } from './support/cli.js';

const SAMPLE = path.join(repoRoot, 'examples/sample');

function needRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') throw new Error('these tests need root (overlay2 layer directories, whiteout devices, mounts) and CI requires them');
  t.skip('needs root');
  return false;
}

/** The file system under `dir` as a container sees it: type, mode, owner, size, content hash, link target; hard links grouped. */
async function view(dir: string): Promise<string[]> {
  const out: string[] = [];
  const inodes = new Map<number, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(path.join(dir, r));
      let what: string;
      if (st.isDirectory()) what = 'dir';
      else if (st.isSymbolicLink()) what = `link ${await readlink(path.join(dir, r))}`;
      else if (st.isFile()) {
        const first = st.nlink > 1 ? inodes.get(st.ino) : undefined;
        if (st.nlink > 1 && first === undefined) inodes.set(st.ino, r);
        what = first !== undefined ? `hardlink ${first}` : `file ${st.size} ${createHash('sha256').update(await readFile(path.join(dir, r))).digest('hex').slice(0, 12)}`;
      } else what = `other ${st.rdev}`;
      out.push(`${r} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${what}`);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

async function listing(dir: string): Promise<string> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const full = rel === '' ? dir : path.join(dir, rel);
    const st = await lstat(full);
    out.push(`${rel} ${st.mode.toString(8)} ${st.isDirectory() ? '-' : `${st.size} ${st.mtimeMs}`}`);
    if (st.isDirectory()) for (const n of (await readdir(full)).sort()) await walk(rel === '' ? n : `${rel}/${n}`);
  };
  await walk('');
  return out.join('\n');
}

for (const driver of ['overlay2', 'vfs'] as const) {
  test(`a copy's changes fold into the writable layer as the kernel then shows them: ${driver}`, { timeout: 300_000 }, async (t) => {
    if (!needRoot(t)) return;
    const work = await mkdtemp('/tmp/bcs-');
    const R = path.join(work, 'root');
    const [copy, kernel, other] = ['copy', 'kernel', 'other'].map((n) => path.join(work, n)) as [string, string, string];
    t.after(async () => {
      for (const m of [copy, kernel, other]) if (await isMountPoint(m)) await unmount(m).catch(() => undefined);
      await rm(work, { recursive: true, force: true });
    });
    let r = await berth('--root', R, 'load', '--driver', driver, '--platform', 'linux/amd64', SAMPLE);
    assert.equal(r.code, 0, r.stderr);

    // Bad input first: one line each, nothing written.
    const before = await listing(R);
    const bad = [
      await berth('--root', R, 'container', 'create', 'no-such-image'),
      await berth('--root', R, 'container', 'create', '--name', 'bad name!', 'berth-sample'),
      await berth('--root', R, 'container', 'unmount', 'nothing'),
      await berth('--root', R, 'container', 'rm', 'nothing'),
    ];
    for (const [i, x] of bad.entries()) {
      assert.notEqual(x.code, 0, `bad input ${i}`);
      assertCleanError(x, `bad input ${i}`);
    }
    assert.match(bad[0]!.stderr, /no such image/);
    assert.equal(await listing(R), before);

    r = await berth('--root', R, 'container', 'create', '--name', 'c1', 'berth-sample', '--', '/bin/hello');
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    r = await berth('--root', R, 'container', 'unmount', 'c1');
    assert.equal(r.code, 2);
    assertCleanError(r, 'unmount of a container that is not mounted');

    r = await berth('--root', R, 'container', 'mount', '--copy', 'c1', copy);
    assert.equal(r.code, 0, r.stderr);
    const original = await view(copy);
    for (const want of ['.dockerenv 755 0:0 file 0', 'etc/mtab 777 0:0 link /proc/mounts']) assert.ok(original.some((l) => l.startsWith(want)), `the copy has ${want}:\n${original.join('\n')}`);
    // Every kind of change.
    await writeFile(path.join(copy, 'added.txt'), 'added\n');
    await writeFile(path.join(copy, 'etc/greeting'), 'changed\n');
    await chmod(path.join(copy, 'bin/hello'), 0o700);
    await rm(path.join(copy, 'etc/os-release'));
    await rm(path.join(copy, 'data/old'), { recursive: true });
    await mkdir(path.join(copy, 'data/old'));
    await writeFile(path.join(copy, 'data/old/fresh'), 'fresh\n');
    await link(path.join(copy, 'added.txt'), path.join(copy, 'added-hard'));
    await symlink('../added.txt', path.join(copy, 'data/to-added'));
    await mkdir(path.join(copy, 'new/deep'), { recursive: true });
    await writeFile(path.join(copy, 'new/deep/x'), 'x');
    const changed = await view(copy);

    r = await berth('--root', R, 'container', 'unmount', 'c1', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readdir(copy), []);
    const diff = await berth('--root', R, 'container', 'diff', 'c1');
    assert.equal(diff.code, 0, diff.stderr);
    for (const want of ['A /added.txt', 'A /added-hard', 'C /etc/greeting', 'C /bin/hello', 'D /etc/os-release', 'A /data/old/fresh', 'A /data/to-added', 'A /new/deep/x']) {
      assert.ok(diff.stdout.split('\n').includes(want), `diff has ${want}:\n${diff.stdout}`);
    }

    // The kernel's view of the folded layers = the copy as it was left.
    r = await berth('--root', R, 'container', 'mount', 'c1', kernel, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json<{ kind: string }>(r, 'mount').kind, driver === 'overlay2' ? 'overlay' : 'bind');
    assert.deepEqual(await view(kernel), changed);
    // rm of a mounted container: refused, then forced.
    r = await berth('--root', R, 'container', 'rm', 'c1');
    assert.equal(r.code, 2);
    assertCleanError(r, 'rm of a mounted container');
    r = await berth('--root', R, 'container', 'rm', '--force', 'c1');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await isMountPoint(kernel), false);
    r = await berth('--root', R, 'containers', '--format', 'json');
    assert.deepEqual(json<{ containers: unknown[] }>(r, 'containers').containers, []);
    assert.equal((await readdir(path.join(R, 'image', driver, 'layerdb/mounts'))).includes(id), false);

    // A copy removed with --force; a taken name; then fsck and gc have nothing to say.
    r = await berth('--root', R, 'container', 'create', '--name', 'd1', 'berth-sample');
    assert.equal(r.code, 0, r.stderr);
    r = await berth('--root', R, 'container', 'create', '--name', 'd1', 'berth-sample');
    assert.equal(r.code, 1);
    assertCleanError(r, 'a taken name');
    r = await berth('--root', R, 'container', 'mount', '--copy', 'd1', other);
    assert.equal(r.code, 0, r.stderr);
    await writeFile(path.join(other, 'dropped'), 'x');
    r = await berth('--root', R, 'container', 'rm', '-f', 'd1');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readdir(other), []);
    const fsck = await berth('--root', R, 'store', 'fsck');
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    const gc = await berth('--root', R, 'store', 'gc', '--dry-run');
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stdout, /nothing to remove/);
    const driverDirs = await readdir(path.join(R, driver === 'overlay2' ? 'overlay2' : 'vfs/dir'));
    assert.equal(driverDirs.filter((n) => n.endsWith('-init')).length, 0, `no init layer left: ${driverDirs.join(' ')}`);
  });
}
