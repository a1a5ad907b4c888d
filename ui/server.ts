/**
 * The explorer's server: a thin, read-only JSON API over berth's public library (the one the CLI
 * uses) and the built front-end, on loopback unless told otherwise. Every response is bounded
 * (pages, caps, size checks before reading); file paths never leave the image; assets come from
 * the local build only, under a strict Content-Security-Policy.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile as readFs, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  attestationsOf, diffImages, FileIndexCache, inspectReference, isBerthError, layerChanges, layersOf, listFiles, listStoreImages, openBlobByDigest, parsePlatform,
  platformsOf, rawConfigOf, rawManifestOf, readFile, searchFiles, storeRoot, traceStore, treeOf, withSource,
  type ErrorCode, type FileIndexCacheStats, type FileInfo, type Platform,
} from '../src/index.js';
import {
  API_HEADER, FILE_HEADERS, LIMITS,
  type ApiError, type ChangesResponse, type ConfigChange, type DiffImageSide, type DiffResponse, type FileEntry,
  type FilesResponse, type RawResponse, type RefChoice, type RefsResponse, type SearchResponse, type StoreImageRow, type StoreImagesResponse,
  type StorePathResponse, type StoreTraceResponse,
} from './api.js';

export interface ExplorerOptions {
  /** References given on the command line, shown first. */
  readonly refs?: readonly string[];
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port). */
  readonly port?: number;
  /** The bundled sample (default: examples/sample of this package). */
  readonly sample?: string;
  /** Directory of the built front-end (default: dist/ui/web next to this file). */
  readonly webRoot?: string;
  /** The local store's data root for the Store view (default: berth's, i.e. `--root`, $BERTH_ROOT, …, when the explorer starts). */
  readonly storeRoot?: string;
}

/** Counts of library calls, for tests that check the server does bounded work. */
export interface ExplorerStats {
  readonly calls: Record<string, number>;
  /** Path indexes built (one pass over an image's layers each) and requests served from one. */
  readonly fileIndex: FileIndexCacheStats;
}

export interface Explorer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly server: Server;
  readonly stats: ExplorerStats;
  close(): Promise<void>;
}

/** The sample this package ships (examples/sample), as an `oci:` reference. */
export function sampleReference(): string {
  return `oci:${fileURLToPath(new URL('../../examples/sample', import.meta.url))}`;
}

