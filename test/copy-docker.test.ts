/**
 * Round trips through the docker-archive writer, against the real dockerd 20.10: `docker save` of
 * the multi-layer test image → oci → oci-archive → docker-archive keeps the config digest and every
 * diff_id (and the layer digests without recompression); berth's docker-archives, in both layouts,
 * are loaded by `docker load` on a fresh daemon (right ID, right tags, `docker run` sees the files)
 * and accepted by `skopeo inspect docker-archive:`.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { copyReference, inspectReference, rawConfigOf, rawManifestOf, treeOf } from '../src/index.js';
import { buildTestImages, startDockerd, APP_IMAGE, type Dockerd, type TestImages } from './support/docker.js';
import { needPeer, requirePeer, needRoot } from './support/peers.js';
import { readJson, run, tempDir } from './support/copy-fixtures.js';


interface ImageFacts {
  readonly config: string;
  readonly diffIds: readonly string[];
  readonly layers: readonly string[];
}

async function factsOf(ref: string): Promise<ImageFacts> {
  const config = await rawConfigOf(ref);
  const diffIds = (JSON.parse(Buffer.from(config.bytes).toString('utf8')) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
  const manifest = await rawManifestOf(ref);
  const layers = (JSON.parse(Buffer.from(manifest.bytes).toString('utf8')) as { layers?: Array<{ digest: string }> }).layers;
  return { config: config.descriptor.digest, diffIds, layers: (layers ?? []).map((l) => l.digest) };
}

test('docker-archive round trips: docker save → oci → oci-archive → docker-archive, then docker load on a fresh dockerd', { timeout: 600_000 }, async (t) => {
  if (!needPeer(t, 'dockerd') || !needPeer(t, 'docker') || !needPeer(t, 'busybox') || !needPeer(t, 'skopeo') || !needRoot(t)) return;
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  let builder: Dockerd | undefined = await startDockerd();
  t.after(() => builder?.stop());
  const images: TestImages = await buildTestImages(builder);
  const saved = path.join(dir, 'saved.tar');
  await builder.docker(['save', '-o', saved, APP_IMAGE]);
  await builder.stop();
  builder = undefined;

  const source = await factsOf(`docker-archive:${saved}`);
  assert.equal(source.config, images.app.id, 'the saved config is the image ID');
  assert.equal(source.diffIds.length, 4);
  assert.deepEqual(source.layers, source.diffIds, 'a docker-archive serves uncompressed layers');

  // docker-archive → oci: the synthesised manifest becomes an OCI manifest, layers unchanged
  const layout = path.join(dir, 'layout');
  await copyReference(`docker-archive:${saved}`, `oci:${layout}:app`, { fsync: false });
  const inLayout = await factsOf(`oci:${layout}:app`);
  assert.deepEqual(inLayout, source);
  const index = (await readJson(path.join(layout, 'index.json'))) as { manifests: Array<{ mediaType: string; annotations: Record<string, string> }> };
  assert.equal(index.manifests[0]!.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(index.manifests[0]!.annotations['org.opencontainers.image.ref.name'], 'app');
  // → oci-archive: byte-exact
  const ociArchive = path.join(dir, 'app-oci.tar');
  await copyReference(`oci:${layout}:app`, `oci-archive:${ociArchive}`, { fsync: false });
  assert.equal((await rawManifestOf(`oci-archive:${ociArchive}`)).descriptor.digest, (await rawManifestOf(`oci:${layout}:app`)).descriptor.digest);
  // → docker-archive, both layouts
  const docker25 = path.join(dir, 'app-25.tar');
  const legacy = path.join(dir, 'app-legacy.tar');
  await copyReference(`oci-archive:${ociArchive}`, `docker-archive:${docker25}:berth-copy/app:25`, { fsync: false });
  await copyReference(`oci-archive:${ociArchive}`, `docker-archive:${legacy}`, { fsync: false, archiveLayout: 'legacy', names: ['berth-copy/app:legacy', 'localhost:5000/team/app:v1'] });
  for (const file of [docker25, legacy]) {
    const facts = await factsOf(`docker-archive:${file}`);
    assert.equal(facts.config, source.config, `${file}: config digest kept`);
    assert.deepEqual(facts.diffIds, source.diffIds, `${file}: diff_ids kept`);
    assert.deepEqual(facts.layers, source.layers, `${file}: layers are the same uncompressed tars`);
  }
  // The 25+ archive is an OCI layout too, naming the image as Docker 25 does.
  const asLayout = await treeOf(`oci-archive:${docker25}`);
  assert.equal(asLayout.format, 'oci-layout');
  const idx = JSON.parse((await run('tar', ['-xOf', docker25, 'index.json'])).stdout) as { manifests: Array<{ annotations: Record<string, string> }> };
  assert.deepEqual(idx.manifests[0]!.annotations, { 'io.containerd.image.name': 'docker.io/berth-copy/app:25', 'org.opencontainers.image.ref.name': '25' });
  const members = (await run('tar', ['-tf', legacy])).stdout.split('\n');
  assert.ok(members.includes(`${source.config.slice(7)}.json`), 'legacy: <config hex>.json');
  assert.equal(members.filter((m) => m.endsWith('/layer.tar')).length, 4);
  assert.equal(members.filter((m) => m.endsWith('/VERSION')).length, 4);

  // With recompression on the way the compressed digests change, the diff_ids do not.
  const gz = path.join(dir, 'gz');
  await copyReference(`docker-archive:${saved}`, `oci:${gz}`, { fsync: false, compression: 'gzip' });
  const gzFacts = await factsOf(`oci:${gz}`);
  assert.equal(gzFacts.config, source.config);
  assert.deepEqual(gzFacts.diffIds, source.diffIds);
  assert.ok(gzFacts.layers.every((l, i) => l !== source.diffIds[i]), 'gzip layers have new digests');
  const back = path.join(dir, 'back.tar');
  await copyReference(`oci:${gz}`, `docker-archive:${back}:berth-copy/app:gz`, { fsync: false });
  const backFacts = await factsOf(`docker-archive:${back}`);
  assert.deepEqual(backFacts, source, 'decompressed again: the layers are the original tars');

  // skopeo reads every archive berth wrote
  const skopeo = requirePeer('skopeo');
  for (const file of [docker25, legacy, back]) {
    const out = await run(skopeo, ['inspect', `docker-archive:${file}`]);
    assert.equal(out.code, 0, `skopeo inspect docker-archive:${file}: ${out.stderr}`);
    const info = JSON.parse(out.stdout) as { Layers: string[] };
    assert.deepEqual(info.Layers, source.diffIds);
  }

  // the Docker 25+ archive is an OCI archive to skopeo too
  const asOci = await run(skopeo, ['inspect', `oci-archive:${docker25}:25`]);
  assert.equal(asOci.code, 0, `skopeo inspect oci-archive:${docker25}: ${asOci.stderr}`);
  assert.deepEqual((JSON.parse(asOci.stdout) as { Layers: string[] }).Layers, source.diffIds);

  // docker load on a fresh daemon: right ID and tags, and the files are there
  const fresh = await startDockerd();
  t.after(() => fresh.stop());
  const rows: Array<{ file: string; tags: string[] }> = [
    { file: docker25, tags: ['berth-copy/app:25'] },
    { file: legacy, tags: ['berth-copy/app:legacy', 'localhost:5000/team/app:v1'] },
  ];
  for (const row of rows) {
    const loaded = await fresh.docker(['load', '-i', row.file]);
    t.diagnostic(`docker load ${path.basename(row.file)}: ${loaded.stdout.trim().replace(/\n/g, '; ')}`);
    for (const tag of row.tags) {
      const id = (await fresh.docker(['image', 'inspect', '--format', '{{.Id}}', tag])).stdout.trim();
      assert.equal(id, source.config, `${tag} has the image ID`);
      const out = await fresh.docker(['run', '--rm', '--network', 'none', tag, 'cat', '/app/hello.txt', '/app/data/c', '/app/bin/suid']);
      assert.equal(out.stdout, 'hello from berth\nnew\nsuid\n');
    }
    const listed = (await fresh.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout;
    for (const tag of row.tags) assert.match(listed, new RegExp(`^${tag.replace(/[.:/]/g, '\\$&')} ${source.config.slice(7, 19)}$`, 'm'));
    // gone again, so the next archive's layers are really loaded
    await fresh.docker(['rmi', '-f', ...row.tags]);
  }
  const inspected = await inspectReference(`docker-archive:${docker25}`);
  assert.equal(inspected.configDigest, source.config);
  assert.deepEqual(inspected.names, ['berth-copy/app:25']);
});
