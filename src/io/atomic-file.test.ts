import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isBerthError, type ErrorCode } from '../core/errors.js';
import { LOCK_FILE, TEMP_PREFIX, makeTempSibling, withLock, writeFileAtomic, writeStreamAtomic } from './atomic-file.js';
import type { ByteStream } from './stream.js';

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-atomic-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function isCode(code: ErrorCode): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isBerthError(e, code), `want ${code}, got ${String(e)}`);
    return true;
  };
}

async function noTemps(dir: string): Promise<void> {
  assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith(TEMP_PREFIX)), []);
}

/** The pid of a process that has already exited (so a lock naming it is stale). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

test('writeFileAtomic', async (t) => {
  const rows: Array<{ name: string; data: Uint8Array | string; want: string }> = [
    { name: 'string', data: 'héllo\n', want: 'héllo\n' },
    { name: 'bytes', data: new TextEncoder().encode('{"a":1}'), want: '{"a":1}' },
    { name: 'empty', data: '', want: '' },
  ];
  for (const row of rows) {
    await t.test(row.name, async (t) => {
      const dir = await scratch(t);
      const file = path.join(dir, 'f.json');
      await writeFile(file, 'old contents that are longer');
      await writeFileAtomic(file, row.data);
      assert.equal(await readFile(file, 'utf8'), row.want);
      await noTemps(dir);
    });
  }
  await t.test('mode is applied', async (t) => {
    const dir = await scratch(t);
    const file = path.join(dir, 'x');
    await writeFileAtomic(file, 'x', { mode: 0o600 });
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });
  await t.test('reject: missing directory', async (t) => {
    const dir = await scratch(t);
    await assert.rejects(writeFileAtomic(path.join(dir, 'no', 'f'), 'x'), isCode('BERTH_NOT_FOUND'));
  });
});

test('writeStreamAtomic', async (t) => {
  await t.test('writes every chunk and returns the count', async (t) => {
    const dir = await scratch(t);
    const file = path.join(dir, 'blob');
    async function* src(): ByteStream {
      for (let i = 0; i < 100; i++) yield new Uint8Array(10_000).fill(i);
    }
    assert.equal(await writeStreamAtomic(file, src(), { fsync: false }), 1_000_000);
    const got = await readFile(file);
    assert.equal(got.length, 1_000_000);
    assert.equal(got[999_999], 99);
    await noTemps(dir);
  });
  await t.test('reject: a failing stream leaves the old file and no temp', async (t) => {
    const dir = await scratch(t);
    const file = path.join(dir, 'blob');
    await writeFile(file, 'old');
    async function* src(): ByteStream {
      yield new Uint8Array(100);
      throw new Error('network dropped');
    }
    await assert.rejects(writeStreamAtomic(file, src()), (e: unknown) => isBerthError(e) && /network dropped/.test(e.message));
    assert.equal(await readFile(file, 'utf8'), 'old');
    await noTemps(dir);
  });
});

test('makeTempSibling', async (t) => {
  const dir = await scratch(t);
  const target = path.join(dir, 'layout');
  const tmp = await makeTempSibling(target);
  assert.equal(path.dirname(tmp), dir);
  assert.ok(path.basename(tmp).startsWith(`${TEMP_PREFIX}layout-`));
  assert.deepEqual(await readdir(tmp), []);
  const other = await makeTempSibling(target);
  assert.notEqual(other, tmp);
  await assert.rejects(makeTempSibling(path.join(dir, 'missing', 'x')), isCode('BERTH_NOT_FOUND'));
});

test('withLock', async (t) => {
  await t.test('serialises holders and cleans up', async (t) => {
    const dir = await scratch(t);
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all([1, 2, 3, 4].map((i) => withLock(dir, async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      assert.match(await readFile(path.join(dir, LOCK_FILE), 'utf8'), new RegExp(`^${process.pid}\\n`));
      await new Promise((r) => setTimeout(r, 20));
      order.push(i);
      inside--;
    }, { pollMs: 5 })));
    assert.equal(maxInside, 1);
    assert.equal(order.length, 4);
    assert.equal(existsSync(path.join(dir, LOCK_FILE)), false);
  });
  await t.test('returns the value and releases when fn throws', async (t) => {
    const dir = await scratch(t);
    assert.equal(await withLock(dir, () => 42), 42);
    await assert.rejects(withLock(dir, () => {
      throw new Error('boom');
    }), /boom/);
    assert.equal(existsSync(path.join(dir, LOCK_FILE)), false);
  });
  await t.test('a stale lock (dead pid) is taken over', async (t) => {
    const dir = await scratch(t);
    await writeFile(path.join(dir, LOCK_FILE), `${deadPid()}\nabc\n`);
    assert.equal(await withLock(dir, () => 'ok', { timeoutMs: 2000 }), 'ok');
    assert.equal(existsSync(path.join(dir, LOCK_FILE)), false);
    assert.deepEqual(await readdir(dir), []);
  });
  await t.test('reject: a live holder makes the waiter time out', async (t) => {
    const dir = await scratch(t);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    t.after(() => {
      child.kill();
    });
    await writeFile(path.join(dir, LOCK_FILE), `${child.pid}\nabc\n`);
    await assert.rejects(withLock(dir, () => 1, { timeoutMs: 150, pollMs: 10 }), (e: unknown) => {
      assert.ok(isBerthError(e, 'BERTH_IO'));
      assert.match(e.message, new RegExp(`held by pid ${child.pid}`));
      return true;
    });
    assert.equal(existsSync(path.join(dir, LOCK_FILE)), true);
  });
  await t.test('reject: an aborted signal stops the wait', async (t) => {
    const dir = await scratch(t);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(withLock(dir, () => 1, { signal: ac.signal }), isCode('BERTH_ABORTED'));
  });
  await t.test('process.exit inside fn still releases the lock', async (t) => {
    const dir = await scratch(t);
    const mod = path.join(path.dirname(fileURLToPath(import.meta.url)), 'atomic-file.js');
    const script = `import { withLock } from ${JSON.stringify(mod)};
await withLock(${JSON.stringify(dir)}, () => { process.exit(3); });`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script]);
    assert.equal(r.status, 3, r.stderr.toString());
    assert.equal(existsSync(path.join(dir, LOCK_FILE)), false);
  });
});