export function defaultWebRoot(): string {
  return fileURLToPath(new URL('./web/', import.meta.url));
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Starts the explorer; resolves once it listens. */
export async function startExplorer(opts: ExplorerOptions = {}): Promise<Explorer> {
  const host = opts.host ?? '127.0.0.1';
  const app = new App(opts);
  const server = createServer((req, res) => {
    app.handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'INTERNAL', (err as Error).message ?? String(err));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  app.setOrigin(host, port);
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown === '0.0.0.0' || shown === '[::]' ? '127.0.0.1' : shown}:${port}/`,
    host, port, server, stats: app.stats,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// errors and responses

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly extra: { size?: number; limit?: number } = {}) {
    super(message);
  }
}

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  BERTH_USAGE: 400,
  BERTH_INVALID_REFERENCE: 400,
  BERTH_INVALID_PLATFORM: 400,
  BERTH_INVALID_DIGEST: 400,
  BERTH_UNSAFE_PATH: 400,
  BERTH_NOT_FOUND: 404,
  BERTH_NO_MATCHING_PLATFORM: 404,
  BERTH_AMBIGUOUS: 409,
  BERTH_UNSUPPORTED: 422,
  BERTH_TOO_LARGE: 413,
  BERTH_LIMIT: 413,
  BERTH_ABORTED: 499,
};

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
    "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

function send(res: ServerResponse, status: number, type: string, body: Uint8Array | string, headers: Record<string, string> = {}): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(bytes.length), 'cache-control': 'no-store', ...headers });
  res.end(bytes);
}

function sendJson(res: ServerResponse, value: unknown): void {
  send(res, 200, 'application/json; charset=utf-8', JSON.stringify(value));
}

function sendError(res: ServerResponse, status: number, code: string, message: string, extra: { size?: number; limit?: number } = {}): void {
  const body: ApiError = { error: { code, message, status, ...extra } };
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

function errorResponse(res: ServerResponse, err: unknown): void {
  if (err instanceof HttpError) return sendError(res, err.status, err.code, err.message, err.extra);
  if (isBerthError(err)) return sendError(res, STATUS_BY_CODE[err.code] ?? 500, err.code, err.message);
  return sendError(res, 500, 'INTERNAL', err instanceof Error ? err.message : String(err));
}

// ---------------------------------------------------------------------------------------------
// parameters

function param(q: URLSearchParams, name: string, required: true): string;
function param(q: URLSearchParams, name: string, required?: false): string | undefined;
function param(q: URLSearchParams, name: string, required = false): string | undefined {
  const v = q.get(name);
  if (v === null || v === '') {
    if (required) throw new HttpError(400, 'BAD_REQUEST', `missing query parameter "${name}"`);
    return undefined;
  }
  if (v.length > LIMITS.paramChars) throw new HttpError(400, 'BAD_REQUEST', `query parameter "${name}" is longer than ${LIMITS.paramChars} characters`);
  if (v.includes('\0')) throw new HttpError(400, 'BAD_REQUEST', `query parameter "${name}" contains a NUL character`);
  return v;
}

function intParam(q: URLSearchParams, name: string, def: number, max: number): number {
  const v = param(q, name);
  if (v === undefined) return def;
  if (!/^\d{1,9}$/.test(v)) throw new HttpError(400, 'BAD_REQUEST', `query parameter "${name}" must be a whole number, got ${JSON.stringify(v)}`);
  return Math.min(Number(v), max);
}

function platformParam(q: URLSearchParams, name = 'platform'): Platform | undefined {
  const v = param(q, name);
  if (v === undefined) return undefined;
  try {
    return parsePlatform(v);
  } catch (err) {
    throw new HttpError(400, 'BERTH_INVALID_PLATFORM', `query parameter "${name}": ${(err as Error).message}`);
  }
}

/**
 * A path inside the image: absolute, no `..` segment, no NUL. The library confines paths to the
 * image anyway (`..` at its root stays at its root); the explorer refuses them outright so a
 * request that tries to climb out gets a clear answer.
 */
export function imagePathParam(q: URLSearchParams, name = 'path', def?: string): string {
  const v = param(q, name) ?? def;
  if (v === undefined) throw new HttpError(400, 'BAD_REQUEST', `missing query parameter "${name}"`);
  if (!v.startsWith('/')) throw new HttpError(400, 'BAD_PATH', `path ${JSON.stringify(v)} must be absolute (start with /)`);
  if (v.split('/').some((seg) => seg === '..')) {
    throw new HttpError(400, 'BAD_PATH', `path ${JSON.stringify(v)} climbs out with "..": paths are read inside the image only`);
  }
  return v;
}

/**
 * An image of the explorer's store: NAME[:TAG], NAME@DIGEST, an ID or ID prefix (`sha256:…`,
 * `@…`). Never a `store:[ROOT]` reference: the Store view reads the explorer's own root only.
 */
export function storeNameParam(q: URLSearchParams, name = 'name'): string {
  const v = param(q, name, true);
  if (v.length > LIMITS.storeNameChars) throw new HttpError(400, 'BAD_REQUEST', `query parameter "${name}" is longer than ${LIMITS.storeNameChars} characters`);
  if (v.startsWith('store:') || v.startsWith('[')) {
    throw new HttpError(400, 'BAD_REQUEST', `${JSON.stringify(v)}: give an image name or ID of the explorer's store, not a store:[ROOT] reference`);
  }
  if (!/^[A-Za-z0-9@][A-Za-z0-9._:/@-]*$/.test(v) || v.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new HttpError(400, 'BERTH_INVALID_REFERENCE', `${JSON.stringify(v)} is not an image name or ID (NAME[:TAG], NAME@DIGEST, sha256:ID or an ID prefix)`);
  }
  return v;
}

function withPlatform<T extends object>(o: T, platform: Platform | undefined): T & { platform?: Platform } {
  return platform === undefined ? o : { ...o, platform };
}

