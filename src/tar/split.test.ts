import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, test, type TestContext } from 'node:test';
import { isBerthError } from '../core/errors.js';
import { toBytes, type ByteStream } from '../io/stream.js';
import { needPeer, peerPath } from '../../test/support/peers.js';
import { readTar } from './reader.js';
import {
  assembleTar, assembledSize, cleanPath, Crc64, crc64, disassembleTar, encodeTarSplitRecord, parseTarSplitRecord, readTarSplit, SplitFeed, TarSplitLines,
  writeTarSplit, type TarSplitFile, type TarSplitRecord,
} from './split.js';
import { writeTar, type TarWriteEntry } from './writer.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const REAL = resolve(repoRoot, '../shared/fixtures/real');
const EXAMPLES = resolve(repoRoot, '../shared/docs/examples');
const DIVE = join(REAL, 'wagoodman__dive/.data/test-docker-image.tar');
const enc = new TextEncoder();

async function* one(bytes: Uint8Array): ByteStream {
  yield bytes;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Bit-by-bit CRC-64/ISO with BigInt: the reference the table version is checked against. */
function slowCrc(bytes: Uint8Array): string {
  const poly = 0xd800000000000000n;
  let crc = 0xffffffffffffffffn;
  for (const b of bytes) {
    crc ^= BigInt(b);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return (crc ^ 0xffffffffffffffffn).toString(16).padStart(16, '0');
}

async function disassemble(tar: Uint8Array): Promise<{ records: TarSplitRecord[]; passed: Buffer }> {
  const records: TarSplitRecord[] = [];
  const passed = Buffer.from(await toBytes(disassembleTar(one(tar), { onRecord: (r) => void records.push(r) })));
  return { records, passed };
}

/** The JSON lines of disassembleTar's records (the reference, checked against the real tool). */
async function disassembledText(tar: Uint8Array): Promise<string> {
  const { records } = await disassemble(tar);
  return Buffer.from(await toBytes(writeTarSplit(records, { gzip: false }))).toString('utf8');
}

/**
 * SplitFeed's lines for a tar fed in `chunk`-byte pieces, and the members it reported (name and
 * data); `pause` makes every other member's handler asynchronous.
 */
async function feedLines(tar: Uint8Array, chunk = tar.length, pause = false, record = true): Promise<{ text: string; members: Array<{ name: string; data: Buffer }> }> {
  let text = '';
  const members: Array<{ name: string; data: Buffer }> = [];
  let parts: Buffer[] = [];
  let open = false;
  const lines = new TarSplitLines();
  const feed = new SplitFeed({
    entry: (h, i) => {
      assert.equal(open, false, 'end() before the next entry');
      assert.equal(i, members.length);
      open = true;
      parts = [];
      members.push({ name: h.name, data: Buffer.alloc(0) });
      return pause && i % 2 === 1 ? new Promise((r) => setImmediate(r)) : undefined;
    },
    data: (b) => void parts.push(Buffer.from(b)),
    end: () => {
      open = false;
      members[members.length - 1]!.data = Buffer.concat(parts);
    },
  }, record ? { lines, onLines: (t) => void (text += t.toString('utf8')), flushAt: 300 } : {});
  for (let at = 0; at < tar.length; at += chunk) {
    const wait = feed.feed(tar.subarray(at, Math.min(tar.length, at + chunk)));
    if (wait !== undefined) await wait;
  }
  feed.finish();
  return { text, members };
}

async function readMembers(tar: Uint8Array): Promise<Array<{ name: string; data: Buffer }>> {
  const out: Array<{ name: string; data: Buffer }> = [];
  for await (const e of readTar(one(tar))) out.push({ name: e.header.name, data: Buffer.from(await toBytes(e.body())) });
  return out;
}

async function collect(src: AsyncIterable<TarSplitRecord>): Promise<TarSplitRecord[]> {
  const out: TarSplitRecord[] = [];
  for await (const r of src) out.push(r);
  return out;
}

function run(cmd: string, args: string[], input?: Uint8Array): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(cmd, args, { input, maxBuffer: 256 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr?.toString() ?? '' };
}

/** Opens record data from an extracted directory (raw names as raw bytes). */
function dirOpener(dir: string) {
  return async (f: TarSplitFile): Promise<ByteStream> => {
    const p = f.nameRaw === undefined ? join(dir, f.name) : Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(f.nameRaw)]);
    return createReadStream(p);
  };
}

