import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isBerthError } from '../core/errors.js';
import {
  buildHeader, decodeBlock, encodeHeader, formatPaxRecord, parseNumeric, parsePaxRecords, typeFromFlag, type EncodableHeader,
} from './header.js';

const enc = new TextEncoder();
const field = (s: string, width: number): Uint8Array => {
  const b = new Uint8Array(width);
  b.set(enc.encode(s).subarray(0, width));
  return b;
};

function hdr(name: string, extra: Partial<EncodableHeader> = {}): EncodableHeader {
  return {
    name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0,
    xattrs: {}, pax: {}, ...extra,
  };
}

/** Decodes what encodeHeader wrote, applying its PAX header if there is one. */
function decodeEncoded(bytes: Uint8Array) {
  if (bytes.length === 512) return buildHeader(decodeBlock(bytes), {});
  const x = decodeBlock(bytes.subarray(0, 512));
  const data = bytes.subarray(512, 512 + x.size);
  const main = bytes.subarray(bytes.length - 512);
  return { ...buildHeader(decodeBlock(main), { pax: parsePaxRecords(data) }), xHeader: x };
}

describe('parseNumeric', () => {
  const rows: { name: string; bytes: Uint8Array; want?: number; error?: RegExp }[] = [
    { name: 'octal with NUL', bytes: field('0000644\0', 8), want: 0o644 },
    { name: 'space padded', bytes: field('   644 \0', 8), want: 0o644 },
    { name: 'all NUL', bytes: new Uint8Array(8), want: 0 },
    { name: 'all spaces', bytes: field('        ', 8), want: 0 },
    { name: '11 digits', bytes: field('77777777777\0', 12), want: 8589934591 },
    { name: 'base-256 positive', bytes: new Uint8Array([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]), want: 512 },
    { name: 'base-256 negative', bytes: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), want: -1 },
    { name: 'base-256 beyond 2^53', bytes: new Uint8Array([0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), error: /out of range/ },
    { name: 'non-octal digit', bytes: field('0000009\0', 8), error: /mode field is not an octal number \(got "0000009\\u0000"\)/ },
    { name: 'letters', bytes: field('abc', 8), error: /not an octal number/ },
  ];
  for (const r of rows) {
    test(r.name, () => {
      if (r.error === undefined) assert.equal(parseNumeric(r.bytes, 'mode'), r.want);
      else assert.throws(() => parseNumeric(r.bytes, 'mode'), (err) => isBerthError(err, 'BERTH_INVALID_TAR') && r.error!.test(err.message));
    });
  }
});

describe('parsePaxRecords', () => {
  const rows: { name: string; data: string; want?: [string, string][]; error?: RegExp }[] = [
    { name: 'two records', data: '14 path=short\n10 uid=42\n', want: [['path', 'short'], ['uid', '42']] },
    { name: 'value with = and newline', data: '11 a=b=c\nd\n', want: [['a', 'b=c\nd']] },
    { name: 'empty value', data: '9 uname=\n', want: [['uname', '']] },
    { name: 'length too long', data: '30 path=x\n', error: /lies about its length \(want at most 10 bytes, got 30\)/ },
    { name: 'length too short', data: '5 path=x\n', error: /lies about its length/ },
    { name: 'no newline', data: '10 path=xx', error: /no newline/ },
    { name: 'not a number', data: 'x path=y\n', error: /no decimal length/ },
    { name: 'no equals', data: '9 pathxy\n', error: /no "key=value"/ },
    { name: 'trailing garbage', data: '10 path=x\n\0\0', error: /malformed pax record at byte 10/ },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const data = enc.encode(r.data);
      if (r.error !== undefined) {
        assert.throws(() => parsePaxRecords(data), (err) => isBerthError(err, 'BERTH_INVALID_TAR') && r.error!.test(err.message));
        return;
      }
      assert.deepEqual(parsePaxRecords(data).map((p) => [p.key, new TextDecoder().decode(p.value)]), r.want);
    });
  }
});

describe('formatPaxRecord', () => {
  const rows: [string, string, string][] = [
    ['path', 'short', '14 path=short\n'],
    ['k', 'v'.repeat(93), `99 k=${'v'.repeat(93)}\n`], // 99 bytes exactly
    ['k', 'v'.repeat(94), `101 k=${'v'.repeat(94)}\n`], // 100 is impossible: the length field grows to 3 digits
    ['k', 'v'.repeat(95), `102 k=${'v'.repeat(95)}\n`],
  ];
  for (const [k, v, want] of rows) {
    test(`${k} (${v.length} bytes)`, () => {
      const rec = formatPaxRecord(k, v);
      assert.equal(new TextDecoder().decode(rec), want);
      assert.deepEqual(parsePaxRecords(rec).map((p) => p.key), [k]);
    });
  }
});

