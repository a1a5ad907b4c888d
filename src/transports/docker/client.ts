/**
 * HTTP to one registry host (node:http / node:https): scheme choice (loopback and `--insecure`
 * hosts may speak plain HTTP; everything else is HTTPS with verified certificates, plus
 * `--ca-file` and SSL_CERT_FILE), Basic and Bearer auth (tokens from the OAuth2 POST flow or the
 * docker GET, cached per scope and fetched again on a 401; identity tokens), redirects (Authorization dropped when the origin changes, as for blob storage),
 * bounded retries with backoff on 429/5xx and broken connections, and idle timeouts. Errors name
 * the operation and never contain a credential or an unredacted URL. Large blob bodies over plain
 * HTTP are read on sockets of their own (getBlob, raw-get.ts).
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type https from 'node:https';
import { readFileSync } from 'node:fs';
import { isLoopbackHost } from '../../core/reference.js';
import { BerthError, isBerthError, toBerthError } from '../../core/errors.js';
import { concatBytes } from '../../io/stream.js';
import { basicHeader, hasPassword, lookupCredentials, parseChallenges, secretsOf, type Credentials, type Env } from './auth.js';
import { redactText, redactUrl, registryError } from './errors.js';
import { rawGet, type RawResponse, type ResponseBody } from './raw-get.js';
import { onRegistryDefaultsChange, registryDefaults } from './settings.js';

export interface RegistryOptions {
  /** Hosts (`host[:port]`) allowed to use HTTPS without verification, or plain HTTP. */
  readonly insecure?: readonly string[];
  /** PEM files of extra trusted CAs (added to Node's roots; SSL_CERT_FILE from `env` too). */
  readonly caFiles?: readonly string[];
  /** Credentials for every host, overriding config.json (`--creds`). */
  readonly creds?: Credentials;
  /** Where DOCKER_CONFIG, HOME and SSL_CERT_FILE are read (default process.env). */
  readonly env?: Env;
  /** Retries after the first try on 429/5xx and broken connections (default 3). */
  readonly retries?: number;
  /** First backoff delay, doubled per retry (default 250 ms). */
  readonly retryDelayMs?: number;
  /** A connection idle this long fails (default 30 s). */
  readonly timeoutMs?: number;
  readonly userAgent?: string;
  /** Upload in chunks: blobs up to this size in one PUT, larger ones (and those of unknown digest) in PATCH chunks of this size. Default: up to 4 MiB in one PUT, larger ones streamed in one PATCH. */
  readonly uploadChunkSize?: number;
  /** Ask the token service for a refresh token too (`access_type=offline`, `offline_token=true`), as docker login does; see refreshToken. */
  readonly offlineToken?: boolean;
}

export interface RequestSpec {
  readonly method: 'GET' | 'HEAD' | 'DELETE' | 'PUT' | 'POST' | 'PATCH';
  /** `/v2/…` on this host, or an absolute URL (pagination links, upload locations). */
  readonly path: string;
  /** The token scope the request needs, e.g. `repository:app:pull`. */
  readonly scope?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Statuses returned to the caller; anything else throws a registry error. Default 2xx. */
  readonly accept?: readonly number[];
  /** The operation, for errors: `reading docker://127.0.0.1:5000/app:1`. */
  readonly what: string;
  /** Follow redirects (default true for GET and HEAD). */
  readonly followRedirects?: boolean;
  readonly signal?: AbortSignal;
}

export interface RegistryResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The final URL (after redirects). */
  readonly url: URL;
  /** The body; the caller must consume it or call discard(). */
  readonly body: ResponseBody;
  header(name: string): string | undefined;
  bytes(max?: number): Promise<Uint8Array>;
  discard(): void;
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);
const RETRY_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);
const CERT_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME|HOSTNAME/;
const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 * 1024;

interface Token {
  readonly value: string;
  readonly expiresAt: number;
}

interface TokenAnswer {
  readonly status: number;
  readonly body: Uint8Array;
}

