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

/** Bytes deflate cannot shrink (a seeded xorshift), like a compressed file inside a layer. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function join(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

test('block gzip: incompressible blocks are stored, still valid and deterministic', async (t) => {
  const B = 1 << 18;
  const rows = [
    { name: 'all noise', plain: noise(3 * B + 1000, 1) },
    { name: 'noise then text', plain: join([noise(2 * B, 2), sample(2 * B + 77)]) },
    { name: 'text, noise, text', plain: join([sample(B), noise(B, 3), sample(B)]) },
    { name: 'the last block is noise', plain: join([sample(B), noise(B, 4)]) },
    { name: 'a noise tail shorter than the sample', plain: join([noise(B, 5), noise(10_000, 6)]) },
  ];
  for (const row of rows) {
    await t.test(row.name, async (t) => {
      const one = await gz(row.plain, 1, B);
      for (const inFlight of [2, 4]) assert.ok(one.equals(await gz(row.plain, inFlight, B, 65_536)), `inFlight ${inFlight} gives other bytes`);
      assert.ok(gunzipSync(one).equals(row.plain), 'gunzip gives the input back');
      assert.deepEqual(await toBytes(decompress(chunked(one, 4099), 'gzip')), row.plain);
      for (const tool of ['gzip', 'pigz'] as const) {
        if (!needPeer(t, tool)) continue;
        const r = spawnSync(requirePeer(tool), ['-t'], { input: one });
        assert.equal(r.status, 0, `${tool} -t: ${r.stderr.toString()}`);
      }
    });
  }
  await t.test('a noise block is stored blocks of 65535 bytes, not deflated', async () => {
    const plain = noise(B, 7);
    const packed = await gz(plain, 1, B);
    // header, then a non-final stored block holding 0xffff bytes: BTYPE 00, LEN ffff, NLEN 0000
    assert.deepEqual([...packed.subarray(10, 15)], [0x00, 0xff, 0xff, 0x00, 0x00]);
    assert.deepEqual([...packed.subarray(15, 15 + 16)], [...plain.subarray(0, 16)]);
    // the fifth stored block holds the rest, 262144 - 4 * 65535 = 4 bytes; then the empty last
    // block (input ended exactly at a block boundary) is zlib's final empty block, 03 00
    const fifth = packed.length - 8 - 2 - 4 - 5;
    assert.deepEqual([...packed.subarray(fifth, fifth + 5)], [0x00, 0x04, 0x00, 0xfb, 0xff]);
    assert.deepEqual([...packed.subarray(packed.length - 10, packed.length - 8)], [0x03, 0x00]);
    assert.equal(packed.length, 10 + plain.length + 5 * 5 + 2 + 8);
  });
  await t.test('a stored last block carries BFINAL', async () => {
    const plain = noise(B + 100, 9);
    const packed = await gz(plain, 1, B);
    // the block of 100 bytes is below the sample size and deflated by zlib; a full-size last one:
    const last = Buffer.from(await toBytes(gzipBlocks(chunked(plain.subarray(0, B - 1), 1 << 16), { level: 4, inFlight: 1, blockSize: B })));
    // B - 1 = 4 * 65535 + 3: the fifth stored block holds 3 bytes and is the final one
    const at = last.length - 8 - 3 - 5;
    assert.deepEqual([...last.subarray(at, at + 5)], [0x01, 0x03, 0x00, 0xfc, 0xff]);
    assert.ok(gunzipSync(last).equals(plain.subarray(0, B - 1)));
    assert.ok(gunzipSync(packed).equals(plain));
  });
  await t.test('text is deflated, not stored', async () => {
    const plain = sample(B);
    assert.ok((await gz(plain, 1, B)).length < B / 2);
  });
  await t.test('level 0 keeps zlib\'s own stored blocks', async () => {
    const plain = noise(B, 8);
    const packed = Buffer.from(await toBytes(gzipBlocks(chunked(plain, 7_777), { level: 0, inFlight: 1, blockSize: B })));
    assert.ok(gunzipSync(packed).equals(plain));
  });
});