function platformKey(p: Platform | undefined): string {
  return p === undefined ? '' : JSON.stringify(p);
}

// ---------------------------------------------------------------------------------------------
// caches: listings are the expensive part (each one reads every layer), so they are kept a little

class Lru<V> {
  private readonly map = new Map<string, Promise<V>>();
  constructor(private readonly max: number) {}

  get(key: string, make: () => Promise<V>): Promise<V> {
    const hit = this.map.get(key);
    if (hit !== undefined) {
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const p = make();
    this.map.set(key, p);
    p.catch(() => this.map.delete(key));
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
    return p;
  }
}

function nameOf(p: string): string {
  if (p === '/') return '/';
  return p.slice(p.lastIndexOf('/') + 1);
}

function entry(f: FileInfo): FileEntry {
  return { ...f, name: nameOf(f.path) };
}

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Flattens a JSON value into path → JSON text of its leaves (arrays of scalars kept whole). */
function flattenJson(v: unknown, at: string, out: Map<string, string>): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 0) out.set(at, '{}');
    for (const k of keys) flattenJson((v as Record<string, unknown>)[k], at === '' ? k : `${at}.${k}`, out);
    return;
  }
  if (Array.isArray(v) && v.some((x) => x !== null && typeof x === 'object')) {
    v.forEach((x, i) => flattenJson(x, `${at}[${i}]`, out));
    return;
  }
  out.set(at, JSON.stringify(v));
}

export function configChanges(a: unknown, b: unknown): ConfigChange[] {
  const fa = new Map<string, string>();
  const fb = new Map<string, string>();
  flattenJson(a, '', fa);
  flattenJson(b, '', fb);
  const out: ConfigChange[] = [];
  for (const [k, va] of fa) {
    const vb = fb.get(k);
    if (vb !== va) out.push({ path: k, a: va, ...(vb !== undefined ? { b: vb } : {}) });
  }
  for (const [k, vb] of fb) if (!fa.has(k)) out.push({ path: k, b: vb });
  return out.sort(byPath);
}

async function collect(stream: AsyncIterable<Uint8Array>, keep: number): Promise<{ bytes: Buffer; total: number }> {
  const parts: Buffer[] = [];
  let kept = 0;
  let total = 0;
  // Read to the end even past `keep`: the stream checks its digests only there.
  for await (const chunk of stream) {
    total += chunk.length;
    if (kept < keep) {
      const part = Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(chunk.length, keep - kept));
      parts.push(Buffer.from(part));
      kept += part.length;
    }
  }
  return { bytes: Buffer.concat(parts), total };
}

/** Closes a stream that may not have started (a generator's `finally` runs only once it has). */
async function discard(stream: AsyncIterable<Uint8Array>): Promise<void> {
  const it = stream[Symbol.asyncIterator]();
  try {
    await it.next();
  } finally {
    await it.return?.();
  }
}

function isJsonMediaType(mt: string | undefined): boolean {
  if (mt === undefined) return true;
  return /(^|[+/])json($|;)/.test(mt) || /\+json\b/.test(mt) || mt.endsWith('.json');
}

// ---------------------------------------------------------------------------------------------
// the app

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

type Route = (q: URLSearchParams, res: ServerResponse) => Promise<void>;

class App {
  /** Path indexes of the images opened lately (by manifest digest): the layers are read once per image, not per request. */
  private readonly fileIndexCache = new FileIndexCache(4);
  readonly stats: ExplorerStats = { calls: {}, fileIndex: this.fileIndexCache.stats };
  private readonly refs: readonly string[];
  private readonly sample: string;
  private readonly webRoot: string;
  private allowedHosts = new Set<string>();
  private anyHost = false;
  private readonly dirCache = new Lru<FilesResponse & { all: readonly FileEntry[] }>(64);
  private readonly diffCache = new Lru<Awaited<ReturnType<typeof diffImages>>>(2);
  private readonly routes: Readonly<Record<string, Route>>;
  private readonly storeRoot: string;
  /** True when the root is the one `store:NAME` references use (so those need no `[ROOT]`). */
  private readonly storeIsDefault: boolean;

