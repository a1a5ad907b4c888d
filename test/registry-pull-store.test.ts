/**
 * `berth pull docker://…` with no destination pulls into the local store (`berth load`'s path)
 * and prints `Loaded image: NAME:TAG`; against the real registry 2.8.2, with skopeo as the peer
 * that pushed the images and that says what the config and layers are. A multi-platform index
 * gives the platform asked for; a second pull reuses the layers; flags that only apply to a
 * destination are refused; `berth pull REF DST` still writes DST.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { fixture, json } from './support/cli.js';
import { needPeer, peerPath } from './support/peers.js';
import { berthEnv, skopeoFacts } from './support/registry-cli.js';
import { skopeo, startRegistry, type RunningRegistry } from './support/registry.js';

const MULTI = fixture('docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar');
const DIVE = fixture('wagoodman__dive/.data/test-docker-image.tar');

const havePeers = (): boolean => peerPath('registry') !== undefined && peerPath('skopeo') !== undefined;
const need = (t: TestContext): boolean => needPeer(t, 'registry') && needPeer(t, 'skopeo');

let reg: RunningRegistry | undefined;
let host = '';
let work = '';

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-pull-store-'));
  if (!havePeers()) return;
  reg = await startRegistry();
  host = reg.host;
  await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${DIVE}`, `docker://${host}/team/dive:1`]);
  await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci-archive:${MULTI}`, `docker://${host}/team/hello:multi`]);
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

interface Images {
  images: Array<{ id: string; repoTags: string[]; layers: number; problems: string[] }>;
}

test('pull with no destination loads into the local store and prints Loaded image', async (t) => {
  if (!need(t)) return;
  const root = path.join(work, 'store');
  const berth = (...argv: string[]) => berthEnv({}, ['--root', root, ...argv]);
  const ref = `docker://${host}/team/dive:1`;
  const r = await berth('pull', ref);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `Loaded image: ${host}/team/dive:1\n`);

  const facts = await skopeoFacts(ref);
  const listed = json<Images>(await berth('images', '--format', 'json'), 'images');
  assert.equal(listed.images.length, 1);
  const img = listed.images[0]!;
  assert.equal(img.id, facts.configDigest, 'image ID = config digest, as docker pull gives');
  assert.deepEqual(img.repoTags, [`${host}/team/dive:1`]);
  assert.equal(img.layers, facts.layers.length);
  assert.deepEqual(img.problems, []);
  // the stored image reads back with the registry's diff_ids
  const fromStore = json<{ configDigest: string; layers: Array<{ diffId: string }> }>(await berth('inspect', '--format', 'json', `store:${host}/team/dive:1`), 'inspect store');
  const fromRegistry = json<{ configDigest: string; layers: Array<{ diffId: string }> }>(await berth('inspect', '--format', 'json', ref), 'inspect registry');
  assert.equal(fromStore.configDigest, fromRegistry.configDigest);
  assert.deepEqual(fromStore.layers.map((l) => l.diffId), fromRegistry.layers.map((l) => l.diffId));
  const fsck = await berth('store', 'fsck');
  assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);

  // again under another tag: same image, its layers reused
  await skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ref, `docker://${host}/team/dive:2`]);
  const again = await berth('pull', '--format', 'json', `docker://${host}/team/dive:2`);
  assert.equal(again.code, 2, 'a destination flag with no destination is a usage error');
  const second = await berth('pull', `docker://${host}/team/dive:2`);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout, `Loaded image: ${host}/team/dive:2\n`);
  const after = json<Images>(await berth('images', '--format', 'json'), 'images');
  assert.equal(after.images.length, 1);
  assert.deepEqual([...after.images[0]!.repoTags].sort(), [`${host}/team/dive:1`, `${host}/team/dive:2`]);

  // a multi-platform index: the platform asked for
  const arm = await berth('pull', '--platform', 'linux/arm64', `docker://${host}/team/hello:multi`);
  assert.equal(arm.code, 0, arm.stderr);
  assert.equal(arm.stdout, `Loaded image: ${host}/team/hello:multi\n`);
  const armConfig = json<{ configDigest: string }>(await berthEnv({}, ['inspect', '--format', 'json', '--platform', 'linux/arm64', `docker://${host}/team/hello:multi`]), 'inspect arm64').configDigest;
  const byTag = json<Images>(await berth('images', '--format', 'json', `${host}/team/hello`), 'images hello');
  assert.deepEqual(byTag.images.map((i) => i.id), [armConfig]);
  const two = await berth('pull', '--platform', 'linux/arm64', '--platform', 'linux/amd64', `docker://${host}/team/hello:multi`);
  assert.equal(two.code, 2);

  // with a destination: as before
  const dir = path.join(work, 'layout');
  const toLayout = await berthEnv({}, ['pull', ref, `oci:${dir}:dive`]);
  assert.equal(toLayout.code, 0, toLayout.stderr);
  assert.match(toLayout.stdout, /^pulled docker:\/\/127\.0\.0\.1:\d+\/team\/dive:1 to oci:.*:dive: sha256:[0-9a-f]{64}\n/);
  const notRegistry = await berth('pull', `oci:${dir}:dive`);
  assert.equal(notRegistry.code, 2);
  assert.match(notRegistry.stderr, /use berth load/);
});

test('pull records what docker pull records: the RepoDigest and each layer\'s registry source', async (t) => {
  if (!need(t)) return;
  const root = path.join(work, 'store-meta');
  const berth = (...argv: string[]) => berthEnv({}, ['--root', root, ...argv]);
  const ref = `docker://${host}/team/dive:1`;
  const r = await berth('pull', ref);
  assert.equal(r.code, 0, r.stderr);
  const facts = await skopeoFacts(ref);
  const imageDir = path.join(root, 'image/overlay2');
  const repos = JSON.parse(await readFile(path.join(imageDir, 'repositories.json'), 'utf8')) as { Repositories: Record<string, Record<string, string>> };
  assert.deepEqual(repos.Repositories[`${host}/team/dive`], { [`${host}/team/dive:1`]: facts.configDigest, [`${host}/team/dive@${facts.digest}`]: facts.configDigest });
  const listed = json<{ images: Array<{ repoDigests: string[] }> }>(await berth('images', '--format', 'json'), 'images');
  assert.deepEqual(listed.images[0]!.repoDigests, [`${host}/team/dive@${facts.digest}`]);
  const diffIds = json<{ layers: Array<{ diffId: string }> }>(await berth('inspect', '--format', 'json', `store:${host}/team/dive:1`), 'inspect').layers.map((l) => l.diffId);
  assert.equal(diffIds.length, facts.layers.length);
  for (const [i, diffId] of diffIds.entries()) {
    const blob = facts.layers[i]!;
    const meta = JSON.parse(await readFile(path.join(imageDir, 'distribution/v2metadata-by-diffid/sha256', diffId.slice(7)), 'utf8')) as unknown;
    assert.deepEqual(meta, [{ Digest: blob, SourceRepository: `${host}/team/dive`, HMAC: '' }]);
    assert.equal(await readFile(path.join(imageDir, 'distribution/diffid-by-digest/sha256', blob.slice(7)), 'utf8'), diffId);
  }
  // pulled again under another name: one more source per layer, the old one kept first
  await skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ref, `docker://${host}/other/dive:1`]);
  assert.equal((await berth('pull', `docker://${host}/other/dive:1`)).code, 0);
  const meta = JSON.parse(await readFile(path.join(imageDir, 'distribution/v2metadata-by-diffid/sha256', diffIds[0]!.slice(7)), 'utf8')) as Array<{ SourceRepository: string }>;
  assert.deepEqual(meta.map((m) => m.SourceRepository), [`${host}/team/dive`, `${host}/other/dive`]);
  // a plain load from an archive records no registry source
  const loaded = path.join(work, 'store-load');
  assert.equal((await berthEnv({}, ['--root', loaded, 'load', '-i', DIVE])).code, 0);
  await assert.rejects(readFile(path.join(loaded, 'image/overlay2/distribution/v2metadata-by-diffid/sha256', diffIds[0]!.slice(7))), { code: 'ENOENT' });
});
