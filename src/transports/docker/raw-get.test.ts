/**
 * The plain-HTTP blob GET (raw-get.ts) against handcrafted node:http servers: a large body comes
 * whole and verified through backpressure; answers it does not handle itself (chunked bodies, auth
 * challenges, redirects, errors) reach the caller through node:http instead; a body cut short, an
 * early stop, an abort and an idle server end the socket with the errors resumingStream expects.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import type { Descriptor } from '../../core/descriptor.js';
import type { Digest } from '../../core/digest.js';
import { isBerthError } from '../../core/errors.js';
import { openVerified } from '../../content/store.js';
import { toBytes } from '../../io/stream.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { rawGet } from './raw-get.js';
import { parseRegistryName } from './reference.js';
import { RegistrySource } from './source.js';
import { RegistryReference } from './transport.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function serve(handler: Handler): Promise<{ host: string; sockets: Set<Socket>; close(): Promise<void> }> {
  const server = http.createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    sockets,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

const sha = (b: Uint8Array | string): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
const FAST = { retries: 3, retryDelayMs: 5, timeoutMs: 5000, env: {} };
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

function source(host: string, opts: RegistryOptions = FAST): RegistrySource {
  const docker = parseRegistryName(`//${host}/app:1`);
  return new RegistrySource(new RegistryReference(docker), docker, new RegistryClient(host, opts));
}

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 11)) & 0xff;
  return b;
}

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition never became true');
}

test('a large blob over plain HTTP comes on a socket of its own, whole, in large reads, through backpressure; a small one does not', async () => {
  const blob = pattern(12 << 20);
  const small = pattern(1000);
  const seen: Array<string | undefined> = [];
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return void res.end('{}');
    seen.push(req.headers.connection);
    const body = req.url!.endsWith(sha(small)) ? small : blob;
    res.writeHead(200, { 'Content-Length': String(body.length) });
    res.end(body);
  });
  try {
    const desc: Descriptor = { mediaType: LAYER, digest: sha(blob), size: blob.length };
    const stream = await openVerified(source(srv.host), desc);
    let chunks = 0;
    let total = 0;
    const parts: Buffer[] = [];
    for await (const c of stream) {
      chunks++;
      total += c.length;
      parts.push(Buffer.from(c));
      // a slow consumer: the socket must pause rather than the queue grow without bound
      if (chunks % 8 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(total, blob.length);
    assert.equal(Buffer.compare(Buffer.concat(parts), blob), 0);
    assert.deepEqual(seen, ['close'], 'the raw path asks for Connection: close');
    const smallBytes = await toBytes(await openVerified(source(srv.host), { mediaType: LAYER, digest: sha(small), size: small.length }));
    assert.equal(Buffer.compare(Buffer.from(smallBytes), small), 0);
    assert.deepEqual(seen, ['close', 'keep-alive'], 'a small blob goes through node:http');
    assert.ok(chunks < blob.length / 65536, `reads larger than node:http's 64 KiB (${chunks} chunks)`);
  } finally {
    await srv.close();
  }
});

test('answers the raw path does not take go through node:http: chunked body, auth challenge, redirect, error', async () => {
  const blob = pattern(2 << 20);
  const digest = sha(blob);
  const storage = await serve((_req, res) => {
    res.writeHead(200, { 'Content-Length': String(blob.length) });
    res.end(blob);
  });
  const requests: string[] = [];
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return void res.end('{}');
    const kind = /kind=(\w+)/.exec(req.headers['user-agent'] ?? '')?.[1] ?? '';
    requests.push(`${kind}:${req.headers.connection ?? ''}`);
    if (kind === 'chunked') {
      res.writeHead(200);
      res.write(blob.subarray(0, 1000));
      return void res.end(blob.subarray(1000));
    }
    if (kind === 'auth' && req.headers.authorization === undefined) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="t"', 'Content-Length': '0' });
      return void res.end();
    }
    if (kind === 'redirect') {
      res.writeHead(307, { Location: `http://${storage.host}/b`, 'Content-Length': '0' });
      return void res.end();
    }
    if (kind === 'missing') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      return void res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}');
    }
    res.writeHead(200, { 'Content-Length': String(blob.length) });
    res.end(blob);
  });
  const desc: Descriptor = { mediaType: LAYER, digest, size: blob.length };
  const read = async (kind: string, extra: object = {}): Promise<Buffer> => {
    const src = source(srv.host, { ...FAST, userAgent: `t kind=${kind}`, ...extra });
    return Buffer.from(await toBytes(await openVerified(src, desc)));
  };
  try {
    assert.equal(Buffer.compare(await read('chunked'), blob), 0);
    assert.deepEqual(requests.splice(0), ['chunked:close', 'chunked:keep-alive']);
    assert.equal(Buffer.compare(await read('auth', { creds: { username: 'u', password: 'p' } }), blob), 0);
    // the raw try, the node:http try that learns of Basic, and its repeat with credentials
    assert.deepEqual(requests.splice(0), ['auth:close', 'auth:keep-alive', 'auth:keep-alive']);
    assert.equal(Buffer.compare(await read('redirect'), blob), 0);
    assert.deepEqual(requests.splice(0), ['redirect:close', 'redirect:keep-alive']);
    const err = await read('missing').catch((e: unknown) => e);
    assert.ok(isBerthError(err, 'BERTH_NOT_FOUND'), String(err));
    assert.match((err as Error).message, /^reading layer sha256:[0-9a-f]{12} from docker:\/\/127\.0\.0\.1:\d+\/app: registry answered 404 BLOB_UNKNOWN: blob unknown to registry/);
  } finally {
    await srv.close();
    await storage.close();
  }
});

test('a body cut short is an ECONNRESET of the iteration; the source resumes it with Range', async () => {
  const blob = pattern(3 << 20);
  const ranges: string[] = [];
  const srv = await serve((req, res) => {
    if (req.url === '/v2/') return void res.end('{}');
    const range = req.headers.range;
    ranges.push(range ?? 'none');
    if (range === undefined) {
      res.writeHead(200, { 'Content-Length': String(blob.length) });
      res.write(blob.subarray(0, 1 << 20), () => res.socket?.destroy());
      return;
    }
    const from = Number(/bytes=(\d+)-/.exec(range)![1]);
    res.writeHead(206, { 'Content-Length': String(blob.length - from), 'Content-Range': `bytes ${from}-${blob.length - 1}/${blob.length}` });
    res.end(blob.subarray(from));
  });
  try {
    const url = new URL(`http://${srv.host}/v2/app/blobs/x`);
    const raw = await rawGet(url, {}, { timeoutMs: 5000 });
    assert.equal(raw.status, 200);
    let got = 0;
    const err = await (async () => {
      for await (const c of raw.body!) got += c.length;
    })().catch((e: unknown) => e);
    assert.equal((err as { code?: string }).code, 'ECONNRESET', String(err));
    assert.equal(raw.body!.complete, false);
    assert.ok(got > 0 && got < blob.length, `${got} bytes before the cut`);

    ranges.length = 0;
    const desc: Descriptor = { mediaType: LAYER, digest: sha(blob), size: blob.length };
    const bytes = Buffer.from(await toBytes(await openVerified(source(srv.host), desc)));
    assert.equal(Buffer.compare(bytes, blob), 0);
    assert.equal(ranges.length, 2);
    assert.match(ranges[1]!, /^bytes=\d+-$/);
  } finally {
    await srv.close();
  }
});

test('an early stop, an abort and an idle server each close the socket', async () => {
  const blob = pattern(8 << 20);
  const srv = await serve((req, res) => {
    if (req.url?.endsWith('/idle')) {
      res.writeHead(200, { 'Content-Length': '10' });
      res.write('12345');
      return;
    }
    res.writeHead(200, { 'Content-Length': String(blob.length) });
    res.end(blob);
  });
  try {
    const url = new URL(`http://${srv.host}/v2/app/blobs/x`);
    const raw = await rawGet(url, {}, { timeoutMs: 5000 });
    for await (const c of raw.body!) {
      assert.ok(c.length > 0);
      break;
    }
    await waitFor(() => srv.sockets.size === 0);

    const ac = new AbortController();
    const aborted = await rawGet(url, {}, { timeoutMs: 5000, signal: ac.signal });
    const reading = (async () => {
      for await (const _ of aborted.body!) ac.abort();
    })();
    const err = await reading.catch((e: unknown) => e);
    assert.equal((err as { code?: string }).code, 'ABORT_ERR', String(err));
    await waitFor(() => srv.sockets.size === 0);

    const idle = await rawGet(new URL(`http://${srv.host}/idle`), {}, { timeoutMs: 200 });
    const timedOut = await (async () => {
      for await (const _ of idle.body!) {
        // the first five bytes come; then nothing
      }
    })().catch((e: unknown) => e);
    assert.equal((timedOut as { code?: string }).code, 'ETIMEDOUT', String(timedOut));
    await waitFor(() => srv.sockets.size === 0);
  } finally {
    await srv.close();
  }
});
