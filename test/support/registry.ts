/**
 * A real distribution registry (Debian's docker-registry 2.8.2) for tests: a generated config.yml
 * on 127.0.0.1 with a free port and temp storage, optional htpasswd or token auth and TLS; start
 * waits until /v2/ answers, stop ends the process (by its pid) and removes the temp dirs. Plus
 * helpers for skopeo, htpasswd and openssl, all bounded by timeouts.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { createHash, createSign, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { requirePeer } from './peers.js';

const run = promisify(execFile);

export interface StartRegistryOptions {
  /** htpasswd file: Basic auth. */
  readonly htpasswd?: string;
  /** Token auth: the registry trusts JWTs signed by the key of `rootCertBundle`. */
  readonly token?: { readonly realm: string; readonly service: string; readonly issuer: string; readonly rootCertBundle: string };
  /** Serve HTTPS with this certificate and key (PEM files). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** storage.delete.enabled (default true). */
  readonly deleteEnabled?: boolean;
  /** Reuse this storage directory (not removed at stop). */
  readonly storageDir?: string;
  /** Listen on this port of 127.0.0.1 (a restart on the same address); default a free one. */
  readonly port?: number;
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  readonly storageDir: string;
  /** What the registry printed (for failure messages). */
  log(): string;
  /** SIGKILL, as a crash: the process ends mid-request and nothing is removed (stop() still cleans up). */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

