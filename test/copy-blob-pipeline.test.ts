import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { Descriptor } from '../src/core/descriptor.js';
import { digestOf, type Digest } from '../src/core/digest.js';
import { isBerthError, type ErrorCode } from '../src/core/errors.js';
import type { BlobSource } from '../src/content/store.js';
import { fromBytes, toBytes, type ByteStream } from '../src/io/stream.js';
import { verifiedStream } from '../src/io/verified-stream.js';
import { BlobDirectory } from '../src/transports/shared/layout-writer.js';
import type { ImageDestination, ImageReference } from '../src/transports/transport.js';
import { copyBlob, type BlobJob } from '../src/copy/blob-pipeline.js';

const LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** Tar-like bytes: compressible, long enough for several chunks. */
function plainBytes(n = 300_000): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + (i >> 9)) & 0xff;
  return out;
}

function flipped(b: Uint8Array): Uint8Array {
  const out = Uint8Array.from(b);
  out[out.length >> 1]! ^= 0x01;
  return out;
}

function desc(bytes: Uint8Array, mediaType = LAYER): Descriptor {
  return { mediaType, digest: digestOf(bytes), size: bytes.length };
}

/** A source that serves `served` whatever the descriptor says (a tampered store). */
function sourceServing(served: Uint8Array): BlobSource {
  return {
    open: async () => (async function* () {
      for (let at = 0; at < served.length; at += 65_536) yield served.subarray(at, at + 65_536);
    })(),
    has: async () => true,
  };
}

/** The smallest ImageDestination around a BlobDirectory, so the test can look at its files. */
function directoryDestination(blobs: BlobDirectory): ImageDestination {
  return {
    reference: { toString: () => 'test' } as ImageReference,
    capabilities: { acceptsIndex: true, manifestTypes: 'any', layerCompression: 'preserve', acceptsForeignLayers: true, acceptsAttestations: true, parallelPuts: true, multipleRoots: true },
    has: (d) => blobs.has(d),
    put: (d, data, o) => blobs.put(d, data, o),
    putComputed: (m, data, o) => blobs.putComputed(m, data, o),
    putManifest: (d, b, o) => blobs.putBytes(d, b, o),
    commit: async () => undefined,
    close: async () => undefined,
  };
}