  constructor(opts: ExplorerOptions) {
    this.refs = opts.refs ?? [];
    this.storeRoot = path.resolve(opts.storeRoot ?? storeRoot());
    this.storeIsDefault = this.storeRoot === path.resolve(storeRoot());
    this.sample = opts.sample ?? sampleReference();
    this.webRoot = opts.webRoot ?? defaultWebRoot();
    this.routes = {
      '/api/refs': async (_q, res) => sendJson(res, await this.refsRoute()),
      '/api/tree': (q, res) => this.json(res, 'treeOf', () => treeOf(param(q, 'ref', true))),
      '/api/raw': (q, res) => this.raw(q, res),
      '/api/inspect': (q, res) => this.json(res, 'inspectReference', () => inspectReference(param(q, 'ref', true), withPlatform({}, platformParam(q)))),
      '/api/platforms': (q, res) => this.json(res, 'platformsOf', () => platformsOf(param(q, 'ref', true))),
      '/api/attestations': (q, res) => this.json(res, 'attestationsOf', () => attestationsOf(param(q, 'ref', true), withPlatform({}, platformParam(q)))),
      '/api/layers': (q, res) => this.json(res, 'layersOf', () => layersOf(param(q, 'ref', true), withPlatform({ fileIndexCache: this.fileIndexCache }, platformParam(q)))),
      '/api/files': (q, res) => this.files(q, res),
      '/api/search': (q, res) => this.search(q, res),
      '/api/changes': (q, res) => this.changes(q, res),
      '/api/file': (q, res) => this.file(q, res),
      '/api/diff': (q, res) => this.diff(q, res),
      '/api/store/images': (_q, res) => this.storeImages(res),
      '/api/store/trace': (q, res) => this.storeTrace(q, res),
      '/api/store/path': (q, res) => this.storePath(q, res),
    };
  }

  setOrigin(host: string, port: number): void {
    this.anyHost = !isLoopbackHost(host);
    for (const h of [host, 'localhost', '127.0.0.1', '[::1]']) {
      const bare = h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
      this.allowedHosts.add(`${bare}:${port}`);
    }
  }

