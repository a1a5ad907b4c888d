/**
 * Edge statuses the real registry does not produce on demand, with handcrafted node:http servers
 * on 127.0.0.1: retries on 503/429 and their bound, resuming a blob cut mid-body with Range,
 * redirects to "blob storage" without the Authorization header, schema 1 refused, digest lies
 * caught, credentials absent from errors; plus the pure helpers (challenges, redaction, links,
 * config.json lookup and credential helpers).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { isBerthError } from '../../core/errors.js';
import { toBytes } from '../../io/stream.js';
import { openVerified } from '../../content/store.js';
import type { Descriptor } from '../../core/descriptor.js';
import type { Digest } from '../../core/digest.js';
import { lookupCredentials, parseChallenges, removeCredentials, saveCredentials } from './auth.js';
import { nextLink, RegistryClient } from './client.js';
import { redactText, redactUrl } from './errors.js';
import { parseRegistryName } from './reference.js';
import { RegistrySource } from './source.js';
import { RegistryReference } from './transport.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function serve(handler: Handler): Promise<{ host: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

const sha = (b: Uint8Array | string): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
const FAST = { retries: 3, retryDelayMs: 5, timeoutMs: 5000, env: {} };

function source(host: string, repoRef: string, opts = FAST): RegistrySource {
  const docker = parseRegistryName(`//${host}/${repoRef}`);
  return new RegistrySource(new RegistryReference(docker), docker, new RegistryClient(host, opts));
}

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-unit-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const MANIFEST = Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('{}'), size: 2 }, layers: [],
}));

test('503 and 429 are retried with backoff, a bounded number of times', async () => {
  let calls = 0;
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return void res.end('{}');
    calls++;
    if (calls < 3) {
      res.writeHead(calls === 2 ? 429 : 503, { 'Retry-After': '0' });
      return void res.end('busy');
    }
    res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Docker-Content-Digest': sha(MANIFEST) });
    res.end(MANIFEST);
  });
  try {
    const root = await source(srv.host, 'app:1').root();
    assert.equal(root.descriptor.digest, sha(MANIFEST));
    assert.equal(calls, 3);

    calls = -100; // always failing now
    const err = await source(srv.host, 'app:2', { ...FAST, retries: 2 }).root().catch((e: unknown) => e);
    assert.ok(isBerthError(err, 'BERTH_IO'), String(err));
    assert.match((err as Error).message, /^reading docker:\/\/127\.0\.0\.1:\d+\/app:2: registry answered 503 Service Unavailable: busy$/);
    assert.equal(calls, -97, 'one try plus two retries');
  } finally {
    await srv.close();
  }
});

test('a blob download cut mid-body resumes with Range and verifies', async () => {
  const blob = Buffer.alloc(300_000);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 7) & 0xff;
  const digest = sha(blob);
  const ranges: string[] = [];
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return void res.end('{}');
    const range = req.headers.range;
    ranges.push(range ?? 'none');
    if (range === undefined) {
      res.writeHead(200, { 'Content-Length': String(blob.length) });
      res.write(blob.subarray(0, 100_000));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    const from = Number(/bytes=(\d+)-/.exec(range)![1]);
    res.writeHead(206, { 'Content-Length': String(blob.length - from), 'Content-Range': `bytes ${from}-${blob.length - 1}/${blob.length}` });
    res.end(blob.subarray(from));
  });
  try {
    const src = source(srv.host, 'app:1');
    const desc: Descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: blob.length };
    const got = await toBytes(await openVerified(src, desc));
    assert.equal(Buffer.compare(Buffer.from(got), blob), 0);
    assert.deepEqual(ranges, ['none', 'bytes=100000-']);
  } finally {
    await srv.close();
  }
});

test('a redirect to blob storage is followed without the Authorization header; secrets in its URL are redacted', async () => {
  const blob = Buffer.from('layer bytes');
  let storageAuth: string | undefined = 'unset';
  const storage = await serve((req, res) => {
    storageAuth = req.headers.authorization;
    if (req.url?.includes('missing')) {
      res.writeHead(403);
      return void res.end('<Error>AccessDenied</Error>');
    }
    res.end(blob);
  });
  const srv = await serve((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"', 'Content-Type': 'application/json' });
      return void res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    }
    if (req.url === '/v2/') return void res.end('{}');
    const missing = req.url!.endsWith(sha('nope'));
    res.writeHead(307, { Location: `http://${storage.host}/bucket/${missing ? 'missing' : 'blob'}?X-Amz-Signature=abcdef&X-Amz-Credential=KEY` });
    res.end();
  });
  try {
    const src = source(srv.host, 'app:1', { ...FAST, creds: { username: 'u', password: 'p' } } as typeof FAST);
    const got = await toBytes(await openVerified(src, { mediaType: 'application/octet-stream', digest: sha(blob), size: blob.length }));
    assert.equal(Buffer.from(got).toString(), 'layer bytes');
    assert.equal(storageAuth, undefined, 'no Authorization sent to another origin');
    const err = await src.open({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha('nope'), size: 4 }).catch((e: unknown) => e);
    assert.match((err as Error).message, /registry answered 403 Forbidden: <Error>AccessDenied<\/Error>/);
    assert.doesNotMatch((err as Error).message, /abcdef|KEY/);
  } finally {
    await srv.close();
    await storage.close();
  }
});

test('schema 1 manifests are refused with a clear message; digest lies are caught', async () => {
  const lie = Buffer.from(MANIFEST);
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return void res.end('{}');
    if (req.url!.endsWith('/old')) {
      res.writeHead(200, { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
      return void res.end('{"schemaVersion":1,"name":"x","tag":"old","fsLayers":[]}');
    }
    if (req.url!.endsWith('/liar')) {
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Docker-Content-Digest': sha('something else') });
      return void res.end(lie);
    }
    // asked by digest, answers other bytes
    res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' });
    res.end(lie);
  });
  try {
    const old = await source(srv.host, 'app:old').root().catch((e: unknown) => e);
    assert.ok(isBerthError(old, 'BERTH_UNSUPPORTED'));
    assert.match((old as Error).message, /reading docker:\/\/127\.0\.0\.1:\d+\/app:old: the registry holds a Docker schema 1 manifest .* which berth does not read/);
    const liar = await source(srv.host, 'app:liar').root().catch((e: unknown) => e);
    assert.ok(isBerthError(liar, 'BERTH_DIGEST_MISMATCH'));
    assert.match((liar as Error).message, /Docker-Content-Digest says sha256:[0-9a-f]{64} but the body's digest is/);
    const wrong = await source(srv.host, `app@${sha('other')}`).root().catch((e: unknown) => e);
    assert.ok(isBerthError(wrong, 'BERTH_DIGEST_MISMATCH'));
  } finally {
    await srv.close();
  }
});

test('errors never carry credentials', async () => {
  const srv = await serve((_req, res) => {
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"', 'Content-Type': 'application/json' });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  });
  try {
    const err = await source(srv.host, 'app:1', { ...FAST, creds: { username: 'alice', password: 'hunter2-secret' } } as typeof FAST).root().catch((e: unknown) => e);
    const text = `${(err as Error).message} ${(err as Error).stack ?? ''}`;
    assert.match(text, /refused the credentials/);
    assert.doesNotMatch(text, /hunter2|YWxpY2U6aHVudGVy/);
  } finally {
    await srv.close();
  }
});

test('WWW-Authenticate challenges parse, several per header and with quoted commas', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm", Bearer realm="http://x/t"'), [
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
    { scheme: 'bearer', params: { realm: 'http://x/t' } },
  ]);
  assert.deepEqual(parseChallenges(undefined), []);
});

test('URLs and text are redacted; Link headers resolve', () => {
  assert.equal(redactUrl('https://user:pw@s3.example/b/k?X-Amz-Signature=abc&partNumber=2'), 'https://s3.example/b/k?X-Amz-Signature=REDACTED&partNumber=2');
  assert.equal(redactText('failed GET https://u:p@h/x?token=zzz with Bearer abc.def.ghi'), 'failed GET https://h/x?token=REDACTED with Bearer REDACTED');
  const base = new URL('http://127.0.0.1:5000/v2/app/tags/list');
  assert.equal(nextLink('</v2/app/tags/list?last=b&n=2>; rel="next"', base), '/v2/app/tags/list?last=b&n=2');
  assert.equal(nextLink('<https://other/x>; rel="prev"', base), undefined);
});

test('config.json: auths, credHelpers (a real helper program on PATH), logout; written 0600 keeping other keys', async () => {
  const dir = path.join(work, 'cfg');
  const bin = path.join(work, 'bin');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  await mkdir(bin, { recursive: true });
  const helper = path.join(bin, 'docker-credential-berthtest');
  const store = path.join(work, 'helper-store.json');
  await writeFile(helper, `#!/bin/sh
case "$1" in
  get) read host; if [ "$host" = "helped.example:5000" ]; then echo '{"ServerURL":"helped.example:5000","Username":"hu","Secret":"hs"}'; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) cat > ${JSON.stringify(store)} ;;
  erase) read host; echo "$host" > ${JSON.stringify(store)}.erased ;;
esac
`);
  await chmod(helper, 0o755);
  const env = { DOCKER_CONFIG: dir, PATH: `${bin}:${process.env.PATH ?? ''}` };
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({
    auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') }, 'plain.example': { auth: Buffer.from('pu:pp:x').toString('base64') } },
    credHelpers: { 'helped.example:5000': 'berthtest' },
    detachKeys: 'ctrl-x',
  }));
  assert.deepEqual(await lookupCredentials('registry-1.docker.io', env), { username: 'hub', password: 'pw' });
  assert.deepEqual(await lookupCredentials('plain.example', env), { username: 'pu', password: 'pp:x' });
  assert.deepEqual(await lookupCredentials('helped.example:5000', env), { username: 'hu', password: 'hs' });
  assert.equal(await lookupCredentials('other.example', env), undefined);

  await saveCredentials('new.example:443', { username: 'n', password: 'm' }, env);
  const file = path.join(dir, 'config.json');
  const cfg = JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, { auth?: string }>; detachKeys: string };
  assert.equal(cfg.auths['new.example:443']!.auth, Buffer.from('n:m').toString('base64'));
  assert.equal(cfg.detachKeys, 'ctrl-x');
  const { stat } = await import('node:fs/promises');
  assert.equal((await stat(file)).mode & 0o777, 0o600);

  // a host with a helper: stored through it, an empty auths entry marks it
  await saveCredentials('helped.example:5000', { username: 'hu2', password: 'hs2' }, env);
  assert.deepEqual(JSON.parse(await readFile(store, 'utf8')), { ServerURL: 'helped.example:5000', Username: 'hu2', Secret: 'hs2' });
  // an identity token: to a helper as user <token> (as docker stores it), in auths as user name + identitytoken
  await saveCredentials('helped.example:5000', { username: 'hu2', password: '', identityToken: 'rt-1' }, env);
  assert.deepEqual(JSON.parse(await readFile(store, 'utf8')), { ServerURL: 'helped.example:5000', Username: '<token>', Secret: 'rt-1' });
  await saveCredentials('tok.example', { username: 'tu', password: '', identityToken: 'rt-2' }, env);
  const withToken = JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, { auth?: string; identitytoken?: string }> };
  assert.deepEqual(withToken.auths['tok.example'], { auth: Buffer.from('tu:').toString('base64'), identitytoken: 'rt-2' });
  assert.deepEqual(await lookupCredentials('tok.example', env), { username: '', password: '', identityToken: 'rt-2' });
  assert.equal(await removeCredentials('helped.example:5000', env), true);
  assert.equal((await readFile(`${store}.erased`, 'utf8')).trim(), 'helped.example:5000');
  assert.equal(await removeCredentials('plain.example', env), true);
  assert.equal(await removeCredentials('plain.example', env), false);
});

test('streamed PATCH: the whole body in one request; a body that fails its digest at the end, and a refusal before the end, are clean errors', async () => {
  const { verifyStream } = await import('../../io/verify.js');
  let received = 0;
  let mode: 'take' | 'refuse' = 'take';
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return void res.end('{}');
    if (mode === 'refuse') {
      // answers at once, reading nothing (as a registry refusing a too large body)
      res.writeHead(413, { 'Content-Type': 'application/json', Connection: 'close' });
      return void res.end(JSON.stringify({ errors: [{ code: 'SIZE_INVALID', message: 'too large' }] }));
    }
    req.on('data', (c: Buffer) => (received += c.length));
    req.on('end', () => {
      res.writeHead(202, { Location: '/v2/app/blobs/uploads/x' });
      res.end();
    });
  });
  const client = new RegistryClient(srv.host, FAST);
  const big = Buffer.alloc(8 * 1024 * 1024, 7);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < big.length; at += 1 << 20) yield big.subarray(at, at + (1 << 20));
  }
  try {
    const ok = await client.requestStream({ method: 'PATCH', path: '/v2/app/blobs/uploads/x', accept: [202], what: 'pushing layer x' }, chunks(), big.length);
    ok.discard();
    assert.equal(ok.status, 202);
    assert.equal(received, big.length);
    // the digest is checked as the last chunk passes: the error is the verifier's
    const wrong = verifyStream(chunks(), { digest: sha('other'), size: big.length, what: 'layer x' });
    await assert.rejects(client.requestStream({ method: 'PATCH', path: '/v2/app/blobs/uploads/x', accept: [202], what: 'pushing layer x' }, wrong, big.length),
      (err: Error) => isBerthError(err, 'BERTH_DIGEST_MISMATCH') && /layer x/.test(err.message));
    mode = 'refuse';
    await assert.rejects(client.requestStream({ method: 'PATCH', path: '/v2/app/blobs/uploads/x', accept: [202], what: 'pushing layer x' }, chunks(), big.length),
      (err: Error) => /^pushing layer x: registry answered 413 SIZE_INVALID: too large$/.test(err.message));
  } finally {
    client.close();
    await srv.close();
  }
});
