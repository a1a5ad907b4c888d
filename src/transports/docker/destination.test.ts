/**
 * The requests a push makes, against a small in-memory registry (node:http on 127.0.0.1): the
 * root manifest goes once, under its tag; children of an index go by digest before it; a push by
 * digest, or one with referrers, sends the root by digest first; a failed push tags nothing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { Descriptor } from '../../core/descriptor.js';
import type { Digest } from '../../core/digest.js';
import { RegistryClient } from './client.js';
import { RegistryDestination } from './destination.js';
import { parseRegistryName } from './reference.js';
import { RegistryReference } from './transport.js';

const sha = (b: Uint8Array | string): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const CONFIG = 'application/vnd.oci.image.config.v1+json';

/** A registry that keeps blobs and manifests in maps and logs `METHOD path` of every request. */
async function fakeRegistry(opts: { refuseManifests?: boolean } = {}): Promise<{ host: string; log: string[]; manifests: Map<string, Buffer>; close(): Promise<void> }> {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, Buffer>();
  const uploads = new Map<string, Buffer[]>();
  const log: string[] = [];
  let next = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const p = url.pathname;
      log.push(`${req.method} ${decodeURIComponent(p).replace(/^\/v2\/app/, '').replace(/uploads\/\d+/, 'uploads/N')}`);
      if (p === '/v2/') return void res.end('{}');
      let m = /^\/v2\/app\/blobs\/(sha256:[0-9a-f]+)$/.exec(p);
      if (m !== null && req.method === 'HEAD') {
        res.writeHead(blobs.has(m[1]!) ? 200 : 404);
        return void res.end();
      }
      if (p === '/v2/app/blobs/uploads/' && req.method === 'POST') {
        const id = String(next++);
        uploads.set(id, []);
        res.writeHead(202, { Location: `/v2/app/blobs/uploads/${id}` });
        return void res.end();
      }
      m = /^\/v2\/app\/blobs\/uploads\/(\d+)$/.exec(p);
      if (m !== null) {
        uploads.get(m[1]!)!.push(body);
        if (req.method === 'PATCH') {
          res.writeHead(202, { Location: p });
          return void res.end();
        }
        const data = Buffer.concat(uploads.get(m[1]!)!);
        const digest = url.searchParams.get('digest')!;
        if (sha(data) !== digest) {
          res.writeHead(400);
          return void res.end('{"errors":[{"code":"DIGEST_INVALID","message":"digest invalid"}]}');
        }
        blobs.set(digest, data);
        res.writeHead(201);
        return void res.end();
      }
      m = /^\/v2\/app\/manifests\/([^/]+)$/.exec(p);
      if (m !== null && req.method === 'PUT') {
        if (opts.refuseManifests) {
          res.writeHead(400);
          return void res.end('{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}');
        }
        const ref = decodeURIComponent(m[1]!);
        manifests.set(ref, body);
        manifests.set(sha(body), body);
        res.writeHead(201, { 'Docker-Content-Digest': sha(body) });
        return void res.end();
      }
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    manifests,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

function destination(host: string, ref: string): RegistryDestination {
  const docker = parseRegistryName(`//${host}/${ref}`);
  return new RegistryDestination(new RegistryReference(docker), docker, new RegistryClient(host, { retries: 0, env: {} }));
}

async function* once(b: Uint8Array): AsyncIterable<Uint8Array> {
  yield b;
}

function image(tag: string): { config: Buffer; configDesc: Descriptor; manifest: Buffer; desc: Descriptor } {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
  const configDesc = { mediaType: CONFIG, digest: sha(config), size: config.length };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers: [] }));
  return { config, configDesc, manifest, desc: { mediaType: OCI_MANIFEST, digest: sha(manifest), size: manifest.length } };
}

/** What the copy engine does for one image: has/put for its blobs, has/putManifest for it. */
async function pushImage(dst: RegistryDestination, img: ReturnType<typeof image>): Promise<void> {
  if (!(await dst.has(img.configDesc))) await dst.put(img.configDesc, once(img.config));
  if (!(await dst.has(img.desc))) await dst.putManifest(img.desc, img.manifest);
}

test('a single image: the root manifest goes once, under its tag, as the last request', async () => {
  const reg = await fakeRegistry();
  try {
    const img = image('a');
    const dst = destination(reg.host, 'app:1');
    await pushImage(dst, img);
    await dst.commit([{ descriptor: img.desc, names: [] }]);
    assert.deepEqual(reg.log, ['GET /v2/', 'HEAD /blobs/' + img.configDesc.digest, 'POST /blobs/uploads/', 'PUT /blobs/uploads/N', 'PUT /manifests/1']);
    assert.equal(Buffer.compare(reg.manifests.get(img.desc.digest)!, img.manifest), 0);
  } finally {
    await reg.close();
  }
});

test('an index: its manifests go by digest, in order, before the index goes under its tag; two tags are two PUTs', async () => {
  const reg = await fakeRegistry();
  try {
    const a = image('a');
    const b = image('b');
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [a.desc, b.desc] }));
    const indexDesc = { mediaType: OCI_INDEX, digest: sha(index), size: index.length };
    const dst = destination(reg.host, 'app:1');
    await Promise.all([pushImage(dst, a), pushImage(dst, b)]);
    await dst.putManifest(indexDesc, index);
    await dst.commit([{ descriptor: indexDesc, names: ['1', 'latest'] }]);
    const manifestPuts = reg.log.filter((l) => l.startsWith('PUT /manifests/'));
    assert.deepEqual(manifestPuts.slice(2), ['PUT /manifests/1', 'PUT /manifests/latest']);
    assert.deepEqual(new Set(manifestPuts.slice(0, 2)), new Set([`PUT /manifests/${a.desc.digest}`, `PUT /manifests/${b.desc.digest}`]));
    assert.equal(reg.log.at(-1), 'PUT /manifests/latest');
    assert.equal(Buffer.compare(reg.manifests.get(indexDesc.digest)!, index), 0);
  } finally {
    await reg.close();
  }
});

test('a push by digest sends the root by digest; a refused root leaves no tag and the error names the push', async () => {
  const reg = await fakeRegistry();
  try {
    const img = image('c');
    const dst = destination(reg.host, `app@${img.desc.digest}`);
    await pushImage(dst, img);
    await dst.commit([{ descriptor: img.desc, names: [] }]);
    assert.equal(reg.log.at(-1), `PUT /manifests/${img.desc.digest}`);
  } finally {
    await reg.close();
  }
  const refusing = await fakeRegistry({ refuseManifests: true });
  try {
    const img = image('d');
    const dst = destination(refusing.host, 'app:1');
    await pushImage(dst, img);
    await assert.rejects(dst.commit([{ descriptor: img.desc, names: [] }]), { message: /^pushing manifest sha256:[0-9a-f]{12} to docker:\/\/127\.0\.0\.1:\d+\/app:1: registry answered 400 MANIFEST_INVALID: manifest invalid$/ });
    assert.equal(refusing.manifests.size, 0);
  } finally {
    await refusing.close();
  }
});
