/**
 * The documented limits (docs/reliability.md, "Limits"), each hit on purpose: a clear one-line
 * error with exit 1, naming the object and the limit; and a load that fails on one leaves the
 * store exactly as it was.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { digestOf } from '../../src/core/digest.js';
import { compress } from '../../src/io/codec.js';
import { toBytes } from '../../src/io/stream.js';
import { writeTar, type TarWriteEntry } from '../../src/tar/writer.js';
import { berth, fingerprint, removeWorkspace, SAMPLE, workspace } from './harness.js';

/** A one-image OCI layout (`lim:1`) with one gzip layer of `entries`; extra fields merged into the config and manifest. */
async function layout(dir: string, entries: TarWriteEntry[], extra: { config?: object; manifest?: object } = {}): Promise<string> {
  await mkdir(path.join(dir, 'blobs/sha256'), { recursive: true });
  const put = async (b: Uint8Array) => {
    const digest = digestOf(b);
    await writeFile(path.join(dir, 'blobs/sha256', digest.slice(7)), b);
    return { digest, size: b.length };
  };
  const tar = await toBytes(writeTar(entries));
  const gz = await toBytes(compress((async function* () { yield tar; })(), 'gzip', { level: 9 }));
  const layer = await put(gz);
  const json = (v: object) => new TextEncoder().encode(JSON.stringify(v));
  const cfg = await put(json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(tar)] }, ...extra.config }));
  const m = await put(json({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }], ...extra.manifest,
  }));
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'lim:1' } }],
  }));
  return dir;
}

const file = (name: string, size = 0): TarWriteEntry => ({ header: { name, type: 'file', size }, body: new Uint8Array(size) });

function oneLine(stderr: string, what: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `${what}: one line, got:\n${stderr.slice(0, 2000)}`);
  assert.match(lines[0]!, /^berth: /, what);
  return lines[0]!;
}

test('limits: each one hit gives a clear one-line error', { timeout: 120_000 }, async (t) => {
  const work = await workspace('berth-limits-');
  t.after(() => removeWorkspace(work));

  await t.test('manifest over 4 MiB', async () => {
    const d = await layout(path.join(work, 'bigmanifest'), [file('x')], { manifest: { annotations: { big: 'x'.repeat(4 * 1024 * 1024) } } });
    const r = await berth('inspect', d);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr, 'manifest'), /manifest sha256:[a-f0-9]{12}: size \d+ is over the limit of 4194304 bytes/);
  });

  await t.test('config over 8 MiB', async () => {
    const d = await layout(path.join(work, 'bigconfig'), [file('x')], { config: { big: 'x'.repeat(8 * 1024 * 1024) } });
    const r = await berth('config', d);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr, 'config'), /config sha256:[a-f0-9]{12}: size \d+ is over the limit of 8388608 bytes/);
    const R = path.join(work, 'root-config');
    const load = await berth('--root', R, 'load', d);
    assert.equal(load.code, 1);
    assert.match(oneLine(load.stderr, 'load config'), /over (the limit of )?8388608 bytes/);
  });

  await t.test('tar entries: unpack --max-entries', async () => {
    const d = await layout(path.join(work, 'many'), Array.from({ length: 500 }, (_, i) => file(`f${i}`)));
    const r = await berth('unpack', d, path.join(work, 'u-many'), '--max-entries', '100');
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr, 'entries'), /more than 100 entries in all layers \(the unpack limit/);
  });

  await t.test('uncompressed bytes (a 16 MiB gzip bomb of zeros): unpack --max-bytes', async () => {
    const d = await layout(path.join(work, 'bomb'), [file('zeros', 16 * 1024 * 1024)]);
    const r = await berth('unpack', d, path.join(work, 'u-bomb'), '--max-bytes', '1000000');
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr, 'bytes'), /more than 1000000 uncompressed bytes in all layers \(the unpack limit/);
  });

  await t.test('path length: berth\'s own 4096-byte cap (a short line), the kernel\'s 255-byte name; a load leaves the store as it was', async () => {
    const long = await layout(path.join(work, 'longpath'), [file(`${'a/'.repeat(2100)}x`, 1)]);
    const r = await berth('unpack', long, path.join(work, 'u-long'));
    assert.equal(r.code, 1);
    const line = oneLine(r.stderr, 'path');
    assert.match(line, /reading tar entry 0 ".*….*": name is 4201 bytes, over the path limit of 4096 \(--max-path\)/);
    assert.ok(line.length < 300, `a short line, got ${line.length} characters`);
    const component = await layout(path.join(work, 'longname'), [file('n'.repeat(300), 1)]);
    const c = await berth('unpack', component, path.join(work, 'u-name'));
    assert.equal(c.code, 1);
    assert.match(oneLine(c.stderr, 'component'), /ENAMETOOLONG|name too long/);
    const R = path.join(work, 'root-path');
    assert.equal((await berth('--root', R, 'load', SAMPLE, '--platform', 'linux/amd64')).code, 0);
    const before = await fingerprint(R);
    for (const d of [long, component]) {
      const load = await berth('--root', R, 'load', d);
      assert.equal(load.code, 1);
      assert.match(oneLine(load.stderr, 'load path'), /over the path limit of 4096|ENAMETOOLONG|name too long/);
      assert.deepEqual(await fingerprint(R), before, 'the store is unchanged');
    }
  });
});
