import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isBerthError } from '../core/errors.js';
import type { ByteStream } from '../io/stream.js';
import { computeChecksums, encodeHeader, formatPaxRecord, type EncodableHeader } from './header.js';
import { readTar } from './reader.js';
import { scanTar, type TarRecord } from './scan.js';
import { writeTar, type TarWriteEntry } from './writer.js';
import { realFixtures } from '../../test/support/paths.js';

async function* chunked(bytes: Uint8Array, size: number): ByteStream {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function toBuf(src: ByteStream): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of src) parts.push(c);
  return Buffer.concat(parts);
}

type Outcome = { records: string[]; error?: string };
type Limits = { maxEntries?: number; maxPathBytes?: number; maxTrailerBytes?: number };

function show(r: Omit<TarRecord, 'dataSize'> & { dataSize?: number }): string {
  const xattrs = Object.entries(r.xattrs).map(([k, v]) => [k, Buffer.from(v).toString('hex')]);
  return JSON.stringify([r.index, r.name, r.type, r.typeflag, r.mode, r.uid, r.gid, r.size, r.mtime, r.linkname, r.devmajor, r.devminor, xattrs]);
}

function errorText(err: unknown): string {
  if (!isBerthError(err)) throw err;
  return `${err.code} ${err.message}`;
}

/** What readTar sees: every header (bodies skipped), or the error it stops with. */
async function viaReadTar(bytes: Uint8Array, chunk: number, opts: Limits): Promise<Outcome> {
  const records: string[] = [];
  try {
    for await (const e of readTar(chunked(bytes, chunk), opts)) records.push(show({ ...e.header, index: e.index }));
  } catch (err) {
    return { records, error: errorText(err) };
  }
  return { records };
}

async function viaScan(bytes: Uint8Array, chunk: number, opts: Limits): Promise<Outcome & { bytes?: number }> {
  const records: string[] = [];
  try {
    const r = await scanTar(chunked(bytes, chunk), (h) => {
      assert.equal(h.dataSize, /^[1-6]$/.test(h.typeflag) ? 0 : h.size);
      records.push(show(h));
    }, opts);
    assert.equal(r.entries, records.length);
    return { records, bytes: r.bytes };
  } catch (err) {
    return { records, error: errorText(err) };
  }
}

/** scanTar reports what readTar reports (headers and error), whatever the chunking. */
async function same(bytes: Uint8Array, opts: Limits = {}, chunks: readonly number[] = [bytes.length || 1, 1000, 513, 64 << 10]): Promise<Outcome> {
  const want = await viaReadTar(bytes, bytes.length || 1, opts);
  for (const size of chunks) {
    const got = await viaScan(bytes, size, opts);
    assert.deepEqual(got.records, want.records, `chunks of ${size}`);
    assert.equal(got.error, want.error, `chunks of ${size}`);
    if (got.error === undefined) assert.equal(got.bytes, bytes.length);
  }
  // Headers at every alignment (zlib hands out chunks at any byte offset of its buffers).
  for (const shift of [1, 2, 3]) {
    const moved = Buffer.alloc(bytes.length + shift).subarray(shift);
    moved.set(bytes);
    const got = await viaScan(moved, moved.length || 1, opts);
    assert.deepEqual([got.records, got.error], [want.records, want.error], `shifted by ${shift}`);
  }
  return want;
}

function tarFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) tarFiles(p, out);
    else if (name.endsWith('.tar') && st.size < 64 << 20) out.push(p);
  }
  return out;
}

/** The bytes of a member when it is a tar (plain or gzipped), else undefined. */
function innerTar(body: Buffer): Buffer | undefined {
  let b = body;
  if (b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = gunzipSync(b);
    } catch {
      return undefined;
    }
  }
  return b.length >= 512 && b.subarray(257, 262).toString('latin1') === 'ustar' ? b : undefined;
}

describe('scanTar reports what readTar reports on every fixture tar (and the layer tars inside them)', { skip: !existsSync(realFixtures) && 'fixtures missing' }, () => {
  const files = existsSync(realFixtures) ? tarFiles(realFixtures) : [];
  test('there are fixtures', () => assert.ok(files.length >= 20, `found ${files.length}`));
  for (const file of files) {
    test(file.slice(realFixtures.length + 1), async () => {
      const raw = readFileSync(file);
      const bytes = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
      await same(bytes);
      let nested = 0;
      for await (const e of readTar(chunked(bytes, 1 << 20))) {
        if (e.header.type !== 'file' || e.dataSize < 512) continue;
        const inner = innerTar(await toBuf(e.body()));
        if (inner === undefined) continue;
        await same(inner, {}, [inner.length, 777, 512]);
        nested++;
      }
      if (/docker-image|oci-uncompressed|oci-gzip/.test(file)) assert.ok(nested > 0, 'layers inside were compared');
    });
  }
});

