/**
 * Registry credentials, the way the docker CLI keeps them: `$DOCKER_CONFIG/config.json` (else
 * `~/.docker/config.json`) with `auths` (base64 `user:password` in `auth`), `credsStore` (one
 * helper for every host) and `credHelpers` (a helper per host), helpers being
 * `docker-credential-<name>` programs spoken to on stdin/stdout. Also the WWW-Authenticate
 * challenge parser. Secrets never go into an error message.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../../core/errors.js';
import { writeFileAtomic } from '../../io/atomic-file.js';

export interface Credentials {
  readonly username: string;
  readonly password: string;
  /**
   * An identity token (an OAuth2 refresh token, as `docker login` keeps in config.json
   * `identitytoken` or a credential helper gives with the user name `<token>`): exchanged for
   * access tokens with `grant_type=refresh_token`; username and password are then empty.
   */
  readonly identityToken?: string;
}

/** The user name credential helpers give with an identity token instead of a password. */
export const IDENTITY_TOKEN_USERNAME = '<token>';

export type Env = Readonly<Record<string, string | undefined>>;

/** The server key docker uses for Docker Hub in config.json. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string } | undefined>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

/** `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`; undefined without either variable. */
export function dockerConfigPath(env: Env): string | undefined {
  if (env.DOCKER_CONFIG) return path.join(env.DOCKER_CONFIG, 'config.json');
  const home = env.HOME ?? env.USERPROFILE;
  return home ? path.join(home, '.docker', 'config.json') : undefined;
}

async function readConfig(file: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw new BerthError('BERTH_IO', `reading ${file}: ${(err as Error).message}`, { subject: file });
  }
  try {
    const json = JSON.parse(text) as unknown;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not a JSON object');
    return json as DockerConfigFile;
  } catch (err) {
    throw new BerthError('BERTH_INVALID_JSON', `reading ${file}: not valid docker config JSON (${(err as Error).message})`, { subject: file });
  }
}

/** The host part of a config.json key: `https://index.docker.io/v1/` → `index.docker.io`. */
export function normalizeAuthKey(key: string): string {
  let k = key.trim().toLowerCase();
  k = k.replace(/^[a-z]+:\/\//, '');
  const slash = k.indexOf('/');
  if (slash >= 0) k = k.slice(0, slash);
  return k;
}

/** The key docker writes for a registry host (Docker Hub has its historical URL). */
export function authKeyFor(host: string): string {
  return isDockerHub(host) ? DOCKER_HUB_AUTH_KEY : host;
}

function isDockerHub(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'docker.io' || h === 'index.docker.io' || h === 'registry-1.docker.io';
}

function sameHost(key: string, host: string): boolean {
  const k = normalizeAuthKey(key);
  const h = host.toLowerCase();
  if (k === h) return true;
  return isDockerHub(k) && isDockerHub(h);
}

/**
 * The credentials config.json gives for `host`: the per-host helper, else an `auths` entry, else
 * the default store. Undefined when there are none (anonymous access).
 */
export async function lookupCredentials(host: string, env: Env): Promise<Credentials | undefined> {
  const file = dockerConfigPath(env);
  if (file === undefined) return undefined;
  const config = await readConfig(file);
  if (config === undefined) return undefined;
  const helper = Object.entries(config.credHelpers ?? {}).find(([k]) => sameHost(k, host))?.[1];
  if (helper) return helperGet(helper, authKeyFor(host), env);
  const entry = Object.entries(config.auths ?? {}).find(([k]) => sameHost(k, host))?.[1];
  // docker login keeps the refresh token it got in `identitytoken` (with the user name in `auth`)
  if (typeof entry?.identitytoken === 'string' && entry.identitytoken !== '') return { username: '', password: '', identityToken: entry.identitytoken };
  if (entry?.auth) return decodeAuth(entry.auth, file, host);
  if (entry?.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  if (config.credsStore) return helperGet(config.credsStore, authKeyFor(host), env);
  return undefined;
}

function decodeAuth(auth: string, file: string, host: string): Credentials {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) {
    throw new BerthError('BERTH_INVALID_JSON', `reading ${file}: the "auth" entry for ${host} is not base64 of "user:password"`, { subject: file });
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

// in settings.ts, which the CLI loads on every command
export { parseCreds } from './settings.js';

function runHelper(name: string, action: 'get' | 'store' | 'erase', input: string, env: Env): Promise<{ code: number; stdout: string }> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    return Promise.reject(new BerthError('BERTH_INVALID_JSON', `credential helper name ${JSON.stringify(name)} is not valid`, {}));
  }
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = execFile(program, [action], { timeout: 30_000, env: { ...process.env, ...env } as NodeJS.ProcessEnv, maxBuffer: 1024 * 1024 }, (error, stdout) => {
      if (error && typeof (error as { code?: unknown }).code === 'string') {
        reject(new BerthError('BERTH_IO', `running credential helper ${program} ${action}: ${(error as { code: string }).code === 'ENOENT' ? 'not found on PATH' : 'failed to start'}`, { subject: program }));
        return;
      }
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: String(stdout) });
    });
    child.stdin?.end(input);
  });
}

async function helperGet(name: string, serverUrl: string, env: Env): Promise<Credentials | undefined> {
  const { code, stdout } = await runHelper(name, 'get', serverUrl, env);
  if (code !== 0) {
    // helpers print "credentials not found in native keychain" and exit 1 when they have nothing
    if (/not found/i.test(stdout)) return undefined;
    throw new BerthError('BERTH_IO', `credential helper docker-credential-${name} get failed for ${serverUrl} (exit ${code})`, { subject: serverUrl });
  }
  try {
    const json = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
    if (typeof json.Username !== 'string' || typeof json.Secret !== 'string') throw new Error('no Username/Secret');
    if (json.Username === IDENTITY_TOKEN_USERNAME) return { username: '', password: '', identityToken: json.Secret };
    return { username: json.Username, password: json.Secret };
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw new BerthError('BERTH_INVALID_JSON', `credential helper docker-credential-${name} answered something that is not {"Username","Secret"} JSON`, { subject: serverUrl });
  }
}

