import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isBerthError } from '../../core/errors.js';
import { toBytes } from '../../io/stream.js';
import { assembleTarSplit } from '../../tar/assemble.js';
import { disassembleTar, writeTarSplit, type TarSplitRecord } from '../../tar/split.js';
import { writeTar } from '../../tar/writer.js';
import { assembleInWorker } from './layer-worker.js';
import { layerFdOpener } from './overlay2.js';

/** A layer directory and its tar-split: small files, a big one (streamed in pieces), an empty one. */
async function makeLayer(dir: string): Promise<{ tar: Uint8Array; files: string; tarSplit: string; big: Uint8Array }> {
  const contents: Record<string, Uint8Array> = {
    'a.txt': new TextEncoder().encode('hello\n'),
    'sub/big.bin': randomBytes(3 << 20),
    'sub/empty': new Uint8Array(0),
  };
  const entries = [
    { header: { name: 'sub/', type: 'directory' as const, mtime: 1_700_000_000 } },
    ...Object.entries(contents).map(([name, body]) => ({ header: { name, type: 'file' as const, mtime: 1_700_000_000 }, body })),
  ];
  const tar = await toBytes(writeTar(entries));
  const files = path.join(dir, 'diff');
  for (const [name, body] of Object.entries(contents)) {
    await mkdir(path.dirname(path.join(files, name)), { recursive: true });
    await writeFile(path.join(files, name), body);
  }
  const records: TarSplitRecord[] = [];
  await toBytes(disassembleTar((async function* () { yield tar; })(), { onRecord: (r) => void records.push(r) }));
  const tarSplit = path.join(dir, 'tar-split.json.gz');
  await writeFile(tarSplit, await toBytes(writeTarSplit(records)));
  return { tar, files, tarSplit, big: contents['sub/big.bin']! };
}

test('a layer rebuilt on a worker thread: the same bytes and the same errors as on this thread', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-layer-worker-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { tar, files, tarSplit, big } = await makeLayer(dir);
  const job = { tarSplit, source: 'tar-split.json.gz', files, what: 'rebuilding layer L' };
  const here = (): Promise<Uint8Array> => toBytes(assembleTarSplit(createReadStream(tarSplit), layerFdOpener(files), { source: job.source, what: job.what }));
  assert.ok(Buffer.from(await toBytes(assembleInWorker(job))).equals(Buffer.from(tar)), 'same bytes as the original tar');

  await t.test('a changed file: the same BerthError', async () => {
    await writeFile(path.join(files, 'sub/big.bin'), randomBytes(3 << 20));
    const err = async (p: Promise<unknown>): Promise<unknown> => p.then(() => assert.fail('no error'), (e: unknown) => e);
    const a = await err(here());
    const b = await err(toBytes(assembleInWorker(job)));
    assert.ok(isBerthError(a) && isBerthError(b));
    assert.equal(b.code, a.code);
    assert.equal(b.message, a.message);
    assert.equal(b.subject, a.subject);
    assert.match(b.message, /rebuilding layer L: file "sub\/big.bin": content differs/);
  });

  await t.test('a changed small file, alone and before a missing one: the same error, the changed file first', async () => {
    const err = async (p: Promise<unknown>): Promise<unknown> => p.then(() => assert.fail('no error'), (e: unknown) => e);
    await writeFile(path.join(files, 'sub/big.bin'), big);
    await writeFile(path.join(files, 'a.txt'), 'HELLO\n');
    for (const missing of [false, true]) {
      if (missing) await rm(path.join(files, 'sub/big.bin'));
      const a = await err(here());
      const b = await err(toBytes(assembleInWorker(job)));
      assert.ok(isBerthError(a) && isBerthError(b));
      assert.equal(b.message, a.message);
      assert.match(b.message, /file "a.txt": content differs from the layer \(crc64 want/);
    }
    await writeFile(path.join(files, 'a.txt'), 'hello\n');
    await writeFile(path.join(files, 'sub/big.bin'), big);
  });

  await t.test('stopping early and aborting end the worker', async () => {
    await writeFile(path.join(files, 'sub/big.bin'), big);
    for await (const _ of assembleInWorker(job)) break;
    const ac = new AbortController();
    const it = assembleInWorker(job, { signal: ac.signal })[Symbol.asyncIterator]();
    assert.equal((await it.next()).done, false);
    ac.abort();
    await assert.rejects(async () => {
      for (let r = await it.next(); r.done !== true; r = await it.next());
    }, (e) => isBerthError(e, 'BERTH_ABORTED'));
  });
});
