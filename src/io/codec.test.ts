import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import type Binding from 'zstd-napi/binding.js';
import { isBerthError, type ErrorCode } from '../core/errors.js';
import { needPeer, requirePeer } from '../../test/support/peers.js';
import { compress, decompress, detectCompression, sniffCompression, type Compression, type SniffedCompression } from './codec.js';
import { concatBytes, drain, fromBytes, toBytes, type ByteStream } from './stream.js';
import { repoRoot } from '../../test/support/paths.js';


const FIXTURE = path.resolve(repoRoot, '../shared/fixtures/real/google__go-containerregistry/pkg/crane/testdata/content.tar.zst');

/** Deterministic, moderately compressible bytes. */
function sample(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (x >>> 24) % 17 === 0 ? x & 0xff : 0x61 + (i % 7);
  }
  return out;
}

/** Splits bytes into chunks of `size` (odd sizes exercise chunk boundaries inside headers). */
async function* chunked(bytes: Uint8Array, size: number): ByteStream {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function tool(file: string, args: string[], input: Uint8Array): Buffer {
  const r = spawnSync(file, args, { input, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, text?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isBerthError(err, code), `want ${code}, got ${String(err)} (${(err as { code?: string }).code})`);
    if (text !== undefined) assert.ok(err.message.includes(text), `message "${err.message}" lacks "${text}"`);
    assert.equal(err.message, err.message.trim());
    assert.ok(!err.message.endsWith('.'), 'message ends with a period');
    return true;
  });
}

test('sniffCompression', async (t) => {
  const rows: Array<{ name: string; head: number[]; want: SniffedCompression }> = [
    { name: 'gzip', head: [0x1f, 0x8b, 0x08, 0, 0, 0], want: 'gzip' },
    { name: 'zstd frame', head: [0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58], want: 'zstd' },
    { name: 'zstd skippable frame', head: [0x5a, 0x2a, 0x4d, 0x18, 0, 0], want: 'zstd' },
    { name: 'xz', head: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], want: 'xz' },
    { name: 'bzip2', head: [0x42, 0x5a, 0x68, 0x39, 0x31, 0x41], want: 'bzip2' },
    { name: 'lz4', head: [0x04, 0x22, 0x4d, 0x18, 0x64, 0x40], want: 'lz4' },
    { name: 'tar (name bytes)', head: [0x65, 0x74, 0x63, 0x2f, 0, 0], want: 'none' },
    { name: 'empty', head: [], want: 'none' },
    { name: 'one gzip byte only', head: [0x1f], want: 'none' },
    { name: 'BZh without a level digit', head: [0x42, 0x5a, 0x68, 0x00], want: 'none' },
  ];
  for (const row of rows) {
    await t.test(row.name, () => assert.equal(sniffCompression(Uint8Array.from(row.head)), row.want));
  }
});

test('detectCompression loses no bytes', async (t) => {
  const plain = sample(100_000);
  const rows: Array<{ name: string; bytes: Uint8Array; chunk: number; want: Compression }> = [
    { name: 'gzip in 1-byte chunks', bytes: gzipSync(plain), chunk: 1, want: 'gzip' },
    { name: 'zstd in 3-byte chunks', bytes: await toBytes(compress(fromBytes(plain), 'zstd')), chunk: 3, want: 'zstd' },
    { name: 'plain in one chunk', bytes: plain, chunk: plain.length, want: 'none' },
    { name: 'shorter than the sniff window', bytes: Uint8Array.of(1, 2), chunk: 1, want: 'none' },
    { name: 'empty', bytes: new Uint8Array(0), chunk: 1, want: 'none' },
  ];
  for (const row of rows) {
    await t.test(row.name, async () => {
      const { compression, stream } = await detectCompression(chunked(row.bytes, row.chunk));
      assert.equal(compression, row.want);
      assert.equal(sha(await toBytes(stream)), sha(row.bytes));
    });
  }
  await t.test('reject: xz is recognised but unsupported', async () => {
    const xz = Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3);
    await rejectsWith(detectCompression(fromBytes(xz), { what: 'layer 3' }), 'BERTH_UNSUPPORTED', 'layer 3');
  });
});

test('round trips', async (t) => {
  const sizes = [0, 1, 4096, 1_000_003];
  for (const c of ['none', 'gzip', 'zstd'] as const) {
    for (const n of sizes) {
      await t.test(`${c} ${n} bytes`, async () => {
        const plain = sample(n, n + 7);
        const packed = await toBytes(compress(chunked(plain, 65_536), c, { level: c === 'gzip' ? 1 : 3 }));
        if (c !== 'none') assert.equal(sniffCompression(packed), c);
        const back = await toBytes(decompress(chunked(packed, 777), c));
        assert.equal(back.length, n);
        assert.equal(sha(back), sha(plain));
      });
    }
  }
});

