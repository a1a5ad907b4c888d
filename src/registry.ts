/**
 * Registry operations that are not image reads, as the CLI uses them: settings (insecure hosts,
 * CAs, credentials), tags, catalog, manifest digest by HEAD, delete, referrers, login and logout.
 * Image reads (tree, inspect, verify, …) go through images.ts like every other transport.
 */
import type { Digest } from './core/digest.js';
import { BerthError } from './core/errors.js';
import type { DockerReference } from './core/reference.js';
import type { IoOptions } from './io/stream.js';
import { withSource } from './images.js';
import { removeCredentials, saveCredentials, type Credentials, type Env } from './transports/docker/auth.js';
import { clientFor, nextLink, registryDefaults, RegistryClient } from './transports/docker/client.js';
import { isAuthFailure, registryError } from './transports/docker/errors.js';
import { apiHost, formatRegistryReference, formatRepository, parseRegistryHost, parseRegistryName } from './transports/docker/reference.js';
import { listReferrers, type ReferrersList } from './transports/docker/referrers.js';
import { headManifest, repoPath } from './transports/docker/source.js';

export type { Credentials } from './transports/docker/auth.js';
export type { ReferrersList } from './transports/docker/referrers.js';

export { configureRegistry, type RegistrySettings } from './registry-settings.js';

/** True when the text is a registry reference (`docker://…`). */
export function isRegistryName(text: string): boolean {
  return text.startsWith('docker://');
}

function registryRef(text: string, command: string): DockerReference {
  if (!isRegistryName(text)) {
    throw new BerthError('BERTH_INVALID_REFERENCE', `${command} works on registry references: docker://HOST/REPO[:TAG][@DIGEST] (got ${JSON.stringify(text)})`, { subject: text });
  }
  return parseRegistryName(text.slice('docker:'.length));
}

function client(ref: DockerReference): RegistryClient {
  return clientFor(apiHost(ref.domain));
}

const MAX_PAGES = 10_000;

async function paginate<T>(c: RegistryClient, first: string, scope: string, what: string, pick: (json: unknown) => readonly T[], opts: IoOptions): Promise<T[]> {
  const out: T[] = [];
  let next: string | undefined = first;
  for (let page = 0; next !== undefined; page++) {
    if (page >= MAX_PAGES) throw new BerthError('BERTH_LIMIT', `${what}: more than ${MAX_PAGES} pages`, {});
    const res = await c.request({ method: 'GET', path: next, scope, what, headers: { Accept: 'application/json' }, ...(opts.signal ? { signal: opts.signal } : {}) });
    const bytes = await res.bytes(32 * 1024 * 1024);
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      throw new BerthError('BERTH_INVALID_JSON', `${what}: the registry answered something that is not JSON`, {});
    }
    out.push(...pick(json));
    next = nextLink(res.header('link'), res.url);
  }
  return out;
}

export interface TagsResult {
  readonly repository: string;
  readonly tags: readonly string[];
}

/** Every tag of a repository (`docker://HOST/REPO`), following Link pagination. */
export async function listTags(text: string, opts: IoOptions & { pageSize?: number } = {}): Promise<TagsResult> {
  const ref = registryRef(text, 'tags');
  const repository = formatRepository(ref);
  const first = `/v2/${repoPath(ref)}/tags/list${opts.pageSize ? `?n=${opts.pageSize}` : ''}`;
  const tags = await paginate(client(ref), first, `repository:${ref.path}:pull`, `listing tags of ${repository}`, (json) => {
    const t = (json as { tags?: unknown } | null)?.tags;
    return Array.isArray(t) ? t.filter((x): x is string => typeof x === 'string') : [];
  }, opts);
  return { repository, tags };
}

export interface CatalogResult {
  readonly registry: string;
  readonly repositories: readonly string[];
}

/** The repositories a registry lists (`docker://HOST`); many registries refuse or limit this. */
export async function listCatalog(text: string, opts: IoOptions & { pageSize?: number } = {}): Promise<CatalogResult> {
  const host = parseRegistryHost(text);
  const first = `/v2/_catalog${opts.pageSize ? `?n=${opts.pageSize}` : ''}`;
  const repositories = await paginate(clientFor(apiHost(host)), first, 'registry:catalog:*', `listing repositories of docker://${host}`, (json) => {
    const r = (json as { repositories?: unknown } | null)?.repositories;
    return Array.isArray(r) ? r.filter((x): x is string => typeof x === 'string') : [];
  }, opts);
  return { registry: host, repositories };
}

export interface DigestResult {
  readonly reference: string;
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
}

/**
 * The digest of the manifest or index a reference names. For a registry a HEAD request (no body
 * is fetched); for any other transport the root of its entry point.
 */