/** Answers to the OAuth2 POST after which the docker GET is tried (services that do not take the POST). */
const OAUTH_FALLBACK = new Set([400, 401, 403, 404, 405]);

/** Talks to one registry host; keeps its scheme, credentials and tokens for the process. */
export class RegistryClient {
  private base: Promise<URL> | undefined;
  private creds: Promise<Credentials | undefined> | undefined;
  /** The host asked for Basic: send it with every request. */
  private basic = false;
  /** The host's Bearer challenge (realm, service), once seen. */
  private bearer: { realm: string; service: string | undefined } | undefined;
  private readonly tokens = new Map<string, Token>();
  /** The token service answered the OAuth2 POST with 404/405: it only has the docker GET. */
  private noOAuth = false;
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private httpsAgent: https.Agent | undefined;
  /** Token requests made (tests check the cache with it). */
  tokenFetches = 0;
  /** The last refresh token a token service gave (only asked with `offlineToken`). */
  refreshToken: string | undefined;
  /** Per repository path: whether the referrers API answered (true) or 404 (false), once asked. */
  readonly referrersApi = new Map<string, boolean>();

  constructor(readonly host: string, readonly opts: RegistryOptions = {}) {}

  private get env(): Env {
    return this.opts.env ?? process.env;
  }

  /** Whether the host may skip TLS verification or use HTTP. */
  get insecure(): boolean {
    const h = this.host.toLowerCase();
    return (this.opts.insecure ?? []).some((i) => i.toLowerCase() === h || i.toLowerCase() === h.replace(/:\d+$/, ''));
  }

  /** `https://host` or `http://host`, decided once (see the module comment). */
  baseUrl(signal?: AbortSignal): Promise<URL> {
    this.base ??= this.chooseBase(signal).catch((err: unknown) => {
      this.base = undefined;
      throw err;
    });
    return this.base;
  }

  private async chooseBase(signal?: AbortSignal): Promise<URL> {
    const httpsUrl = new URL(`https://${this.host}/`);
    const httpUrl = new URL(`http://${this.host}/`);
    const loopback = isLoopbackHost(this.host);
    if (loopback) {
      // plain HTTP first; a TLS server answers it with 400 "Client sent an HTTP request to an HTTPS server" or garbage
      try {
        const res = await this.send('GET', new URL('/v2/', httpUrl), {}, undefined, signal);
        const body = Buffer.from(await readLimited(res, 4096)).toString('utf8');
        if (res.statusCode === 400 && /HTTPS/i.test(body)) return httpsUrl;
        return httpUrl;
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (code.startsWith('HPE_') || code === 'ECONNRESET') return httpsUrl;
        throw this.connectError(err, httpUrl);
      }
    }
    if (!this.insecure) return httpsUrl;
    try {
      const res = await this.send('GET', new URL('/v2/', httpsUrl), {}, undefined, signal);
      res.resume();
      return httpsUrl;
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (code === 'EPROTO' || code.startsWith('ERR_SSL') || code === 'ECONNRESET') return httpUrl;
      throw this.connectError(err, httpsUrl);
    }
  }

  /**
   * node:http and its agent, or node:https and its agent. node:https and node:tls load when a
   * host first speaks HTTPS: ~5 ms of start-up that a plain-HTTP registry does without.
   */
  private async transportFor(url: URL): Promise<{ mod: typeof http | typeof https; agent: http.Agent }> {
    if (url.protocol !== 'https:') return { mod: http, agent: this.httpAgent };
    const [{ default: mod }, { default: tls }] = await Promise.all([import('node:https'), import('node:tls')]);
    this.httpsAgent ??= new mod.Agent(this.tlsOptions(tls.rootCertificates));
    return { mod, agent: this.httpsAgent };
  }