test('interop with the real gzip and zstd tools', async (t) => {
  const plain = sample(3_000_000, 42);
  const want = sha(plain);

  await t.test('gzip(1) output decodes, including concatenated members', async (t) => {
    if (!needPeer(t, 'gzip')) return;
    const gz = requirePeer('gzip');
    const a = tool(gz, ['-c', '-9'], plain.subarray(0, 1_000_000));
    const b = tool(gz, ['-c', '-1'], plain.subarray(1_000_000));
    assert.equal(sha(await toBytes(decompress(fromBytes(a), 'gzip'))), sha(plain.subarray(0, 1_000_000)));
    assert.equal(sha(await toBytes(decompress(chunked(concatBytes([a, b]), 4099), 'gzip'))), want);
  });
  await t.test('berth gzip output decodes with gzip(1)', async (t) => {
    if (!needPeer(t, 'gzip')) return;
    const packed = await toBytes(compress(fromBytes(plain), 'gzip'));
    assert.equal(sha(tool(requirePeer('gzip'), ['-dc'], packed)), want);
  });
  await t.test('zstd(1) output decodes, including several frames', async (t) => {
    if (!needPeer(t, 'zstd')) return;
    const zs = requirePeer('zstd');
    const a = tool(zs, ['-q', '-c', '-19'], plain.subarray(0, 1_000_000));
    const b = tool(zs, ['-q', '-c', '--no-check', '-1'], plain.subarray(1_000_000));
    // the sample data is repetitive: zstd -19 packs it past the default 1000:1 ratio limit
    assert.equal(sha(await toBytes(decompress(chunked(concatBytes([a, b]), 1000), 'zstd', { maxRatio: Infinity }))), want);
  });
  await t.test('berth zstd output decodes with zstd(1)', async (t) => {
    if (!needPeer(t, 'zstd')) return;
    const packed = await toBytes(compress(fromBytes(plain), 'zstd', { level: 9 }));
    assert.equal(sha(tool(requirePeer('zstd'), ['-q', '-dc'], packed)), want);
  });
  await t.test('the go-containerregistry content.tar.zst fixture', async (t) => {
    if (!existsSync(FIXTURE)) {
      if (process.env.CI === 'true') throw new Error(`fixture missing: ${FIXTURE}`);
      t.skip('shared fixtures are not checked out beside the repository');
      return;
    }
    const src = createReadStream(FIXTURE);
    const { compression, stream } = await detectCompression(src);
    assert.equal(compression, 'zstd');
    const tar = await toBytes(decompress(stream, 'zstd', { what: 'content.tar.zst' }));
    assert.ok(tar.length >= 1024 && tar.length % 512 === 0, `tar length ${tar.length}`);
    assert.equal(Buffer.from(tar.subarray(257, 262)).toString('latin1'), 'ustar');
    if (needPeer(t, 'zstd')) {
      assert.equal(sha(tar), sha(tool(requirePeer('zstd'), ['-q', '-dc'], readFileSync(FIXTURE))));
    }
  });
});

/**
 * zstd through the binding with an explicit libzstd worker count (0: single-threaded) and, when
 * given, codec.ts's job size and overlap for the fast levels.
 */
function zstdWith(workers: number, level: number, plain: Uint8Array, chunk: number, job?: { size: number; overlapLog: number }): Buffer {
  const z = createRequire(import.meta.url)('zstd-napi/binding.js') as typeof Binding;
  const cctx = new z.CCtx();
  cctx.setParameter(z.CParameter.compressionLevel, level);
  cctx.setParameter(z.CParameter.nbWorkers, workers);
  if (job !== undefined) {
    cctx.setParameter(z.CParameter.jobSize, job.size);
    cctx.setParameter(z.CParameter.overlapLog, job.overlapLog);
  }
  const out: Buffer[] = [];
  for (let at = 0; at < plain.length; at += chunk) {
    let input = plain.subarray(at, at + chunk);
    while (input.length > 0) {
      const dst = Buffer.alloc(z.cStreamOutSize());
      const [, produced, consumed] = cctx.compressStream2(dst, input, z.EndDirective.continue);
      out.push(dst.subarray(0, produced));
      input = input.subarray(consumed);
    }
  }
  for (;;) {
    const dst = Buffer.alloc(z.cStreamOutSize());
    const [remaining, produced] = cctx.compressStream2(dst, new Uint8Array(0), z.EndDirective.end);
    out.push(dst.subarray(0, produced));
    if (remaining === 0) return Buffer.concat(out);
  }
}