function entry(name: string, extra: Partial<EncodableHeader> = {}, body = ''): TarWriteEntry {
  const type = extra.type ?? (name.endsWith('/') ? 'directory' : 'file');
  return { header: { name, ...extra, type }, ...(type === 'file' ? { body: new TextEncoder().encode(body) } : {}) };
}

const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(90)}`;
const MIXED: TarWriteEntry[] = [
  entry('etc/'), entry('etc/passwd', { mode: 0o600, uid: 7, gid: 8, mtime: 1234567 }, 'root:x:0:0'),
  entry(`${'p'.repeat(120)}/name`, {}, 'ustar prefix'), entry(long, {}, 'pax path'), entry('é/ü', {}, 'utf-8 name'),
  entry('bin/sh', { uid: 0o10000000 }, 'big uid'), entry('link', { type: 'symlink', linkname: `x/${'l'.repeat(150)}` }),
  entry('hard', { type: 'link', linkname: 'etc/passwd' }), entry('dev/null', { type: 'char', devmajor: 1, devminor: 3 }),
  entry('cap', { xattrs: { 'security.capability': new Uint8Array([1, 0, 0, 2]), 'user.x': new Uint8Array([0, 255]) } }, 'xattrs'),
  entry('fifo', { type: 'fifo' }), entry('mtime', { mtime: 1.5 }, 'fractional'), entry('big', {}, 'x'.repeat(3000)),
];

describe('scanTar on written archives', () => {
  test('ustar prefix, PAX names, links, big numbers, xattrs, devices: same records in any chunking', async () => {
    const bytes = await toBuf(writeTar(MIXED));
    const out = await same(bytes, {}, [bytes.length, 1, 7, 511, 512, 513, 1000, 4096]);
    assert.equal(out.records.length, MIXED.length);
    assert.equal(out.error, undefined);
    const cap = out.records.find((r) => r.includes('"cap"'))!;
    assert.ok(cap.includes('security.capability') && cap.includes('01000002'), cap);
  });

  test('records come one per entry, in order, with the index readTar gives', async () => {
    const seen: string[] = [];
    const r = await scanTar(writeTar(MIXED), (h) => seen.push(`${h.index}:${h.name}`));
    assert.deepEqual(seen, MIXED.map((e, i) => `${i}:${e.header.name}`));
    assert.equal(r.entries, MIXED.length);
  });

  test('a GNU long name and an old-style directory (NUL type, trailing slash)', async () => {
    const name = 'g'.repeat(300);
    const block = (n: string, flag: string, size: number): Uint8Array => {
      const b = new Uint8Array(512);
      b.set(new TextEncoder().encode(n.slice(0, 99)), 0);
      b.set(new TextEncoder().encode('0000644\0'), 100);
      b.set(new TextEncoder().encode(`${size.toString(8).padStart(11, '0')}\0`), 124);
      b.set(new TextEncoder().encode('00000000000\0'), 136);
      b[156] = flag.charCodeAt(0);
      b.set(new TextEncoder().encode('ustar  \0'), 257);
      b.set(new TextEncoder().encode(`${computeChecksums(b).unsigned.toString(8).padStart(6, '0')}\0 `), 148);
      return b;
    };
    const data = new Uint8Array(512);
    data.set(new TextEncoder().encode(name));
    const bytes = Buffer.concat([block('././@LongLink', 'L', name.length + 1), data, block('short', '0', 0), block('olddir/', '\0', 0), new Uint8Array(1024)]);
    const out = await same(bytes, {}, [bytes.length, 1, 100, 600]);
    assert.equal(out.error, undefined);
    assert.ok(out.records[0]!.includes(name));
    assert.ok(out.records[1]!.includes('"directory"'));
  });
});

describe('scanTar refuses what readTar refuses, with the same error', () => {
  const good = (async () => toBuf(writeTar(MIXED)))();

  async function refuses(bytes: Uint8Array, code: string, opts: Limits = {}): Promise<void> {
    const out = await same(bytes, opts, [bytes.length || 1, 1, 511, 513, 4096]);
    assert.ok(out.error?.startsWith(code), `want ${code}, got ${out.error}`);
  }

  test('truncated in a header, a body, a padding, an extension header', async () => {
    const b = await good;
    const ends = new Set<number>([100, 512 + 300, 1024 + 10, 1536 + 5]);
    for (let at = 512; at < b.length - 1024; at += 512) ends.add(at + 1).add(at + 511);
    for (const end of ends) await refuses(b.subarray(0, end), 'BERTH_INVALID_TAR');
  });

  test('input that ends between entries (no end-of-archive blocks) is accepted', async () => {
    const b = await good;
    const out = await same(b.subarray(0, b.length - 1024));
    assert.equal(out.error, undefined);
    assert.equal(out.records.length, MIXED.length);
  });

  test('a bad checksum, in the first and in a later header', async () => {
    const b = Buffer.from(await good);
    const first = Buffer.from(b);
    first[10] = first[10]! ^ 0x40;
    await refuses(first, 'BERTH_INVALID_TAR');
    const offsets: number[] = [];
    for await (const e of readTar(chunked(b, b.length))) offsets.push(e.headerOffset);
    const later = Buffer.from(b);
    const at = offsets[5]! + 5;
    later[at] = later[at]! ^ 0x01;
    await refuses(later, 'BERTH_INVALID_TAR');
  });

  test('a number field that is not octal', async () => {
    const h = encodeHeader({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: {}, pax: {} });
    const b = Buffer.concat([h, new Uint8Array(1024)]);
    b[110] = 0x39; // '9' in uid
    const sum = computeChecksums(b.subarray(0, 512)).unsigned;
    b.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, '0')}\0 `), 148);
    await refuses(b, 'BERTH_INVALID_TAR');
  });

  test('a huge PAX header is a limit error before its data is read', async () => {
    const size = (1 << 20) + 1;
    const x = encodeHeader({ name: 'p', type: 'file', mode: 0, uid: 0, gid: 0, size, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: {}, pax: {} });
    x[156] = 0x78; // 'x'
    const sum = computeChecksums(x).unsigned;
    x.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, '0')}\0 `), 148);
    await refuses(Buffer.concat([x, new Uint8Array(4096)]), 'BERTH_LIMIT');
  });

  test('a PAX record that lies about its length, and an extension header with no file header', async () => {
    const rec = formatPaxRecord('path', 'abc');
    const bad = Buffer.from(rec);
    bad[0] = 0x39; // claims 9x bytes
    const pax = (data: Uint8Array): Buffer => {
      const x = Buffer.from(encodeHeader({ name: 'p', type: 'file', mode: 0, uid: 0, gid: 0, size: data.length, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: {}, pax: {} }));
      x[156] = 0x78;
      x.fill(0x20, 148, 156);
      x.set(new TextEncoder().encode(`${computeChecksums(x).unsigned.toString(8).padStart(6, '0')}\0 `), 148);
      const padded = Buffer.alloc(Math.ceil(data.length / 512) * 512);
      padded.set(data);
      return Buffer.concat([x, padded]);
    };
    await refuses(Buffer.concat([pax(bad), new Uint8Array(1024)]), 'BERTH_INVALID_TAR');
    await refuses(Buffer.concat([pax(rec), new Uint8Array(1024)]), 'BERTH_INVALID_TAR');
  });

  test('too many entries, a path over the limit, too many trailing bytes', async () => {
    const b = await good;
    await refuses(b, 'BERTH_LIMIT', { maxEntries: 3 });
    await refuses(b, 'BERTH_LIMIT', { maxPathBytes: 100 });
    await refuses(Buffer.concat([b, Buffer.alloc(5000, 1)]), 'BERTH_LIMIT', { maxTrailerBytes: 4096 });
    const ok = await same(Buffer.concat([b, Buffer.alloc(3000, 1)]), { maxTrailerBytes: 4096 });
    assert.equal(ok.error, undefined);
  });

  test('garbage', async () => {
    await refuses(Buffer.alloc(2048, 0x41), 'BERTH_INVALID_TAR');
  });

  test('an error thrown by the callback stops the scan and closes the source', async () => {
    let closed = false;
    const b = await good;
    async function* src(): ByteStream {
      try {
        yield* chunked(b, 512);
      } finally {
        closed = true;
      }
    }
    await assert.rejects(scanTar(src(), (h) => { if (h.index === 2) throw new Error('stop'); }), /stop/);
    assert.ok(closed);
  });

  test('an aborted signal stops the scan', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(scanTar(chunked(await good, 512), () => {}, { signal: ac.signal }), (err: unknown) => isBerthError(err) && err.code === 'BERTH_ABORTED');
  });
});
