/**
 * verify reads the layers of a manifest several at once; its report must still read in layer
 * order and name each problem once: a big layer with a wrong diff_id before small broken ones, a
 * missing layer, a truncated gzip whose digest is right, and layers repeated at later positions.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { verifyReference } from '../src/index.js';

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'berth-verify-layers-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const short = (d: string): string => d.slice(0, 'sha256:'.length + 12);
const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Bytes that compress but not to nothing, so a big layer takes a while to gunzip. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = 0x30 + ((x >>> 24) % 16);
  }
  return out;
}

test('verify: layers checked in parallel are reported in layer order, each problem once', async () => {
  const dir = path.join(work, 'layout');
  const blobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (b: Uint8Array): Promise<{ digest: string; size: number }> => {
    const digest = sha(b);
    await writeFile(path.join(blobs, digest.slice(7)), b);
    return { digest, size: b.length };
  };
  const plain = [noise(8 << 20, 1), noise(3000, 2), noise(2000, 3), noise(5000, 4)];
  const gz = plain.map((p) => gzipSync(p));
  const truncated = gz[3]!.subarray(0, gz[3]!.length - 20);
  const layers = [
    { ...(await put(gz[0]!)), diffId: sha(plain[0]!) }, // 0: fine
    { ...(await put(gz[1]!)), diffId: sha(plain[2]!) }, // 1: wrong diff_id
    { digest: sha(gz[2]!), size: gz[2]!.length, diffId: sha(plain[2]!) }, // 2: not stored
    { ...(await put(truncated)), diffId: sha(plain[3]!) }, // 3: digest right, gzip cut short
    { digest: sha(truncated), size: truncated.length, diffId: sha(plain[3]!) }, // 4: the same broken blob again
    { ...(await put(gz[0]!)), diffId: sha(plain[1]!) }, // 5: layer 0 again, with a wrong diff_id
  ];
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  }));
  const cfg = await put(config);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: layers.map((l) => ({ mediaType: GZ, digest: l.digest, size: l.size })),
  }));
  const m = await put(manifest);
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m }],
  }));

  const report = await verifyReference(`oci:${dir}`);
  const got = report.problems.map((p) => `${p.severity} ${p.subject.split(' of ')[0]}`);
  assert.deepEqual(got, [
    `error layer 1 ${short(layers[1]!.digest)}`,
    `error layer 2 ${short(layers[2]!.digest)}`,
    `error layer 3 ${short(layers[3]!.digest)}`,
    `error layer 5 ${short(layers[5]!.digest)}`,
  ], JSON.stringify(report.problems, null, 1));
  assert.match(report.problems[0]!.message, /does not match the config's rootfs\.diff_ids\[1\]/);
  assert.match(report.problems[1]!.message, /is missing/);
  assert.match(report.problems[2]!.message, /truncat|unexpected end/i);
  assert.match(report.problems[3]!.message, /rootfs\.diff_ids\[5\]/);
  // layers 0, 1 and 3 read once each (3 failed, so it is not counted), plus manifest and config
  assert.equal(report.layers, 2);
});
