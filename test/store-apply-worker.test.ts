/**
 * The store's applier can record tar-split on a worker thread (split-worker.ts) while it makes
 * the files: the tar-split must be the same bytes as recorded on the applying thread, however
 * the tar arrives, and what the worker refuses (a path named twice) fails the apply.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { Digest } from '../src/core/digest.js';
import { isBerthError } from '../src/core/errors.js';
import { toBytes, type ByteStream } from '../src/io/stream.js';
import { writeTar, type TarWriteEntry } from '../src/tar/writer.js';
import { applyLayer, overlaySize } from '../src/transports/store/apply.js';
import { SplitThread } from '../src/transports/store/split-worker.js';

const enc = new TextEncoder();

const entries: TarWriteEntry[] = [
  { header: { name: 'a/', type: 'directory' } },
  { header: { name: 'a/f', type: 'file', mode: 0o644 }, body: enc.encode('0123456789') },
  { header: { name: 'a/e', type: 'file', mode: 0o600 } },
  { header: { name: 'a/h', type: 'link', linkname: 'a/f' } },
  { header: { name: 'a/s', type: 'symlink', linkname: 'f' } },
  { header: { name: 'a/.wh.gone', type: 'file' } },
  { header: { name: 'b/c/big', type: 'file', mode: 0o755 }, body: new Uint8Array(3 << 20).map((_, i) => i * 7) },
  ...Array.from({ length: 300 }, (_, i): TarWriteEntry => ({ header: { name: `many/${i}`, type: 'file' }, body: enc.encode(`file ${i}\n`.repeat(i % 7)) })),
];

function pieces(tar: Uint8Array, chunk: number): ByteStream {
  return (async function* () {
    for (let at = 0; at < tar.length; at += chunk) yield tar.subarray(at, Math.min(tar.length, at + chunk));
  })();
}

async function apply(tar: Uint8Array, chunk: number, recordInWorker: boolean | SplitThread): Promise<{ lines: string; size: number; measured: number }> {
  const work = mkdtempSync('/dev/shm/berth-worker-');
  try {
    const root = join(work, 'diff');
    mkdirSync(root);
    const file = join(work, 'tar-split.json.gz');
    const res = await applyLayer(pieces(tar, chunk), root, { mode: 'overlay', tarSplitFile: file, what: 'worker layer', privileged: false, ...(recordInWorker === false ? {} : { recordInWorker }) });
    return { lines: gunzipSync(readFileSync(file)).toString('utf8'), size: res.size, measured: overlaySize(root) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

test('tar-split recorded on a worker thread equals the one recorded while applying', async () => {
  const tar = await toBytes(writeTar(entries));
  const here = await apply(tar, tar.length, false);
  assert.match(here.lines, /"name":"b\/c\/big","size":3145728,/);
  for (const chunk of [tar.length, 1 << 20, 65_537, 511]) {
    const there = await apply(tar, chunk, true);
    assert.equal(there.lines, here.lines, `${chunk}-byte chunks`);
    assert.equal(there.size, there.measured);
  }
});

test('a path named twice fails the apply when the worker records', async () => {
  const tar = await toBytes(writeTar([...entries.slice(0, 3), { header: { name: './a/f', type: 'file' }, body: enc.encode('again') }]));
  await assert.rejects(apply(tar, 4096, true), (err) => isBerthError(err, 'BERTH_INVALID_TAR') && /entry 3 "\.\/a\/f": duplicate path/.test((err as Error).message));
});

test('a truncated tar fails the apply when the worker records', async () => {
  const tar = await toBytes(writeTar(entries));
  await assert.rejects(apply(tar.subarray(0, 2 << 20), 65_536, true), (err) => isBerthError(err, 'BERTH_INVALID_TAR') && /truncated body/.test((err as Error).message));
});

test('one worker thread records the layers of a load, one after another and at the same time, and survives a failing layer', async () => {
  const tar = await toBytes(writeTar(entries));
  const here = await apply(tar, tar.length, false);
  const dup = await toBytes(writeTar([...entries.slice(0, 3), { header: { name: './a/f', type: 'file' }, body: enc.encode('again') }]));
  const thread = new SplitThread();
  try {
    assert.equal(thread.running, false, 'started only by the first layer');
    assert.equal((await apply(tar, 65_536, thread)).lines, here.lines);
    assert.equal(thread.running, true);
    await assert.rejects(apply(dup, 4096, thread), (err) => isBerthError(err, 'BERTH_INVALID_TAR'));
    await assert.rejects(apply(tar.subarray(0, 2 << 20), 65_536, thread), (err) => isBerthError(err, 'BERTH_INVALID_TAR'));
    // layers applied at once are separate jobs, each with its own ring
    const many = await Promise.all([apply(tar, 511, thread), apply(tar, 1 << 20, thread), apply(dup, 4096, thread).catch((e: unknown) => e), apply(tar, 65_537, thread)]);
    assert.ok(isBerthError(many[2], 'BERTH_INVALID_TAR'));
    for (const i of [0, 1, 3]) assert.equal((many[i] as { lines: string }).lines, here.lines, `layer ${i}`);
    assert.equal(thread.running, true, 'the same worker throughout');
  } finally {
    await thread.close();
  }
  assert.equal(thread.running, false);
  await assert.rejects(apply(tar, 65_536, thread), (err) => isBerthError(err, 'BERTH_USAGE') && /closed/.test((err as Error).message));
});

test('a layer failing on the applying side stops its recording and leaves its tar-split file closed and removable', async () => {
  const tar = await toBytes(writeTar(entries));
  const thread = new SplitThread();
  const work = mkdtempSync('/dev/shm/berth-worker-');
  try {
    const root = join(work, 'diff');
    mkdirSync(root);
    const file = join(work, 'tar-split.json.gz');
    const wrongDiffId = `sha256:${'0'.repeat(64)}` as Digest;
    await assert.rejects(applyLayer(pieces(tar, 65_536), root, { mode: 'overlay', tarSplitFile: file, what: 'worker layer', privileged: false, diffId: wrongDiffId, recordInWorker: thread }),
      (err) => isBerthError(err, 'BERTH_DIGEST_MISMATCH'));
    // an abort mid-layer: the worker closes the file before applyLayer settles
    const ac = new AbortController();
    const file2 = join(work, 'tar-split-2.json.gz');
    const stream = (async function* () {
      let n = 0;
      for await (const c of pieces(tar, 65_536)) {
        if (++n === 5) ac.abort();
        yield c;
      }
    })();
    await assert.rejects(applyLayer(stream, root, { mode: 'overlay', tarSplitFile: file2, what: 'worker layer', privileged: false, signal: ac.signal, recordInWorker: thread }),
      (err) => isBerthError(err, 'BERTH_ABORTED'));
    rmSync(work, { recursive: true });
    // the thread still records the next layer
    assert.equal((await apply(tar, 65_536, thread)).size > 0, true);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await thread.close();
  }
});

test('the applier reads no chunk after asking for the next (so file reads may reuse their memory), in either recording mode', async () => {
  const tar = await toBytes(writeTar(entries));
  const here = await apply(tar, tar.length, false);
  // Buffers (whose slice() is a view) overwritten as soon as the next is asked for
  const poisoned = (chunk: number): ByteStream => (async function* () {
    for (let at = 0; at < tar.length; at += chunk) {
      const b = Buffer.from(tar.subarray(at, Math.min(tar.length, at + chunk)));
      yield b;
      b.fill(0xee);
    }
  })();
  for (const recordInWorker of [false, true]) {
    for (const chunk of [511, 4096, 65_537]) {
      const work = mkdtempSync('/dev/shm/berth-worker-');
      try {
        const root = join(work, 'diff');
        mkdirSync(root);
        const file = join(work, 'tar-split.json.gz');
        const res = await applyLayer(poisoned(chunk), root, { mode: 'overlay', tarSplitFile: file, what: 'worker layer', privileged: false, ...(recordInWorker ? { recordInWorker } : {}) });
        assert.equal(gunzipSync(readFileSync(file)).toString('utf8'), here.lines, `${chunk}-byte chunks, worker ${recordInWorker}`);
        assert.equal(res.size, here.size);
        assert.equal(readFileSync(join(root, 'b/c/big')).equals(Buffer.from(entries[6]!.body as Uint8Array)), true);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
  }
});
