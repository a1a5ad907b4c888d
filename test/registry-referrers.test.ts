/**
 * Referrers travel with a push, against the real registry 2.8.2 (no referrers API: 404 on
 * /referrers/, no OCI-Subject on manifest PUT), so berth maintains the `sha256-<hex>` fallback
 * tag index (formats.md §13):
 * - regclient's testrepo layout (referrers listed in index.json and in its own fallback-tag
 *   indexes): pushing `v2` pushes its 5 referrers, writes one fallback index per subject — byte
 *   for byte the index regclient keeps in the layout — which `berth referrers` and
 *   `skopeo list-tags` see; a second push adds no duplicates; a registry-to-registry copy carries
 *   them again; `--referrers drop` leaves them.
 * - a layout built here: an artifact with annotations naming the image as subject, pushed to a
 *   registry whose fallback tag already lists another referrer: the entry is appended (with
 *   artifactType and annotations), the old one kept.
 * - a fallback tag that holds something other than an index: one clean error, the image's tag not
 *   written; a referrer of a manifest the copy rewrites is left out with a note.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { assertCleanError, fixture, json } from './support/cli.js';
import { needPeer, peerPath } from './support/peers.js';
import { berthEnv } from './support/registry-cli.js';
import { pushBlob, pushManifest, sha256, skopeo, startRegistry, type RunningRegistry } from './support/registry.js';

const TESTREPO = fixture('regclient__regclient/testdata/testrepo');
const DOCKER_ARCHIVE = fixture('containers__image/docker/archive/fixtures/almostempty.tar');
const V2 = 'sha256:dfae8f425735a5e3a72e40d6609e03079995511d48157c74d54801ff4430491e';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

const havePeers = (): boolean => peerPath('registry') !== undefined && peerPath('skopeo') !== undefined;
const need = (t: TestContext): boolean => needPeer(t, 'registry') && needPeer(t, 'skopeo');
const berth = (...argv: string[]) => berthEnv({}, argv);

let reg: RunningRegistry | undefined;
let host = '';
let base = '';
let work = '';

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-referrers-'));
  if (!havePeers()) return;
  reg = await startRegistry();
  host = reg.host;
  base = `http://${host}`;
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

interface Referrers {
  subject: string;
  via: string;
  tag?: string;
  manifests: Array<{ mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }>;
}

async function referrers(ref: string): Promise<Referrers> {
  const r = await berth('referrers', '--format', 'json', ref);
  assert.equal(r.code, 0, r.stderr);
  return json<Referrers>(r, `referrers ${ref}`);
}

async function rawManifest(repo: string, ref: string): Promise<Buffer> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { headers: { Accept: `${OCI_INDEX}, ${OCI_MANIFEST}` } });
  assert.equal(res.status, 200, `${repo}:${ref}`);
  return Buffer.from(await res.arrayBuffer());
}

async function listTags(repo: string): Promise<string[]> {
  return (JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${host}/${repo}`])) as { Tags: string[] }).Tags;
}

test('push of regclient testrepo:v2 carries its referrers; the fallback indexes match regclient\'s byte for byte', async (t) => {
  if (!need(t)) return;
  const dst = `docker://${host}/rc/app:v2`;
  // the registry has no referrers API
  assert.equal((await fetch(`${base}/v2/rc/app/referrers/${V2}`)).status, 404);
  const r = await berth('push', `oci:${TESTREPO}:v2`, dst);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`: ${V2}\\n5 referrer\\(s\\) pushed with it\\n`));

  const listed = await referrers(dst);
  assert.equal(listed.via, 'tag-schema');
  assert.equal(listed.tag, `sha256-${V2.slice(7)}`);
  assert.deepEqual(listed.manifests.map((m) => [m.digest.slice(0, 19), m.artifactType]), [
    ['sha256:0484e93c23cd', 'application/example.sbom'],
    ['sha256:741132f956e1', 'application/example.signature'],
  ]);

  // every subject with referrers in the layout got its fallback index, the same bytes regclient wrote
  const layout = JSON.parse(await readFile(path.join(TESTREPO, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const tags = await listTags('rc/app');
  const fallback = tags.filter((x) => /^sha256-[0-9a-f]{64}$/.test(x)).sort();
  assert.equal(fallback.length, 4, tags.join(' '));
  assert.ok(tags.includes('v2'));
  for (const tag of fallback) {
    const theirs = layout.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
    assert.ok(theirs, `the layout has ${tag} too`);
    const ours = await rawManifest('rc/app', tag);
    assert.equal(sha256(ours), theirs.digest, `${tag}: same index as regclient's`);
  }

  // again: nothing new, no duplicates (same index digests)
  const before = await Promise.all(fallback.map((x) => rawManifest('rc/app', x)));
  const again = await berth('push', `oci:${TESTREPO}:v2`, dst);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /\n0 blob\(s\) uploaded \(0 B read\), 12 already there or mounted\n$/);
  const after = await Promise.all(fallback.map((x) => rawManifest('rc/app', x)));
  assert.deepEqual(after.map((b) => sha256(b)), before.map((b) => sha256(b)));

  // registry to registry: referrers listed by the fallback tag are copied along
  const copy = await berth('copy', dst, `docker://${host}/rc/copy:v2`);
  assert.equal(copy.code, 0, copy.stderr);
  assert.deepEqual((await listTags('rc/copy')).sort(), tags.sort());
  assert.deepEqual((await referrers(`docker://${host}/rc/copy:v2`)).manifests, listed.manifests);
  const v = await berth('verify', '--quiet', `docker://${host}/rc/copy:v2`);
  assert.equal(v.code, 0, v.stdout + v.stderr);

  // --referrers drop: the image alone
  const dropped = await berth('push', '--referrers', 'drop', `oci:${TESTREPO}:v2`, `docker://${host}/rc/bare:v2`);
  assert.equal(dropped.code, 0, dropped.stderr);
  assert.doesNotMatch(dropped.stdout, /referrer\(s\)/);
  assert.deepEqual(await listTags('rc/bare'), ['v2']);
  const bad = await berth('push', '--referrers', 'maybe', `oci:${TESTREPO}:v2`, `docker://${host}/rc/bare:v2`);
  assert.equal(bad.code, 2);
});

/** Writes a blob into a layout; returns its descriptor fields. */
async function layoutBlob(dir: string, bytes: Uint8Array): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await writeFile(path.join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/** An artifact manifest naming `subject`, stored in the layout and listed in its index.json. */
async function addArtifact(dir: string, subject: { digest: string; size: number; mediaType: string }, artifactType: string, note: string, annotations?: Record<string, string>): Promise<{ digest: string; size: number }> {
  const empty = await layoutBlob(dir, Buffer.from('{}'));
  const layer = await layoutBlob(dir, Buffer.from(note));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty, data: 'e30=' },
    layers: [{ mediaType: 'text/plain', ...layer }],
    subject,
    ...(annotations ? { annotations } : {}),
  }));
  const m = await layoutBlob(dir, manifest);
  const indexFile = path.join(dir, 'index.json');
  const index = JSON.parse(await readFile(indexFile, 'utf8')) as { manifests: unknown[] };
  index.manifests.push({ mediaType: OCI_MANIFEST, ...m, artifactType });
  await writeFile(indexFile, JSON.stringify(index));
  return m;
}

