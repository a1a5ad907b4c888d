import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileStream, recycleChunk } from './file-stream.js';
import { toBytes } from './stream.js';

test('fileStream reads a file or a byte range, opening it only when read', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-fs-'));
  try {
    const f = path.join(dir, 'f');
    await writeFile(f, 'hello, world');
    assert.equal(Buffer.from(await toBytes(fileStream(f))).toString(), 'hello, world');
    assert.equal(Buffer.from(await toBytes(fileStream(f, { start: 7, end: 10, highWaterMark: 2 }))).toString(), 'worl');
    // never read: a missing file is no error at all (nothing was opened)
    fileStream(path.join(dir, 'missing'));
    await assert.rejects(toBytes(fileStream(path.join(dir, 'missing'))), { code: 'ENOENT' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an unread fileStream whose signal aborts raises nothing; a read one fails with the abort', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-fs-'));
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => {
    uncaught.push(e);
  };
  process.on('uncaughtException', onUncaught);
  try {
    const f = path.join(dir, 'f');
    await writeFile(f, Buffer.alloc(4 << 20));
    const ac = new AbortController();
    fileStream(f, { signal: ac.signal });
    const read = fileStream(f, { signal: ac.signal, highWaterMark: 1024 })[Symbol.asyncIterator]();
    assert.equal((await read.next()).done, false);
    ac.abort();
    await assert.rejects(async () => {
      for (;;) if ((await read.next()).done === true) break;
    }, { name: 'AbortError' });
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(uncaught, []);
  } finally {
    process.off('uncaughtException', onUncaught);
    await rm(dir, { recursive: true, force: true });
  }
});

test('fileStream reuses a chunk\'s memory only once its consumer handed it back', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-fs-'));
  try {
    const f = path.join(dir, 'f');
    const bytes = Buffer.from(Array.from({ length: 10 }, (_, i) => i));
    await writeFile(f, bytes);
    const it = fileStream(f, { highWaterMark: 3 })[Symbol.asyncIterator]();
    const a = (await it.next()).value!;
    const b = (await it.next()).value!;
    assert.notEqual(a.buffer, b.buffer, 'kept chunks are never overwritten');
    assert.deepEqual([...a], [0, 1, 2]);
    recycleChunk(a);
    recycleChunk(a); // twice: no second lease of the same memory
    recycleChunk(new Uint8Array(3)); // not from a fileStream: ignored
    // one read runs ahead: c was under way before a came back, so a's memory serves d
    const c = (await it.next()).value!;
    assert.deepEqual([...c], [6, 7, 8]);
    assert.notEqual(c.buffer, a.buffer, 'memory is not reused before it is handed back');
    assert.notEqual(c.buffer, b.buffer);
    const d = (await it.next()).value!;
    assert.equal(d.buffer, a.buffer, 'the handed-back memory is read into');
    assert.deepEqual([...b, ...d], [3, 4, 5, 9], 'a chunk still out is never overwritten');
    assert.equal((await it.next()).done, true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