test('parallel zstd: the same bytes for any worker count, so digests match across machines', async (t) => {
  // levels 1-3 cut 2 MiB jobs: 7 MB is four jobs, so the workers really split the input
  const plain = sample(7_000_000, 5);
  const fast = { size: 2 << 20, overlapLog: 7 };
  const packed = Buffer.from(await toBytes(compress(chunked(plain, 65_536), 'zstd', { level: 1, parallel: true })));
  for (const workers of [1, 2, 3]) {
    assert.ok(packed.equals(zstdWith(workers, 1, plain, 1_000_003, fast)), `${workers} workers give other bytes`);
  }
  // libzstd's own job size (8 MiB at level 3) would give other bytes: the parameters are set
  const three = Buffer.from(await toBytes(compress(chunked(plain, 65_536), 'zstd', { level: 3, parallel: true })));
  assert.ok(three.equals(zstdWith(2, 3, plain, 65_536, fast)));
  assert.ok(!three.equals(zstdWith(2, 3, plain, 65_536)), 'default job size is expected to differ');
  // documents why parallel is opt-in: the single-threaded mode writes other bytes
  assert.ok(!packed.equals(zstdWith(0, 1, plain, 65_536)), 'single-threaded output is expected to differ');
  assert.equal(sha(await toBytes(decompress(chunked(packed, 4099), 'zstd'))), sha(plain));
  if (needPeer(t, 'zstd')) assert.equal(sha(tool(requirePeer('zstd'), ['-q', '-dc'], packed)), sha(plain));
  await t.test('empty input is one valid frame', async () => {
    const empty = await toBytes(compress(fromBytes(new Uint8Array(0)), 'zstd', { parallel: true }));
    assert.equal(sniffCompression(empty), 'zstd');
    assert.equal((await toBytes(decompress(fromBytes(empty), 'zstd'))).length, 0);
  });
  await t.test('a consumer that stops early closes the source while workers run', async () => {
    let closed = false;
    async function* src(): ByteStream {
      try {
        for (let i = 0; i < 64; i++) yield sample(1 << 20, i);
      } finally {
        closed = true;
      }
    }
    let got = 0;
    for await (const chunk of compress(src(), 'zstd', { level: 1, parallel: true })) {
      got += chunk.length;
      break;
    }
    assert.ok(got > 0);
    assert.equal(closed, true);
  });
});

test('corrupt and truncated input', async (t) => {
  const plain = sample(200_000, 9);
  const gz = gzipSync(plain);
  const zs = await toBytes(compress(fromBytes(plain), 'zstd'));
  const flip = (b: Uint8Array, at: number): Uint8Array => {
    const c = Uint8Array.from(b);
    c[at] = c[at]! ^ 0xff;
    return c;
  };
  const rows: Array<{ name: string; c: Compression; bytes: Uint8Array; text: string }> = [
    { name: 'gzip truncated mid-stream', c: 'gzip', bytes: gz.subarray(0, gz.length >> 1), text: 'truncated' },
    { name: 'gzip missing its trailer', c: 'gzip', bytes: gz.subarray(0, gz.length - 4), text: 'truncated' },
    { name: 'gzip bad header', c: 'gzip', bytes: flip(gz, 3), text: 'gzip' },
    { name: 'gzip corrupt body', c: 'gzip', bytes: flip(gz, gz.length >> 1), text: 'gzip' },
    { name: 'gzip bad crc', c: 'gzip', bytes: flip(gz, gz.length - 6), text: 'gzip' },
    { name: 'gzip trailing garbage', c: 'gzip', bytes: concatBytes([gz, new TextEncoder().encode('garbage')]), text: 'gzip' },
    { name: 'gzip empty', c: 'gzip', bytes: new Uint8Array(0), text: 'truncated' },
    { name: 'gzip of plain bytes', c: 'gzip', bytes: plain, text: 'gzip' },
    { name: 'zstd truncated mid-frame', c: 'zstd', bytes: zs.subarray(0, zs.length >> 1), text: 'truncated' },
    { name: 'zstd missing its last byte', c: 'zstd', bytes: zs.subarray(0, zs.length - 1), text: 'truncated' },
    { name: 'zstd corrupt body', c: 'zstd', bytes: flip(zs, zs.length >> 1), text: 'zstd' },
    { name: 'zstd trailing garbage', c: 'zstd', bytes: concatBytes([zs, new TextEncoder().encode('garbage')]), text: 'zstd' },
    { name: 'zstd empty', c: 'zstd', bytes: new Uint8Array(0), text: 'truncated' },
    { name: 'zstd of plain bytes', c: 'zstd', bytes: plain, text: 'zstd' },
  ];
  for (const row of rows) {
    await t.test(`reject: ${row.name}`, async () => {
      await rejectsWith(drain(decompress(chunked(row.bytes, 8192), row.c, { what: 'layer sha256:abc' })), 'BERTH_COMPRESSION', 'layer sha256:abc');
      await rejectsWith(drain(decompress(chunked(row.bytes, 8192), row.c, { what: 'layer sha256:abc' })), 'BERTH_COMPRESSION', row.text);
    });
  }
  await t.test('gzip trailing zero padding is tolerated (as gzip(1) does)', async () => {
    const back = await toBytes(decompress(fromBytes(concatBytes([gz, new Uint8Array(512)])), 'gzip'));
    assert.equal(sha(back), sha(plain));
  });
});

