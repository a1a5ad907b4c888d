import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { needPeer, requirePeer } from '../../test/support/peers.js';
import { compress, decompress } from './codec.js';
import { gzipBlocks } from './gzip-blocks.js';
import { toBytes, type ByteStream } from './stream.js';

/** Compressible bytes with long-range repeats, so blocks use the dictionary of the one before. */
function sample(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 7;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (x >>> 27) === 0 ? x & 0xff : 0x41 + ((i >> 3) % 23);
  }
  return out;
}

async function* chunked(b: Uint8Array, size: number): ByteStream {
  for (let at = 0; at < b.length; at += size) yield b.subarray(at, at + size);
}

const gz = async (b: Uint8Array, inFlight: number, blockSize: number, chunk = 7_777): Promise<Buffer> =>
  Buffer.from(await toBytes(gzipBlocks(chunked(b, chunk), { level: 4, inFlight, blockSize })));

test('block gzip: one valid member, the same bytes however many blocks run at once', async (t) => {
  const rows = [
    { name: 'empty', n: 0, block: 4096 },
    { name: 'one short block', n: 100, block: 4096 },
    { name: 'exactly two blocks', n: 8192, block: 4096 },
    { name: 'blocks shorter than the 32 KiB window', n: 100_000, block: 4096 },
    { name: 'blocks longer than the window', n: 300_000, block: 65_536 },
  ];
  for (const row of rows) {
    await t.test(row.name, async () => {
      const plain = sample(row.n);
      const one = await gz(plain, 1, row.block);
      for (const inFlight of [2, 4]) assert.ok(one.equals(await gz(plain, inFlight, row.block, 1000)), `inFlight ${inFlight} gives other bytes`);
      assert.ok(gunzipSync(one).equals(plain), 'gunzip gives the input back');
      assert.deepEqual([...one.subarray(0, 4)], [0x1f, 0x8b, 0x08, 0x00]);
      assert.equal(one.readUInt32LE(one.length - 4), row.n, 'ISIZE');
      assert.deepEqual(await toBytes(decompress(chunked(one, 333), 'gzip')), plain);
    });
  }
});

test('block gzip through compress(): the tools read it (gzip -t, pigz -t)', async (t) => {
  const plain = sample(3_000_000);
  const packed = await toBytes(compress(chunked(plain, 65_536), 'gzip', { parallel: true, level: 6 }));
  assert.ok(packed.length < plain.length / 2, 'it compresses');
  for (const tool of ['gzip', 'pigz'] as const) {
    if (!needPeer(t, tool)) continue;
    const r = spawnSync(requirePeer(tool), ['-t'], { input: packed });
    assert.equal(r.status, 0, `${tool} -t: ${r.stderr.toString()}`);
    const d = spawnSync(requirePeer(tool), ['-dc'], { input: packed, maxBuffer: 16 << 20 });
    assert.ok(d.stdout.equals(plain), `${tool} -dc gives the input back`);
  }
});
