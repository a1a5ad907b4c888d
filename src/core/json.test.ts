import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from './errors.js';
import { JsonFields, MAX_MANIFEST_BYTES, findJsonSyntaxError, parseJsonBytes } from './json.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

test('parseJsonBytes accepts valid JSON', () => {
  const rows = [
    { name: 'object', input: enc('{"a":[1,2,{"b":null}]}'), want: { a: [1, 2, { b: null }] } },
    { name: 'surrounding whitespace', input: enc(' \n\t{"a":1}\r\n'), want: { a: 1 } },
    { name: 'non-ASCII text', input: enc('{"t":"héllo ☃ 😀"}'), want: { t: 'héllo ☃ 😀' } },
    { name: 'scalar at top level', input: enc('42'), want: 42 },
  ];
  for (const row of rows) assert.deepEqual(parseJsonBytes(row.input, 'doc'), row.want, row.name);
});

test('parseJsonBytes rejects bad input with a one-line message naming what and where', () => {
  const rows = [
    { name: 'trailing comma', input: enc('{\n  "a": 1,\n}'), code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid JSON at line 3, column 1: expected a property name, got "}"' },
    { name: 'truncated', input: enc('{"a":1'), code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid JSON at line 1, column 7: unexpected end of input' },
    { name: 'bad literal', input: enc('{"a":\n tru}'), code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid JSON at line 2, column 5: unexpected "}"' },
    { name: 'garbage after value', input: enc('{} x'), code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid JSON at line 1, column 4: unexpected "x" after the end of the value' },
    { name: 'empty input', input: enc(''), code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid JSON at line 1, column 1: unexpected end of input' },
    { name: 'byte-order mark', input: new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]), code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid JSON at line 1, column 1: unexpected character U+FEFF' },
    { name: 'invalid UTF-8', input: new Uint8Array([0x7b, 0x0a, 0x22, 0xff, 0x22]), code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid UTF-8 at line 2, column 2 (byte 3)' },
    { name: 'overlong UTF-8', input: new Uint8Array([0x22, 0xc0, 0xaf, 0x22]), code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid UTF-8 at line 1, column 2 (byte 1)' },
    { name: 'raw control character in string', input: enc('"a\tb"'), code: 'BERTH_INVALID_JSON', message: 'parsing doc: invalid JSON at line 1, column 3: unescaped control character U+0009 in string' },
  ];
  for (const row of rows) {
    assert.throws(() => parseJsonBytes(row.input, 'doc'), (err: unknown) => {
      assert.ok(isBerthError(err, row.code as 'BERTH_INVALID_JSON'), row.name);
      assert.equal(err.message, row.message, row.name);
      assert.ok(!err.message.includes('\n'), `${row.name}: one line`);
      return true;
    });
  }
});

test('parseJsonBytes enforces the size cap', () => {
  assert.equal(MAX_MANIFEST_BYTES, 4 * 1024 * 1024);
  assert.throws(() => parseJsonBytes(enc('[1, 2]'), 'small', 5), (err: unknown) => isBerthError(err, 'BERTH_TOO_LARGE') && err.want === 5 && err.got === 6);
  assert.deepEqual(parseJsonBytes(enc('[1,2]'), 'small', 5), [1, 2]);
  const big = new Uint8Array(MAX_MANIFEST_BYTES + 1).fill(0x20);
  assert.throws(() => parseJsonBytes(big, 'big'), (err: unknown) => isBerthError(err, 'BERTH_TOO_LARGE'));
});

test('findJsonSyntaxError agrees with JSON.parse on what is valid', () => {
  const inputs = ['{}', '[]', '"\\u00e9\\n"', '-0.5e+10', '[1,[2,[3]]]', '{"a":{"b":[true,false,null]}}', '01', '1.', '[1,]', '{"a" 1}', '"\\x"', "'a'", 'nul', '+1', '[', ' '];
  for (const text of inputs) {
    let valid = true;
    try {
      JSON.parse(text);
    } catch {
      valid = false;
    }
    assert.equal(findJsonSyntaxError(text) === undefined, valid, text);
  }
});

test('JsonFields messages start with the field path', () => {
  const f = new JsonFields('BERTH_INVALID_CONFIG', 'config x');
  const rows = [
    { name: 'wrong type', run: () => f.string({ a: 1 }, 'a', 'config'), message: 'config.a: must be a string, got number' },
    { name: 'missing', run: () => f.string({}, 'a', ''), message: 'a: missing' },
    { name: 'string array item', run: () => f.optionalStringArray({ Env: ['A=1', 2] }, 'Env', 'config'), message: 'config.Env[1]: must be a string, got number' },
    { name: 'map value with dotted key', run: () => f.optionalStringMap({ annotations: { 'a.b': true } }, 'annotations', ''), message: 'annotations["a.b"]: must be a string, got boolean' },
    { name: 'root not an object', run: () => f.object([], ''), message: 'config x: must be a JSON object, got array' },
  ];
  for (const row of rows) {
    assert.throws(row.run, (err: unknown) => isBerthError(err, 'BERTH_INVALID_CONFIG') && err.message === row.message, row.name);
  }
  assert.equal(f.optionalString({ a: null }, 'a', ''), undefined, 'null reads as absent');
});