async function namedBlobs(root: string): Promise<string[]> {
  return (await readdir(path.join(root, 'blobs', 'sha256')).catch(() => [])).sort();
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-blob-pipeline-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function refused(p: Promise<unknown>, code: ErrorCode | readonly ErrorCode[]): Promise<void> {
  const codes: readonly ErrorCode[] = typeof code === 'string' ? [code] : code;
  await assert.rejects(p, (err: unknown) => {
    assert.ok(codes.some((c) => isBerthError(err, c)), `want ${codes.join(' or ')}, got ${String(err)}`);
    return true;
  });
}

const plain = plainBytes();
const gz = new Uint8Array(gzipSync(plain, { level: 1 }));

interface Row {
  readonly name: string;
  readonly job: Omit<BlobJob, 'label' | 'role' | 'mediaType'>;
  /** What the source really serves for job.desc. */
  readonly good: Uint8Array;
  readonly bad: Uint8Array;
  /** Either is a refusal: corrupt gzip may fail to inflate before its digest is checked. */
  readonly code: ErrorCode | readonly ErrorCode[];
}

// every way a blob goes through the engine: as is, recompressed, decompressed (docker-archive),
// and a plain tar that a synthesised manifest calls gzip (its digest is its diff_id)
const rows: Row[] = [
  { name: 'preserved: wrong bytes', job: { desc: desc(plain), from: 'none', to: undefined }, good: plain, bad: flipped(plain), code: 'BERTH_DIGEST_MISMATCH' },
  { name: 'preserved: one byte more', job: { desc: desc(plain), from: 'none', to: undefined }, good: plain, bad: new Uint8Array([...plain, 0]), code: 'BERTH_SIZE_MISMATCH' },
  { name: 'plain → gzip: wrong bytes', job: { desc: desc(plain), from: 'none', to: 'gzip', diffId: digestOf(plain) }, good: plain, bad: flipped(plain), code: 'BERTH_DIGEST_MISMATCH' },
  { name: 'gzip → none: wrong compressed bytes', job: { desc: desc(gz), from: 'gzip', to: 'none', diffId: digestOf(plain) }, good: gz, bad: flipped(gz), code: ['BERTH_COMPRESSION', 'BERTH_DIGEST_MISMATCH'] },
  {
    name: 'gzip → none: right blob, wrong diff_id', job: { desc: desc(gz), from: 'gzip', to: 'none', diffId: digestOf(flipped(plain)) },
    good: gz, bad: gz, code: 'BERTH_DIGEST_MISMATCH',
  },
  { name: 'plain said to be gzip → none (docker-archive)', job: { desc: desc(plain), from: 'gzip', to: 'none', diffId: digestOf(plain) }, good: plain, bad: flipped(plain), code: 'BERTH_DIGEST_MISMATCH' },
  { name: 'plain said to be gzip → gzip', job: { desc: desc(plain), from: 'zstd', to: 'gzip', diffId: digestOf(plain) }, good: plain, bad: flipped(plain), code: 'BERTH_DIGEST_MISMATCH' },
];

test('copyBlob refuses tampered bytes on every path and names nothing', async (t) => {
  for (const row of rows) {
    await t.test(row.name, () => withDir(async (dir) => {
      const job: BlobJob = { ...row.job, role: 'layer', mediaType: LAYER, label: 'layer 1/1' };
      const signal = new AbortController().signal;
      // the same job with the bytes the descriptor names goes through, so the refusal below is the check
      const okDir = new BlobDirectory(path.join(dir, 'ok'), { where: 'ok', fsync: false });
      if (row.good !== row.bad) {
        const out = await copyBlob(sourceServing(row.good), directoryDestination(okDir), job, { signal });
        assert.deepEqual(await namedBlobs(path.join(dir, 'ok')), [out.written.digest.slice(7)]);
        if (row.job.to === 'none' && row.job.diffId !== undefined) assert.equal(out.written.digest, row.job.diffId);
        if (row.job.to === undefined) assert.ok(Buffer.from(await toBytes(await okRead(okDir, out.written.digest))).equals(row.good));
      }
      const badDir = new BlobDirectory(path.join(dir, 'bad'), { where: 'bad', fsync: false });
      await refused(copyBlob(sourceServing(row.bad), directoryDestination(badDir), job, { signal }), row.code);
      assert.deepEqual(await namedBlobs(path.join(dir, 'bad')), [], 'no blob is named after a refused copy');
      assert.equal(badDir.blobs.size, 0);
    }));
  }
});

async function okRead(dir: BlobDirectory, digest: Digest): Promise<ByteStream> {
  const { readFile } = await import('node:fs/promises');
  return fromBytes(await readFile(dir.filePath(digest)));
}

async function* chunks(b: Uint8Array): ByteStream {
  for (let at = 0; at < b.length; at += 10_000) yield b.subarray(at, at + 10_000);
}

test('BlobDirectory.put trusts only an unread verified stream for the same descriptor', async (t) => {
  const d = desc(plain);
  const cases: Array<{ name: string; stream: () => Promise<ByteStream>; put?: Descriptor; code: ErrorCode }> = [
    { name: 'a plain stream of wrong bytes', stream: async () => chunks(flipped(plain)), code: 'BERTH_DIGEST_MISMATCH' },
    { name: 'a verified stream of wrong bytes', stream: async () => verifiedStream(chunks(flipped(plain)), { digest: d.digest, size: d.size }), code: 'BERTH_DIGEST_MISMATCH' },
    {
      // right bytes verified against another descriptor: put checks its own
      name: 'a verified stream for another blob', put: desc(flipped(plain)),
      stream: async () => verifiedStream(chunks(plain), { digest: d.digest, size: d.size }), code: 'BERTH_DIGEST_MISMATCH',
    },
    {
      name: 'a verified stream whose first chunk was taken', code: 'BERTH_SIZE_MISMATCH',
      stream: async () => {
        const v = verifiedStream(chunks(plain), { digest: d.digest, size: d.size });
        const it = v[Symbol.asyncIterator]();
        await it.next();
        return { [Symbol.asyncIterator]: () => it };
      },
    },
    {
      // the mark does not pass through a wrapper that changes bytes after they were verified
      name: 'a stream that alters a verified stream', code: 'BERTH_DIGEST_MISMATCH',
      stream: async () => (async function* () {
        for await (const chunk of verifiedStream(chunks(plain), { digest: d.digest, size: d.size })) yield flipped(chunk);
      })(),
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => withDir(async (dir) => {
      const blobs = new BlobDirectory(dir, { where: 'test', fsync: false });
      const target = c.put ?? d;
      await refused(blobs.put(target, await c.stream()), c.code);
      assert.deepEqual(await namedBlobs(dir), []);
    }));
  }
  await t.test('putComputed of a verified stream of wrong bytes names nothing', () => withDir(async (dir) => {
    const blobs = new BlobDirectory(dir, { where: 'test', fsync: false });
    await refused(blobs.putComputed(LAYER, verifiedStream(chunks(flipped(plain)), { digest: d.digest })), 'BERTH_DIGEST_MISMATCH');
    assert.deepEqual(await namedBlobs(dir), []);
  }));
  await t.test('putComputed of a verified stream takes its digest and counts its size', () => withDir(async (dir) => {
    const blobs = new BlobDirectory(dir, { where: 'test', fsync: false });
    assert.deepEqual(await blobs.putComputed(LAYER, verifiedStream(chunks(plain), { digest: d.digest })), d);
    assert.deepEqual(await namedBlobs(dir), [d.digest.slice(7)]);
  }));
});
