import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { coalesce } from './coalesce.js';
import { toBytes, type ByteStream } from './stream.js';

async function* chunks(parts: readonly Uint8Array[]): ByteStream {
  yield* parts;
}

async function collect(src: ByteStream): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of src) out.push(c);
  return out;
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('coalesce', () => {
  test('gathers small chunks into pieces of at most the size, bytes and order unchanged', async () => {
    const parts = Array.from({ length: 500 }, (_, i) => bytes(1 + ((i * 37) % 300), i));
    const out = await collect(coalesce(chunks(parts), 4096));
    assert.deepEqual(Buffer.concat(out), Buffer.concat(parts));
    assert.ok(out.every((c) => c.length <= 4096 && c.length > 0));
    // every piece but the last was flushed only because the next chunk did not fit
    assert.ok(out.slice(0, -1).every((c) => c.length > 4096 - 300));
    assert.ok(out.length < 50);
  });

  test('large chunks pass through uncopied, after what is pending', async () => {
    const big = bytes(3000, 1);
    const parts = [bytes(10, 2), big, bytes(5, 3), bytes(0, 4), bytes(7, 5)];
    const out = await collect(coalesce(chunks(parts), 4096));
    assert.equal(out.length, 3);
    assert.equal(out[1], big);
    assert.deepEqual(Buffer.concat(out), Buffer.concat(parts));
  });

  test('pieces handed out are not overwritten by later input', async () => {
    const parts = Array.from({ length: 40 }, (_, i) => bytes(100, i));
    const src = coalesce(chunks(parts), 1000);
    const held: Uint8Array[] = [];
    for await (const c of src) held.push(c);
    assert.deepEqual(Buffer.concat(held), Buffer.concat(parts));
  });

  test('an empty stream stays empty; errors pass through', async () => {
    assert.equal((await collect(coalesce(chunks([])))).length, 0);
    async function* failing(): ByteStream {
      yield bytes(10, 0);
      throw new Error('source broke');
    }
    await assert.rejects(toBytes(coalesce(failing())), /source broke/);
  });
});
