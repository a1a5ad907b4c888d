/**
 * The docker-archive destination streams layers into the archive as they are put: the member
 * order follows the puts (also when several run at once), a legacy layer put before any config
 * naming it is staged instead, and either way the archive reads back as the same image.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Descriptor } from '../src/core/descriptor.js';
import type { Digest } from '../src/core/digest.js';
import { DOCKER_CONFIG, DOCKER_LAYER_TAR, DOCKER_MANIFEST } from '../src/core/media-types.js';
import { fromBytes, toBytes } from '../src/io/stream.js';
import { readTar } from '../src/tar/reader.js';
import { parseDestinationName } from '../src/copying.js';
import { parseImageName } from '../src/transports/all.js';

const enc = new TextEncoder();
const sha256 = (b: Uint8Array): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

/** An image whose "layers" are opaque bytes (the destination never looks inside them). */
function image(n: number): { config: Descriptor; configBytes: Uint8Array; layers: Array<{ desc: Descriptor; bytes: Uint8Array }>; manifest: Descriptor; manifestBytes: Uint8Array } {
  const layers = Array.from({ length: n }, (_, i) => {
    const bytes = randomBytes(200_000 + i * 1000);
    return { desc: { mediaType: DOCKER_LAYER_TAR, size: bytes.length, digest: sha256(bytes) }, bytes: new Uint8Array(bytes) };
  });
  const configBytes = enc.encode(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.desc.digest) } }));
  const config = { mediaType: DOCKER_CONFIG, size: configBytes.length, digest: sha256(configBytes) };
  const manifestBytes = enc.encode(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers: layers.map((l) => l.desc) }));
  return { config, configBytes, layers, manifest: { mediaType: DOCKER_MANIFEST, size: manifestBytes.length, digest: sha256(manifestBytes) }, manifestBytes };
}

async function members(file: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of readTar(createReadStream(file))) out.push(e.header.name);
  return out;
}

async function layersOf(file: string): Promise<string[]> {
  const ref = await parseImageName(`docker-archive:${file}`);
  const src = await ref.openSource();
  try {
    const root = await src.root();
    const m = JSON.parse(new TextDecoder().decode(await toBytes(await src.open(root.descriptor)))) as { layers: Descriptor[] };
    const out: string[] = [];
    for (const l of m.layers) out.push(sha256(await toBytes(await src.open(l))));
    return out;
  } finally {
    await src.close();
  }
}

test('layers go into the archive in put order, concurrent puts included; a legacy layer before its config is staged', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-da-stream-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const img = image(3);
  const want = img.layers.map((l) => l.desc.digest);
  const rows = [
    { name: 'docker 25, layers put at once', layout: 'docker25' as const, configFirst: true },
    { name: 'legacy, config first, layers put at once', layout: 'legacy' as const, configFirst: true },
    { name: 'legacy, layers before the config', layout: 'legacy' as const, configFirst: false },
  ];
  for (const row of rows) {
    await t.test(row.name, async () => {
      const file = path.join(dir, `${row.layout}-${row.configFirst}.tar`);
      const dst = await (await parseDestinationName(`docker-archive:${file}:app:1`)).openDestination({ fsync: false, ...(row.layout === 'legacy' ? { archiveLayout: 'legacy' } : {}) });
      try {
        const putConfig = (): Promise<void> => dst.put(img.config, fromBytes(img.configBytes));
        if (row.configFirst) await putConfig();
        // reversed, and all at once: the archive follows the order of the calls
        await Promise.all([...img.layers].reverse().map((l) => dst.put(l.desc, fromBytes(l.bytes))));
        if (!row.configFirst) await putConfig();
        await dst.putManifest(img.manifest, img.manifestBytes);
        await dst.commit([{ descriptor: img.manifest, names: ['app:1'] }]);
      } finally {
        await dst.close();
      }
      assert.deepEqual(await readdir(dir).then((n) => n.filter((x) => x.startsWith('.berth-tmp'))), [], 'no staging left');
      const names = await members(file);
      const layerMembers = names.filter((n) => n.endsWith('layer.tar') || want.some((d) => n === `blobs/sha256/${d.slice(7)}`));
      if (row.layout === 'docker25') {
        assert.deepEqual(names.slice(0, 5), ['blobs/', 'blobs/sha256/', ...[...want].reverse().map((d) => `blobs/sha256/${d.slice(7)}`)]);
      } else if (row.configFirst) {
        assert.equal(names.indexOf(layerMembers[0]!), 3, 'the first layer directory is written first: dir, VERSION, json, layer.tar');
        assert.ok(names.indexOf('manifest.json') > names.indexOf(layerMembers[2]!));
      } else {
        assert.ok(names.indexOf('manifest.json') > 0);
      }
      assert.deepEqual(await layersOf(file), want, 'the archive reads back with every layer');
    });
  }
});
