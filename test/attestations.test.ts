/**
 * attestationsOf and `berth attestations` on a real BuildKit export (docker/actions-toolkit's
 * multi-platform oci-archive: in-toto v0.1 + SLSA v0.2, empty subjects), on examples/sample
 * (in-toto v1, SLSA v1 + SPDX 2.3) and on a copy of the sample with an OCI 1.1 referrer added.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { main } from '../cli/main.js';
import { EMPTY_DESCRIPTOR } from '../src/core/descriptor.js';
import { digestOf } from '../src/core/digest.js';
import {
  attestationsOf, isBerthError, predicateTypeMatches,
  type AttestationStatementInfo, type AttestationsResult, type ProvenanceAttestation, type SbomAttestation,
} from '../src/index.js';
import { repoRoot } from './support/paths.js';


const FIXTURE = path.resolve(repoRoot, '../shared/fixtures/real/docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar');
const SAMPLE = path.join(repoRoot, 'examples', 'sample');

const FX = {
  index: 'sha256:5ac2d3ac39878329a6328eba5b2a6e5e7a06279244eea0f2ea893f76cefff26c',
  amd64: 'sha256:0f90b7af6b2fef777963e3e1ca4fd66f378af93f5fe46304886943a4c0c7a46b',
  arm64: 'sha256:6b2a0dfca3903c0a2022f224f818eedd9d055ebbef7c8208b35cd7d3b4f54088',
  amd64Attestation: 'sha256:1d88e5a3e13d830277704130ae7b1aa7d9eb25f952891234d5c01f81651dcefc',
  arm64Attestation: 'sha256:2531011d66156a7830f9bd6671c81508c87e33ae070cda1bdfc68e3e39172a38',
  amd64Statement: 'sha256:26418efea0e73f6d53caec7094235ed1b16d6f7b31981fd7076760022c8e366d',
};

function haveFixture(t: TestContext): boolean {
  if (existsSync(FIXTURE)) return true;
  t.skip('the shared real fixtures are not next to the repository');
  return false;
}

function only<T>(list: readonly T[], what: string): T {
  assert.equal(list.length, 1, `want exactly one ${what}, got ${list.length}`);
  return list[0]!;
}

function provenance(s: AttestationStatementInfo): ProvenanceAttestation {
  assert.equal(s.summary?.kind, 'provenance', `statement ${s.digest} is ${s.summary?.kind ?? s.error}`);
  return s.summary as ProvenanceAttestation;
}

function sbom(s: AttestationStatementInfo): SbomAttestation {
  assert.equal(s.summary?.kind, 'sbom', `statement ${s.digest} is ${s.summary?.kind ?? s.error}`);
  return s.summary as SbomAttestation;
}

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: readonly string[]): Promise<Captured> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]) => new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      into.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      cb();
    },
  });
  const code = await main(args, { stdout: sink(out), stderr: sink(err), env: {} });
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

// ------------------------------------------------------------ real buildkit export

test('fixture: one buildkit v0.2 provenance per platform, attached by annotation', async (t) => {
  if (!haveFixture(t)) return;
  const r = await attestationsOf(FIXTURE);
  assert.equal(r.index, FX.index);
  assert.deepEqual(r.images.map((i) => [i.platform, i.digest, i.present]), [['linux/amd64', FX.amd64, true], ['linux/arm64', FX.arm64, true]]);
  assert.deepEqual(r.images.map((i) => i.attestations.map((a) => a.digest)), [[FX.amd64Attestation], [FX.arm64Attestation]]);

  const a = only(r.images[0]!.attestations, 'attestation manifest');
  assert.equal(a.attachedBy, 'annotation');
  assert.equal(a.form, 'image-config');
  assert.equal(a.size, 566);
  assert.deepEqual(a.problems, []);
  assert.deepEqual(a.otherLayers, []);
  const s = only(a.statements, 'statement');
  assert.equal(s.digest, FX.amd64Statement);
  assert.equal(s.size, 1265);
  assert.equal(s.predicateType, 'https://slsa.dev/provenance/v0.2');
  assert.equal(s.statementType, 'https://in-toto.io/Statement/v0.1');
  assert.deepEqual(s.subjects, []);
  // BuildKit's v0.1 provenance has no subject: a note, not a problem.
  assert.deepEqual(s.subjectProblems, []);
  assert.equal(s.notes.length, 1);
  assert.match(s.notes[0]!, /^subject: empty .*sha256:0f90b7af6b2f/);
  assert.equal(s.document, undefined);

  const p = provenance(s);
  assert.equal(p.slsaVersion, '0.2');
  assert.equal(p.builderId, '');
  assert.equal(p.buildType, 'https://mobyproject.org/buildkit@v1');
  assert.equal(p.frontend, 'gateway.v0');
  assert.deepEqual(p.source, { uri: 'https://github.com/crazy-max/docker-actions-toolkit.git', revision: '66c00b9bbdd345a37d086780d645b4aff8fe3a0d' });
  assert.equal(p.entryPoint, 'hello.Dockerfile');
  assert.deepEqual(p.frontendAttrs, { cmdline: 'docker/dockerfile:1', source: 'docker/dockerfile:1' });
  assert.deepEqual(p.buildArgs, {});
  assert.deepEqual(p.locals, ['context', 'dockerfile']);
  assert.deepEqual(p.materials, [
    { uri: 'pkg:docker/docker/dockerfile@1', digest: { sha256: 'a57df69d0ea827fb7266491f2813635de6f17269be881f696fbfdf2d83dda33e' } },
    { uri: 'pkg:docker/busybox@latest?platform=linux%2Famd64', digest: { sha256: '5eef5ed34e1e1ff0a4ae850395cbf665c4de6b4b83a32a0bc7bcb998e24e7bbb' } },
  ]);
  assert.equal(p.builderPlatform, 'linux/amd64');
  assert.equal(p.invocationId, 'r25j5158gyqxlqukqaig2q4iu');
  assert.equal(p.startedOn, '2024-05-15T16:15:49.712135355Z');
  assert.equal(p.finishedOn, '2024-05-15T16:15:51.154322345Z');
  assert.equal(p.reproducible, false);

  const arm = provenance(only(only(r.images[1]!.attestations, 'attestation manifest').statements, 'statement'));
  assert.equal(arm.materials[1]!.uri, 'pkg:docker/busybox@latest?platform=linux%2Farm64');
});

test('fixture: --platform keeps one image; filters and raw documents', async (t) => {
  if (!haveFixture(t)) return;
  const arm = await attestationsOf(FIXTURE, { platform: { os: 'linux', architecture: 'arm64' } });
  assert.deepEqual(arm.images.map((i) => i.digest), [FX.arm64]);

  const none = await attestationsOf(FIXTURE, { predicateType: 'sbom' });
  assert.equal(none.predicateType, 'sbom');
  assert.deepEqual(none.images.map((i) => i.attestations.length), [0, 0]);

  const exact = await attestationsOf(FIXTURE, { predicateType: 'https://slsa.dev/provenance/v0.2', raw: true });
  const s = only(only(exact.images[0]!.attestations, 'attestation manifest').statements, 'statement');
  const doc = s.document as { _type: string; predicate: { invocation: { configSource: { entryPoint: string } } } };
  assert.equal(doc._type, 'https://in-toto.io/Statement/v0.1');
  assert.equal(doc.predicate.invocation.configSource.entryPoint, 'hello.Dockerfile');
});

test('predicateTypeMatches: URIs and the short names', () => {
  assert.equal(predicateTypeMatches('provenance', 'https://slsa.dev/provenance/v0.2'), true);
  assert.equal(predicateTypeMatches('provenance', 'https://slsa.dev/provenance/v1'), true);
  assert.equal(predicateTypeMatches('sbom', 'https://spdx.dev/Document'), true);
  assert.equal(predicateTypeMatches('sbom', 'https://cyclonedx.org/bom/v1.5'), true);
  assert.equal(predicateTypeMatches('spdx', 'https://cyclonedx.org/bom'), false);
  assert.equal(predicateTypeMatches('https://spdx.dev/Document', 'https://spdx.dev/Document'), true);
  assert.equal(predicateTypeMatches('https://slsa.dev/provenance/v1', 'https://slsa.dev/provenance/v0.2'), false);
});

// ------------------------------------------------------------ examples/sample

async function sampleManifestDigests(): Promise<string[]> {
  const index = JSON.parse(await readFile(path.join(SAMPLE, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const inner = JSON.parse(await readFile(path.join(SAMPLE, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { manifests: Array<{ digest: string }> };
  return inner.manifests.map((m) => m.digest);
}

test('sample: both platforms carry SLSA v1 provenance and an SPDX SBOM whose subjects are the image', async () => {
  const [amd64, arm64, amd64Attestation, arm64Attestation] = await sampleManifestDigests();
  const r = await attestationsOf(SAMPLE);
  assert.deepEqual(r.images.map((i) => i.platform), ['linux/amd64', 'linux/arm64/v8']);
  assert.deepEqual(r.images.map((i) => i.digest), [amd64, arm64]);
  assert.deepEqual(r.images.map((i) => i.attestations.map((a) => a.digest)), [[amd64Attestation], [arm64Attestation]]);
  for (const image of r.images) {
    const a = only(image.attestations, 'attestation manifest');
    assert.equal(a.form, 'image-config');
    assert.equal(a.attachedBy, 'annotation');
    assert.deepEqual(a.statements.map((s) => s.predicateType), ['https://slsa.dev/provenance/v1', 'https://spdx.dev/Document']);
    for (const s of a.statements) {
      assert.equal(s.statementType, 'https://in-toto.io/Statement/v1');
      assert.deepEqual(s.subjectProblems, []);
      assert.deepEqual(s.notes, []);
      assert.deepEqual(s.subjects, [{
        name: `pkg:docker/berth-sample@latest?platform=${encodeURIComponent(image.platform!)}`,
        digests: { sha256: image.digest.slice('sha256:'.length) },
      }]);
    }
    const p = provenance(a.statements[0]!);
    assert.equal(p.slsaVersion, '1');
    assert.equal(p.builderId, 'https://example.com/berth/builders/sample');
    assert.equal(p.buildType, 'https://mobyproject.org/buildkit@v1');
    assert.equal(p.frontend, 'dockerfile.v0');
    assert.deepEqual(p.buildArgs, { GREETING: 'hello from berth' });
    assert.deepEqual(p.source, {
      uri: 'https://example.com/berth/sample.git#main',
      revision: '3f4b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b',
      digest: { sha1: '3f4b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b' },
    });
    assert.equal(p.materials.length, 3);
    assert.ok(p.materials.every((m) => m.digest !== undefined));
    assert.equal(p.startedOn, '2024-06-01T11:59:55Z');
    assert.equal(p.finishedOn, '2024-06-01T12:03:05Z');
    const b = sbom(a.statements[1]!);
    assert.equal(b.format, 'spdx');
    assert.equal(b.specVersion, '2.3');
    assert.equal(b.packageCount, 5);
    assert.deepEqual(b.packages.map((x) => x.name), ['berth-sample', 'busybox', 'ca-certificates-bundle', 'musl', 'zlib']);
    assert.deepEqual(b.tools, ['berth-make-sample-1.0', 'buildkit-v0.14.0']);
  }
});

test('sample: a platform and a predicate-type filter narrow the result', async () => {
  const r = await attestationsOf(SAMPLE, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, predicateType: 'spdx' });
  const image = only(r.images, 'image');
  assert.equal(image.platform, 'linux/arm64/v8');
  const s = only(only(image.attestations, 'attestation manifest').statements, 'statement');
  assert.equal(sbom(s).packageCount, 5);
});

// ------------------------------------------------------------ OCI 1.1 referrers

/** A copy of the sample with an artifact-form attestation manifest listed in index.json, `subject` = the amd64 image. */
async function sampleWithReferrer(dir: string, statementSubject: string, listed: 'root' | 'fallback-tag' = 'root'): Promise<{ layout: string; referrer: string; amd64: string }> {
  const layout = path.join(dir, 'layout');
  await cp(SAMPLE, layout, { recursive: true });
  const [amd64] = await sampleManifestDigests();
  const amd64Bytes = await readFile(path.join(layout, 'blobs', 'sha256', amd64!.slice(7)));
  const put = async (bytes: Uint8Array) => {
    const digest = digestOf(bytes);
    await writeFile(path.join(layout, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };
  const statement = new TextEncoder().encode(JSON.stringify({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'sample', digest: { sha256: statementSubject.slice(7) } }],
    predicateType: 'https://example.com/attestation/custom/v1',
    predicate: { note: 'made by the attestations test' },
  }));
  const layer = { mediaType: 'application/vnd.in-toto+json', ...(await put(statement)), annotations: { 'in-toto.io/predicate-type': 'https://example.com/attestation/custom/v1' } };
  await put(new TextEncoder().encode('{}'));
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/vnd.docker.attestation.manifest.v1+json',
    config: { mediaType: EMPTY_DESCRIPTOR.mediaType, digest: EMPTY_DESCRIPTOR.digest, size: EMPTY_DESCRIPTOR.size },
    layers: [layer],
    subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd64, size: amd64Bytes.length },
  }));
  const m = await put(manifest);
  const indexFile = path.join(layout, 'index.json');
  const index = JSON.parse(await readFile(indexFile, 'utf8')) as { manifests: unknown[] };
  const entry = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, artifactType: 'application/vnd.docker.attestation.manifest.v1+json' };
  if (listed === 'root') {
    index.manifests.push(entry);
  } else {
    // The referrers tag schema: an index of referrers tagged `sha256-<hex of the subject>`.
    const fallback = await put(new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [entry] })));
    index.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', ...fallback, annotations: { 'org.opencontainers.image.ref.name': amd64!.replace(':', '-') } });
  }
  await writeFile(indexFile, JSON.stringify(index));
  return { layout, referrer: m.digest, amd64: amd64! };
}