test('decompression bombs stop at maxBytes', async (t) => {
  const zeros = new Uint8Array(64 * 1024 * 1024);
  const bombs: Array<{ name: string; c: Compression; bytes: Uint8Array }> = [
    { name: 'gzip', c: 'gzip', bytes: gzipSync(zeros, { level: 9 }) },
    { name: 'zstd', c: 'zstd', bytes: await toBytes(compress(fromBytes(zeros), 'zstd', { level: 19 })) },
    { name: 'none', c: 'none', bytes: zeros },
  ];
  for (const row of bombs) {
    await t.test(`reject: ${row.name} bomb in one chunk`, async () => {
      await rejectsWith(drain(decompress(fromBytes(row.bytes), row.c, { maxBytes: 1_000_000, what: 'bomb' })), 'BERTH_LIMIT', 'decompressed more than 1000000 bytes');
    });
    await t.test(`${row.name} exactly at the limit passes`, async () => {
      const n = await drain(decompress(fromBytes(row.bytes), row.c, { maxBytes: zeros.length, maxRatio: Infinity }));
      assert.equal(n, zeros.length);
    });
  }
});

test('streams stay lazy and release their source', async (t) => {
  await t.test('a consumer that stops early closes the source', async () => {
    let closed = false;
    const packed = await toBytes(compress(fromBytes(sample(2_000_000)), 'zstd'));
    async function* src(): ByteStream {
      try {
        yield* chunked(packed, 1000);
      } finally {
        closed = true;
      }
    }
    for await (const chunk of decompress(src(), 'zstd')) {
      assert.ok(chunk.length > 0);
      break;
    }
    assert.equal(closed, true);
  });
  await t.test('a gzip consumer that stops early closes the source', async () => {
    let closed = false;
    const packed = gzipSync(sample(2_000_000));
    async function* src(): ByteStream {
      try {
        yield* chunked(packed, 1000);
      } finally {
        closed = true;
      }
    }
    for await (const chunk of decompress(src(), 'gzip')) {
      assert.ok(chunk.length > 0);
      break;
    }
    await new Promise((r) => setImmediate(r));
    assert.equal(closed, true);
  });
  await t.test('a source error passes through unchanged', async () => {
    const zs = await toBytes(compress(fromBytes(sample(100)), 'zstd'));
    async function* src(head: Uint8Array): ByteStream {
      yield head.subarray(0, 10);
      throw Object.assign(new Error('disk on fire'), { code: 'EIO' });
    }
    await assert.rejects(drain(decompress(src(gzipSync(sample(100))), 'gzip')), /disk on fire/);
    await assert.rejects(drain(decompress(src(zs), 'zstd')), /disk on fire/);
  });
  await t.test('reject: an aborted signal stops decompression', async () => {
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(drain(decompress(fromBytes(gzipSync(sample(10))), 'gzip', { signal: ac.signal })), 'BERTH_ABORTED');
  });
  for (const row of [{ c: 'zstd', level: 1000 }, { c: 'zstd', level: 0 }, { c: 'gzip', level: 10 }, { c: 'gzip', level: 1.5 }] as const) {
    await t.test(`reject: ${row.c} level ${row.level}`, () => {
      assert.throws(() => compress(fromBytes(sample(10)), row.c, { level: row.level }), (e: unknown) => isBerthError(e, 'BERTH_USAGE'));
    });
  }
  await t.test('reject: an unknown compression name', () => {
    assert.throws(() => decompress(fromBytes(sample(10)), 'lzma' as Compression), (e: unknown) => isBerthError(e, 'BERTH_UNSUPPORTED'));
  });
});
