/**
 * Pushing and pulling through the real registry 2.8.2: berth pushes real fixtures (docker-archive,
 * single- and multi-platform OCI archives, a 14-layer docker save in small PATCH chunks, a
 * recompressed image of unknown digests), and skopeo reads back exactly what berth reports;
 * unchanged images keep their manifest digests byte for byte; a second push uploads nothing; a
 * push to a sibling repository mounts instead of uploading; pull writes a layout that verifies;
 * push with Basic auth needs credentials.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { configureRegistry, copyReferences } from '../src/index.js';
import { assertCleanError, fixture, json } from './support/cli.js';
import { needPeer, peerPath } from './support/peers.js';
import { berthEnv, skopeoFacts } from './support/registry-cli.js';
import { hasTool, makeHtpasswd, skopeo, startRegistry, type RunningRegistry } from './support/registry.js';

const MULTI = fixture('docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar');
const SINGLE = fixture('docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-gzip.tar');
const DOCKER_ARCHIVE = fixture('containers__image/docker/archive/fixtures/almostempty.tar');
const DIVE = fixture('wagoodman__dive/.data/test-docker-image.tar');

const havePeers = (): boolean => peerPath('registry') !== undefined && peerPath('skopeo') !== undefined;
const need = (t: TestContext): boolean => needPeer(t, 'registry') && needPeer(t, 'skopeo');
const berth = (...argv: string[]) => berthEnv({}, argv);

let reg: RunningRegistry | undefined;
let host = '';
let work = '';

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-push-'));
  if (!havePeers()) return;
  reg = await startRegistry();
  host = reg.host;
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

function pushedDigest(stdout: string): string {
  const m = /: (sha256:[0-9a-f]{64})\n/.exec(stdout);
  assert.ok(m, `no digest in:\n${stdout}`);
  return m[1]!;
}

test('push keeps unchanged images byte for byte; skopeo reads back what berth reports', async (t) => {
  if (!need(t)) return;
  for (const [src, name] of [[`oci-archive:${SINGLE}`, 'single'], [`oci-archive:${MULTI}`, 'multi'], [`docker-archive:${DOCKER_ARCHIVE}`, 'empty']] as const) {
    const dst = `docker://${host}/pushed/${name}:1`;
    const r = await berth('push', src, dst);
    assert.equal(r.code, 0, r.stderr);
    const digest = pushedDigest(r.stdout);
    const raw = await skopeo(['inspect', '--tls-verify=false', '--raw', dst]);
    const { createHash } = await import('node:crypto');
    assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, digest, `${name}: skopeo gets the manifest berth pushed`);
    assert.equal((await berth('digest', dst)).stdout.trim(), digest);
    const v = await berth('verify', '--quiet', dst);
    assert.equal(v.code, 0, v.stdout);
    // skopeo copies it out, checking every digest itself
    await skopeo(['copy', '--all', '--src-tls-verify=false', dst, `oci:${path.join(work, `out-${name}`)}:x`]);
  }
  // single-platform OCI images are pushed unchanged: same manifest digest as in the archive
  const source = (await berth('digest', `oci-archive:${SINGLE}`)).stdout.trim();
  const sourceManifest = json<{ digest: string }>(await berth('inspect', '--format', 'json', `oci-archive:${SINGLE}`), 'inspect').digest;
  const pushed = json<{ digest: string; indexDigest?: string }>(await berth('inspect', '--format', 'json', `docker://${host}/pushed/single:1`), 'inspect');
  assert.equal(pushed.digest, sourceManifest);
  assert.ok(pushed.indexDigest === undefined || pushed.indexDigest === source);
  const facts = await skopeoFacts(`docker://${host}/pushed/empty:1`);
  const src = json<{ configDigest: string; layers: Array<{ digest: string }> }>(await berth('inspect', '--format', 'json', `docker-archive:${DOCKER_ARCHIVE}`), 'inspect');
  assert.equal(facts.configDigest, src.configDigest);
  assert.deepEqual(facts.layers, src.layers.map((l) => l.digest));
});

test('a second push uploads nothing; a push to a sibling repository mounts every blob', async (t) => {
  if (!need(t)) return;
  const first = await berth('push', `oci-archive:${MULTI}`, `docker://${host}/mount/src:1`);
  assert.equal(first.code, 0, first.stderr);
  const again = await berth('push', `oci-archive:${MULTI}`, `docker://${host}/mount/src:2`);
  assert.match(again.stdout, /\n0 blob\(s\) uploaded \(0 B read\), \d+ already there or mounted\n$/);
  const sibling = await berth('push', `docker://${host}/mount/src:1`, `docker://${host}/mount/dst:1`);
  assert.equal(sibling.code, 0, sibling.stderr);
  assert.match(sibling.stdout, /\n0 blob\(s\) uploaded \(0 B read\), [1-9]\d* already there or mounted\n$/, 'mounted, not read');
  assert.equal(pushedDigest(sibling.stdout), pushedDigest(first.stdout));
  const v = await berth('verify', '--quiet', `docker://${host}/mount/dst:1`);
  assert.equal(v.code, 0, v.stdout);
});

test('chunked PATCH uploads (14 layers in 64 KiB chunks) and recompression of unknown digests', async (t) => {
  if (!need(t)) return;
  configureRegistry({ env: {}, uploadChunkSize: 64 * 1024 });
  const dst = `docker://${host}/chunked/dive:1`;
  const result = await copyReferences([`docker-archive:${DIVE}`], dst, {});
  assert.equal(result.images.length, 1);
  const facts = await skopeoFacts(dst);
  assert.equal(facts.digest, result.images[0]!.root.digest);
  assert.equal(facts.layers.length, 14);
  const src = json<{ configDigest: string; layers: Array<{ digest: string }> }>(await berth('inspect', '--format', 'json', `docker-archive:${DIVE}`), 'inspect');
  assert.equal(facts.configDigest, src.configDigest);
  await skopeo(['copy', '--src-tls-verify=false', dst, `oci:${path.join(work, 'dive')}:x`]);

  // gzip: every layer's digest is known only after it streamed (putComputed, always chunked)
  const gz = `docker://${host}/chunked/dive:gz`;
  const r = await copyReferences([`docker-archive:${DIVE}`], gz, { compression: 'gzip' });
  const gzFacts = await skopeoFacts(gz);
  assert.equal(gzFacts.digest, r.images[0]!.root.digest);
  const v = await berth('verify', '--quiet', '--format', 'json', gz);
  assert.equal(v.code, 0, v.stdout);
  const inspected = json<{ layers: Array<{ mediaType: string; diffId: string }> }>(await berth('inspect', '--format', 'json', gz), 'inspect');
  assert.ok(inspected.layers.every((l) => l.mediaType.endsWith('gzip')));
  assert.deepEqual(inspected.layers.map((l) => l.diffId), json<{ layers: Array<{ diffId: string }> }>(await berth('inspect', '--format', 'json', `docker-archive:${DIVE}`), 'src').layers.map((l) => l.diffId));
  configureRegistry({ env: {} });
});

test('pull writes an OCI layout that verifies, with the registry digest', async (t) => {
  if (!need(t)) return;
  await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci-archive:${MULTI}`, `docker://${host}/bypull/multi:1`]);
  const want = (await berth('digest', `docker://${host}/bypull/multi:1`)).stdout.trim();
  const dir = path.join(work, 'pulled');
  const r = await berth('pull', `docker://${host}/bypull/multi:1`, `oci:${dir}:multi`);
  assert.equal(r.code, 0, r.stderr);
  const v = await berth('verify', '--quiet', `oci:${dir}`);
  assert.equal(v.code, 0, v.stdout);
  const got = (await berth('digest', `oci:${dir}:multi`)).stdout.trim();
  // the engine may drop an attestation whose subject is absent from the index; then the digest changes
  if (got !== want) assert.match(r.stderr, /note:/, 'a changed digest must be explained by a note');
  const wrong = await berth('pull', `oci:${dir}`, `oci:${dir}2`);
  assert.equal(wrong.code, 2);
});

test('push to a registry with Basic auth: a clear 401 without credentials, works with --creds', async (t) => {
  if (!need(t)) return;
  if (!hasTool('/usr/bin/htpasswd')) {
    if (process.env.CI === 'true') throw new Error('htpasswd (apache2-utils) is missing and CI requires it');
    return void t.skip('htpasswd missing');
  }
  const file = path.join(work, 'htpasswd');
  await makeHtpasswd(file, 'pusher', 'pw-123');
  const locked = await startRegistry({ htpasswd: file });
  try {
    const dst = `docker://${locked.host}/sec/app:1`;
    const anon = await berth('push', `docker-archive:${DOCKER_ARCHIVE}`, dst);
    assert.equal(anon.code, 1);
    assertCleanError(anon, 'push anonymous');
    assert.match(anon.stderr, /registry answered 401 (?:UNAUTHORIZED|Unauthorized).*no credentials for 127\.0\.0\.1:\d+/);
    const ok = await berth('--creds', 'pusher:pw-123', 'push', `docker-archive:${DOCKER_ARCHIVE}`, dst);
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stdout + ok.stderr, /pw-123/);
    const sk = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', 'pusher:pw-123', dst])) as { Digest: string };
    assert.equal(sk.Digest, pushedDigest(ok.stdout));
  } finally {
    await locked.stop();
  }
});