test('referrers listed in index.json are found through their subject; unknown predicates and wrong subjects are reported', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-attestations-test-'));
  try {
    const [, arm64] = await sampleManifestDigests();
    const { layout, referrer, amd64 } = await sampleWithReferrer(dir, arm64!);
    const r: AttestationsResult = await attestationsOf(`oci:${layout}:latest`);
    const image = r.images.find((i) => i.digest === amd64)!;
    assert.equal(image.attestations.length, 2);
    const ref = image.attestations[1]!;
    assert.equal(ref.digest, referrer);
    assert.equal(ref.attachedBy, 'subject');
    assert.equal(ref.form, 'oci-artifact');
    assert.equal(ref.artifactType, 'application/vnd.docker.attestation.manifest.v1+json');
    const s = only(ref.statements, 'statement');
    assert.equal(s.summary?.kind, 'unknown');
    assert.equal(s.predicateType, 'https://example.com/attestation/custom/v1');
    assert.equal(s.summary?.size, s.size);
    assert.equal(s.subjectProblems.length, 1);
    assert.match(s.subjectProblems[0]!, /is not the image manifest sha256:/);
    // The arm64 image gets nothing from it.
    assert.equal(r.images.find((i) => i.digest !== amd64)!.attestations.length, 1);

    const text = await cli(['attestations', '--platform', 'linux/amd64', `oci:${layout}:latest`]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /OCI referrer via subject, artifact form/);
    assert.match(text.stdout, /other {2}https:\/\/example\.com\/attestation\/custom\/v1/);
    assert.match(text.stdout, /Problem: +subject\[0\]\.digest\.sha256: /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('referrers listed under a referrers-tag-schema index (sha256-<hex>) are found too', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-attestations-test-'));
  try {
    const { layout, referrer, amd64 } = await sampleWithReferrer(dir, (await sampleManifestDigests())[0]!, 'fallback-tag');
    const r = await attestationsOf(`oci:${layout}:latest`, { platform: { os: 'linux', architecture: 'amd64' } });
    const image = only(r.images, 'image');
    assert.equal(image.digest, amd64);
    assert.deepEqual(image.attestations.map((a) => [a.attachedBy, a.digest === referrer]), [['annotation', false], ['subject', true]]);
    const s = only(image.attestations[1]!.statements, 'statement');
    assert.deepEqual(s.subjectProblems, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------ the command

test('cli: text summary of the sample', async () => {
  const r = await cli(['attestations', SAMPLE]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  for (const want of [
    /^linux\/amd64 {2}sha256:[0-9a-f]{12}$/m,
    /^linux\/arm64\/v8 {2}sha256:[0-9a-f]{12}$/m,
    /attestation manifest sha256:[0-9a-f]{12} .*\(buildkit index entry, image-config form\)/,
    /provenance {2}https:\/\/slsa\.dev\/provenance\/v1/,
    /Builder: +https:\/\/example\.com\/berth\/builders\/sample/,
    /Frontend: +dockerfile\.v0/,
    /Build args: +GREETING=hello from berth/,
    /Source: +https:\/\/example\.com\/berth\/sample\.git#main {2}revision 3f4b2c1d0e9f/,
    /pkg:docker\/busybox@1\.36\?platform=linux%2Farm64%2Fv8 {2}sha256:[0-9a-f]{12}/,
    /Started: +2024-06-01T11:59:55Z/,
    /Format: +SPDX 2\.3/,
    /Packages: +5/,
    /NAME +VERSION +LICENSE +PURL/,
    /musl +1\.2\.5-r0 +MIT +pkg:apk\/alpine\/musl@1\.2\.5-r0\?arch=aarch64/,
  ]) assert.match(r.stdout, want);
});

test('cli: the fixture as json, raw statements, and errors', async (t) => {
  if (!haveFixture(t)) return;
  const json = await cli(['attestations', '--format', 'json', FIXTURE]);
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as AttestationsResult;
  assert.equal(parsed.index, FX.index);
  assert.equal(parsed.images[0]!.attestations[0]!.statements[0]!.summary?.kind, 'provenance');

  const text = await cli(['attestations', FIXTURE]);
  assert.match(text.stdout, /Builder: +\(empty\)/);
  assert.match(text.stdout, /Note: +subject: empty/);
  assert.match(text.stdout, /Frontend attrs: +cmdline=docker\/dockerfile:1\n +source=docker\/dockerfile:1/);

  const raw = await cli(['attestations', '--raw', '--platform', 'linux/arm64', FIXTURE]);
  assert.equal(raw.code, 0, raw.stderr);
  const doc = JSON.parse(raw.stdout) as { predicateType: string; predicate: { materials: Array<{ uri: string }> } };
  assert.equal(doc.predicateType, 'https://slsa.dev/provenance/v0.2');
  assert.equal(doc.predicate.materials[1]!.uri, 'pkg:docker/busybox@latest?platform=linux%2Farm64');

  const missing = await cli(['attestations', '--raw', '--predicate-type', 'cyclonedx', FIXTURE]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, '');
  assert.match(missing.stderr, /^berth: .*: no attestation statements of predicate type cyclonedx\n$/);

  const filtered = await cli(['attestations', '--predicate-type', 'sbom', FIXTURE]);
  assert.equal(filtered.code, 0);
  assert.match(filtered.stdout, /no attestations of predicate type sbom/);

  const usage = await cli(['attestations', '--format', 'yaml', FIXTURE]);
  assert.equal(usage.code, 2);
});

test('cli: raw provenance of one sample platform is the stored statement', async () => {
  const [, arm64] = await sampleManifestDigests();
  const r = await cli(['attestations', '--raw', '--platform', 'linux/arm64', '--predicate-type', 'provenance', SAMPLE]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { _type: string; subject: Array<{ digest: { sha256: string } }> };
  assert.equal(doc._type, 'https://in-toto.io/Statement/v1');
  assert.equal(doc.subject[0]!.digest.sha256, arm64!.slice(7));
});

test('a reference to nothing fails with a berth error', async () => {
  await assert.rejects(attestationsOf(path.join(repoRoot, 'no-such-layout')), (err) => isBerthError(err, 'BERTH_NOT_FOUND'));
});
