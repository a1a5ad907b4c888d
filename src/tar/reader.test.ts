import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isBerthError } from '../core/errors.js';
import type { ByteStream } from '../io/stream.js';
import { encodeHeader, computeChecksums, type EncodableHeader } from './header.js';
import { readTar, type TarEntry } from './reader.js';
import { repoRoot } from '../../test/support/paths.js';

const REAL = resolve(repoRoot, '../shared/fixtures/real');
const enc = new TextEncoder();

async function* chunked(bytes: Uint8Array, size: number): ByteStream {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(src: ByteStream): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of src) parts.push(c);
  return Buffer.concat(parts);
}

interface Read {
  entries: { entry: TarEntry; body: Buffer }[];
  rebuilt: Buffer;
  trailer: Uint8Array | undefined;
}

/** Reads everything; raw + body + padding (+ trailer) must rebuild the input. */
async function readAll(src: ByteStream, opts: Parameters<typeof readTar>[1] = {}): Promise<Read> {
  let trailer: Uint8Array | undefined;
  const entries: Read['entries'] = [];
  const parts: Uint8Array[] = [];
  for await (const entry of readTar(src, { ...opts, onTrailer: (t) => (trailer = t) })) {
    const body = await collect(entry.body());
    entries.push({ entry, body });
    parts.push(entry.raw, body, entry.padding);
  }
  if (trailer !== undefined) parts.push(trailer);
  return { entries, rebuilt: Buffer.concat(parts), trailer };
}

function hdr(name: string, extra: Partial<EncodableHeader> = {}): EncodableHeader {
  return {
    name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0,
    xattrs: {}, pax: {}, ...extra,
  };
}