/** Real tars to check against the tool: dockerd-written layers (dive fixture), GNU tars, berth's writer output. */
async function corpus(): Promise<Array<{ name: string; tar: Buffer }>> {
  const out: Array<{ name: string; tar: Buffer }> = [];
  if (existsSync(DIVE)) {
    for await (const e of readTar(createReadStream(DIVE))) {
      if (e.header.name.endsWith('/layer.tar')) out.push({ name: `dive ${e.header.name.slice(0, 12)}`, tar: Buffer.from(await toBytes(e.body())) });
    }
  }
  const dir = mkdtempSync('/tmp/berth-split-src-');
  try {
    mkdirSync(join(dir, 'd/sub'), { recursive: true });
    writeFileSync(join(dir, 'd/a'), 'hi\n');
    writeFileSync(join(dir, 'd/b'), 'x'.repeat(700));
    writeFileSync(join(dir, 'd/sub/empty'), '');
    writeFileSync(join(dir, 'd/big'), Buffer.alloc(300_000, 7));
    writeFileSync(Buffer.from(`${dir}/d/raw-\xff\xfe-name`, 'latin1'), 'raw\n');
    writeFileSync(join(dir, 'd/ünï & <x>.txt'), 'unicode\n');
    writeFileSync(join(dir, `d/${'l'.repeat(120)}`), 'long\n');
    for (const format of ['gnu', 'pax', 'ustar'] as const) {
      const r = run('tar', [`--format=${format}`, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '-C', dir, '-cf', '-', ...(format === 'ustar' ? ['--exclude=d/l*', '--exclude=d/raw*', '--exclude=d/ü*'] : []), 'd']);
      assert.equal(r.status, 0, r.stderr);
      out.push({ name: `GNU tar --format=${format}`, tar: r.stdout });
    }
    const gnuNoPad = run('tar', ['--format=gnu', '--record-size=512', '-C', dir, '-cf', '-', 'd/a']);
    out.push({ name: 'GNU tar, no record padding', tar: gnuNoPad.stdout });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const entries: TarWriteEntry[] = [
    { header: { name: 'etc/', type: 'directory' } },
    { header: { name: 'etc/hosts', type: 'file' }, body: enc.encode('127.0.0.1 localhost\n') },
    { header: { name: 'etc/hard', type: 'link', linkname: 'etc/hosts' } },
    { header: { name: `${'long/'.repeat(40)}file`, type: 'file' }, body: enc.encode('pax') },
    { header: { name: 'etc/.wh.gone', type: 'file' } },
  ];
  out.push({ name: 'berth writer (PAX, hard link, whiteout)', tar: Buffer.from(await toBytes(writeTar(entries))) });
  // No end-of-archive blocks at all.
  const cut = out.at(-1)!.tar;
  out.push({ name: 'tar without end-of-archive blocks', tar: cut.subarray(0, cut.length - 1024) });
  return out;
}

describe('CRC-64/ISO', () => {
  test('check values from tar-split records', () => {
    assert.equal(hex(crc64(enc.encode('hl\n'))), '614ee81000000000');
    assert.equal(hex(crc64(enc.encode('changed\n'))), '0d4362d1bd841827');
    assert.equal(Buffer.from(crc64(enc.encode('hl\n'))).toString('base64'), 'YU7oEAAAAAA=');
  });
  test('slicing-by-8 equals the bitwise definition at every length and split', () => {
    const data = new Uint8Array(300).map((_, i) => (i * 131 + 7) & 0xff);
    for (const n of [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 300]) assert.equal(hex(crc64(data.subarray(0, n))), slowCrc(data.subarray(0, n)), `length ${n}`);
    // Any alignment of the view, and any split into updates.
    for (let off = 1; off < 8; off++) assert.equal(hex(crc64(data.subarray(off, 200 + off))), slowCrc(data.subarray(off, 200 + off)), `offset ${off}`);
    const c = new Crc64();
    for (const [a, b] of [[0, 3], [3, 11], [11, 12], [12, 77], [77, 300]] as const) c.update(data.subarray(a, b));
    assert.equal(hex(c.digest()), slowCrc(data));
  });
});

describe('tar-split JSON lines', () => {
  test('a record dockerd wrote re-encodes to the same line', { skip: !existsSync(join(EXAMPLES, 'tar-split-layer2.jsonl')) && 'example missing' }, () => {
    const lines = readFileSync(join(EXAMPLES, 'tar-split-layer2.jsonl'), 'utf8').trimEnd().split('\n');
    assert.ok(lines.length > 20);
    lines.forEach((line, i) => assert.equal(encodeTarSplitRecord(parseTarSplitRecord(line, i)), line));
  });
  test('Go escapes in names, name_raw, omitted size', () => {
    const f = (name: string, extra: Partial<TarSplitFile> = {}): string => encodeTarSplitRecord({ type: 'file', name, size: 0, crc: undefined, position: 3, ...extra });
    assert.equal(f('a<b>&c\u2028"\\\t\x01'), '{"type":1,"name":"a\\u003cb\\u003e\\u0026c\\u2028\\"\\\\\\t\\u0001","payload":null,"position":3}');
    assert.equal(f('x', { nameRaw: new Uint8Array([0xff, 0x41]) }), '{"type":1,"name_raw":"/0E=","payload":null,"position":3}');
    assert.equal(f('x', { size: 3, crc: crc64(enc.encode('hl\n')) }), '{"type":1,"name":"x","size":3,"payload":"YU7oEAAAAAA=","position":3}');
  });
  const rejects: Array<{ name: string; line: string; position: number; code: string }> = [
    { name: 'not JSON', line: '{"type":2', position: 0, code: 'BERTH_INVALID_TAR' },
    { name: 'position gap', line: '{"type":2,"payload":"","position":5}', position: 4, code: 'BERTH_INVALID_TAR' },
    { name: 'unknown type', line: '{"type":3,"payload":"","position":0}', position: 0, code: 'BERTH_INVALID_TAR' },
    { name: 'bad base64', line: '{"type":2,"payload":"@@@@","position":0}', position: 0, code: 'BERTH_INVALID_TAR' },
    { name: 'checksum not 8 bytes', line: '{"type":1,"name":"a","size":1,"payload":"AAAA","position":0}', position: 0, code: 'BERTH_INVALID_TAR' },
    { name: 'negative size', line: '{"type":1,"name":"a","size":-1,"payload":null,"position":0}', position: 0, code: 'BERTH_INVALID_TAR' },
  ];
  for (const r of rejects) {
    test(`reject: ${r.name}`, () => {
      assert.throws(() => parseTarSplitRecord(r.line, r.position), (err) => isBerthError(err, r.code as 'BERTH_INVALID_TAR'));
    });
  }
  test('duplicate cleaned paths are refused when reading', async () => {
    const text = ['{"type":1,"name":"./a/","payload":null,"position":0}', '{"type":1,"name":"a","payload":null,"position":1}'].join('\n');
    await assert.rejects(collect(readTarSplit(one(enc.encode(text)))), (err) => isBerthError(err, 'BERTH_INVALID_TAR') && /duplicate/.test((err as Error).message));
  });
  test('TarSplitLines writes the lines encodeTarSplitRecord writes', () => {
    const names = ['', 'a', './etc/', 'a"b', 'a\\b', '<x>&y', 'tab\tnl\n', 'ünï', '\u2028', 'ctl\u0001', "it's ~[a]{b}|?=;:@", 'del\u007f'];
    const lines = new TarSplitLines();
    const want: string[] = [];
    let position = 0;
    for (const name of names) {
      const data = enc.encode(name);
      const c = new Crc64();
      c.update(data);
      lines.file(name, undefined, data.length, data.length > 0 ? c : undefined);
      want.push(encodeTarSplitRecord({ type: 'file', name, size: data.length, crc: data.length > 0 ? crc64(data) : undefined, position: position++ }));
      lines.segment(data, enc.encode('pad'));
      want.push(encodeTarSplitRecord({ type: 'segment', payload: enc.encode(`${name}pad`), position: position++ }));
    }
    for (const n of [46, 47, 48, 49, 50, 1000, 70_001]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);
      lines.segment(bytes.subarray(0, n >> 1), bytes.subarray(n >> 1));
      want.push(encodeTarSplitRecord({ type: 'segment', payload: bytes, position: position++ }));
      lines.segment(bytes.subarray(1), new Uint8Array(0));
      want.push(encodeTarSplitRecord({ type: 'segment', payload: bytes.subarray(1), position: position++ }));
    }
    const raw = new Uint8Array([0xff, 0x41]);
    lines.file('\ufffdA', raw, 0, undefined);
    want.push(encodeTarSplitRecord({ type: 'file', name: '\ufffdA', nameRaw: raw, size: 0, crc: undefined, position: position++ }));
    lines.segment(new Uint8Array(0), new Uint8Array(0));
    want.push(encodeTarSplitRecord({ type: 'segment', payload: new Uint8Array(0), position: position++ }));
    assert.equal(lines.take().toString('utf8'), want.map((l) => `${l}\n`).join(''));
    assert.equal(lines.take().length, 0);
  });
  test('cleanPath: the fast path agrees with the general one on every short name', () => {
    // Reference: the component-array algorithm (Go filepath.Clean's rules).
    const reference = (p: string): string => {
      if (p === '') return '.';
      const out: string[] = [];
      for (const part of p.split('/')) {
        if (part === '' || part === '.') continue;
        if (part === '..') {
          if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
          else if (!p.startsWith('/')) out.push('..');
          continue;
        }
        out.push(part);
      }
      const joined = out.join('/');
      return p.startsWith('/') ? `/${joined}` : joined === '' ? '.' : joined;
    };
    const alphabet = ['a', '.', '/', 'b'];
    const names = [''];
    for (let len = 1; len <= 6; len++) {
      for (let k = 0; k < alphabet.length ** len; k++) {
        let name = '';
        for (let v = k, i = 0; i < len; i++, v = Math.floor(v / alphabet.length)) name += alphabet[v % alphabet.length];
        names.push(name);
      }
    }
    for (const name of names) assert.equal(cleanPath(name), reference(name), JSON.stringify(name));
  });
  test('cleanPath follows Go filepath.Clean', () => {
    for (const [i, o] of [['./a//b/', 'a/b'], ['', '.'], ['./', '.'], ['a/../..', '..'], ['/x/../..', '/'], ['a/./b/../c', 'a/c']]) assert.equal(cleanPath(i!), o);
  });
});