/**
 * Saves credentials for `host` where docker would: the host's helper or the default store when
 * config.json names one, else base64 in `auths`. The file is rewritten atomically, mode 0600;
 * every other key in it is kept. Returns where they went.
 */
export async function saveCredentials(host: string, creds: Credentials, env: Env): Promise<string> {
  const file = requireConfigPath(env);
  const config = (await readConfig(file)) ?? {};
  const key = authKeyFor(host);
  const helper = Object.entries(config.credHelpers ?? {}).find(([k]) => sameHost(k, host))?.[1] ?? config.credsStore;
  const identity = creds.identityToken !== undefined && creds.identityToken !== '';
  if (helper) {
    // an identity token goes to a helper as docker stores it: user name <token>
    const stored = identity ? { ServerURL: key, Username: IDENTITY_TOKEN_USERNAME, Secret: creds.identityToken } : { ServerURL: key, Username: creds.username, Secret: creds.password };
    const { code } = await runHelper(helper, 'store', JSON.stringify(stored), env);
    if (code !== 0) throw new BerthError('BERTH_IO', `credential helper docker-credential-${helper} store failed for ${key} (exit ${code})`, { subject: key });
    // docker keeps an empty entry in auths so `docker logout` and listings know the host
    const auths = { ...(config.auths ?? {}) };
    for (const k of Object.keys(auths)) if (sameHost(k, host)) delete auths[k];
    auths[key] = {};
    await writeConfig(file, { ...config, auths });
    return `docker-credential-${helper}`;
  }
  const auths = { ...(config.auths ?? {}) };
  for (const k of Object.keys(auths)) if (sameHost(k, host)) delete auths[k];
  // with an identity token docker keeps the user name and the token, not the password
  auths[key] = identity
    ? { auth: Buffer.from(`${creds.username}:`, 'utf8').toString('base64'), identitytoken: creds.identityToken }
    : { auth: Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64') };
  await writeConfig(file, { ...config, auths });
  return file;
}

/** Forgets the credentials for `host` (helper erase and the `auths` entry). False when there were none. */
export async function removeCredentials(host: string, env: Env): Promise<boolean> {
  const file = requireConfigPath(env);
  const config = await readConfig(file);
  if (config === undefined) return false;
  const key = authKeyFor(host);
  let removed = false;
  const helper = Object.entries(config.credHelpers ?? {}).find(([k]) => sameHost(k, host))?.[1] ?? config.credsStore;
  if (helper) {
    const { code } = await runHelper(helper, 'erase', key, env);
    removed = code === 0;
  }
  const auths = { ...(config.auths ?? {}) };
  for (const k of Object.keys(auths)) {
    if (sameHost(k, host)) {
      delete auths[k];
      removed = true;
    }
  }
  await writeConfig(file, { ...config, auths });
  return removed;
}

function requireConfigPath(env: Env): string {
  const file = dockerConfigPath(env);
  if (file === undefined) throw new BerthError('BERTH_USAGE', 'cannot tell where docker credentials live: set DOCKER_CONFIG or HOME', {});
  return file;
}

async function writeConfig(file: string, config: DockerConfigFile): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
}

// ---------------------------------------------------------------------------------------------
// WWW-Authenticate

export interface Challenge {
  /** Lower-case scheme: `basic` or `bearer`. */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (several challenges may share one header). */
export function parseChallenges(header: string | undefined): Challenge[] {
  if (!header) return [];
  const out: Array<{ scheme: string; params: Record<string, string> }> = [];
  let i = 0;
  const n = header.length;
  const skip = (): void => {
    while (i < n && /[\s,]/.test(header[i]!)) i++;
  };
  for (;;) {
    skip();
    if (i >= n) break;
    const start = i;
    while (i < n && /[A-Za-z0-9_.~+/-]/.test(header[i]!)) i++;
    const token = header.slice(start, i);
    if (token === '') {
      i++; // stray character
      continue;
    }
    let j = i;
    while (j < n && header[j] === ' ') j++;
    if (header[j] === '=' && header[j + 1] !== '=' && out.length > 0) {
      // a parameter of the current challenge
      i = j + 1;
      while (i < n && header[i] === ' ') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < n && header[i] !== ',' && !/\s/.test(header[i]!)) i++;
        value = header.slice(vs, i);
      }
      out[out.length - 1]!.params[token.toLowerCase()] = value;
    } else {
      out.push({ scheme: token.toLowerCase(), params: {} });
    }
  }
  return out;
}

/** Whether Basic auth can be built from the credentials (an identity token alone cannot). */
export function hasPassword(creds: Credentials | undefined): creds is Credentials {
  return creds !== undefined && creds.identityToken === undefined;
}

/** The secrets in credentials, to scrub from any text a server sent back. */
export function secretsOf(creds: Credentials | undefined): string[] {
  if (creds === undefined) return [];
  const out = [creds.password, creds.identityToken ?? '', basicHeader(creds).slice('Basic '.length)];
  return out.filter((x) => x.length >= 4);
}

export function basicHeader(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
}

/** Where the default config file is when no environment is given (for messages). */
export function defaultConfigPath(): string {
  return path.join(os.homedir(), '.docker', 'config.json');
}
