/**
 * The registry transport against the real distribution registry 2.8.2: images pushed by skopeo
 * (a buildkit multi-platform OCI archive with attestations, a single-platform OCI archive and a
 * dockerd-saved docker-archive) are read by berth over docker:// and must agree with
 * `skopeo inspect` on the manifest digest, the config digest and the layers. Also tags with
 * pagination, catalog, digest by HEAD, the raw read commands, verify (and what it catches when
 * the registry's storage is damaged), delete, referrers through the fallback tag, and errors.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, rm, writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { assertCleanError, fixture, json } from './support/cli.js';
import { needPeer, peerPath } from './support/peers.js';
import { berthEnv, skopeoFacts } from './support/registry-cli.js';
import { pushBlob, pushManifest, sha256, skopeo, startRegistry, type RunningRegistry } from './support/registry.js';

const MULTI = fixture('docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar');
const SINGLE = fixture('docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-gzip.tar');
const DOCKER_ARCHIVE = fixture('containers__image/docker/archive/fixtures/almostempty.tar');

const havePeers = (): boolean => peerPath('registry') !== undefined && peerPath('skopeo') !== undefined;
function need(t: TestContext): boolean {
  return needPeer(t, 'registry') && needPeer(t, 'skopeo');
}

let reg: RunningRegistry | undefined;
let base = '';
let host = '';

const berth = (...argv: string[]) => berthEnv({}, argv);

before(async () => {
  if (!havePeers()) return;
  reg = await startRegistry();
  host = reg.host;
  base = `http://${host}`;
  await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci-archive:${MULTI}`, `docker://${host}/hello:multi`]);
  await skopeo(['copy', '--dest-tls-verify=false', `oci-archive:${SINGLE}`, `docker://${host}/hello:single`]);
  await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${DOCKER_ARCHIVE}`, `docker://${host}/team/empty:1`]);
  for (const tag of ['2', '3', 'latest']) {
    await skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${host}/team/empty:1`, `docker://${host}/team/empty:${tag}`]);
  }
});

after(async () => {
  await reg?.stop();
});

interface Inspected {
  digest: string;
  indexDigest?: string;
  configDigest: string;
  mediaType: string;
  platform?: string;
  layers: Array<{ digest: string; diffId?: string }>;
}

async function inspect(ref: string, ...flags: string[]): Promise<Inspected> {
  const r = await berth('inspect', '--format', 'json', ...flags, ref);
  assert.equal(r.code, 0, `berth inspect ${ref}: ${r.stderr}`);
  return json<Inspected>(r, `inspect ${ref}`);
}

test('single-platform images read over docker:// agree with skopeo inspect', async (t) => {
  if (!need(t)) return;
  for (const name of ['hello:single', 'team/empty:1']) {
    const ref = `docker://${host}/${name}`;
    const want = await skopeoFacts(ref);
    const got = await inspect(ref);
    assert.equal(got.digest, want.digest, `${name}: manifest digest`);
    assert.equal(got.configDigest, want.configDigest, `${name}: config digest`);
    assert.deepEqual(got.layers.map((l) => l.digest), want.layers, `${name}: layers`);
    const d = await berth('digest', ref);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout.trim(), want.digest);
  }
});

test('a multi-platform index: digest, per-platform inspect, platforms, tree and manifest bytes agree with skopeo', async (t) => {
  if (!need(t)) return;
  const ref = `docker://${host}/hello:multi`;
  const index = await skopeoFacts(ref, ['--override-os', 'linux', '--override-arch', 'arm64']);
  const raw = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--raw', ref])) as { manifests: Array<{ digest: string; platform?: { architecture: string } }> };
  const d = await berth('digest', '--format', 'json', ref);
  assert.equal(json<{ digest: string }>(d, 'digest').digest, index.digest);

  for (const arch of ['amd64', 'arm64']) {
    const want = await skopeoFacts(ref, ['--override-os', 'linux', '--override-arch', arch]);
    const got = await inspect(ref, '--platform', `linux/${arch}`);
    assert.equal(got.indexDigest, index.digest);
    assert.equal(got.digest, raw.manifests.find((m) => m.platform?.architecture === arch)!.digest, `${arch}: manifest digest`);
    assert.equal(got.configDigest, want.configDigest, `${arch}: config digest`);
    assert.deepEqual(got.layers.map((l) => l.digest), want.layers, `${arch}: layers`);

    const cfg = await berth('config', '--platform', `linux/${arch}`, ref);
    assert.equal(cfg.code, 0, cfg.stderr);
    assert.equal(sha256(cfg.bytes), want.configDigest, `${arch}: config bytes`);
    const blob = await berth('blob', ref, want.layers[0]!);
    assert.equal(blob.code, 0, blob.stderr);
    assert.equal(sha256(blob.bytes), want.layers[0], `${arch}: layer bytes`);
  }

  const m = await berth('manifest', ref);
  assert.equal(m.code, 0, m.stderr);
  assert.equal(sha256(m.bytes), index.digest, 'manifest prints the exact index bytes');

  const p = await berth('platforms', '--format', 'json', ref);
  const plats = json<{ platforms: Array<{ platform: string; present: boolean }> }>(p, 'platforms').platforms;
  assert.deepEqual(plats.map((x) => x.platform).sort(), ['linux/amd64', 'linux/arm64']);
  assert.ok(plats.every((x) => x.present));

  const tree = await berth('tree', '--format', 'json', ref);
  assert.equal(tree.code, 0, tree.stderr);
  const text = tree.stdout;
  for (const entry of raw.manifests) assert.ok(text.includes(entry.digest), `tree lists ${entry.digest}`);
  assert.equal(json<{ format: string }>(tree, 'tree').format, 'registry');
});

test('verify over docker:// reads every blob and finds the images clean', async (t) => {
  if (!need(t)) return;
  for (const name of ['hello:multi', 'hello:single', 'team/empty:1']) {
    const r = await berth('verify', '--quiet', '--format', 'json', `docker://${host}/${name}`);
    const report = json<{ ok: boolean; problems: Array<{ severity: string; message: string }>; blobs: number }>(r, `verify ${name}`);
    assert.equal(r.code, 0, `${name}: ${r.stdout}`);
    assert.ok(report.ok);
    assert.deepEqual(report.problems.filter((p) => p.severity === 'error'), []);
    assert.ok(report.blobs >= 3);
  }
});

test('tags follow Link pagination and match skopeo list-tags; catalog lists the repositories', async (t) => {
  if (!need(t)) return;
  const want = (JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${host}/team/empty`])) as { Tags: string[] }).Tags;
  for (const page of [[], ['--page-size', '1'], ['--page-size', '3']]) {
    const r = await berth('tags', '--format', 'json', ...page, `docker://${host}/team/empty`);
    assert.equal(r.code, 0, r.stderr);
    const got = json<{ repository: string; tags: string[] }>(r, 'tags');
    assert.deepEqual([...got.tags].sort(), [...want].sort(), `tags with ${page.join(' ') || 'default paging'}`);
    assert.equal(got.repository, `docker://${host}/team/empty`);
  }
  const text = await berth('tags', `docker://${host}/hello`);
  assert.deepEqual(text.stdout.trim().split('\n').sort(), ['multi', 'single']);

  const c = await berth('catalog', '--page-size', '1', `docker://${host}`);
  assert.equal(c.code, 0, c.stderr);
  const repos = c.stdout.trim().split('\n');
  assert.ok(repos.includes('hello') && repos.includes('team/empty'), c.stdout);
});

test('errors name the reference and carry the registry error in one line', async (t) => {
  if (!need(t)) return;
  const r = await berth('inspect', `docker://${host}/hello:nope`);
  assert.equal(r.code, 1);
  assertCleanError(r, 'missing tag');
  assert.match(r.stderr, new RegExp(`reading docker://${host.replace(/\./g, '\\.')}/hello:nope: registry answered 404 MANIFEST_UNKNOWN: manifest unknown \\(tag nope\\)`));

  const repo = await berth('tags', `docker://${host}/nothing/here`);
  assert.equal(repo.code, 1);
  assertCleanError(repo, 'missing repo');
  assert.match(repo.stderr, /listing tags of docker:\/\/127\.0\.0\.1:\d+\/nothing\/here: registry answered 404 NAME_UNKNOWN/);

  const bad = await berth('inspect', 'docker://127.0.0.1:5000/UPPER:1');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /must be lowercase/);

  const refused = await berthEnv({}, ['digest', `docker://127.0.0.1:${await closedPort()}/x:1`]);
  assert.equal(refused.code, 1);
  assertCleanError(refused, 'connection refused');
  assert.match(refused.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+ \(connection refused/);
});

async function closedPort(): Promise<number> {
  const { freePort } = await import('./support/registry.js');
  return freePort();
}

test('referrers: registry 2.8 has no API (404), so the sha256-<hex> fallback tag is read', async (t) => {
  if (!need(t)) return;
  const subject = (await berth('digest', `docker://${host}/hello:single`)).stdout.trim();
  const subjectSize = Number((await berth('digest', '--format', 'json', `docker://${host}/hello:single`)).stdout.match(/"size": (\d+)/)![1]);
  // before anything is attached: no referrers
  const none = await berth('referrers', '--format', 'json', `docker://${host}/hello:single`);
  assert.equal(none.code, 0, none.stderr);
  assert.deepEqual(json<{ via: string; manifests: unknown[] }>(none, 'referrers').manifests, []);

  const note = new TextEncoder().encode('{"note":"hello, berth"}');
  const layerDigest = await pushBlob(base, 'hello', note);
  const empty = new TextEncoder().encode('{}');
  await pushBlob(base, 'hello', empty);
  const artifactType = 'application/vnd.example.note.v1+json';
  const referrer = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2, data: 'e30=' },
    layers: [{ mediaType: artifactType, digest: layerDigest, size: note.length }],
    subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject, size: subjectSize },
    annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
  }));
  const headers = await pushManifest(base, 'hello', sha256(referrer), 'application/vnd.oci.image.manifest.v1+json', referrer);
  assert.equal(headers.get('oci-subject'), null, 'registry 2.8 does not process subject');
  const fallbackTag = subject.replace(':', '-');
  const index = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(referrer), size: referrer.length, artifactType, annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' } }],
  }));
  await pushManifest(base, 'hello', fallbackTag, 'application/vnd.oci.image.index.v1+json', index);

  for (const ref of [`docker://${host}/hello:single`, `docker://${host}/hello@${subject}`]) {
    const r = await berth('referrers', '--format', 'json', ref);
    assert.equal(r.code, 0, r.stderr);
    const got = json<{ subject: string; via: string; tag: string; manifests: Array<{ digest: string; artifactType: string; annotations: Record<string, string> }> }>(r, 'referrers');
    assert.equal(got.subject, subject);
    assert.equal(got.via, 'tag-schema');
    assert.equal(got.tag, fallbackTag);
    assert.deepEqual(got.manifests.map((m) => [m.digest, m.artifactType]), [[sha256(referrer), artifactType]]);
    assert.equal(got.manifests[0]!.annotations['org.opencontainers.image.created'], '2026-01-01T00:00:00Z');
  }
  const filtered = await berth('referrers', '--format', 'json', '--artifact-type', 'application/other', `docker://${host}/hello:single`);
  assert.deepEqual(json<{ manifests: unknown[] }>(filtered, 'filtered').manifests, []);
  const text = await berth('referrers', `docker://${host}/hello:single`);
  assert.match(text.stdout, new RegExp(`referrers of ${subject} \\(fallback tag ${fallbackTag}\\): 1`));
  assert.match(text.stdout, /application\/vnd\.example\.note\.v1\+json/);
  // the referrer itself reads like any manifest
  const tree = await berth('tree', `docker://${host}/hello@${sha256(referrer)}`);
  assert.equal(tree.code, 0, tree.stderr);
});

test('delete removes a manifest by digest; a tag is refused; a registry that forbids deletes says so', async (t) => {
  if (!need(t)) return;
  await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${DOCKER_ARCHIVE}`, `docker://${host}/scratch:gone`]);
  const digest = (await berth('digest', `docker://${host}/scratch:gone`)).stdout.trim();
  const byTag = await berth('delete', `docker://${host}/scratch:gone`);
  assert.equal(byTag.code, 2);
  assert.match(byTag.stderr, /delete needs a digest/);
  const del = await berth('delete', `docker://${host}/scratch@${digest}`);
  assert.equal(del.code, 0, del.stderr);
  assert.equal(del.stdout, `deleted docker://${host}/scratch@${digest}\n`);
  const after = await berth('digest', `docker://${host}/scratch:gone`);
  assert.equal(after.code, 1);
  assert.match(after.stderr, /no manifest gone/);

  const locked = await startRegistry({ deleteEnabled: false });
  try {
    await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${DOCKER_ARCHIVE}`, `docker://${locked.host}/keep:1`]);
    const d = (await berth('digest', `docker://${locked.host}/keep:1`)).stdout.trim();
    const r = await berth('delete', `docker://${locked.host}/keep@${d}`);
    assert.equal(r.code, 1);
    assertCleanError(r, 'delete disabled');
    assert.match(r.stderr, /deleting docker:\/\/127\.0\.0\.1:\d+\/keep@sha256:[0-9a-f]{64}: registry answered 405 UNSUPPORTED: The operation is unsupported\. \(the registry does not allow deletes/);
  } finally {
    await locked.stop();
  }
});

test('reads fetch only what they need, and verify catches a damaged blob in the registry storage', async (t) => {
  if (!need(t)) return;
  const own = await startRegistry();
  try {
    await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${DOCKER_ARCHIVE}`, `docker://${own.host}/app:1`]);
    const ref = `docker://${own.host}/app:1`;
    const facts = await skopeoFacts(ref);
    const layer = facts.layers[0]!;
    const data = path.join(own.storageDir, 'docker/registry/v2/blobs/sha256', layer.slice(7, 9), layer.slice(7), 'data');
    const original = await readFile(data);
    // inspect needs the manifest and the config only: it works with the layer gone
    await rm(data);
    const ins = await berthEnv({}, ['inspect', '--format', 'json', ref]);
    assert.equal(ins.code, 0, ins.stderr);
    assert.deepEqual(json<Inspected>(ins, 'inspect').layers.map((l) => l.digest), facts.layers);
    const missing = await berthEnv({}, ['verify', '--quiet', ref]);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /missing|not found|BLOB_UNKNOWN/i);
    // same size, different bytes
    const bad = Buffer.from(original);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    await writeFile(data, bad);
    const r = await berthEnv({}, ['verify', '--quiet', ref]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /digest mismatch/);
    const blob = await berthEnv({}, ['blob', ref, layer]);
    assert.equal(blob.code, 1);
    assert.match(blob.stderr, /digest mismatch/);
  } finally {
    await own.stop();
  }
});

test('test registry storage holds only what was pushed (sanity of the harness)', async (t) => {
  if (!need(t)) return;
  const repos = await readdir(path.join(reg!.storageDir, 'docker/registry/v2/repositories'));
  assert.ok(repos.includes('hello') && repos.includes('team'));
  assert.equal(createHash('sha256').update('').digest('hex').length, 64);
});
