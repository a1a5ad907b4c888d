import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Crc64, crc64, crc64Engine, WASM_MIN } from './crc64.js';

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Bit-by-bit CRC-64/ISO with BigInt: the reference both table versions are checked against. */
function slowCrc(bytes: Uint8Array): string {
  const poly = 0xd800000000000000n;
  let crc = 0xffffffffffffffffn;
  for (const b of bytes) {
    crc ^= BigInt(b);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return (crc ^ 0xffffffffffffffffn).toString(16).padStart(16, '0');
}

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('CRC-64/ISO (crc64.ts)', () => {
  test('known vectors (Go crc64.Checksum with the ISO table)', () => {
    assert.equal(hex(crc64(new TextEncoder().encode('123456789'))), 'b90956c775a41001');
    assert.equal(hex(crc64(new Uint8Array(0))), '0000000000000000');
    const long = new TextEncoder().encode('123456789'.repeat(1000));
    assert.equal(hex(crc64(long)), slowCrc(long));
  });

  test('WebAssembly is in use where Node provides it', () => {
    assert.equal(crc64Engine, 'wasm');
  });

  test('both implementations equal the bitwise definition around every threshold, at any offset', () => {
    const data = bytes(200_016, 7);
    const lengths = [0, 1, 7, 8, 15, 16, 17, 31, 100, WASM_MIN - 1, WASM_MIN, WASM_MIN + 1, WASM_MIN + 15, 4096 + 5, 65_535, 65_536, 65_537, 131_072 + 9, 200_003];
    for (const n of lengths) {
      for (const off of [0, 1, 3, 13]) {
        const slice = data.subarray(off, off + n);
        const want = slowCrc(slice);
        assert.equal(hex(crc64(slice)), want, `update, ${n} bytes at offset ${off}`);
        const js = new Crc64();
        js.updateJs(slice);
        assert.equal(hex(js.digest()), want, `updateJs, ${n} bytes at offset ${off}`);
      }
    }
  });

  test('incremental updates mixing short and long pieces equal one update', () => {
    const data = bytes(300_001, 99);
    const want = hex(crc64(data));
    for (const sizes of [[1, WASM_MIN, 3, 70_000, 17], [WASM_MIN + 7, 5, 65_536 * 2 + 1], [999, 1000, 1001, 1024, 2048, 15]]) {
      const c = new Crc64();
      let at = 0;
      for (let i = 0; at < data.length; i++) {
        const n = sizes[i % sizes.length]!;
        c.update(data.subarray(at, at + n));
        at += n;
      }
      assert.equal(hex(c.digest()), want, `pieces ${sizes.join(',')}`);
      const out = Buffer.alloc(8);
      c.digestInto(out);
      assert.equal(out.toString('hex'), want);
    }
  });
});