export async function manifestDigest(text: string, opts: IoOptions = {}): Promise<DigestResult> {
  if (isRegistryName(text)) {
    const ref = registryRef(text, 'digest');
    const reference = formatRegistryReference(ref);
    const target = ref.digest ?? ref.tag ?? 'latest';
    const desc = await headManifest(client(ref), ref, target, `reading ${reference}`, opts);
    if (desc === undefined) throw new BerthError('BERTH_NOT_FOUND', `reading ${reference}: the registry has no manifest ${target} in ${formatRepository(ref)}`, { subject: reference });
    return { reference, digest: desc.digest, mediaType: desc.mediaType, size: desc.size };
  }
  return withSource(text, async (src) => {
    const root = await src.root(opts);
    return { reference: src.reference.toString(), digest: root.descriptor.digest, mediaType: root.descriptor.mediaType, size: root.descriptor.size };
  }, opts);
}

/** Deletes a manifest by digest (`docker://HOST/REPO@DIGEST`). Tags are not accepted: a delete removes every tag that points at the manifest. */
export async function deleteManifest(text: string, opts: IoOptions = {}): Promise<{ reference: string; digest: Digest }> {
  const ref = registryRef(text, 'delete');
  if (ref.digest === undefined) {
    throw new BerthError('BERTH_USAGE', `delete needs a digest, docker://HOST/REPO@sha256:… (a tag would delete the manifest under every tag; find it with: berth digest ${text})`, { subject: text });
  }
  const reference = `${formatRepository(ref)}@${ref.digest}`;
  const res = await client(ref).request({
    method: 'DELETE', path: `/v2/${repoPath(ref)}/manifests/${ref.digest}`, scope: `repository:${ref.path}:delete`, accept: [200, 202, 405, 404],
    what: `deleting ${reference}`, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const body = await res.bytes(64 * 1024);
  if (res.status === 405) {
    throw registryError(`deleting ${reference}`, 405, body, { subject: reference, hint: 'the registry does not allow deletes; for the distribution registry set storage.delete.enabled: true' });
  }
  if (res.status === 404) {
    throw registryError(`deleting ${reference}`, 404, body, { subject: reference });
  }
  return { reference, digest: ref.digest };
}

/** The referrers of the manifest a reference names (API first, then the `sha256-<hex>` tag). */
export async function referrersOf(text: string, opts: IoOptions & { artifactType?: string } = {}): Promise<ReferrersList & { reference: string }> {
  const ref = registryRef(text, 'referrers');
  const reference = formatRegistryReference(ref);
  let subject: Digest | undefined = ref.digest;
  if (subject === undefined) {
    const desc = await headManifest(client(ref), ref, ref.tag ?? 'latest', `reading ${reference}`, opts);
    if (desc === undefined) throw new BerthError('BERTH_NOT_FOUND', `reading ${reference}: no such manifest`, { subject: reference });
    subject = desc.digest;
  }
  const list = await listReferrers(client(ref), ref, subject, opts);
  return { ...list, reference };
}

/**
 * Checks credentials against the registry (GET /v2/ with them) and saves them where docker
 * would (config.json `auths`, or the configured credential helper). When the registry's token
 * service gives a refresh token, that identity token is saved instead of the password, as docker
 * does. Returns where they went.
 */
export async function login(hostText: string, creds: Credentials, opts: IoOptions & { env?: Env } = {}): Promise<{ registry: string; storedIn: string; identityToken: boolean }> {
  const host = parseRegistryHost(hostText);
  const env = opts.env ?? registryDefaults().env ?? process.env;
  // as docker login: a token service may hand out a refresh token (identity token), kept instead of the password
  const c = new RegistryClient(apiHost(host), { ...registryDefaults(), creds, offlineToken: true });
  let identityToken: string | undefined;
  try {
    const res = await c.request({ method: 'GET', path: '/v2/', what: `logging in to ${host}`, ...(opts.signal ? { signal: opts.signal } : {}) });
    res.discard();
    identityToken = c.refreshToken;
  } catch (err) {
    if (isAuthFailure(err)) throw new BerthError('BERTH_AUTH', `logging in to ${host}: the registry refused the user name or password`, { subject: host, got: (err as BerthError).got, cause: err });
    throw err;
  } finally {
    c.close();
  }
  const storedIn = await saveCredentials(host, identityToken === undefined ? creds : { username: creds.username, password: '', identityToken }, env);
  return { registry: host, storedIn, identityToken: identityToken !== undefined };
}

/** Forgets the saved credentials of a registry; `removed` is false when there were none. */
export async function logout(hostText: string, opts: { env?: Env } = {}): Promise<{ registry: string; removed: boolean }> {
  const host = parseRegistryHost(hostText);
  const env = opts.env ?? registryDefaults().env ?? process.env;
  return { registry: host, removed: await removeCredentials(host, env) };
}