test('a referrer listed in a layout built here joins an existing fallback index: appended with artifactType and annotations', async (t) => {
  if (!need(t)) return;
  const dir = path.join(work, 'layout');
  const made = await berth('copy', `docker-archive:${DOCKER_ARCHIVE}`, `oci:${dir}:app`);
  assert.equal(made.code, 0, made.stderr);
  const subject = json<{ digest: string; size: number; mediaType: string }>(await berth('digest', '--format', 'json', `oci:${dir}:app`), 'digest');
  const annotations = { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z', 'org.example.note': 'made by the test' };
  const sbom = await addArtifact(dir, { mediaType: subject.mediaType, digest: subject.digest, size: subject.size }, 'application/vnd.example.sbom.v1+json', 'an sbom', annotations);

  // someone else pushed a signature and its fallback index before
  const repo = 'built/app';
  const sigNote = Buffer.from('a signature');
  const empty = Buffer.from('{}');
  await pushBlob(base, repo, empty);
  const sigLayer = await pushBlob(base, repo, sigNote);
  const signature = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.signature.v1',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2, data: 'e30=' },
    layers: [{ mediaType: 'text/plain', digest: sigLayer, size: sigNote.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  }));
  await pushManifest(base, repo, sha256(signature), OCI_MANIFEST, signature);
  const tag = `sha256-${subject.digest.slice(7)}`;
  const existing = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(signature), size: signature.length, artifactType: 'application/vnd.example.signature.v1' }],
  }));
  await pushManifest(base, repo, tag, OCI_INDEX, existing);

  const dst = `docker://${host}/${repo}:1`;
  const r = await berth('push', `oci:${dir}:app`, dst);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\n1 referrer\(s\) pushed with it\n/);
  const index = JSON.parse((await rawManifest(repo, tag)).toString('utf8')) as Referrers & { schemaVersion: number; mediaType: string };
  assert.equal(index.mediaType, OCI_INDEX);
  assert.deepEqual(index.manifests, [
    { mediaType: OCI_MANIFEST, digest: sha256(signature), size: signature.length, artifactType: 'application/vnd.example.signature.v1' },
    { mediaType: OCI_MANIFEST, digest: sbom.digest, size: sbom.size, artifactType: 'application/vnd.example.sbom.v1+json', annotations },
  ]);
  const listed = await referrers(dst);
  assert.deepEqual(listed.manifests.map((m) => m.digest), [sha256(signature), sbom.digest]);
  // skopeo sees the fallback tag and reads the referrer by digest
  assert.deepEqual((await listTags(repo)).sort(), ['1', tag].sort());
  const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/${repo}@${sbom.digest}`]);
  assert.equal(sha256(raw), sbom.digest);

  // pushed again: no duplicate entry
  const again = await berth('push', `oci:${dir}:app`, dst);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((JSON.parse((await rawManifest(repo, tag)).toString('utf8')) as Referrers).manifests.length, 2);

  // a copy that rewrites the subject leaves the referrer out, and says so
  const converted = await berth('push', '--format', 'docker', `oci:${dir}:app`, `docker://${host}/built/docker:1`);
  assert.equal(converted.code, 0, converted.stderr);
  assert.doesNotMatch(converted.stdout, /referrer\(s\)/);
  assert.equal(converted.stderr, `note: referrer ${sbom.digest.slice(0, 19)} is left out: it refers to ${subject.digest.slice(0, 19)}, which this copy rewrites\n`);
  assert.deepEqual(await listTags('built/docker'), ['1']);
});

