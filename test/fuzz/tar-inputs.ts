/**
 * Builders of hostile tar input: header blocks from random fields (octal, base-256 and garbage
 * numbers, any type flag, any magic, right or wrong checksums), PAX records whose length fields
 * lie, and GNU long-name / long-link chains.
 */
import fc from 'fast-check';
import { concat } from './harness.js';

const BLOCK = 512;

/** How one numeric header field is written. */
export type NumericField =
  | { readonly kind: 'octal'; readonly value: number; readonly pad: 'nul' | 'space' | 'none' }
  | { readonly kind: 'base256'; readonly bytes: Uint8Array; readonly negative: boolean }
  | { readonly kind: 'raw'; readonly bytes: Uint8Array };

const numericFieldArb: fc.Arbitrary<NumericField> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('octal' as const), value: fc.oneof(fc.nat({ max: 4096 }), fc.maxSafeNat(), fc.constantFrom(0, 1, 511, 512, 513, 0o77777777777, 2 ** 33)), pad: fc.constantFrom('nul' as const, 'space' as const, 'none' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('base256' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }), negative: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw' as const), bytes: fc.uint8Array({ minLength: 0, maxLength: 12 }) }) },
);

function writeNumeric(block: Uint8Array, at: number, width: number, f: NumericField): void {
  if (f.kind === 'octal') {
    let text = f.value.toString(8);
    const room = f.pad === 'none' ? width : width - 1;
    text = text.length > room ? text.slice(text.length - room) : text.padStart(room, '0');
    block.set(Buffer.from(text, 'latin1'), at);
    if (f.pad !== 'none') block[at + width - 1] = f.pad === 'nul' ? 0 : 0x20;
  } else if (f.kind === 'base256') {
    const field = new Uint8Array(width).fill(f.negative ? 0xff : 0);
    field.set(f.bytes.subarray(0, width), width - Math.min(width, f.bytes.length));
    field[0] = f.negative ? 0xff : 0x80 | (field[0]! & 0x7f);
    block.set(field, at);
  } else {
    block.set(f.bytes.subarray(0, width), at);
  }
}

export interface HeaderSpec {
  readonly name: Uint8Array;
  readonly mode: NumericField;
  readonly uid: NumericField;
  readonly gid: NumericField;
  /** undefined: the real length of the body that follows */
  readonly size: NumericField | undefined;
  readonly mtime: NumericField;
  readonly typeflag: number;
  readonly linkname: Uint8Array;
  readonly magic: 'ustar' | 'gnu' | 'v7' | 'star' | 'junk';
  readonly prefix: Uint8Array;
  readonly devmajor: NumericField;
  readonly checksum: 'unsigned' | 'signed' | 'wrong' | 'garbage';
}

const TYPEFLAGS = [...'0123456789xgLKSADMNVX', '\0', '\x80', '\xff'].map((c) => c.charCodeAt(0));