/** A TCP port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<RunningRegistry> {
  const bin = requirePeer('registry');
  const work = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-'));
  const storageDir = opts.storageDir ?? path.join(work, 'data');
  const port = opts.port ?? await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storageDir)}`,
    '  delete:',
    `    enabled: ${opts.deleteEnabled === false ? 'false' : 'true'}`,
    'http:',
    `  addr: ${host}`,
    '  secret: berth-test-secret',
  ];
  if (opts.tls) lines.push('  tls:', `    certificate: ${JSON.stringify(opts.tls.cert)}`, `    key: ${JSON.stringify(opts.tls.key)}`);
  if (opts.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: berth-test', `    path: ${JSON.stringify(opts.htpasswd)}`);
  if (opts.token) {
    lines.push('auth:', '  token:', `    realm: ${JSON.stringify(opts.token.realm)}`, `    service: ${JSON.stringify(opts.token.service)}`,
      `    issuer: ${JSON.stringify(opts.token.issuer)}`, `    rootcertbundle: ${JSON.stringify(opts.token.rootCertBundle)}`);
  }
  const config = path.join(work, 'config.yml');
  await writeFile(config, `${lines.join('\n')}\n`);
  let output = '';
  const child: ChildProcess = spawn(bin, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  const stop = async (): Promise<void> => {
    if (!exited && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    }
    await rm(work, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`registry exited at start:\n${output}`);
    }
    if (await answers(host, opts.tls !== undefined)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`registry did not answer on ${host} within 15 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const crash = async (): Promise<void> => {
    if (!exited && child.pid !== undefined) {
      child.kill('SIGKILL');
      await exit;
    }
  };
  return { host, storageDir, log: () => output, crash, stop };
}

function answers(host: string, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (tls ? https : http).get(`${tls ? 'https' : 'http'}://${host}/v2/`, { timeout: 1000, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/** Runs skopeo with a timeout; returns stdout (throws with stderr on failure). */
export async function skopeo(args: readonly string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await run(requirePeer('skopeo'), [...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** A bcrypt htpasswd file (apache2-utils `htpasswd -Bbn`). */
export async function makeHtpasswd(file: string, user: string, password: string): Promise<void> {
  const { stdout } = await run('/usr/bin/htpasswd', ['-Bbn', user, password], { timeout: 30_000 });
  await writeFile(file, stdout);
}

/** A self-signed certificate for 127.0.0.1 and localhost (openssl req -x509). */
export async function makeCertificate(dir: string, name: string, cn = '127.0.0.1'): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  await run('/usr/bin/openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { timeout: 60_000 });
  return { cert, key };
}

export function hasTool(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Uploads a blob by hand (POST then monolithic PUT), as a client would; returns its digest. */
export async function pushBlob(base: string, repo: string, bytes: Uint8Array, headers: Record<string, string> = {}): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  if (start.status !== 202) throw new Error(`starting upload: ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: bytes, headers: { ...headers, 'Content-Type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`finishing upload: ${put.status} ${await put.text()}`);
  return digest;
}

/** PUTs a manifest under a tag or digest; returns the answer's headers. */
export async function pushManifest(base: string, repo: string, ref: string, mediaType: string, bytes: Uint8Array, headers: Record<string, string> = {}): Promise<Headers> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { ...headers, 'Content-Type': mediaType } });
  if (res.status !== 201) throw new Error(`putting manifest ${ref}: ${res.status} ${await res.text()}`);
  return res.headers;
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export interface TokenRequest {
  /** The user the request authenticated as (undefined: anonymous or refused). */
  user: string | undefined;
  scopes: string[];
  method: string;
  /** OAuth2 grant of a POST: `password` or `refresh_token`. */
  grant?: string;
  /** Whether the request carried an Authorization header. */
  authorization: boolean;
  /** What the request sent, as received (secrets included: tests check none leaks elsewhere). */
  raw: string;
}

export interface TokenIssuer {
  /** `http://127.0.0.1:PORT/token` */
  readonly realm: string;
  /** Token requests served, and the scopes asked for. */
  readonly requests: TokenRequest[];
  /** Refresh tokens issued (to `access_type=offline` requests) or given at start: token → user. */
  readonly refreshTokens: Map<string, string>;
  stop(): Promise<void>;
}

export interface TokenIssuerOptions {
  readonly cert: string;
  readonly key: string;
  readonly issuer: string;
  readonly service: string;
  readonly users: Record<string, string>;
  readonly ttl?: number;
  /** Answer the docker GET flow (default true; false: 405 as OAuth-only services do). */
  readonly get?: boolean;
  /** Answer the OAuth2 POST flow (default true; false: 404 as GCR does). */
  readonly post?: boolean;
  /** Refresh tokens (identity tokens) known from the start: token → user. */
  readonly refreshTokens?: Record<string, string>;
  /** Each refresh_token grant answers with a new refresh token (rotation). */
  readonly rotate?: boolean;
}

/**
 * A tiny token service as distribution's token spec describes it: the docker GET (Basic
 * credentials, scope and service in the query) and the OAuth2 POST (form body, `grant_type`
 * `password` or `refresh_token`, `access_type=offline` returns a refresh token). It answers with
 * an RS256 JWT carrying the certificate in `x5c`, granting every action asked for to a known user
 * and nothing to anyone else (the registry then refuses). A refused refresh token is echoed in the
 * error (as careless services do), so tests can check berth never repeats it.
 */
export async function startTokenIssuer(opts: TokenIssuerOptions): Promise<TokenIssuer> {
  const certPem = await readFile(opts.cert, 'utf8');
  const keyPem = await readFile(opts.key, 'utf8');
  const der = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  const requests: TokenRequest[] = [];
  const refreshTokens = new Map(Object.entries(opts.refreshTokens ?? {}));
  const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
  const answer = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const grant = (res: http.ServerResponse, user: string | undefined, scopes: readonly string[], extra: Record<string, unknown> = {}): void => {
    const access = user === undefined ? [] : scopes.map((s) => {
      const parts = s.split(':');
      const actions = parts.pop()!.split(',');
      const type = parts.shift()!;
      return { type, name: parts.join(':'), actions };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der] };
    const claims = { iss: opts.issuer, sub: user ?? '', aud: opts.service, exp: now + (opts.ttl ?? 300), nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(keyPem);
    const token = `${input}.${b64url(sig)}`;
    answer(res, 200, { token, access_token: token, expires_in: opts.ttl ?? 300, issued_at: new Date().toISOString(), ...extra });
  };
  const newRefreshToken = (user: string): string => {
    const t = `rt-${randomBytes(16).toString('hex')}`;
    refreshTokens.set(t, user);
    return t;
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = Buffer.concat(chunks).toString('utf8');
      const auth = req.headers.authorization;
      const record: TokenRequest = { user: undefined, scopes: [], method: req.method ?? '', authorization: auth !== undefined, raw: `${req.method} ${req.url}\n${auth ?? ''}\n${body}` };
      requests.push(record);
      if (req.method === 'POST') {
        if (opts.post === false) return answer(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'no OAuth here' }] });
        const form = new URLSearchParams(body);
        record.scopes = (form.get('scope') ?? '').split(' ').filter((s) => s !== '');
        record.grant = form.get('grant_type') ?? undefined;
        if (form.get('service') !== opts.service || (form.get('client_id') ?? '') === '') return answer(res, 400, { error: 'invalid_request' });
        let user: string | undefined;
        if (record.grant === 'password') {
          const u = form.get('username') ?? '';
          if (opts.users[u] === undefined || opts.users[u] !== form.get('password')) return answer(res, 401, { error: 'invalid_grant', error_description: 'bad user name or password' });
          user = u;
        } else if (record.grant === 'refresh_token') {
          const t = form.get('refresh_token') ?? '';
          user = refreshTokens.get(t);
          if (user === undefined) return answer(res, 401, { error: 'invalid_grant', error_description: `unknown refresh token ${t}` });
          if (opts.rotate === true) {
            refreshTokens.delete(t);
            record.user = user;
            return grant(res, user, record.scopes, { refresh_token: newRefreshToken(user) });
          }
        } else {
          return answer(res, 400, { error: 'unsupported_grant_type' });
        }
        record.user = user;
        return grant(res, user, record.scopes, form.get('access_type') === 'offline' ? { refresh_token: newRefreshToken(user) } : {});
      }
      if (opts.get === false) return answer(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'use the OAuth2 POST' }] });
      record.scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
      let user: string | undefined;
      if (auth?.startsWith('Basic ')) {
        const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
        if (u !== undefined && opts.users[u] === p.join(':')) user = u;
        else return answer(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad user name or password' }] });
      }
      record.user = user;
      grant(res, user, record.scopes, user !== undefined && url.searchParams.get('offline_token') === 'true' ? { refresh_token: newRefreshToken(user) } : {});
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    requests,
    refreshTokens,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