test('a fallback tag that is not an index: one clean error, and the image is not tagged', async (t) => {
  if (!need(t)) return;
  const dir = path.join(work, 'layout2');
  assert.equal((await berth('copy', `docker-archive:${DOCKER_ARCHIVE}`, `oci:${dir}:app`)).code, 0);
  const subject = json<{ digest: string; size: number; mediaType: string }>(await berth('digest', '--format', 'json', `oci:${dir}:app`), 'digest');
  await addArtifact(dir, { mediaType: subject.mediaType, digest: subject.digest, size: subject.size }, 'application/vnd.example.sbom.v1+json', 'sbom 2');
  const repo = 'squatted/app';
  // the fallback tag holds an image manifest
  const pushed = await berth('push', `docker-archive:${DOCKER_ARCHIVE}`, `docker://${host}/${repo}:sha256-${subject.digest.slice(7)}`);
  assert.equal(pushed.code, 0, pushed.stderr);
  const r = await berth('push', `oci:${dir}:app`, `docker://${host}/${repo}:1`);
  assert.equal(r.code, 1, r.stdout);
  assertCleanError(r, 'fallback tag squatted');
  assert.match(r.stderr, /updating the referrers of sha256:[0-9a-f]{12} in docker:\/\/127\.0\.0\.1:\d+\/squatted\/app \(fallback tag sha256-[0-9a-f]{64}\): the tag holds application\/vnd\.(?:docker\.distribution\.manifest\.v2|oci\.image\.manifest\.v1)\+json, not an OCI image index/);
  assert.deepEqual(await listTags(repo), [`sha256-${subject.digest.slice(7)}`]);
});