  private count(name: string): void {
    this.stats.calls[name] = (this.stats.calls[name] ?? 0) + 1;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // DNS rebinding: a page on another name that resolves to this machine is refused.
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    if (!this.anyHost && !this.allowedHosts.has(hostHeader)) {
      return sendError(res, 403, 'FORBIDDEN', `host ${JSON.stringify(hostHeader)} is not this explorer's address`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(res, 405, 'BAD_REQUEST', `method ${req.method ?? '?'} not allowed: the explorer is read-only`, {});
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://explorer.invalid');
    } catch {
      return sendError(res, 400, 'BAD_REQUEST', 'malformed request URL');
    }
    if (url.pathname.startsWith('/api/')) {
      if (req.headers[API_HEADER] !== '1') {
        return sendError(res, 403, 'FORBIDDEN', `API requests need the header ${API_HEADER}: 1`);
      }
      const route = this.routes[url.pathname];
      if (route === undefined) return sendError(res, 404, 'NOT_FOUND', `no API route ${url.pathname}`);
      try {
        await route(url.searchParams, res);
      } catch (err) {
        if (res.headersSent) res.destroy();
        else errorResponse(res, err);
      }
      return;
    }
    return this.asset(url.pathname, res);
  }

  private async json(res: ServerResponse, name: string, fn: () => Promise<unknown>): Promise<void> {
    this.count(name);
    sendJson(res, await fn());
  }

  private async asset(pathname: string, res: ServerResponse): Promise<void> {
    let rel: string;
    try {
      rel = decodeURIComponent(pathname);
    } catch {
      return sendError(res, 400, 'BAD_REQUEST', 'malformed path');
    }
    if (rel === '/' || rel === '/index.html') rel = '/index.html';
    else if (!/^\/(assets\/)?[A-Za-z0-9._-]+$/.test(rel) || rel.includes('..')) return sendError(res, 404, 'NOT_FOUND', `no such asset ${pathname}`);
    const file = path.join(this.webRoot, rel);
    if (!file.startsWith(path.resolve(this.webRoot) + path.sep)) return sendError(res, 404, 'NOT_FOUND', `no such asset ${pathname}`);
    const info = await stat(file).catch(() => undefined);
    if (info === undefined || !info.isFile()) {
      if (rel === '/index.html') {
        return send(res, 503, 'text/plain; charset=utf-8', `the explorer's front-end is not built (${this.webRoot} is missing): run \`npm run build\`\n`);
      }
      return sendError(res, 404, 'NOT_FOUND', `no such asset ${pathname}`);
    }
    const type = CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';
    const immutable = rel.startsWith('/assets/');
    send(res, 200, type, await readFs(file), { 'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache' });
  }

  // ----- routes

  private async refsRoute(): Promise<RefsResponse> {
    const refs: RefChoice[] = [];
    for (const r of this.refs) refs.push({ ref: r, label: r, source: 'argument' });
    const samplePath = this.sample.replace(/^oci:/, '');
    if (existsSync(samplePath)) refs.push({ ref: this.sample, label: 'berth sample (examples/sample)', source: 'sample', detail: 'two platforms, provenance and SBOM attestations' });
    try {
      this.count('listStoreImages');
      const store = await listStoreImages({ root: this.storeRoot });
      for (const img of store.images) {
        const name = img.repoTags[0] ?? img.id;
        refs.push({
          ref: this.storeIsDefault ? `store:${name}` : `store:[${this.storeRoot}]${name}`, label: name, source: 'store',
          detail: `${img.layers} layers${img.created ? `, created ${img.created}` : ''}`,
        });
      }
      return { refs, store: { available: true, root: store.root } };
    } catch (err) {
      return { refs, store: { available: false, root: this.storeRoot, note: (err as Error).message } };
    }
  }

  // ----- the local store (Store view)

  private async storeImages(res: ServerResponse): Promise<void> {
    this.count('listStoreImages');
    const store = await listStoreImages({ root: this.storeRoot });
    const rows: StoreImageRow[] = [];
    let total = 0;
    for (const img of store.images) {
      const base = {
        id: img.id, ...(img.created !== undefined ? { created: img.created } : {}), size: img.size, layers: img.layers, dangling: img.dangling, problems: img.problems,
      };
      const tags = img.repoTags.length > 0 ? img.repoTags : [undefined];
      for (const t of tags) {
        total++;
        if (rows.length >= LIMITS.storeImagesMax) continue;
        const colon = t === undefined ? -1 : t.lastIndexOf(':');
        const repository = t === undefined ? (img.repoDigests[0]?.split('@')[0] ?? '<none>') : t.slice(0, colon);
        rows.push({ repository, tag: t === undefined ? '<none>' : t.slice(colon + 1), name: t ?? img.id, ...base });
      }
    }
    const body: StoreImagesResponse = { root: store.root, driver: store.driver, total, images: rows, notes: store.notes, truncated: total > rows.length };
    sendJson(res, body);
  }

  private async storeTrace(q: URLSearchParams, res: ServerResponse): Promise<void> {
    const name = storeNameParam(q);
    this.count('traceStore');
    const { path: _omit, layers, ...rest } = await traceStore(name, { root: this.storeRoot });
    const body: StoreTraceResponse = { ...rest, layers: layers.slice(0, LIMITS.traceLayersMax), truncated: layers.length > LIMITS.traceLayersMax };
    sendJson(res, body);
  }

  private async storePath(q: URLSearchParams, res: ServerResponse): Promise<void> {
    const name = storeNameParam(q);
    const p = imagePathParam(q);
    this.count('traceStore(path)');
    const r = await traceStore(name, { root: this.storeRoot, path: p });
    const found = r.path!;
    const body: StorePathResponse = {
      root: r.root, driver: r.driver, name: r.name, id: r.image.id,
      path: { ...found, events: found.events.slice(0, LIMITS.traceEventsMax) },
      ...(found.onDisk !== undefined ? { file: path.join(r.root, found.onDisk) } : {}),
      layers: r.layers.slice(0, LIMITS.traceLayersMax).map((l) => ({ index: l.index, chainId: l.chainId, files: l.files })),
      truncated: found.events.length > LIMITS.traceEventsMax,
    };
    sendJson(res, body);
  }

  private async raw(q: URLSearchParams, res: ServerResponse): Promise<void> {
    const ref = param(q, 'ref', true);
    const digest = param(q, 'digest');
    if (digest === undefined) {
      this.count('entryPoint');
      const ep = await withSource(ref, (src) => src.entryPoint());
      const body: RawResponse = { reference: ref, file: ep.file, size: ep.raw.length, kind: 'json', text: pretty(ep.raw) };
      return sendJson(res, body);
    }
    this.count('openBlobByDigest');
    let found: { descriptor: { digest: string; mediaType: string; size: number }; bytes?: Uint8Array; stream?: AsyncIterable<Uint8Array> };
    try {
      found = await openBlobByDigest(ref, digest);
    } catch (err) {
      // A docker-archive's manifest is synthesised, not stored: the root manifest call has it.
      if (!isBerthError(err, 'BERTH_NOT_FOUND')) throw err;
      const m = await rawManifestOf(ref);
      if (m.descriptor.digest !== digest) throw err;
      found = { descriptor: m.descriptor, bytes: m.bytes };
    }
    const d = found.descriptor;
    if (!isJsonMediaType(d.mediaType)) {
      if (found.stream) await discard(found.stream);
      const body: RawResponse = { reference: ref, digest: d.digest, mediaType: d.mediaType, size: d.size, kind: 'binary' };
      return sendJson(res, body);
    }
    if (d.size > LIMITS.rawBytes) {
      if (found.stream) await discard(found.stream);
      throw new HttpError(413, 'TOO_LARGE', `${d.digest} is ${d.size} bytes: JSON is shown up to ${LIMITS.rawBytes} bytes`, { size: d.size, limit: LIMITS.rawBytes });
    }
    const bytes = found.bytes ?? (await collect(found.stream!, LIMITS.rawBytes)).bytes;
    const body: RawResponse = { reference: ref, digest: d.digest, mediaType: d.mediaType, size: d.size, kind: 'json', text: pretty(bytes) };
    sendJson(res, body);
  }

  private dirListing(ref: string, platform: Platform | undefined, dir: string, layer: number | undefined): Promise<FilesResponse & { all: readonly FileEntry[] }> {
    const key = JSON.stringify([ref, platformKey(platform), dir, layer ?? -1]);
    return this.dirCache.get(key, async () => {
      this.count('listFiles');
      const r = await listFiles(ref, withPlatform({ path: dir, fileIndexCache: this.fileIndexCache, ...(layer !== undefined ? { layer } : {}) }, platform));
      const all = r.entries.map(entry).sort(byPath);
      return { reference: r.reference, path: r.path, layers: r.layers, total: all.length, offset: 0, entries: [], all };
    });
  }

  private async files(q: URLSearchParams, res: ServerResponse): Promise<void> {
    const ref = param(q, 'ref', true);
    const platform = platformParam(q);
    const dir = imagePathParam(q, 'path', '/');
    const layerText = param(q, 'layer');
    const layer = layerText === undefined ? undefined : intParam(q, 'layer', 0, 1e6);
    const offset = intParam(q, 'offset', 0, 1e9);
    const limit = intParam(q, 'limit', LIMITS.listPage, LIMITS.listPageMax);
    const d = await this.dirListing(ref, platform, dir, layer);
    const body: FilesResponse = { reference: d.reference, path: d.path, layers: d.layers, total: d.total, offset, entries: d.all.slice(offset, offset + limit) };
    sendJson(res, body);
  }

  private async search(q: URLSearchParams, res: ServerResponse): Promise<void> {
    const ref = param(q, 'ref', true);
    const platform = platformParam(q);
    const query = param(q, 'q', true).toLowerCase();
    const limit = intParam(q, 'limit', LIMITS.searchMax, LIMITS.searchMax);
    this.count('searchFiles');
    const r = await searchFiles(ref, query, withPlatform({ limit, fileIndexCache: this.fileIndexCache }, platform));
    const body: SearchResponse = { reference: ref, query, total: r.total, entries: r.entries.map(entry).sort(byPath) };
    sendJson(res, body);
  }

  private async changes(q: URLSearchParams, res: ServerResponse): Promise<void> {
    const ref = param(q, 'ref', true);
    const platform = platformParam(q);
    const layer = intParam(q, 'layer', -1, 1e6);
    if (param(q, 'layer') === undefined) throw new HttpError(400, 'BAD_REQUEST', 'missing query parameter "layer"');
    // One pass over the layers serves the layers table, listings and every layer's changeset.
    this.count('layerChanges');
    const r = await layerChanges(ref, layer, withPlatform({ max: LIMITS.changesMax, fileIndexCache: this.fileIndexCache }, platform));
    const { counts } = r;
    const added = [...r.added].sort(byPath);
    const modified = [...r.modified].sort(byPath);
    const deleted = [...r.deleted].sort(byPath);
    const body: ChangesResponse = {
      reference: ref, layer, counts,
      added, modified, deleted,
      truncated: counts.added > added.length || counts.modified > modified.length || counts.deleted > deleted.length,
    };
    sendJson(res, body);
  }

  private async file(q: URLSearchParams, res: ServerResponse): Promise<void> {
    const ref = param(q, 'ref', true);
    const platform = platformParam(q);
    const p = imagePathParam(q);
    const partial = param(q, 'partial') === '1';
    this.count('readFile');
    const r = await readFile(ref, p, withPlatform({ fileIndexCache: this.fileIndexCache }, platform));
    if (r.size > LIMITS.previewBytes && !partial) {
      await discard(r.stream);
      throw new HttpError(413, 'TOO_LARGE', `${r.path} is ${r.size} bytes: previews show files up to ${LIMITS.previewBytes} bytes (ask for the first ${LIMITS.partialBytes} with partial=1)`, {
        size: r.size, limit: LIMITS.previewBytes,
      });
    }
    const keep = partial ? Math.min(LIMITS.partialBytes, LIMITS.previewBytes) : LIMITS.previewBytes;
    // The layer is read to its end before anything is sent, so the bytes shown are verified.
    const { bytes } = await collect(r.stream, keep);
    send(res, 200, 'application/octet-stream', bytes, {
      [FILE_HEADERS.path]: encodeURIComponent(r.path),
      [FILE_HEADERS.size]: String(r.size),
      [FILE_HEADERS.layer]: String(r.layer),
      [FILE_HEADERS.truncated]: bytes.length < r.size ? '1' : '0',
      'content-disposition': 'inline; filename="preview.bin"',
    });
  }

  private async diff(q: URLSearchParams, res: ServerResponse): Promise<void> {
    const a = param(q, 'a', true);
    const b = param(q, 'b', true);
    const pa = platformParam(q, 'platformA');
    const pb = platformParam(q, 'platformB');
    const limit = intParam(q, 'limit', LIMITS.diffMax, LIMITS.diffMax);
    const key = JSON.stringify([a, platformKey(pa), b, platformKey(pb)]);
    const d = await this.diffCache.get(key, () => {
      this.count('diffImages');
      return diffImages(a, b, { ...(pa ? { platformA: pa } : {}), ...(pb ? { platformB: pb } : {}) });
    });
    this.count('inspectReference');
    const [ia, ib, ca, cb] = await Promise.all([
      inspectReference(a, withPlatform({}, pa)), inspectReference(b, withPlatform({}, pb)),
      rawConfigOf(a, withPlatform({}, pa)), rawConfigOf(b, withPlatform({}, pb)),
    ]);
    const side = (i: typeof ia): DiffImageSide => ({
      reference: i.reference, digest: i.digest, configDigest: i.configDigest, layers: i.layers.length, totalSize: i.totalSize,
      ...(i.platform ? { platform: i.platform } : {}), ...(i.created ? { created: i.created } : {}),
    });
    const parse = (bytes: Uint8Array): unknown => JSON.parse(Buffer.from(bytes).toString('utf8'));
    const body: DiffResponse = {
      a: side(ia), b: side(ib), config: configChanges(parse(ca.bytes), parse(cb.bytes)), summary: d.summary,
      added: d.added.slice(0, limit), removed: d.removed.slice(0, limit), modified: d.modified.slice(0, limit),
      truncated: d.added.length > limit || d.removed.length > limit || d.modified.length > limit,
    };
    sendJson(res, body);
  }
}

function pretty(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('utf8');
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
