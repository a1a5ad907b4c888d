/**
 * berth copy between OCI layouts and oci-archives, on the real BuildKit multi-platform export
 * (docker/actions-toolkit) and examples/sample: byte-exact copies, platform selection with
 * attestations, recompression checked with the real zstd/gzip, OCI → Docker conversion and its
 * refusals, adding to an existing layout, and the output read back by skopeo and umoci.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  copyReference, copyReferences, isBerthError, parsePlatform, rawManifestOf, treeOf, verifyReference,
  type CopyEvent, type CopyReferenceOptions,
} from '../src/index.js';
import { needPeer, requirePeer } from './support/peers.js';
import { fingerprint, MULTI_FIXTURE, readJson, run, SAMPLE, sha256Hex, tempDir } from './support/copy-fixtures.js';

const FX = {
  index: 'sha256:5ac2d3ac39878329a6328eba5b2a6e5e7a06279244eea0f2ea893f76cefff26c',
  amd64: 'sha256:0f90b7af6b2fef777963e3e1ca4fd66f378af93f5fe46304886943a4c0c7a46b',
  arm64: 'sha256:6b2a0dfca3903c0a2022f224f818eedd9d055ebbef7c8208b35cd7d3b4f54088',
  amd64Attestation: 'sha256:1d88e5a3e13d830277704130ae7b1aa7d9eb25f952891234d5c01f81651dcefc',
  arm64Attestation: 'sha256:2531011d66156a7830f9bd6671c81508c87e33ae070cda1bdfc68e3e39172a38',
};

interface Desc { mediaType: string; digest: string; size: number; annotations?: Record<string, string>; platform?: { os: string; architecture: string; variant?: string } }
interface Manifest { mediaType?: string; config: Desc; layers: Desc[] }
interface Index { mediaType?: string; manifests: Desc[] }

async function blob(layout: string, digest: string): Promise<Buffer> {
  return readFile(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

async function blobJson<T>(layout: string, digest: string): Promise<T> {
  return JSON.parse((await blob(layout, digest)).toString('utf8')) as T;
}

/** The single root of a layout's index.json. */
async function rootOf(layout: string): Promise<Desc> {
  const index = (await readJson(path.join(layout, 'index.json'))) as unknown as Index;
  assert.equal(index.manifests.length, 1, `one root in ${layout}`);
  return index.manifests[0]!;
}

async function noProblems(ref: string): Promise<void> {
  const report = await verifyReference(ref);
  assert.deepEqual(report.problems.filter((p) => (p as { severity?: string }).severity !== 'warning'), [], `verify ${ref}`);
}

