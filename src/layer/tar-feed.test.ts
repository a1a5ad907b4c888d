import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBerthError } from '../core/errors.js';
import { toBytes } from '../io/stream.js';
import { readTar } from '../tar/reader.js';
import { writeTar, type TarWriteEntry } from '../tar/writer.js';
import { TarFeed } from './tar-feed.js';

interface Seen {
  readonly entries: string[];
  readonly error: string | undefined;
}

function describeError(err: unknown): string {
  return isBerthError(err) ? err.code : `not a BerthError: ${String(err)}`;
}

/** What readTar makes of `bytes`: one line per entry (index, name, type, body hex), then the error code. */
async function viaReadTar(bytes: Uint8Array): Promise<Seen> {
  const entries: string[] = [];
  try {
    async function* src(): AsyncGenerator<Uint8Array> {
      yield bytes;
    }
    for await (const e of readTar(src(), { maxEntries: Number.MAX_SAFE_INTEGER })) {
      entries.push(`${e.index} ${e.header.name} ${e.header.type} ${Buffer.from(await toBytes(e.body())).toString('hex')}`);
    }
    return { entries, error: undefined };
  } catch (err) {
    return { entries, error: describeError(err) };
  }
}

/** The same through TarFeed, the input cut into `chunk`-byte pieces; `pause` makes every other entry asynchronous. */
async function viaFeed(bytes: Uint8Array, chunk: number, pause: boolean): Promise<Seen> {
  const entries: string[] = [];
  let cur: { head: string; body: number[] } | undefined;
  let n = 0;
  const feed = new TarFeed({
    entry: (h, index) => {
      cur = { head: `${index} ${h.name} ${h.type}`, body: [] };
      return pause && n++ % 2 === 0 ? new Promise((resolve) => setImmediate(resolve)) : undefined;
    },
    data: (b) => {
      cur!.body.push(...b);
    },
    end: () => {
      entries.push(`${cur!.head} ${Buffer.from(cur!.body).toString('hex')}`);
      cur = undefined;
    },
  });
  try {
    for (let at = 0; at < bytes.length; at += chunk) {
      const wait = feed.feed(bytes.subarray(at, Math.min(bytes.length, at + chunk)));
      if (wait !== undefined) await wait;
    }
    feed.finish();
    return { entries, error: undefined };
  } catch (err) {
    return { entries, error: describeError(err) };
  }
}

/**
 * On a damaged archive both stop at the same error, having reported the same entries, except
 * that TarFeed ends a member before its padding is read (readTar's body includes reading it),
 * so it may report one more.
 */
function samePrefix(got: Seen, want: Seen, msg: string): void {
  const n = Math.min(got.entries.length, want.entries.length);
  assert.deepEqual(got.entries.slice(0, n), want.entries.slice(0, n), msg);
  assert.ok(got.entries.length - want.entries.length <= 1 && got.entries.length >= want.entries.length - (want.error === undefined ? 0 : 1), msg);
}

const enc = new TextEncoder();

function sample(): TarWriteEntry[] {
  const long = `${'deep/'.repeat(30)}name-longer-than-a-ustar-field`;
  return [
    { header: { name: 'dir/', type: 'directory', mode: 0o755 } },
    { header: { name: 'dir/empty', type: 'file' }, body: new Uint8Array(0) },
    { header: { name: 'dir/small', type: 'file' }, body: enc.encode('hello') },
    { header: { name: 'dir/block', type: 'file' }, body: new Uint8Array(512).fill(7) },
    { header: { name: 'dir/big', type: 'file' }, body: new Uint8Array(5000).map((_, i) => i % 251) },
    { header: { name: long, type: 'file', xattrs: { 'user.k': enc.encode('v') } }, body: enc.encode('long') },
    { header: { name: 'dir/link', type: 'symlink', linkname: 'small' } },
    { header: { name: 'dir/hard', type: 'link', linkname: 'dir/small' } },
    { header: { name: 'ünïcode', type: 'file' }, body: enc.encode('u') },
  ];
}

test('TarFeed reports the same entries and bodies as readTar, whatever the chunking, paused or not', async () => {
  const bytes = await toBytes(writeTar(sample()));
  const want = await viaReadTar(bytes);
  assert.equal(want.error, undefined);
  assert.equal(want.entries.length, 9);
  for (const chunk of [1, 7, 511, 512, 513, 4096, bytes.length]) {
    for (const pause of [false, true]) assert.deepEqual(await viaFeed(bytes, chunk, pause), want, `chunk ${chunk}, pause ${pause}`);
  }
});

test('TarFeed: truncated bodies, padding and headers are BERTH_INVALID_TAR, as in readTar', async () => {
  const bytes = await toBytes(writeTar(sample()));
  for (const cut of [100, 512, 1000, 1536, 2100, 2560, bytes.length - 1100]) {
    const part = bytes.subarray(0, cut);
    const want = await viaReadTar(part);
    const got = await viaFeed(part, 300, false);
    assert.equal(got.error, want.error, `cut at ${cut}`);
    samePrefix(got, want, `cut at ${cut}`);
  }
  assert.equal((await viaFeed(bytes.subarray(0, 1000), 300, false)).error, 'BERTH_INVALID_TAR');
});

test('TarFeed: an oversized trailer is BERTH_LIMIT; an empty input has no entries', async () => {
  const bytes = await toBytes(writeTar(sample()));
  const padded = new Uint8Array(bytes.length + 3000);
  padded.set(bytes);
  const entries: string[] = [];
  const small = new TarFeed({ entry: (h) => void entries.push(h.name), data: () => undefined, end: () => undefined }, 2048);
  assert.throws(() => {
    small.feed(padded);
    small.finish();
  }, (err: unknown) => isBerthError(err) && err.code === 'BERTH_LIMIT');
  assert.deepEqual(await viaFeed(new Uint8Array(0), 10, false), { entries: [], error: undefined });
});

test('TarFeed matches readTar on damaged archives (bytes flipped and cut, a fixed seed)', async () => {
  const bytes = await toBytes(writeTar(sample()));
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 300; round++) {
    const b = new Uint8Array(bytes.subarray(0, bytes.length - rand(3) * rand(bytes.length)));
    for (let k = 1 + rand(4); k > 0; k--) if (b.length > 0) b[rand(b.length)] = rand(256);
    const want = await viaReadTar(b);
    const got = await viaFeed(b, 1 + rand(2000), rand(2) === 0);
    assert.equal(got.error, want.error, `round ${round}`);
    samePrefix(got, want, `round ${round}`);
    if (want.error === undefined) assert.deepEqual(got.entries, want.entries, `round ${round}`);
  }
});