const nameBytesArb = fc.oneof(
  fc.string({ maxLength: 100 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8').subarray(0, 100))),
  fc.constantFrom('etc/passwd', './a/b', '../escape', '/abs', 'dir/', 'a//b/./c', 'x'.repeat(100), '').map((s) => new Uint8Array(Buffer.from(s))),
  fc.uint8Array({ maxLength: 100 }),
);

export const headerSpecArb: fc.Arbitrary<HeaderSpec> = fc.record({
  name: nameBytesArb,
  mode: numericFieldArb,
  uid: numericFieldArb,
  gid: numericFieldArb,
  size: fc.option(numericFieldArb, { nil: undefined, freq: 2 }),
  mtime: numericFieldArb,
  typeflag: fc.constantFrom(...TYPEFLAGS),
  linkname: nameBytesArb,
  magic: fc.constantFrom('ustar' as const, 'gnu' as const, 'v7' as const, 'star' as const, 'junk' as const),
  prefix: fc.oneof(fc.constant(new Uint8Array(0)), nameBytesArb),
  devmajor: numericFieldArb,
  checksum: fc.constantFrom('unsigned' as const, 'unsigned' as const, 'unsigned' as const, 'signed' as const, 'wrong' as const, 'garbage' as const),
});

/** One 512-byte header block for `spec`, its size field set to `bodyLength` unless the spec says otherwise. */
export function headerBlock(spec: HeaderSpec, bodyLength: number): Uint8Array {
  const b = new Uint8Array(BLOCK);
  b.set(spec.name.subarray(0, 100), 0);
  writeNumeric(b, 100, 8, spec.mode);
  writeNumeric(b, 108, 8, spec.uid);
  writeNumeric(b, 116, 8, spec.gid);
  writeNumeric(b, 124, 12, spec.size ?? { kind: 'octal', value: bodyLength, pad: 'nul' });
  writeNumeric(b, 136, 12, spec.mtime);
  b[156] = spec.typeflag;
  b.set(spec.linkname.subarray(0, 100), 157);
  if (spec.magic === 'ustar' || spec.magic === 'star') b.set(Buffer.from('ustar\x0000', 'latin1'), 257);
  else if (spec.magic === 'gnu') b.set(Buffer.from('ustar  \x00', 'latin1'), 257);
  else if (spec.magic === 'junk') b.set(Buffer.from('ustaR\x01\x02\x03', 'latin1'), 257);
  if (spec.magic !== 'v7') {
    writeNumeric(b, 329, 8, spec.devmajor);
    writeNumeric(b, 337, 8, spec.devmajor);
    b.set(spec.prefix.subarray(0, spec.magic === 'star' ? 131 : 155), 345);
    if (spec.magic === 'star') b.set(Buffer.from('tar\0', 'latin1'), 508);
  }
  setChecksum(b, spec.checksum);
  return b;
}

export function setChecksum(b: Uint8Array, how: 'unsigned' | 'signed' | 'wrong' | 'garbage' = 'unsigned'): void {
  b.fill(0x20, 148, 156);
  let unsigned = 0;
  let signed = 0;
  for (const c of b) {
    unsigned += c;
    signed += c >= 0x80 ? c - 256 : c;
  }
  if (how === 'garbage') {
    b.set(Buffer.from('zz\x809 -1\0', 'latin1'), 148);
    return;
  }
  const sum = how === 'signed' ? signed : how === 'wrong' ? unsigned + 1 : unsigned;
  const text = `${(sum < 0 ? 0 : sum).toString(8).padStart(6, '0')}\0 `;
  b.set(Buffer.from(text, 'latin1'), 148);
}

function padTo512(b: Uint8Array): Uint8Array {
  const pad = (BLOCK - (b.length % BLOCK)) % BLOCK;
  return pad === 0 ? b : concat(b, new Uint8Array(pad));
}

/** A member: a header and a body (whose length may disagree with the size field). */
export const memberArb = fc.record({
  header: headerSpecArb,
  body: fc.oneof(fc.uint8Array({ maxLength: 1500 }), fc.constant(new Uint8Array(0))),
  pad: fc.boolean(),
});

export const endArb = fc.constantFrom('none', 'one-zero-block', 'two-zero-blocks', 'junk-after') as fc.Arbitrary<'none' | 'one-zero-block' | 'two-zero-blocks' | 'junk-after'>;

export function endBytes(end: 'none' | 'one-zero-block' | 'two-zero-blocks' | 'junk-after'): Uint8Array {
  if (end === 'none') return new Uint8Array(0);
  if (end === 'one-zero-block') return new Uint8Array(BLOCK);
  if (end === 'two-zero-blocks') return new Uint8Array(2 * BLOCK);
  return concat(new Uint8Array(2 * BLOCK), Buffer.from('junk after the end'));
}

/** A whole archive of random members. */
export const randomTarArb = fc.record({ members: fc.array(memberArb, { minLength: 1, maxLength: 4 }), end: endArb }).map(({ members, end }) =>
  concat(...members.map((m) => concat(headerBlock(m.header, m.body.length), m.pad ? padTo512(m.body) : m.body)), endBytes(end)));

// ---------------------------------------------------------------------------------------------
// PAX.

const PAX_KEYS = [
  'path', 'linkpath', 'size', 'uid', 'gid', 'mtime', 'atime', 'ctime', 'uname', 'gname', 'comment', 'charset',
  'SCHILY.xattr.user.test', 'SCHILY.xattr.security.capability', 'SCHILY.xattr.', 'LIBARCHIVE.xattr.user.x',
  'GNU.sparse.major', 'GNU.sparse.minor', 'GNU.sparse.name', 'GNU.sparse.size', 'GNU.sparse.realsize', 'GNU.sparse.map', 'GNU.sparse.numblocks',
];

const PAX_VALUES = ['', '0', '-1', '1.5', '1e3', '99999999999999999999', '9007199254740993', '12345678901234567890.123', '1.', '.5', 'a/b', '\u00e9t\u00e9', '../x', '/abs', '=', ' ', 'x\ny', 'a\0b'];

export interface PaxRecordSpec {
  readonly key: string;
  readonly value: string;
  /** added to the true length field */
  readonly lie: number;
}

const paxRecordArb: fc.Arbitrary<PaxRecordSpec> = fc.record({
  key: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...PAX_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) }),
  value: fc.oneof(fc.constantFrom(...PAX_VALUES), fc.string({ maxLength: 40 }), fc.nat().map(String)),
  lie: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -12, max: 12 }) }, { weight: 1, arbitrary: fc.constantFrom(-1000, 1 << 20, 999_999_999_999) }),
});