async function withTemp(t: TestContext): Promise<string> {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const quiet: CopyReferenceOptions = { fsync: false };

test('copy is byte-exact without conversion: oci-archive → oci → oci-archive → oci keeps every digest', async (t) => {
  const dir = await withTemp(t);
  const a = path.join(dir, 'a');
  const events: CopyEvent[] = [];
  const r1 = await copyReference(`oci-archive:${MULTI_FIXTURE}`, `oci:${a}:hello`, { ...quiet, onEvent: (e) => events.push(e) });
  assert.equal(r1.images[0]!.root.digest, FX.index);
  assert.equal(r1.copied, 8, 'two images (config + layer) and two attestations (config + statement)');
  assert.ok(events.some((e) => e.type === 'blob-progress'));
  await noProblems(`oci:${a}:hello`);
  const root = await rootOf(a);
  assert.equal(root.digest, FX.index);
  assert.equal(root.annotations?.['org.opencontainers.image.ref.name'], 'hello');

  const b = path.join(dir, 'b.tar');
  await copyReference(`oci:${a}:hello`, `oci-archive:${b}`, quiet);
  const c = path.join(dir, 'c');
  const r3 = await copyReference(`oci-archive:${b}`, `oci:${c}`, quiet);
  assert.equal(r3.images[0]!.root.digest, FX.index);
  assert.deepEqual(await fingerprint(path.join(c, 'blobs')), await fingerprint(path.join(a, 'blobs')), 'the same blobs, byte for byte');
  // names carry over from the source when none is given
  assert.equal((await rootOf(c)).annotations?.['org.opencontainers.image.ref.name'], 'hello');
});

test('oci-archive output starts with oci-layout and index.json (streaming readers)', async (t) => {
  const dir = await withTemp(t);
  const out = path.join(dir, 'o.tar');
  await copyReference(`oci-archive:${MULTI_FIXTURE}`, `oci-archive:${out}:v1`, quiet);
  const list = await run('tar', ['-tf', out]);
  assert.deepEqual(list.stdout.split('\n').slice(0, 4), ['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/']);
});

const selections = [
  { name: 'real BuildKit export, linux/arm64', src: `oci-archive:${MULTI_FIXTURE}`, platform: 'linux/arm64', keep: [FX.arm64, FX.arm64Attestation], subject: FX.arm64 },
  { name: 'real BuildKit export, linux/amd64', src: `oci-archive:${MULTI_FIXTURE}`, platform: 'linux/amd64', keep: [FX.amd64, FX.amd64Attestation], subject: FX.amd64 },
];

for (const row of selections) {
  test(`platform selection keeps exactly the chosen manifest and its attestation: ${row.name}`, async (t) => {
    const dir = await withTemp(t);
    const out = path.join(dir, 'o');
    await copyReference(row.src, `oci:${out}:sel`, { ...quiet, platforms: [parsePlatform(row.platform)] });
    const root = await rootOf(out);
    const index = await blobJson<Index>(out, root.digest);
    assert.deepEqual(index.manifests.map((m) => m.digest), row.keep);
    assert.equal(index.manifests[1]!.annotations?.['vnd.docker.reference.digest'], row.subject);
    await noProblems(`oci:${out}:sel`);
    // Nothing of the other platform was written.
    const other = row.subject === FX.arm64 ? FX.amd64 : FX.arm64;
    await assert.rejects(blob(out, other));
  });
}

test('platform selection on examples/sample: one platform, attestations kept or dropped', async (t) => {
  const dir = await withTemp(t);
  const src = (await rootOf(SAMPLE)).digest;
  const srcIndex = await blobJson<Index>(SAMPLE, src);
  const arm = srcIndex.manifests.find((m) => m.platform?.architecture === 'arm64')!;
  const armAtt = srcIndex.manifests.find((m) => m.annotations?.['vnd.docker.reference.digest'] === arm.digest)!;
  const keep = path.join(dir, 'keep');
  await copyReference(`oci:${SAMPLE}`, `oci:${keep}`, { ...quiet, platforms: [parsePlatform('linux/arm64')] });
  const kept = await blobJson<Index>(keep, (await rootOf(keep)).digest);
  assert.deepEqual(kept.manifests.map((m) => m.digest), [arm.digest, armAtt.digest]);
  const drop = path.join(dir, 'drop');
  await copyReference(`oci:${SAMPLE}`, `oci:${drop}`, { ...quiet, platforms: [parsePlatform('linux/arm64')], attestations: 'drop' });
  const dropped = await blobJson<Index>(drop, (await rootOf(drop)).digest);
  assert.deepEqual(dropped.manifests.map((m) => m.digest), [arm.digest]);
  // both platforms listed: the index as it was (byte-exact)
  const both = path.join(dir, 'both');
  await copyReference(`oci:${SAMPLE}`, `oci:${both}`, { ...quiet, platforms: [parsePlatform('linux/amd64'), parsePlatform('linux/arm64')] });
  assert.equal((await rootOf(both)).digest, src);
  await assert.rejects(copyReference(`oci:${SAMPLE}`, `oci:${path.join(dir, 'none')}`, { ...quiet, platforms: [parsePlatform('linux/s390x')] }),
    (err) => isBerthError(err, 'BERTH_NO_MATCHING_PLATFORM'));
});

/** Checks that every image layer decompresses (with the real tool) to a tar whose sha256 is the diff_id. */
async function checkLayers(t: TestContext, layout: string, tool: 'zstd' | 'gzip', mediaSuffix: string): Promise<number> {
  const index = await blobJson<Index>(layout, (await rootOf(layout)).digest);
  let checked = 0;
  for (const entry of index.manifests) {
    if (entry.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') continue;
    const m = await blobJson<Manifest>(layout, entry.digest);
    const config = await blobJson<{ rootfs: { diff_ids: string[] } }>(layout, m.config.digest);
    for (const [i, layer] of m.layers.entries()) {
      assert.ok(layer.mediaType.endsWith(mediaSuffix), `${layer.mediaType} ends with ${mediaSuffix}`);
      const out = await run(requirePeer(tool), ['-dc', path.join(layout, 'blobs', 'sha256', layer.digest.slice(7))], { encoding: 'buffer' });
      assert.equal(out.code, 0, out.stderr);
      assert.equal(`sha256:${sha256Hex(out.raw!)}`, config.rootfs.diff_ids[i], `layer ${i} of ${entry.digest}`);
      checked++;
    }
  }
  t.diagnostic(`${checked} layers checked with ${tool} -dc`);
  return checked;
}

test('--compression zstd: real zstd -dc gives tars whose sha256 are the diff_ids; configs unchanged; stale attestations left out', async (t) => {
  if (!needPeer(t, 'zstd')) return;
  const dir = await withTemp(t);
  const out = path.join(dir, 'z');
  const notes: string[] = [];
  await copyReference(`oci:${SAMPLE}`, `oci:${out}`, { ...quiet, compression: 'zstd', onEvent: (e) => e.type === 'note' && notes.push(e.message) });
  assert.equal(await checkLayers(t, out, 'zstd', '+zstd'), 6);
  assert.equal(notes.filter((n) => /attestation .* left out/.test(n)).length, 2, notes.join('\n'));
  const srcIndex = await blobJson<Index>(SAMPLE, (await rootOf(SAMPLE)).digest);
  const index = await blobJson<Index>(out, (await rootOf(out)).digest);
  const images = index.manifests.filter((m) => m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest');
  for (const [i, img] of images.entries()) {
    const before = await blobJson<Manifest>(SAMPLE, srcIndex.manifests.filter((m) => m.platform?.os !== 'unknown')[i]!.digest);
    const after = await blobJson<Manifest>(out, img.digest);
    assert.equal(after.config.digest, before.config.digest, 'config bytes unchanged');
    assert.notEqual(img.digest, before.layers[0]!.digest);
  }
  // The statements name the original manifest digests, which recompression changes: left out.
  assert.equal(index.manifests.length, 2, 'attestations of rewritten manifests are left out');
  await noProblems(`oci:${out}`);
});

test('--compression gzip from uncompressed layers: real gzip -dc gives the diff_ids; none goes back', async (t) => {
  if (!needPeer(t, 'gzip')) return;
  const dir = await withTemp(t);
  const none = path.join(dir, 'none');
  await copyReference(`oci:${SAMPLE}`, `oci:${none}`, { ...quiet, compression: 'none' });
  const index = await blobJson<Index>(none, (await rootOf(none)).digest);
  const m = await blobJson<Manifest>(none, index.manifests[0]!.digest);
  const config = await blobJson<{ rootfs: { diff_ids: string[] } }>(none, m.config.digest);
  assert.deepEqual(m.layers.map((l) => l.digest), config.rootfs.diff_ids, 'uncompressed layers are named by their diff_ids');
  assert.ok(m.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar'));
  const gz = path.join(dir, 'gz');
  await copyReference(`oci:${none}`, `oci:${gz}`, { ...quiet, compression: 'gzip' });
  assert.equal(await checkLayers(t, gz, 'gzip', '+gzip'), 6);
});

test('--format docker converts to a manifest list of schema 2 manifests; refusals name what cannot be expressed', async (t) => {
  const dir = await withTemp(t);
  const out = path.join(dir, 'd');
  const notes: string[] = [];
  await copyReference(`oci:${SAMPLE}`, `oci:${out}`, { ...quiet, format: 'docker', onEvent: (e) => e.type === 'note' && notes.push(e.message) });
  assert.ok(notes.some((n) => /attestation .* left out/.test(n)), 'attestations of converted manifests are left out, with a note');
  const root = await rootOf(out);
  assert.equal(root.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
  const list = await blobJson<Index>(out, root.digest);
  assert.equal(list.manifests.length, 2);
  const srcIndex = await blobJson<Index>(SAMPLE, (await rootOf(SAMPLE)).digest);
  for (const [i, entry] of list.manifests.entries()) {
    assert.equal(entry.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const m = await blobJson<Manifest>(out, entry.digest);
    const before = await blobJson<Manifest>(SAMPLE, srcIndex.manifests[i]!.digest);
    assert.equal(m.config.mediaType, 'application/vnd.docker.container.image.v1+json');
    assert.equal(m.config.digest, before.config.digest);
    assert.deepEqual(m.layers.map((l) => l.digest), before.layers.map((l) => l.digest), 'layer bytes untouched');
    assert.ok(m.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
  }
  // and back to OCI: the manifests are OCI again, layers still the same bytes
  const back = path.join(dir, 'back');
  await copyReference(`oci:${out}`, `oci:${back}`, { ...quiet, format: 'oci' });
  const backIndex = await blobJson<Index>(back, (await rootOf(back)).digest);
  assert.equal(backIndex.mediaType, 'application/vnd.oci.image.index.v1+json');

  const refusals: Array<{ name: string; opts: CopyReferenceOptions; match: RegExp }> = [
    { name: 'zstd layers in Docker schema 2', opts: { format: 'docker', compression: 'zstd', attestations: 'drop' }, match: /zstd/ },
  ];
  for (const row of refusals) {
    const target = path.join(dir, `refused-${row.name.replace(/\W+/g, '-')}`);
    await assert.rejects(copyReference(`oci:${SAMPLE}`, `oci:${target}`, { ...quiet, ...row.opts }), (err) => {
      assert.ok(isBerthError(err, 'BERTH_UNSUPPORTED'), String(err));
      assert.match((err as Error).message, row.match);
      return true;
    }, row.name);
    assert.deepEqual(await fingerprint(target), {}, `${row.name}: nothing written`);
  }
});

test('adding to an existing layout: blobs de-duplicated, names added, a taken name replaced only with overwrite', async (t) => {
  const dir = await withTemp(t);
  const out = path.join(dir, 'shared');
  await copyReference(`oci:${SAMPLE}`, `oci:${out}:sample`, quiet);
  const r2 = await copyReference(`oci-archive:${MULTI_FIXTURE}`, `oci:${out}:hello`, quiet);
  assert.equal(r2.skipped, 0);
  // the same image again: every blob is skipped, the name stays
  const r3 = await copyReference(`oci:${SAMPLE}`, `oci:${out}:sample`, quiet);
  assert.equal(r3.copied, 0);
  assert.ok(r3.skipped > 0);
  const index = (await readJson(path.join(out, 'index.json'))) as unknown as Index;
  assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']), ['sample', 'hello']);
  // a taken name: refused, layout untouched
  const before = await fingerprint(out);
  await assert.rejects(copyReference(`oci-archive:${MULTI_FIXTURE}`, `oci:${out}:sample`, quiet), (err) => isBerthError(err, 'BERTH_EXISTS'));
  assert.deepEqual(await fingerprint(out), before);
  assert.deepEqual((await run('ls', ['-A', dir])).stdout.trim().split('\n'), ['shared'], 'no temp files beside the layout');
  await copyReference(`oci-archive:${MULTI_FIXTURE}`, `oci:${out}:sample`, { ...quiet, overwrite: true });
  const after = (await readJson(path.join(out, 'index.json'))) as unknown as Index;
  assert.deepEqual(after.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest]), [['hello', FX.index], ['sample', FX.index]]);
  await noProblems(`oci:${out}:hello`);
});

test('several sources go into one archive, each with its own names', async (t) => {
  const dir = await withTemp(t);
  const a = path.join(dir, 'a');
  await copyReference(`oci-archive:${MULTI_FIXTURE}`, `oci:${a}:hello:1`, quiet);
  const out = path.join(dir, 'two.tar');
  const result = await copyReferences([`oci:${a}:hello:1`, `oci:${SAMPLE}`], `oci-archive:${out}`, quiet);
  assert.equal(result.images.length, 2);
  const tree = await treeOf(`oci-archive:${out}`);
  assert.equal(tree.tree.children.length, 2);
  const manifest = await rawManifestOf(`oci-archive:${out}:hello:1`);
  assert.equal(manifest.descriptor.digest, FX.index);
});

test('peers read berth output: skopeo inspect and copy, umoci unpack', async (t) => {
  if (!needPeer(t, 'skopeo') || !needPeer(t, 'umoci')) return;
  const dir = await withTemp(t);
  const layout = path.join(dir, 'layout');
  const archive = path.join(dir, 'sample.tar');
  await copyReference(`oci:${SAMPLE}`, `oci:${layout}:app`, { ...quiet, platforms: [parsePlatform('linux/amd64')], compression: 'zstd' });
  await copyReference(`oci:${SAMPLE}`, `oci-archive:${archive}:app`, quiet);
  const skopeo = requirePeer('skopeo');
  for (const ref of [`oci:${layout}:app`, `oci-archive:${archive}:app`]) {
    const out = await run(skopeo, ['--override-os', 'linux', '--override-arch', 'amd64', 'inspect', ref]);
    assert.equal(out.code, 0, `skopeo inspect ${ref}: ${out.stderr}`);
    const info = JSON.parse(out.stdout) as { Architecture: string; Layers: string[] };
    assert.equal(info.Architecture, 'amd64');
    assert.equal(info.Layers.length, 3);
    const copied = path.join(dir, `skopeo-${info.Layers.length}-${ref.startsWith('oci:') ? 'dir' : 'tar'}`);
    const cp = await run(skopeo, ['--override-os', 'linux', '--override-arch', 'amd64', 'copy', ref, `oci:${copied}:x`]);
    assert.equal(cp.code, 0, `skopeo copy ${ref}: ${cp.stderr}`);
  }
  // umoci (0.4) reads gzip layers and wants one manifest under the name: one platform, no attestations
  const one = path.join(dir, 'one');
  await copyReference(`oci-archive:${archive}:app`, `oci:${one}:img`, { ...quiet, platforms: [parsePlatform('linux/amd64')], attestations: 'drop' });
  const bundle = path.join(dir, 'bundle');
  const umoci = await run(requirePeer('umoci'), ['unpack', '--image', `${one}:img`, bundle]);
  assert.equal(umoci.code, 0, `umoci unpack: ${umoci.stderr}`);
  assert.match(await readFile(path.join(bundle, 'rootfs', 'etc', 'os-release'), 'utf8'), /\S/);
  const files = await run('find', [path.join(bundle, 'rootfs'), '-type', 'f']);
  assert.ok(files.stdout.includes('etc/greeting'), 'umoci unpacked the files');
});
