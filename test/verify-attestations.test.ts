/**
 * `verify` checks attestations, not only their digests: a statement whose subject is not the
 * image it is attached to, a statement cut short (re-hashed, so only its content is wrong), a
 * predicate type the layer annotation contradicts. Each case rewrites one attestation layer of
 * a copy of the sample and re-hashes the manifest, index and index.json above it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { verifyReference } from '../src/index.js';
import { repoRoot } from './support/paths.js';

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

const SAMPLE = path.join(repoRoot, 'examples', 'sample');
let work: string;

const sha = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blobFile = (dir: string, digest: string): string => path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));

async function readJson<T>(dir: string, digest: string): Promise<T> {
  return JSON.parse(await readFile(blobFile(dir, digest), 'utf8')) as T;
}

async function putBlob(dir: string, bytes: string): Promise<{ digest: string; size: number }> {
  const digest = sha(bytes);
  await writeFile(blobFile(dir, digest), bytes);
  return { digest, size: Buffer.byteLength(bytes) };
}

/**
 * Copies the sample and replaces the first in-toto layer of the amd64 attestation manifest by
 * `edit(statement text, annotations)`; returns the layout and the layer's new digest.
 */
async function tamperedSample(name: string, edit: (text: string, layer: Desc) => { text: string; annotations?: Record<string, string> }): Promise<{ dir: string; layer: string }> {
  const dir = path.join(work, name);
  await cp(SAMPLE, dir, { recursive: true });
  const top = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: Desc[] };
  const indexDesc = top.manifests[0]!;
  const index = await readJson<{ manifests: Desc[] }>(dir, indexDesc.digest);
  const attDesc = index.manifests.find((d) => d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest')!;
  const att = await readJson<{ layers: Desc[] }>(dir, attDesc.digest);
  const layer = att.layers[0]!;
  const edited = edit(await readFile(blobFile(dir, layer.digest), 'utf8'), layer);
  const put = await putBlob(dir, edited.text);
  att.layers[0] = { ...layer, ...put, ...(edited.annotations ? { annotations: edited.annotations } : {}) };
  Object.assign(attDesc, await putBlob(dir, JSON.stringify(att)));
  Object.assign(indexDesc, await putBlob(dir, JSON.stringify(index)));
  await writeFile(path.join(dir, 'index.json'), JSON.stringify(top));
  return { dir, layer: put.digest };
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'berth-verify-att-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const short = (d: string): string => d.slice(0, 'sha256:'.length + 12);

test('the untouched sample verifies clean', async () => {
  const report = await verifyReference(SAMPLE);
  assert.deepEqual(report.problems, []);
});

const rows: ReadonlyArray<{ name: string; edit: Parameters<typeof tamperedSample>[1]; says: RegExp }> = [
  {
    name: 'a statement whose subject digest is not the image it describes',
    edit: (text) => {
      const st = JSON.parse(text) as { subject: Array<{ digest: Record<string, string> }> };
      st.subject[0]!.digest = { sha256: 'f'.repeat(64) };
      return { text: JSON.stringify(st) };
    },
    says: /subject/,
  },
  {
    name: 'a truncated statement (re-hashed, so only the JSON is broken)',
    edit: (text) => ({ text: text.slice(0, Math.floor(text.length / 2)) }),
    says: /invalid JSON|unexpected end/i,
  },
  {
    name: 'a layer annotation that contradicts the statement predicate type',
    edit: (text, layer) => ({ text, annotations: { ...layer.annotations, 'in-toto.io/predicate-type': 'https://example.com/other/v1' } }),
    says: /predicate-type.*says https:\/\/example\.com\/other\/v1/,
  },
];

for (const row of rows) {
  test(`verify fails on ${row.name}, naming the layer`, async () => {
    const { dir, layer } = await tamperedSample(row.name.replace(/\W+/g, '-'), row.edit);
    const report = await verifyReference(dir);
    const errors = report.problems.filter((p) => p.severity === 'error');
    assert.equal(errors.length, 1, JSON.stringify(report.problems, null, 2));
    assert.ok(errors[0]!.subject.includes(short(layer)), `names the layer ${short(layer)}: ${errors[0]!.subject}`);
    assert.match(errors[0]!.message, row.says);
  });
}