export function paxRecordBytes(r: PaxRecordSpec): Uint8Array {
  const body = Buffer.from(` ${r.key}=${r.value}\n`, 'utf8');
  let n = body.length + 1;
  while (String(n).length + body.length > n) n++;
  return new Uint8Array(Buffer.concat([Buffer.from(String(Math.max(0, n + r.lie)), 'latin1'), body]));
}

/** An archive with a PAX `x` (or `g`) header of random, sometimes lying records, then a member. */
export const paxTarArb = fc.record({
  records: fc.array(paxRecordArb, { minLength: 1, maxLength: 6 }),
  junk: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: undefined, freq: 4 }),
  sizeLie: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -40, max: 40 }) }),
  flag: fc.constantFrom('x', 'x', 'x', 'g'),
  member: memberArb,
  end: endArb,
}).map(({ records, junk, sizeLie, flag, member, end }) => {
  const data = concat(...records.map(paxRecordBytes), junk ?? new Uint8Array(0));
  const ext = headerBlock({ ...plainHeader('PaxHeaders/x'), typeflag: flag.charCodeAt(0), size: { kind: 'octal', value: Math.max(0, data.length + sizeLie), pad: 'nul' } }, data.length);
  return concat(ext, padTo512(data), headerBlock(member.header, member.body.length), padTo512(member.body), endBytes(end));
});

/** A well-formed ustar header spec for `name` (a regular file). */
export function plainHeader(name: string): HeaderSpec {
  const octal = (value: number): NumericField => ({ kind: 'octal', value, pad: 'nul' });
  return {
    name: new Uint8Array(Buffer.from(name)), mode: octal(0o644), uid: octal(0), gid: octal(0), size: undefined, mtime: octal(0),
    typeflag: 0x30, linkname: new Uint8Array(0), magic: 'ustar', prefix: new Uint8Array(0), devmajor: octal(0), checksum: 'unsigned',
  };
}

// ---------------------------------------------------------------------------------------------
// GNU long names and links.

export const gnuTarArb = fc.record({
  chain: fc.array(fc.record({
    flag: fc.constantFrom('L', 'K'),
    name: fc.oneof(fc.string({ minLength: 0, maxLength: 700 }).map((s) => new Uint8Array(Buffer.from(s))), fc.uint8Array({ maxLength: 300 })),
    nul: fc.boolean(),
    sizeLie: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -600, max: 600 }) }),
  }), { minLength: 1, maxLength: 4 }),
  then: fc.constantFrom('member', 'member', 'zero-block', 'nothing', 'another-L'),
  member: memberArb,
}).map(({ chain, then, member }) => {
  const parts: Uint8Array[] = [];
  for (const c of chain) {
    const data = c.nul ? concat(c.name, new Uint8Array(1)) : c.name;
    const spec: HeaderSpec = { ...plainHeader('././@LongLink'), magic: 'gnu', typeflag: c.flag.charCodeAt(0), size: { kind: 'octal', value: Math.max(0, data.length + c.sizeLie), pad: 'nul' } };
    parts.push(headerBlock(spec, data.length), padTo512(data));
  }
  if (then === 'member') parts.push(headerBlock(member.header, member.body.length), padTo512(member.body), new Uint8Array(1024));
  else if (then === 'zero-block') parts.push(new Uint8Array(1024));
  else if (then === 'another-L') parts.push(headerBlock({ ...plainHeader('././@LongLink'), magic: 'gnu', typeflag: 0x4c }, 0));
  return concat(...parts);
});