describe('disassembleTar and assembleTar against the real tar-split', () => {
  test('berth records equal tar-split disasm, the tool rebuilds from berth files, berth rebuilds from the tool', { timeout: 120_000 }, async (t: TestContext) => {
    if (!needPeer(t, 'tar-split')) return;
    const tool = peerPath('tar-split')!;
    const items = await corpus();
    assert.ok(items.length >= 8, `corpus has ${items.length} tars`);
    let withData = 0;
    for (const { name, tar } of items) {
      const work = mkdtempSync('/tmp/berth-split-');
      try {
        // 1. berth's records equal the tool's, line for line (the uncompressed JSON is identical).
        const { records, passed } = await disassemble(tar);
        assert.ok(passed.equals(tar), `${name}: disassembly passes the tar through unchanged`);
        const theirs = join(work, 'theirs.json.gz');
        const d = run(tool, ['disasm', '--output', theirs, '-'], tar);
        assert.equal(d.status, 0, `${name}: ${d.stderr}`);
        assert.ok(d.stdout.equals(tar), `${name}: tool passes through`);
        const theirText = gunzipSync(readFileSync(theirs)).toString('utf8');
        const ourText = Buffer.from(await toBytes(writeTarSplit(records, { gzip: false }))).toString('utf8');
        assert.equal(ourText, theirText, `${name}: JSON lines differ`);
        // SplitFeed (one parse, as the store's load uses it) writes the same lines however the
        // input is cut, handing on the same members and data as readTar.
        const members = await readMembers(tar);
        for (const [chunk, pause] of [[tar.length, false], [tar.length <= 1 << 16 ? 1 : 509, true], [511, false], [4096, true], [100_003, false]] as const) {
          const got = await feedLines(tar, chunk, pause);
          assert.equal(got.text, theirText, `${name}: SplitFeed lines, ${chunk}-byte chunks, paused: ${pause}`);
          assert.deepEqual(got.members, members, `${name}: SplitFeed members, ${chunk}-byte chunks`);
        }
        // without lines (another feed records): the same members, nothing recorded
        const bare = await feedLines(tar, 4096, true, false);
        assert.deepEqual(bare, { text: '', members }, `${name}: SplitFeed without lines`);
        assert.deepEqual(await collect(readTarSplit(createReadStream(theirs))), records, `${name}: decoded records`);
        assert.equal(await assembledSize(records), tar.length, `${name}: size from records`);

        // 2. The tool rebuilds the exact tar from berth's (Node-gzipped) file and the extracted files.
        const files = join(work, 'files');
        mkdirSync(files);
        const x = run('tar', ['-xf', '-', '-C', files], tar);
        assert.equal(x.status, 0, `${name}: extract: ${x.stderr}`);
        const ours = join(work, 'ours.json.gz');
        writeFileSync(ours, await toBytes(writeTarSplit(records)));
        const a = run(tool, ['asm', '--input', ours, '--path', files]);
        assert.equal(a.status, 0, `${name}: ${a.stderr}`);
        assert.ok(a.stdout.equals(tar), `${name}: tar-split asm of berth's file is byte-identical`);

        // 3. berth rebuilds the exact tar from the tool's file.
        const rebuilt = Buffer.from(await toBytes(assembleTar(readTarSplit(createReadStream(theirs)), dirOpener(files), { what: name })));
        assert.equal(createHash('sha256').update(rebuilt).digest('hex'), createHash('sha256').update(tar).digest('hex'), `${name}: sha256 of berth's rebuild`);
        if (records.some((r) => r.type === 'file' && r.size > 0)) withData++;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }
    assert.ok(withData >= 8);
  });
});

describe('assembleTar errors name the file', () => {
  const files = new Map<string, Uint8Array>([['a/one', enc.encode('one\n')], ['a/two', enc.encode('second file\n')]]);
  const tar = (): Promise<Uint8Array> => toBytes(writeTar([...files].map(([name, body]) => ({ header: { name, type: 'file' as const }, body }))));
  const opener = (override: Map<string, Uint8Array | Uint8Array[]>) => async (f: TarSplitFile): Promise<ByteStream> => {
    const v = override.get(f.name) ?? files.get(f.name)!;
    return (async function* () {
      for (const c of Array.isArray(v) ? v : [v]) yield c;
    })();
  };
  const rows: Array<{ name: string; override: Map<string, Uint8Array | Uint8Array[]>; code: string; message: RegExp }> = [
    { name: 'changed content', override: new Map([['a/two', enc.encode('SECOND file\n')]]), code: 'BERTH_DIGEST_MISMATCH', message: /layer L: file "a\/two": content differs from the layer \(crc64 want [0-9a-f]{16}, got [0-9a-f]{16}\)$/ },
    { name: 'shorter file', override: new Map([['a/one', enc.encode('on')]]), code: 'BERTH_SIZE_MISMATCH', message: /file "a\/one": file is shorter than recorded \(want 4 bytes, got 2\)$/ },
    { name: 'longer file', override: new Map([['a/one', [enc.encode('one\n'), enc.encode('more')]]]), code: 'BERTH_SIZE_MISMATCH', message: /file "a\/one": file is longer than recorded/ },
    { name: 'longer file in one chunk', override: new Map([['a/one', enc.encode('one\nmore')]]), code: 'BERTH_SIZE_MISMATCH', message: /file "a\/one": file is longer than recorded/ },
  ];
  for (const r of rows) {
    test(r.name, async () => {
      const { records } = await disassemble(await tar());
      await assert.rejects(toBytes(assembleTar(records, opener(r.override), { what: 'layer L' })), (err) => {
        assert.ok(isBerthError(err, r.code as 'BERTH_SIZE_MISMATCH'), String(err));
        assert.match((err as Error).message, r.message);
        return true;
      });
    });
  }
  test('chunked file data reassembles', async () => {
    const t = await tar();
    const { records } = await disassemble(t);
    const chunks = new Map<string, Uint8Array[]>([['a/two', [enc.encode('sec'), enc.encode(''), enc.encode('ond file\n')]]]);
    assert.ok(Buffer.from(await toBytes(assembleTar(records, opener(chunks)))).equals(Buffer.from(t)));
  });
  test('disassembly refuses a tar naming a path twice', async () => {
    const t = await toBytes(writeTar([{ header: { name: 'x/', type: 'directory' } }, { header: { name: './x', type: 'directory' } }]));
    await assert.rejects(disassemble(t), (err) => isBerthError(err, 'BERTH_INVALID_TAR') && /duplicate path/.test((err as Error).message));
  });
  test('SplitFeed refuses a tar naming a path twice, and bad tars as readTar does', async () => {
    const t = await toBytes(writeTar([{ header: { name: 'x/', type: 'directory' } }, { header: { name: './x', type: 'directory' } }]));
    await assert.rejects(feedLines(t), (err) => isBerthError(err, 'BERTH_INVALID_TAR') && /entry 1 "\.\/x": duplicate path/.test((err as Error).message));
    // cut in the body, in the padding, in the next header: the error disassembleTar (readTar) gives
    const two = await toBytes(writeTar([{ header: { name: 'a', type: 'file' }, body: enc.encode('x'.repeat(1000)) }, { header: { name: 'b', type: 'file' }, body: enc.encode('y') }]));
    for (const cut of [900, 1520, 1600]) {
      const want = await disassemble(two.subarray(0, cut)).then(() => 'no error', (err: Error) => err.message);
      assert.match(want, /truncated (body|padding|header)/);
      for (const chunk of [7, 4096]) {
        await assert.rejects(feedLines(two.subarray(0, cut), chunk), (err) => isBerthError(err, 'BERTH_INVALID_TAR') && (err as Error).message === want, `cut at ${cut}, ${chunk}-byte chunks`);
      }
    }
  });
  test('SplitFeed: trailing bytes after the end of the archive are recorded and limited', async () => {
    const good = await toBytes(writeTar([{ header: { name: 'a', type: 'file' }, body: enc.encode('abc') }]));
    const padded = new Uint8Array(good.length + 10_240);
    padded.set(good, 0);
    padded.fill(1, good.length + 5000);
    const want = await disassembledText(padded);
    assert.ok(want.includes('AQEBAQEB'), 'the trailing bytes are recorded');
    for (const chunk of [1, 512, 3000, padded.length]) assert.equal((await feedLines(padded, chunk)).text, want, `${chunk}-byte chunks`);
    const lines = new TarSplitLines();
    const feed = new SplitFeed({ entry: () => undefined, data: () => undefined, end: () => undefined }, { lines, onLines: () => undefined, maxTrailerBytes: 4096 });
    assert.throws(() => feed.feed(padded), (err) => isBerthError(err, 'BERTH_LIMIT'));
  });
});