describe('encodeHeader and decode round trip', () => {
  const rows: { name: string; h: EncodableHeader; pax: boolean; check?: (d: ReturnType<typeof decodeEncoded>) => void }[] = [
    { name: 'plain ustar', h: hdr('a/b.txt', { size: 10, mtime: 1700000000, uname: 'root', gname: 'root' }), pax: false },
    { name: 'name split into prefix', h: hdr(`${'d'.repeat(150)}/${'f'.repeat(99)}`), pax: false },
    { name: 'name too long to split', h: hdr(`${'d'.repeat(150)}/${'f'.repeat(101)}`), pax: true },
    { name: 'non-ASCII name', h: hdr('données/ü.txt'), pax: true },
    { name: 'link name over 100 bytes', h: hdr('l', { type: 'symlink', linkname: 'z'.repeat(101) }), pax: true },
    { name: 'uid at 2^21', h: hdr('u', { uid: 2 ** 21, gid: 2 ** 21 - 1 }), pax: true, check: (d) => assert.equal(d.gid, 2 ** 21 - 1) },
    {
      name: 'size of 8 GiB', h: hdr('big', { size: 8 * 1024 ** 3 }), pax: true,
      check: (d) => {
        assert.equal(d.pax['size'], String(8 * 1024 ** 3));
      },
    },
    { name: 'size just under 8 GiB', h: hdr('big', { size: 8 * 1024 ** 3 - 1 }), pax: false },
    { name: 'negative mtime', h: hdr('old', { mtime: -100 }), pax: true },
    { name: 'fractional mtime is rounded', h: hdr('t', { mtime: 10.6 }), pax: false, check: (d) => assert.equal(d.mtime, 11) },
    { name: 'xattrs', h: hdr('x', { xattrs: { 'user.bin': new Uint8Array([0, 0xff, 10]) } }), pax: true, check: (d) => assert.deepEqual([...d.xattrs['user.bin']!], [0, 0xff, 10]) },
    { name: 'extra pax record kept, basic key ignored', h: hdr('p', { pax: { 'BERTH.note': 'hi', mtime: '5.5' } }), pax: true, check: (d) => {
      assert.equal(d.pax['BERTH.note'], 'hi');
      assert.equal(d.mtime, 0);
    } },
    { name: 'char device', h: hdr('dev/null', { type: 'char', devmajor: 1, devminor: 3 }), pax: false },
    { name: 'pass-through type byte', h: hdr('c', { type: '7' }), pax: false, check: (d) => assert.equal(d.type, '7') },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const bytes = encodeHeader(r.h);
      assert.equal(bytes.length > 512, r.pax, 'PAX header only when needed');
      const d = decodeEncoded(bytes);
      assert.equal(d.name, r.h.name);
      assert.equal(d.type, r.h.type);
      assert.equal(d.size, r.h.size);
      assert.equal(d.uid, r.h.uid);
      assert.equal(d.linkname, r.h.linkname);
      assert.equal(d.mode, r.h.mode);
      assert.equal(d.format, r.pax ? 'pax' : 'ustar');
      if (r.h.mtime === Math.round(r.h.mtime)) assert.equal(d.mtime, r.h.mtime);
      r.check?.(d);
    });
  }

  test('GNU header: magic, long-name type flags map to types', () => {
    const block = encodeHeader(hdr('g'));
    block.set(enc.encode('ustar  \0'), 257);
    block.fill(0x20, 148, 156);
    let sum = 0;
    for (const c of block) sum += c;
    block.set(enc.encode(sum.toString(8).padStart(6, '0') + '\0 '), 148);
    assert.equal(decodeBlock(block).format, 'gnu');
    assert.deepEqual(['0', '\0', '1', '2', '3', '4', '5', '6', 'S'].map(typeFromFlag), ['file', 'file', 'link', 'symlink', 'char', 'block', 'directory', 'fifo', 'S']);
  });

  test('a v7 header (no magic) decodes without uname and prefix', () => {
    const block = encodeHeader(hdr('v7file', { uname: 'someone' }));
    block.fill(0, 257, 500);
    block.fill(0x20, 148, 156);
    let sum = 0;
    for (const c of block) sum += c;
    block.set(enc.encode(sum.toString(8).padStart(6, '0') + '\0 '), 148);
    const f = decodeBlock(block);
    assert.equal(f.format, 'v7');
    assert.equal(f.uname, '');
    assert.equal(f.name, 'v7file');
  });
});
