/**
 * A failed or interrupted copy leaves the destination exactly as it was: refused destinations
 * (a non-empty directory that is not a layout, an existing archive), a read-only mount, a full
 * disk (a 1 MiB tmpfs), and a `berth copy` child process killed mid-copy (SIGKILL: the target is
 * untouched; SIGTERM: it is untouched and the temp files are gone too).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { copyReference, isBerthError } from '../src/index.js';
import { BERTH_BIN, fingerprint, makeLargeLayout, MULTI_FIXTURE, run, SAMPLE, tempDir, tempLeftovers } from './support/copy-fixtures.js';

/** Mount points to unmount before their temp dir is removed. */
const mounts: string[] = [];

async function withTemp(t: TestContext): Promise<string> {
  const dir = await tempDir('berth-atomic-');
  t.after(async () => {
    for (const m of mounts.splice(0).reverse()) await run('umount', ['-l', m]);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Root can mount a tmpfs; elsewhere the test is skipped (CI runs as root and requires it). */
async function mountTmpfs(t: TestContext, dir: string, size: string): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') throw new Error('mount tests need root and CI requires them');
    t.skip('mounting a tmpfs needs root');
    return false;
  }
  await mkdir(dir, { recursive: true });
  const m = await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  if (m.code !== 0) {
    if (process.env.CI === 'true') throw new Error(`mount -t tmpfs failed: ${m.stderr}`);
    t.skip(`cannot mount a tmpfs here: ${m.stderr.trim()}`);
    return false;
  }
  mounts.push(dir);
  return true;
}

test('refused destinations: clear errors, nothing touched, no temp files', async (t) => {
  const dir = await withTemp(t);
  const notLayout = path.join(dir, 'notes');
  await mkdir(notLayout);
  await writeFile(path.join(notLayout, 'todo.txt'), 'keep me\n');
  const existing = path.join(dir, 'existing.tar');
  await writeFile(existing, 'not an archive, and not to be replaced\n');
  const rows = [
    { name: 'a non-empty directory that is not an OCI layout', dst: `oci:${notLayout}`, code: 'BERTH_INVALID_LAYOUT' as const, match: /not an OCI layout/ },
    { name: 'an existing oci-archive file without --overwrite', dst: `oci-archive:${existing}`, code: 'BERTH_EXISTS' as const, match: /already exists.*--overwrite/ },
    { name: 'an existing docker-archive file without --overwrite', dst: `docker-archive:${existing}:x:1`, code: 'BERTH_EXISTS' as const, match: /already exists/ },
    { name: 'a directory given as an archive', dst: `oci-archive:${notLayout}`, code: 'BERTH_EXISTS' as const, match: /is a directory/ },
    { name: 'a missing parent directory', dst: `oci:${path.join(dir, 'no', 'such', 'dir')}`, code: 'BERTH_NOT_FOUND' as const, match: /does not exist/ },
    { name: 'a destination without a prefix', dst: path.join(dir, 'plain'), code: 'BERTH_INVALID_REFERENCE' as const, match: /prefix/ },
  ];
  const before = await fingerprint(dir);
  for (const row of rows) {
    await assert.rejects(copyReference(`oci:${SAMPLE}`, row.dst, { fsync: false }), (err) => {
      assert.ok(isBerthError(err, row.code), `${row.name}: ${String(err)}`);
      assert.match((err as Error).message, row.match, row.name);
      assert.doesNotMatch((err as Error).message, /\n/, 'one line');
      return true;
    }, row.name);
    assert.deepEqual(await fingerprint(dir), before, `${row.name}: nothing changed`);
  }
});

test('a read-only mount: a clear error and nothing written', async (t) => {
  const dir = await withTemp(t);
  const mnt = path.join(dir, 'ro');
  if (!(await mountTmpfs(t, mnt, '4m'))) return;
  await copyReference(`oci-archive:${MULTI_FIXTURE}`, `oci:${path.join(mnt, 'layout')}:hello`, { fsync: false });
  const r = await run('mount', ['-o', 'remount,ro', mnt]);
  assert.equal(r.code, 0, r.stderr);
  const before = await fingerprint(mnt);
  for (const dst of [`oci:${path.join(mnt, 'new')}`, `oci:${path.join(mnt, 'layout')}:sample`, `oci-archive:${path.join(mnt, 'x.tar')}`, `docker-archive:${path.join(mnt, 'd.tar')}:a:1`]) {
    await assert.rejects(copyReference(`oci:${SAMPLE}`, dst, { fsync: false, platforms: [{ os: 'linux', architecture: 'amd64' }] }), (err) => {
      assert.ok(isBerthError(err, 'BERTH_IO'), `${dst}: ${String(err)}`);
      assert.match((err as Error).message, /read-only/, dst);
      return true;
    });
    assert.deepEqual(await fingerprint(mnt), before, `${dst}: nothing changed`);
  }
});

test('a full disk (1 MiB tmpfs): a clear error, the destination as it was, temp files removed', async (t) => {
  const dir = await withTemp(t);
  const src = path.join(dir, 'big');
  await makeLargeLayout(src, { layers: 1, layerBytes: 2 * 1024 * 1024, name: 'big' });
  const mnt = path.join(dir, 'small');
  if (!(await mountTmpfs(t, mnt, '1m'))) return;
  // an existing small layout on the device, which a failed copy must not disturb
  await copyReference(`oci-archive:${MULTI_FIXTURE}`, `oci:${path.join(mnt, 'layout')}:hello`, { fsync: false, platforms: [{ os: 'linux', architecture: 'arm64' }] });
  const before = await fingerprint(mnt);
  for (const dst of [`oci:${path.join(mnt, 'layout')}:big`, `oci:${path.join(mnt, 'new')}`, `oci-archive:${path.join(mnt, 'x.tar')}`, `docker-archive:${path.join(mnt, 'd.tar')}:big:1`]) {
    await assert.rejects(copyReference(`oci:${src}:big`, dst), (err) => {
      assert.ok(isBerthError(err, 'BERTH_IO'), `${dst}: ${String(err)}`);
      assert.match((err as Error).message, /no space left on the device/, dst);
      return true;
    });
    assert.deepEqual(await fingerprint(mnt), before, `${dst}: the device holds what it held before`);
    assert.deepEqual(await tempLeftovers(mnt), []);
  }
});

/** Starts `berth copy` in a child process and resolves once it has begun writing into its staging area. */
async function copyUntilWriting(args: readonly string[], parent: string): Promise<{ child: ReturnType<typeof spawn>; exit: Promise<{ code: number | null; signal: string | null; stderr: string }> }> {
  const child = spawn(process.execPath, [BERTH_BIN, 'copy', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout!.resume();
  const exit = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
  let exited = false;
  void exit.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`berth copy finished before it could be interrupted: ${stderr}`);
    const staging = (await readdir(parent)).filter((n) => n.startsWith('.berth-tmp-'));
    for (const s of staging) {
      const tmp = path.join(parent, s, 'tmp');
      if (existsSync(tmp) && (await readdir(tmp).catch(() => [])).length > 0) return { child, exit };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  test(`a berth copy killed mid-copy (${signal}) leaves the destination layout exactly as it was`, { timeout: 120_000 }, async (t) => {
    const dir = await withTemp(t);
    const src = path.join(dir, 'big');
    await makeLargeLayout(src, { layers: 3, layerBytes: 24 * 1024 * 1024, name: 'big' });
    const parent = path.join(dir, 'out');
    await mkdir(parent);
    const dst = path.join(parent, 'layout');
    await cp(SAMPLE, dst, { recursive: true });
    const before = await fingerprint(dst);
    const { child, exit } = await copyUntilWriting(['--compression', 'zstd', '--concurrency', '1', `oci:${src}:big`, `oci:${dst}:big`], parent);
    child.kill(signal);
    const result = await exit;
    assert.deepEqual(await fingerprint(dst), before, 'the layout is exactly as it was');
    if (signal === 'SIGTERM') {
      assert.equal(result.code, 143, result.stderr);
      assert.match(result.stderr, /interrupted by SIGTERM; the destination is unchanged/);
      assert.deepEqual(await tempLeftovers(parent), [], 'temp files removed on SIGTERM');
    } else {
      assert.equal(result.signal, 'SIGKILL');
      // A killed process cannot clean up: only a .berth-tmp-* sibling may be left, never a change to the layout.
      assert.deepEqual((await readdir(parent)).filter((n) => n !== 'layout' && !n.startsWith('.berth-tmp-')), []);
    }
    // and the interrupted copy, run again, completes
    await copyReference(`oci:${src}:big`, `oci:${dst}:big`, { fsync: false });
    const after = await fingerprint(dst);
    assert.ok(Object.keys(after).length > Object.keys(before).length);
  });
}