  private tlsOptions(roots: readonly string[]): https.AgentOptions {
    const extra: string[] = [];
    const files = [...(this.opts.caFiles ?? [])];
    if (this.env.SSL_CERT_FILE) files.push(this.env.SSL_CERT_FILE);
    for (const f of files) {
      try {
        extra.push(readFileSync(f, 'utf8'));
      } catch (err) {
        throw new BerthError('BERTH_IO', `reading CA file ${f}: ${(err as Error).message}`, { subject: f });
      }
    }
    return {
      keepAlive: true,
      ...(extra.length > 0 ? { ca: [...roots, ...extra] } : {}),
      ...(this.insecure ? { rejectUnauthorized: false } : {}),
    };
  }

  /** One HTTP exchange, no auth, retries or redirects; resolves when the headers arrive. */
  private async send(method: string, url: URL, headers: Record<string, string>, body: Uint8Array | undefined, signal?: AbortSignal): Promise<IncomingMessage> {
    const { mod, agent } = await this.transportFor(url);
    const timeout = this.opts.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, {
        method,
        headers: { 'User-Agent': this.opts.userAgent ?? 'berth', ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) },
        agent,
        timeout,
        ...(signal ? { signal } : {}),
      });
      req.on('timeout', () => {
        const err = Object.assign(new Error(`no answer for ${Math.round(timeout / 1000)} s`), { code: 'ETIMEDOUT' });
        req.destroy(err);
      });
      req.on('error', reject);
      req.on('response', (res) => {
        // an idle body times out too
        res.setTimeout?.(timeout);
        resolve(res);
      });
      req.end(body === undefined ? undefined : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    });
  }

  private connectError(err: unknown, url: URL): BerthError {
    if (isBerthError(err)) return err;
    const code = (err as { code?: string }).code ?? '';
    const msg = redactText((err as Error).message ?? String(err));
    if (CERT_CODES.test(code) || /certificate/i.test(msg)) {
      return new BerthError('BERTH_IO', `TLS certificate of ${this.host} is not trusted (${code || msg}): pass --ca-file with its CA, or --insecure ${this.host} to skip verification`, { subject: this.host, cause: err });
    }
    if (code === 'ABORT_ERR') return new BerthError('BERTH_ABORTED', `request to ${this.host} aborted`, { subject: this.host, cause: err });
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') {
      return new BerthError('BERTH_IO', `the connection to ${url.protocol === 'http:' ? 'http' : 'https'}://${this.host} broke (${code})`, { subject: this.host, cause: err });
    }
    const what = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' ? 'host not found' : msg;
    return new BerthError('BERTH_IO', `cannot reach ${url.protocol === 'http:' ? 'http' : 'https'}://${this.host} (${what}${code && what !== msg && !what.includes(code) ? `, ${code}` : ''})`, { subject: this.host, cause: err });
  }

  private credentials(): Promise<Credentials | undefined> {
    this.creds ??= this.opts.creds !== undefined ? Promise.resolve(this.opts.creds) : lookupCredentials(this.host, this.env);
    return this.creds;
  }

  /** Authorization for a request with `scope`, from what is already known (no network unless a token must be fetched). */
  private async authorization(scope: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    if (this.bearer !== undefined) {
      const key = scope ?? '';
      const cached = this.tokens.get(key);
      if (cached !== undefined && cached.expiresAt > Date.now()) return `Bearer ${cached.value}`;
      return `Bearer ${await this.fetchToken(key, scope, signal)}`;
    }
    if (this.basic) {
      const creds = await this.credentials();
      return hasPassword(creds) ? basicHeader(creds) : undefined;
    }
    return undefined;
  }

  private readonly inflight = new Map<string, Promise<string>>();

  /** One token request per scope at a time: concurrent requests share it. */
  private fetchToken(key: string, scope: string | undefined, signal?: AbortSignal): Promise<string> {
    let p = this.inflight.get(key);
    if (p === undefined) {
      p = this.requestToken(key, scope, signal).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /**
   * Gets a Bearer token from the realm, as distribution's token spec describes:
   * - an identity token (refresh token): OAuth2 `POST` with `grant_type=refresh_token`;
   * - a user name and password: OAuth2 `POST` with `grant_type=password`, and when the service
   *   does not take that (400/401/403/404/405, as GCR, Artifactory and ACR answer) the `GET` with
   *   Basic auth every registry takes;
   * - nothing: an anonymous `GET`.
   * A new refresh token in the answer replaces the identity token for the rest of the process.
   * Secrets go only into the request body or header, never into a URL or an error.
   */
  private async requestToken(key: string, scope: string | undefined, signal?: AbortSignal): Promise<string> {
    const b = this.bearer!;
    let realm: URL;
    try {
      realm = new URL(b.realm);
    } catch {
      throw new BerthError('BERTH_IO', `${this.host} named a token service that is not a URL`, { subject: this.host });
    }
    const scopes = (scope ?? '').split(' ').filter((x) => x !== '');
    const creds = await this.credentials();
    this.tokenFetches++;
    let answer: TokenAnswer;
    if (creds?.identityToken !== undefined) {
      answer = await this.oauthToken(realm, b.service, scopes, { grant_type: 'refresh_token', refresh_token: creds.identityToken }, signal);
    } else if (creds !== undefined) {
      answer = this.noOAuth ? { status: 404, body: new Uint8Array(0) } : await this.oauthToken(realm, b.service, scopes, { grant_type: 'password', username: creds.username, password: creds.password }, signal);
      if (OAUTH_FALLBACK.has(answer.status)) {
        // a service without the POST says so once: later tokens go straight to the GET
        if (answer.status === 404 || answer.status === 405) this.noOAuth = true;
        const viaGet = await this.basicToken(realm, b.service, scopes, creds, signal);
        // a service without the GET either: the POST's answer says what went wrong
        answer = (viaGet.status === 404 || viaGet.status === 405) && !this.noOAuth ? answer : viaGet;
      }
    } else {
      answer = await this.basicToken(realm, b.service, scopes, undefined, signal);
    }
    const secrets = secretsOf(creds);
    const scrub = (bytes: Uint8Array): string => secrets.reduce((t, x) => t.split(x).join('REDACTED'), Buffer.from(bytes).toString('utf8'));
    if (answer.status !== 200) {
      const hint = answer.status === 401 || answer.status === 403 || answer.status === 400
        ? creds?.identityToken !== undefined ? `the token service refused the identity token for ${this.host}; log in again`
          : creds ? `the token service refused the credentials for ${this.host}` : `no credentials for ${this.host}: use --creds USER:PASS or berth login ${this.host}`
        : undefined;
      throw registryError(`getting a token from ${redactUrl(stripQuery(realm))}`, answer.status, scrub(answer.body), { subject: this.host, ...(hint ? { hint } : {}) });
    }
    let json: { token?: unknown; access_token?: unknown; expires_in?: unknown; refresh_token?: unknown };
    try {
      json = JSON.parse(Buffer.from(answer.body).toString('utf8')) as typeof json;
    } catch {
      throw new BerthError('BERTH_INVALID_JSON', `getting a token for ${this.host}: the token service answered something that is not JSON`, { subject: this.host });
    }
    const token = typeof json.token === 'string' && json.token !== '' ? json.token : typeof json.access_token === 'string' ? json.access_token : undefined;
    if (token === undefined || token === '') throw new BerthError('BERTH_IO', `getting a token for ${this.host}: the answer has no token`, { subject: this.host });
    if (typeof json.refresh_token === 'string' && json.refresh_token !== '') {
      this.refreshToken = json.refresh_token;
      if (creds?.identityToken !== undefined && json.refresh_token !== creds.identityToken) this.creds = Promise.resolve({ ...creds, identityToken: json.refresh_token });
    }
    const ttl = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
    this.tokens.set(key, { value: token, expiresAt: Date.now() + Math.max(ttl - 10, 5) * 1000 });
    return token;
  }

  /** The OAuth2 token request: a form POST to the realm (no secret in the URL). */
  private async oauthToken(realm: URL, service: string | undefined, scopes: readonly string[], grant: Record<string, string>, signal?: AbortSignal): Promise<TokenAnswer> {
    const form = new URLSearchParams({ ...grant, client_id: this.opts.userAgent ?? 'berth' });
    if (service !== undefined) form.set('service', service);
    if (this.opts.offlineToken === true) form.set('access_type', 'offline');
    if (scopes.length > 0) form.set('scope', scopes.join(' '));
    const body = Buffer.from(form.toString(), 'utf8');
    const url = stripQuery(realm);
    for (const [k, v] of realm.searchParams) url.searchParams.append(k, v);
    return this.tokenExchange('POST', url, { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' }, body, signal);
  }

  /** The docker token request: GET with service and scope in the query, Basic auth when there are credentials. */
  private async basicToken(realm: URL, service: string | undefined, scopes: readonly string[], creds: Credentials | undefined, signal?: AbortSignal): Promise<TokenAnswer> {
    const url = new URL(realm.toString());
    if (service !== undefined) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    if (this.opts.offlineToken === true && hasPassword(creds)) {
      url.searchParams.set('offline_token', 'true');
      url.searchParams.set('client_id', this.opts.userAgent ?? 'berth');
    }
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (hasPassword(creds)) headers.Authorization = basicHeader(creds);
    return this.tokenExchange('GET', url, headers, undefined, signal);
  }

  private async tokenExchange(method: 'GET' | 'POST', url: URL, headers: Record<string, string>, body: Uint8Array | undefined, signal?: AbortSignal): Promise<TokenAnswer> {
    let res: IncomingMessage;
    try {
      // a POST that never reached the service may be sent again: a token request changes nothing
      res = await this.withRetries(() => this.send(method, url, headers, body, signal), (r) => {
        if (!RETRY_STATUS.has(r.statusCode ?? 0)) return undefined;
        r.resume();
        return retryAfterMs(r.headers['retry-after']);
      });
    } catch (err) {
      throw this.connectError(err, url);
    }
    return { status: res.statusCode ?? 0, body: await readLimited(res, MAX_ERROR_BODY) };
  }

  private async withRetries<T>(fn: () => Promise<T>, retryable: (v: T) => number | undefined = () => undefined): Promise<T> {
    const max = this.opts.retries ?? 3;
    const base = this.opts.retryDelayMs ?? 250;
    for (let attempt = 0; ; attempt++) {
      let result: T;
      try {
        result = await fn();
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (attempt >= max || !RETRY_CODES.has(code)) throw err;
        await sleep(base * 2 ** attempt);
        continue;
      }
      const waitMs = retryable(result);
      if (waitMs === undefined || attempt >= max) return result;
      await sleep(Math.max(waitMs, base * 2 ** attempt));
    }
  }

  /**
   * Sends a request with auth, retries and redirects. Statuses in `spec.accept` (default 2xx)
   * come back to the caller; anything else throws an error naming `spec.what`.
   */
  async request(spec: RequestSpec): Promise<RegistryResponse> {
    let base: URL;
    try {
      base = await this.baseUrl(spec.signal);
    } catch (err) {
      throw withWhat(err, spec.what);
    }
    let url = new URL(spec.path, base);
    // POST and PATCH move upload state forward: never sent twice
    const idempotent = spec.method === 'GET' || spec.method === 'HEAD' || spec.method === 'DELETE' || spec.method === 'PUT';
    const follow = spec.followRedirects ?? (spec.method === 'GET' || spec.method === 'HEAD');
    let authTried = false;
    let refreshed = false;
    for (let hop = 0; ; ) {
      const sameOrigin = url.host === base.host && url.protocol === base.protocol;
      const headers: Record<string, string> = { ...(spec.headers ?? {}) };
      if (sameOrigin) {
        const auth = await this.authorization(spec.scope, spec.signal);
        if (auth !== undefined) headers.Authorization = auth;
      }
      let res: IncomingMessage;
      try {
        res = await this.withRetries(
          () => this.send(spec.method, url, headers, spec.body, spec.signal),
          (r) => {
            if (!idempotent || !RETRY_STATUS.has(r.statusCode ?? 0)) return undefined;
            r.resume();
            return retryAfterMs(r.headers['retry-after']);
          },
        );
      } catch (err) {
        throw withWhat(this.connectError(err, url), spec.what);
      }
      const status = res.statusCode ?? 0;
      if (status === 401 && sameOrigin) {
        const challenges = parseChallenges(headerOf(res.headers, 'www-authenticate'));
        const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
        const basic = challenges.find((c) => c.scheme === 'basic');
        const hadToken = this.bearer !== undefined;
        if (bearer !== undefined && (!authTried || (!refreshed && hadToken))) {
          res.resume();
          if (authTried) refreshed = true;
          authTried = true;
          this.bearer = { realm: bearer.params.realm!, service: bearer.params.service };
          const key = spec.scope ?? '';
          // the token this request carried was refused: drop it and get a fresh one (once); a request
          // sent before the token existed just tries again with it
          const cached = this.tokens.get(key);
          if (cached !== undefined && headers.Authorization === `Bearer ${cached.value}`) this.tokens.delete(key);
          if (!this.tokens.has(key)) {
            const wantScope = bearer.params.scope ?? spec.scope;
            await this.fetchToken(key, wantScope && spec.scope && !wantScope.includes(spec.scope) ? `${spec.scope} ${wantScope}` : wantScope, spec.signal);
          }
          continue;
        }
        // another request may have learnt of Basic meanwhile: what matters is whether this one carried it
        if (basic !== undefined && !authTried && headers.Authorization === undefined && hasPassword(await this.credentials())) {
          res.resume();
          authTried = true;
          this.basic = true;
          continue;
        }
        const creds = await this.credentials();
        const body = await readLimited(res, MAX_ERROR_BODY);
        throw registryError(spec.what, status, body, {
          subject: this.host,
          ...(res.statusMessage ? { statusText: res.statusMessage } : {}),
          hint: creds ? `the registry refused the credentials for ${this.host}` : `no credentials for ${this.host}: use --creds USER:PASS or berth login ${this.host}`,
        });
      }
      if (follow && status >= 300 && status < 400 && status !== 304 && res.headers.location !== undefined) {
        res.resume();
        if (++hop > MAX_REDIRECTS) throw new BerthError('BERTH_IO', `${spec.what}: more than ${MAX_REDIRECTS} redirects`, { subject: this.host });
        url = new URL(res.headers.location, url);
        continue;
      }
      const accepted = spec.accept ?? [];
      if ((status >= 200 && status < 300 && spec.accept === undefined) || accepted.includes(status)) return wrap(res, url);
      const body = spec.method === 'HEAD' ? undefined : await readLimited(res, MAX_ERROR_BODY);
      if (spec.method === 'HEAD') res.resume();
      throw registryError(spec.what, status, body, { subject: this.host, ...(res.statusMessage ? { statusText: res.statusMessage } : {}) });
    }
  }

  /**
   * Sends a request whose body streams from `body` (a blob upload: one PATCH with the whole blob,
   * as docker and skopeo send it), with `Content-Length` when the length is known, else chunked.
   * Auth as request() (a token for `spec.scope` is fetched first when the host uses Bearer), but
   * no retry and no redirect: the body can be read once. Resolves when the answer is in and the
   * body was read to its end; an error of the body (a digest mismatch found at its end) wins.
   */
  async requestStream(spec: Omit<RequestSpec, 'body' | 'followRedirects'>, body: AsyncIterable<Uint8Array>, length?: number): Promise<RegistryResponse> {
    let base: URL;
    try {
      base = await this.baseUrl(spec.signal);
    } catch (err) {
      throw withWhat(err, spec.what);
    }
    const url = new URL(spec.path, base);
    const headers: Record<string, string> = { 'User-Agent': this.opts.userAgent ?? 'berth', ...(spec.headers ?? {}) };
    if (url.host === base.host && url.protocol === base.protocol) {
      const auth = await this.authorization(spec.scope, spec.signal);
      if (auth !== undefined) headers.Authorization = auth;
    }
    if (length !== undefined) headers['Content-Length'] = String(length);
    const { mod, agent } = await this.transportFor(url);
    const timeout = this.opts.timeoutMs ?? 30_000;
    const req = mod.request(url, {
      method: spec.method, headers, agent, timeout, ...(spec.signal ? { signal: spec.signal } : {}),
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer for ${Math.round(timeout / 1000)} s`), { code: 'ETIMEDOUT' })));
    const answer = new Promise<IncomingMessage>((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        res.setTimeout?.(timeout);
        resolve(res);
      });
    });
    // the pump stops when the request ends early (an answer before the whole body: a refusal)
    let stop = false;
    let pumpDone = false;
    let bodyError: unknown;
    const pump = (async (): Promise<void> => {
      for await (const chunk of body) {
        if (stop || req.destroyed) return;
        if (!req.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              req.off('drain', done);
              req.off('close', done);
              resolve();
            };
            req.on('drain', done);
            req.on('close', done);
          });
        }
      }
      if (!req.destroyed) req.end();
    })().catch((err: unknown) => {
      bodyError = err;
      req.destroy();
    }).finally(() => {
      pumpDone = true;
    });
    let res: IncomingMessage | undefined;
    let netError: unknown;
    try {
      res = await answer;
    } catch (err) {
      netError = err;
    }
    const status = res?.statusCode ?? 0;
    const accepted = res !== undefined && ((status >= 200 && status < 300 && spec.accept === undefined) || (spec.accept ?? []).includes(status));
    // a refusal is read before the request is ended (it may arrive before the whole body went)
    const refusal = res !== undefined && !accepted ? await readLimited(res, MAX_ERROR_BODY).catch(() => new Uint8Array(0)) : undefined;
    stop = true;
    if (!pumpDone && !accepted) req.destroy();
    await pump;
    if (bodyError !== undefined) {
      res?.resume();
      throw bodyError;
    }
    if (res === undefined) throw withWhat(this.connectError(netError, url), spec.what);
    if (accepted) return wrap(res, url);
    const creds = status === 401 ? await this.credentials() : undefined;
    throw registryError(spec.what, status, refusal, {
      subject: this.host, ...(res.statusMessage ? { statusText: res.statusMessage } : {}),
      ...(status === 401 ? { hint: creds ? `the registry refused the credentials for ${this.host}` : `no credentials for ${this.host}: use --creds USER:PASS or berth login ${this.host}` } : {}),
    });
  }

  /**
   * A GET of blob bytes. Over plain HTTP it goes first on a socket of its own (raw-get.ts: the
   * body arrives in large reads and is not copied); an answer that is not a plain accepted body
   * (an auth challenge, a redirect, an error, a chunked body) or a failure before the headers sends
   * the request again through request(), which handles all of those.
   */
  async getBlob(spec: Omit<RequestSpec, 'method' | 'body'>): Promise<RegistryResponse> {
    const full: RequestSpec = { ...spec, method: 'GET' };
    let base: URL;
    try {
      base = await this.baseUrl(spec.signal);
    } catch (err) {
      throw withWhat(err, spec.what);
    }
    const url = new URL(spec.path, base);
    if (url.protocol !== 'http:' || url.host !== base.host) return this.request(full);
    const headers: Record<string, string> = { 'User-Agent': this.opts.userAgent ?? 'berth', ...(spec.headers ?? {}) };
    const auth = await this.authorization(spec.scope, spec.signal);
    if (auth !== undefined) headers.Authorization = auth;
    let raw: RawResponse;
    try {
      raw = await rawGet(url, headers, { timeoutMs: this.opts.timeoutMs ?? 30_000, ...(spec.signal ? { signal: spec.signal } : {}) });
    } catch (err) {
      if ((err as { code?: string }).code === 'ABORT_ERR') throw withWhat(this.connectError(err, url), spec.what);
      return this.request(full);
    }
    const ok = (raw.status >= 200 && raw.status < 300 && spec.accept === undefined) || (spec.accept ?? []).includes(raw.status);
    if (ok && raw.body !== undefined) {
      const body = raw.body;
      return {
        status: raw.status, headers: raw.headers, url, body,
        header: (name) => headerOf(raw.headers, name),
        bytes: (max) => readLimited(body, max ?? Number.MAX_SAFE_INTEGER, true),
        discard: () => body.resume(),
      };
    }
    raw.body?.destroy();
    return this.request(full);
  }

  /** Sends an arbitrary request to an absolute URL outside the registry (blob storage), with retries. */
  async sendExternal(method: 'GET', url: URL, headers: Record<string, string>, what: string, signal?: AbortSignal): Promise<IncomingMessage> {
    try {
      return await this.withRetries(() => this.send(method, url, headers, undefined, signal));
    } catch (err) {
      throw withWhat(this.connectError(err, url), what);
    }
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent?.destroy();
  }
}

/** The `rel="next"` target of a Link header, resolved against the request URL. */
export function nextLink(header: string | undefined, base: URL): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m !== null && /\brel\s*=\s*"?next"?/i.test(m[2]!)) {
      const u = new URL(m[1]!, base);
      return `${u.pathname}${u.search}`;
    }
  }
  return undefined;
}

function withWhat(error: unknown, what: string): BerthError {
  const err = toBerthError(error);
  return new BerthError(err.code, `${what}: ${err.message}`, { ...(err.subject ? { subject: err.subject } : {}), cause: err.cause ?? err });
}

function wrap(res: IncomingMessage, url: URL): RegistryResponse {
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    url,
    body: res,
    header: (name) => headerOf(res.headers, name),
    bytes: (max) => readLimited(res, max ?? Number.MAX_SAFE_INTEGER, true),
    discard: () => {
      res.resume();
    },
  };
}

export function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Reads a body into memory, at most `max` bytes (the rest is dropped, or an error when `strict`). */
async function readLimited(res: ResponseBody, max: number, strict = false): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res) {
    if (total + chunk.length > max) {
      if (strict) {
        res.destroy();
        throw new BerthError('BERTH_TOO_LARGE', `registry answer is over the limit of ${max} bytes`, { want: max, got: total + chunk.length });
      }
      chunks.push(chunk.subarray(0, max - total));
      total = max;
      res.resume();
      break;
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  return concatBytes(chunks, total);
}

function retryAfterMs(value: string | string[] | undefined): number {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return 0;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.min(Math.max(secs, 0), 10) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? 0 : Math.min(Math.max(date - Date.now(), 0), 10_000);
}

function stripQuery(u: URL): URL {
  const c = new URL(u.toString());
  c.search = '';
  return c;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// One client per host for the process, so tokens and the scheme choice are reused.

const pool = new Map<string, RegistryClient>();
// the defaults live in settings.ts (light, set on every command); new ones drop the pooled clients
onRegistryDefaultsChange(closeRegistryClients);
export { registryDefaults, setRegistryDefaults } from './settings.js';

/** The pooled client for an API host (`registry-1.docker.io`, `127.0.0.1:5000`). */
export function clientFor(host: string): RegistryClient {
  let c = pool.get(host);
  if (c === undefined) {
    c = new RegistryClient(host, registryDefaults());
    pool.set(host, c);
  }
  return c;
}

/** Drops every pooled client and its idle connections. */
export function closeRegistryClients(): void {
  for (const c of pool.values()) c.close();
  pool.clear();
}

// ---------------------------------------------------------------------------------------------
// Where blobs were seen, so a push to another repository of the same registry can mount them.

const seenBlobs = new Map<string, Map<string, string>>();

/** Records that `repo` on `host` holds the blob (read from it, or found there). */
export function noteBlobLocation(host: string, repo: string, digest: string): void {
  let m = seenBlobs.get(host);
  if (m === undefined) {
    m = new Map();
    seenBlobs.set(host, m);
  }
  if (m.size > 100_000) m.clear();
  m.set(digest, repo);
}

/** A repository of `host` known to hold the blob, other than `except`. */
export function knownBlobLocation(host: string, digest: string, except: string): string | undefined {
  const repo = seenBlobs.get(host)?.get(digest);
  return repo === except ? undefined : repo;
}