/** A tar built from encodeHeader: files with the given bodies, two zero blocks. */
function buildTar(files: { name: string; body: string | Uint8Array; extra?: Partial<EncodableHeader> }[]): Buffer {
  const parts: Uint8Array[] = [];
  for (const f of files) {
    const body = typeof f.body === 'string' ? enc.encode(f.body) : f.body;
    parts.push(encodeHeader(hdr(f.name, { size: body.length, ...f.extra })), body, new Uint8Array((512 - (body.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  return Buffer.concat(parts);
}

function fixChecksum(block: Uint8Array): void {
  const { unsigned } = computeChecksums(block);
  block.set(enc.encode(unsigned.toString(8).padStart(6, '0') + '\0 '), 148);
}

function gnuTar(args: string[], cwd?: string): Buffer {
  const r = spawnSync('tar', args, { cwd, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `tar ${args.join(' ')}: ${r.stderr?.toString()}`);
  return r.stdout;
}

describe('readTar on archives made by GNU tar', () => {
  let dir: string;
  let src: string;
  let xattrs = false;
  const long100 = `${'p'.repeat(60)}/${'q'.repeat(60)}.txt`; // > 100 bytes, splittable for ustar
  const long255 = `${'deep/'.repeat(40)}${'b'.repeat(110)}.txt`;
  const nonAscii = 'data/ünï €.txt';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-tar-reader-'));
    src = join(dir, 'src');
    mkdirSync(join(src, 'd'), { recursive: true });
    mkdirSync(join(src, 'deep/'.repeat(40)), { recursive: true });
    mkdirSync(join(src, 'data'));
    mkdirSync(join(src, 'p'.repeat(60)));
    writeFileSync(join(src, 'd/small.txt'), 'hello\n');
    writeFileSync(join(src, 'd/block.bin'), Buffer.alloc(1024, 7));
    writeFileSync(join(src, 'd/odd.bin'), Buffer.alloc(1537, 3));
    writeFileSync(join(src, 'd/empty'), '');
    writeFileSync(join(src, long100), 'long name\n');
    writeFileSync(join(src, long255), 'longer name\n');
    writeFileSync(join(src, nonAscii), 'unicode\n');
    linkSync(join(src, 'd/small.txt'), join(src, 'd/hard'));
    symlinkSync('small.txt', join(src, 'd/sym'));
    symlinkSync(`../${long100}`, join(src, 'data/long-target'));
    symlinkSync(`x/${'t'.repeat(150)}`, join(src, 'data/long-link'));
    const py = spawnSync('python3', ['-c', `import os; os.setxattr(${JSON.stringify(join(src, 'd/small.txt'))}, 'user.berth', b'v\\x01')`]);
    xattrs = py.status === 0;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const formats = [
    { name: 'gnu', args: ['--format=gnu'], longOk: true },
    { name: 'posix (pax)', args: ['--format=posix', '--pax-option=delete=atime,delete=ctime'], longOk: true },
    { name: 'posix with xattrs and big uid', args: ['--format=posix', '--xattrs', '--owner=:3000000', '--group=:4000000'], longOk: true },
    { name: 'gnu with big uid (base-256)', args: ['--format=gnu', '--owner=:3000000', '--group=:99999999'], longOk: true },
    { name: 'ustar', args: ['--format=ustar'], longOk: false },
  ];
  for (const f of formats) {
    test(f.name, async () => {
      const out = join(dir, `${f.name.replace(/\W+/g, '-')}.tar`);
      // ustar cannot hold the 255+ byte name or the non-ASCII name: leave those out.
      const members = f.longOk ? ['d', 'deep', 'data', 'p'.repeat(60)] : ['d/small.txt', 'd/block.bin', 'd/odd.bin', 'd/empty', 'd/hard', 'd/sym', long100];
      gnuTar(['-cf', out, '--sort=name', ...f.args, ...members], src);
      const input = readFileSync(out);
      const { entries, rebuilt, trailer } = await readAll(chunked(input, 4096));
      assert.ok(rebuilt.equals(input), 'raw + body + padding + trailer reproduce the archive');
      assert.ok(trailer !== undefined && trailer.length >= 1024);

      const listing = gnuTar(['-tvf', out, '--numeric-owner', '--quoting-style=literal', '--full-time'])
        .toString('utf8').trimEnd().split('\n');
      assert.equal(entries.length, listing.length);
      const typeChar: Record<string, string> = { file: '-', directory: 'd', symlink: 'l', link: 'h' };
      for (const [i, line] of listing.entries()) {
        const m = /^(\S)\S*\s+(\d+)\/(\d+)\s+(\d+)\s+\S+\s+\S+\s+(.*)$/.exec(line);
        assert.ok(m, line);
        const { header } = entries[i]!.entry;
        let name = m[5]!;
        if (header.type === 'symlink') name = name.slice(0, name.indexOf(' -> '));
        if (header.type === 'link') name = name.slice(0, name.indexOf(' link to '));
        assert.equal(header.name, name);
        assert.equal(typeChar[header.type], m[1] === 'h' ? 'h' : m[1], `type of ${name}`);
        assert.equal(header.uid, Number(m[2]));
        assert.equal(header.gid, Number(m[3]));
        if (header.type === 'file') {
          assert.equal(header.size, Number(m[4]));
          assert.ok(entries[i]!.body.equals(readFileSync(join(src, name))), `content of ${name}`);
        }
      }
      const byName = new Map(entries.map((e) => [e.entry.header.name.replace(/\/$/, ''), e.entry.header]));
      assert.equal(byName.get('d/sym')?.linkname, 'small.txt');
      const links = [byName.get('d/hard'), byName.get('d/small.txt')].filter((h) => h?.type === 'link');
      assert.equal(links.length, 1, 'one of the two hard-linked names is a link entry');
      if (f.longOk) {
        assert.ok(byName.has(long255));
        assert.ok(byName.has(nonAscii));
        assert.equal(byName.get('data/long-link')?.linkname, `x/${'t'.repeat(150)}`);
      }
      if (f.args.includes('--xattrs') && xattrs) {
        const stored = [byName.get('d/small.txt')!, byName.get('d/hard')!].find((h) => h.type === 'file')!;
        assert.deepEqual([...(stored.xattrs['user.berth'] ?? [])], [0x76, 0x01]);
      }
    });
  }
});

describe('readTar reproduces real layer tars byte for byte', () => {
  const direct = [
    'regclient__regclient/testdata/layer.tar',
    'regclient__regclient/testdata/layer-wh.tar',
    'google__osv-scalibr/artifact/image/unpack/testdata/escape.tar',
    'google__osv-scalibr/artifact/image/layerscanning/image/testdata/empty.tar',
  ];
  for (const rel of direct) {
    test(rel, { skip: !existsSync(join(REAL, rel)) && 'fixture missing' }, async () => {
      const input = readFileSync(join(REAL, rel));
      const { rebuilt } = await readAll(createReadStream(join(REAL, rel)));
      assert.ok(rebuilt.equals(input));
    });
  }
  const outer = 'wagoodman__dive/.data/test-docker-image.tar';
  test(`layer.tar members of ${outer} (nested streaming)`, { skip: !existsSync(join(REAL, outer)) && 'fixture missing' }, async () => {
    let layers = 0;
    for await (const e of readTar(createReadStream(join(REAL, outer)))) {
      if (!e.header.name.endsWith('.tar') || e.header.type !== 'file') continue;
      const parts: Uint8Array[] = [];
      const tee = async function* (): ByteStream {
        for await (const c of e.body()) {
          parts.push(Buffer.from(c));
          yield c;
        }
      };
      const { rebuilt, entries } = await readAll(tee());
      assert.ok(rebuilt.equals(Buffer.concat(parts)), e.header.name);
      assert.ok(entries.length > 0);
      layers++;
    }
    assert.ok(layers >= 2);
  });
});

describe('readTar edge cases', () => {
  const cases: { name: string; input: Uint8Array; entries: number }[] = [
    { name: 'empty input', input: new Uint8Array(0), entries: 0 },
    { name: 'two zero blocks', input: new Uint8Array(1024), entries: 0 },
    { name: 'GNU record of zeros', input: new Uint8Array(10240), entries: 0 },
    { name: 'no end-of-archive blocks', input: buildTar([{ name: 'a', body: 'x' }]).subarray(0, 1024), entries: 1 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const { entries, rebuilt } = await readAll(chunked(c.input, 100));
      assert.equal(entries.length, c.entries);
      assert.ok(rebuilt.equals(Buffer.from(c.input)));
    });
  }

  test('one-byte chunks give the same entries and bytes', async () => {
    const input = buildTar([{ name: 'a.txt', body: 'hello' }, { name: `x/${'é'.repeat(80)}`, body: Buffer.alloc(700, 1) }]);
    const { entries, rebuilt } = await readAll(chunked(input, 1));
    assert.deepEqual(entries.map((e) => e.entry.header.name), ['a.txt', `x/${'é'.repeat(80)}`]);
    assert.equal(entries[1]!.body.length, 700);
    assert.ok(rebuilt.equals(input));
  });

  test('unread bodies are skipped; a body read after advancing fails; offsets are exact', async () => {
    const input = buildTar([{ name: 'a', body: Buffer.alloc(2000, 1) }, { name: 'b', body: 'bee' }]);
    const seen: TarEntry[] = [];
    let first: AsyncIterator<Uint8Array> | undefined;
    for await (const e of readTar(chunked(input, 300))) {
      seen.push(e);
      if (e.index === 0) {
        first = e.body()[Symbol.asyncIterator]();
        await first.next();
        assert.throws(() => e.padding, (err) => isBerthError(err, 'BERTH_USAGE'));
      } else {
        assert.equal((await collect(e.body())).toString(), 'bee');
      }
    }
    assert.equal(seen[0]!.padding.length, 48);
    assert.deepEqual(seen.map((e) => [e.headerOffset, e.dataOffset, e.dataSize]), [[0, 512, 2000], [2560, 3072, 3]]);
    await assert.rejects(first!.next(), (err) => isBerthError(err, 'BERTH_USAGE'));
  });

  test('base-256 uid and size fields', async () => {
    const block = encodeHeader(hdr('big', { size: 3 }));
    block.set([0x80, 0, 0, 0, 0, 0x12, 0x34, 0x56], 108); // uid 0x123456 in base-256
    block.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], 116); // gid -2
    block.set([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], 124);
    fixChecksum(block);
    const input = Buffer.concat([block, Buffer.from('abc'), Buffer.alloc(509), Buffer.alloc(1024)]);
    const { entries } = await readAll(chunked(input, 512));
    assert.equal(entries[0]!.entry.header.uid, 0x123456);
    assert.equal(entries[0]!.entry.header.gid, -2);
    assert.equal(entries[0]!.body.toString(), 'abc');
  });

  test('signed checksum is accepted', async () => {
    const block = encodeHeader(hdr('cafe', { size: 0 }));
    block[3] = 0xe9; // a high byte makes the signed and unsigned sums differ
    const { signed } = computeChecksums(block);
    block.set(enc.encode(signed.toString(8).padStart(6, '0') + '\0 '), 148);
    const { entries } = await readAll(chunked(Buffer.concat([block, Buffer.alloc(1024)]), 512));
    assert.equal(entries.length, 1);
  });

  test('a global pax header is its own entry', async () => {
    const tar = gnuTarPaxGlobal();
    if (tar === undefined) return;
    const { entries, rebuilt } = await readAll(chunked(tar, 777));
    assert.equal(entries[0]!.entry.header.type, 'g');
    assert.equal(entries[0]!.entry.header.pax['comment'], 'berth');
    assert.ok(rebuilt.equals(tar));
  });
});

function gnuTarPaxGlobal(): Buffer | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'berth-tar-g-'));
  try {
    writeFileSync(join(dir, 'f'), 'x');
    return gnuTar(['-cf', '-', '--format=posix', '--pax-option=globexthdr.name=pax_global_header,comment=berth', 'f'], dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('readTar rejects broken archives', () => {
  const good = buildTar([
    { name: 'a.txt', body: 'first' },
    { name: 'b/' + 'n'.repeat(150), body: Buffer.alloc(700, 2) },
    { name: 'etc/passwd', body: Buffer.alloc(1200, 0x41) },
  ]);

  test('truncation at every 64-byte step either ends between entries or names the entry', async () => {
    const { entries } = await readAll(chunked(good, 512));
    const boundaries = new Set(entries.map((e) => e.entry.rawOffset));
    const trailerStart = entries.at(-1)!.entry.dataOffset + 1200 + 336;
    for (let cut = 1; cut < good.length; cut += 64) {
      const input = good.subarray(0, cut);
      if (boundaries.has(cut) || cut >= trailerStart) {
        await readAll(chunked(input, 512));
        continue;
      }
      await assert.rejects(readAll(chunked(input, 512)), (err) => {
        assert.ok(isBerthError(err, 'BERTH_INVALID_TAR'), String(err));
        assert.match(err.message, /^reading tar entry \d/);
        return true;
      }, `cut at ${cut}`);
    }
  });

  const corruptions: { name: string; code: string; message: RegExp; input: () => Uint8Array }[] = [
    {
      name: 'truncated body names the entry',
      code: 'BERTH_INVALID_TAR',
      message: /^reading tar entry 2 "etc\/passwd": truncated body \(want 1200 bytes, got 512\)$/,
      input: () => good.subarray(0, good.indexOf(Buffer.alloc(1200, 0x41)) + 512),
    },
    {
      name: 'corrupt checksum',
      code: 'BERTH_INVALID_TAR',
      message: /^reading tar entry 0 "a.txt": bad header checksum \(want \d+, got \d+\)$/,
      input: () => {
        const b = Buffer.from(good);
        b[10] = 0x41;
        return b;
      },
    },
    {
      name: 'non-numeric octal size',
      code: 'BERTH_INVALID_TAR',
      message: /^reading tar entry 0 "a.txt": size field is not an octal number/,
      input: () => {
        const b = Buffer.from(good);
        b.set(enc.encode('0000000009x\0'), 124);
        fixChecksum(b.subarray(0, 512));
        return b;
      },
    },
    {
      name: 'size that overruns the stream',
      code: 'BERTH_INVALID_TAR',
      message: /^reading tar entry 0 "a.txt": truncated body \(want 8589934591 bytes, got \d+\)$/,
      input: () => {
        const b = Buffer.from(good);
        b.set(enc.encode('77777777777\0'), 124);
        fixChecksum(b.subarray(0, 512));
        return b;
      },
    },
    {
      name: 'pax record that lies about its length',
      code: 'BERTH_INVALID_TAR',
      message: /^reading tar entry 0 "PaxHeaders.0\/f": pax record at byte 0 lies about its length \(want at most 14 bytes, got 99\)$/,
      input: () => paxTar('99 path=short\n'),
    },
    {
      name: 'pax record without newline at its end',
      code: 'BERTH_INVALID_TAR',
      message: /lies about its length \(no newline/,
      input: () => paxTar('14 path=shorts\n'),
    },
    {
      name: 'pax size that is not a number',
      code: 'BERTH_INVALID_TAR',
      message: /pax record "size" is not an integer/,
      input: () => paxTar('12 size=1x3\n'),
    },
    {
      name: 'extension header followed by the end of archive',
      code: 'BERTH_INVALID_TAR',
      message: /extension header not followed by a file header/,
      input: () => Buffer.concat([paxTar('14 path=short\n').subarray(0, 1024), Buffer.alloc(1024)]),
    },
  ];
  for (const c of corruptions) {
    test(c.name, async () => {
      await assert.rejects(readAll(chunked(c.input(), 333)), (err) => {
        assert.ok(isBerthError(err), String(err));
        assert.equal(err.code, c.code);
        assert.match(err.message, c.message);
        return true;
      });
    });
  }

  test('more entries than maxEntries is BERTH_LIMIT', async () => {
    await assert.rejects(readAll(chunked(good, 512), { maxEntries: 2 }), (err) => {
      assert.ok(isBerthError(err, 'BERTH_LIMIT'));
      assert.match(err.message, /^reading tar entry 2 "etc\/passwd": too many entries \(want at most 2\)$/);
      return true;
    });
  });

  test('an aborted signal stops reading', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(readAll(chunked(good, 512), { signal: ac.signal }), (err) => isBerthError(err, 'BERTH_ABORTED'));
  });
});

/** A PAX `x` header whose data is `records` (as given, lies included), then a file and the end blocks. */
function paxTar(records: string): Buffer {
  const data = enc.encode(records);
  const x = encodeHeader(hdr('PaxHeaders.0/f', { size: data.length }));
  x[156] = 0x78;
  fixChecksum(x);
  return Buffer.concat([x, data, Buffer.alloc((512 - (data.length % 512)) % 512), buildTar([{ name: 'f', body: 'x' }])]);
}
