/**
 * Token auth beyond the docker GET, against the real registry 2.8.2 and the test token issuer
 * (distribution's token spec): the OAuth2 POST with `grant_type=password` (a service without the
 * GET), the fallback to the GET when a service has no POST (asked once), identity tokens
 * (`grant_type=refresh_token`) from config.json `identitytoken` and from a credential helper
 * answering the user name `<token>`, refresh-token rotation, and a refused identity token. skopeo
 * reads with the same identity token as the peer. No password, identity token or Basic header
 * value ever appears in berth's output or errors.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { assertCleanError, fixture } from './support/cli.js';
import type { CliResult } from './support/cli.js';
import { needPeer } from './support/peers.js';
import { berthEnv } from './support/registry-cli.js';
import { hasTool, makeCertificate, skopeo, startRegistry, startTokenIssuer, type RunningRegistry, type TokenIssuer, type TokenIssuerOptions } from './support/registry.js';

const IMAGE = fixture('containers__image/docker/archive/fixtures/almostempty.tar');
const USER = 'oauth-user';
const PASSWORD = 'pa55:word-for-oauth';
const IDENTITY = 'rt-identity-token-0123456789abcdef';
const SERVICE = 'berth-oauth-registry';
const ISSUER = 'berth-oauth-issuer';

let work = '';
let signer: { cert: string; key: string } | undefined;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-oauth-'));
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

function need(t: TestContext): boolean {
  if (!(needPeer(t, 'registry') && needPeer(t, 'skopeo'))) return false;
  if (!hasTool('/usr/bin/openssl')) {
    if (process.env.CI === 'true') throw new Error('openssl is missing and CI requires it');
    t.skip('openssl is missing');
    return false;
  }
  return true;
}

async function setup(opts: Partial<TokenIssuerOptions>): Promise<{ issuer: TokenIssuer; reg: RunningRegistry; stop(): Promise<void> }> {
  signer ??= await makeCertificate(work, 'oauth-signer', 'berth oauth signer');
  const issuer = await startTokenIssuer({ ...signer, issuer: ISSUER, service: SERVICE, users: { [USER]: PASSWORD }, ...opts });
  const reg = await startRegistry({ token: { realm: issuer.realm, service: SERVICE, issuer: ISSUER, rootCertBundle: signer.cert } });
  return { issuer, reg, stop: async () => { await reg.stop(); await issuer.stop(); } };
}

/** Every secret a run must never print, whatever it is. */
function noSecrets(r: CliResult, what: string, extra: readonly string[] = []): void {
  const text = r.stdout + r.stderr;
  for (const secret of [PASSWORD, IDENTITY, Buffer.from(`${USER}:${PASSWORD}`).toString('base64'), ...extra]) {
    assert.ok(!text.includes(secret), `${what}: a secret leaked:\n${text}`);
  }
}

/** A docker config dir whose config.json is `config`. */
async function configDir(name: string, config: unknown): Promise<string> {
  const dir = path.join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/** A credential helper `docker-credential-NAME` in its own bin dir answering `<token>` and `secret`. */
async function tokenHelper(name: string, secret: string): Promise<string> {
  const bin = path.join(work, `bin-${name}`);
  await mkdir(bin, { recursive: true });
  const file = path.join(bin, `docker-credential-${name}`);
  await writeFile(file, `#!/bin/sh\nread -r server\nif [ "$1" = get ]; then printf '{"ServerURL":"%s","Username":"<token>","Secret":"%s"}' "$server" '${secret}'; else exit 1; fi\n`);
  await chmod(file, 0o755);
  return bin;
}

test('a service with only the OAuth2 POST: password grant with --creds, identity tokens from config.json and a credential helper; skopeo agrees', async (t) => {
  if (!need(t)) return;
  const { issuer, reg, stop } = await setup({ get: false, refreshTokens: { [IDENTITY]: USER } });
  try {
    const ref = `docker://${reg.host}/oauth/app:1`;
    const pushed = await berthEnv({}, ['--creds', `${USER}:${PASSWORD}`, 'push', `docker-archive:${IMAGE}`, ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
    noSecrets(pushed, 'push with --creds');
    const digest = /: (sha256:[0-9a-f]{64})\n/.exec(pushed.stdout)![1]!;
    assert.ok(issuer.requests.length > 0);
    assert.ok(issuer.requests.every((r) => r.method === 'POST' && r.grant === 'password' && !r.authorization && r.user === USER), JSON.stringify(issuer.requests.map(({ raw: _r, ...x }) => x)));
    // one token per scope set, the secret only in the form body
    const sets = issuer.requests.map((r) => [...r.scopes].sort().join(' '));
    assert.equal(new Set(sets).size, sets.length);
    assert.ok(issuer.requests.every((r) => !r.raw.split('\n')[0]!.includes(encodeURIComponent(PASSWORD))), 'no secret in a URL');

    // identity token in config.json (what docker login keeps)
    issuer.requests.length = 0;
    const cfg = await configDir('cfg-identity', { auths: { [reg.host]: { auth: Buffer.from(`${USER}:`).toString('base64'), identitytoken: IDENTITY } } });
    const viaConfig = await berthEnv({ DOCKER_CONFIG: cfg }, ['verify', '--quiet', ref]);
    assert.equal(viaConfig.code, 0, viaConfig.stdout + viaConfig.stderr);
    noSecrets(viaConfig, 'identity token from config.json');
    assert.deepEqual(issuer.requests.map((r) => [r.method, r.grant, r.user]), [['POST', 'refresh_token', USER]]);

    // skopeo, given the same identity token, reads what berth pushed
    issuer.requests.length = 0;
    const sk = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--authfile', path.join(cfg, 'config.json'), ref])) as { Digest: string };
    assert.equal(sk.Digest, digest);
    assert.ok(issuer.requests.some((r) => r.grant === 'refresh_token'), 'skopeo used the refresh_token grant as well');

    // identity token from a credential helper (user name <token>)
    issuer.requests.length = 0;
    const bin = await tokenHelper('berthoauth', IDENTITY);
    const helperCfg = await configDir('cfg-helper', { credHelpers: { [reg.host]: 'berthoauth' } });
    const env = { DOCKER_CONFIG: helperCfg, PATH: `${bin}:${process.env.PATH ?? ''}` };
    const viaHelper = await berthEnv(env, ['digest', ref]);
    assert.equal(viaHelper.code, 0, viaHelper.stderr);
    assert.equal(viaHelper.stdout.trim(), digest);
    noSecrets(viaHelper, 'identity token from a helper');
    assert.deepEqual(issuer.requests.map((r) => [r.method, r.grant, r.user]), [['POST', 'refresh_token', USER]]);
    const pushedByToken = await berthEnv(env, ['push', `docker-archive:${IMAGE}`, `docker://${reg.host}/oauth/other:1`]);
    assert.equal(pushedByToken.code, 0, pushedByToken.stderr);
    noSecrets(pushedByToken, 'push with an identity token');

    // a refused identity token: one clean line, the token not repeated though the service echoed it
    const wrong = 'rt-wrong-token-fedcba9876543210';
    const badBin = await tokenHelper('berthbad', wrong);
    const badCfg = await configDir('cfg-bad', { credHelpers: { [reg.host]: 'berthbad' } });
    const refused = await berthEnv({ DOCKER_CONFIG: badCfg, PATH: `${badBin}:${process.env.PATH ?? ''}` }, ['inspect', ref]);
    assert.equal(refused.code, 1);
    assertCleanError(refused, 'refused identity token');
    noSecrets(refused, 'refused identity token', [wrong]);
    assert.ok(issuer.requests.some((r) => r.raw.includes(wrong)), 'the service did get (and echo) the token');
    assert.match(refused.stderr, /getting a token from http:\/\/127\.0\.0\.1:\d+\/token: registry answered 401.*unknown refresh token REDACTED.*the token service refused the identity token for 127\.0\.0\.1:\d+; log in again/);

    // a wrong password on a POST-only service: the GET is tried too (405), the error is the POST's refusal
    const badPw = await berthEnv({}, ['--creds', `${USER}:not-the-password`, 'digest', ref]);
    assert.equal(badPw.code, 1);
    assertCleanError(badPw, 'wrong password');
    assert.doesNotMatch(badPw.stderr, /not-the-password/);
    assert.match(badPw.stderr, /registry answered 401 invalid_grant: bad user name or password \(the token service refused the credentials for 127\.0\.0\.1:\d+\)/);
  } finally {
    await stop();
  }
});

test('a service without the OAuth2 POST (404): berth falls back to the docker GET, and asks the POST only once', async (t) => {
  if (!need(t)) return;
  const { issuer, reg, stop } = await setup({ post: false });
  try {
    const ref = `docker://${reg.host}/legacy/app:1`;
    const r = await berthEnv({}, ['--creds', `${USER}:${PASSWORD}`, 'push', `docker-archive:${IMAGE}`, ref]);
    assert.equal(r.code, 0, r.stderr);
    noSecrets(r, 'push through the GET');
    const posts = issuer.requests.filter((x) => x.method === 'POST');
    const gets = issuer.requests.filter((x) => x.method === 'GET');
    assert.equal(posts.length, 1, JSON.stringify(issuer.requests.map(({ raw: _r, ...x }) => x)));
    assert.ok(gets.length >= 1 && gets.every((x) => x.authorization && x.user === USER));
    const sk = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, ref])) as { Digest: string };
    assert.match(r.stdout, new RegExp(`: ${sk.Digest}\\n`));
  } finally {
    await stop();
  }
});

test('a rotated refresh token is used for the next token of the same run', async (t) => {
  if (!need(t)) return;
  const { issuer, reg, stop } = await setup({ rotate: true, refreshTokens: { [IDENTITY]: USER } });
  try {
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, `docker-archive:${IMAGE}`, `docker://${reg.host}/rot/src:1`]);
    issuer.requests.length = 0;
    const cfg = await configDir('cfg-rotate', { auths: { [reg.host]: { identitytoken: IDENTITY } } });
    // two repositories, two scopes: two token requests, the second with the rotated token
    const r = await berthEnv({ DOCKER_CONFIG: cfg }, ['copy', `docker://${reg.host}/rot/src:1`, `docker://${reg.host}/rot/dst:1`]);
    assert.equal(r.code, 0, r.stderr);
    noSecrets(r, 'rotation');
    const grants = issuer.requests.filter((x) => x.grant === 'refresh_token');
    assert.ok(grants.length >= 2, JSON.stringify(issuer.requests.map(({ raw: _r, ...x }) => x)));
    assert.ok(grants.every((x) => x.user === USER), 'every refresh was accepted');
    assert.ok(grants[0]!.raw.includes(IDENTITY) && !grants[1]!.raw.includes(IDENTITY), 'the second used the new token');
  } finally {
    await stop();
  }
});

test('berth login against a token service keeps the identity token it hands out, not the password (as docker login); skopeo reads with that file', async (t) => {
  if (!need(t)) return;
  const { issuer, reg, stop } = await setup({});
  try {
    const ref = `docker://${reg.host}/login/app:1`;
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, `docker-archive:${IMAGE}`, ref]);
    const cfg = path.join(work, 'cfg-login');
    const { readFile } = await import('node:fs/promises');
    issuer.requests.length = 0;
    const login = await berthEnv({ DOCKER_CONFIG: cfg }, ['login', reg.host, '-u', USER, '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /^Login Succeeded: 127\.0\.0\.1:\d+ \(identity token in .*config\.json\)\n$/);
    noSecrets(login, 'login');
    assert.deepEqual(issuer.requests.map((r) => [r.method, r.grant]), [['POST', 'password']]);
    assert.match(issuer.requests[0]!.raw, /access_type=offline/);
    const text = await readFile(path.join(cfg, 'config.json'), 'utf8');
    assert.ok(!text.includes(PASSWORD) && !text.includes(Buffer.from(`${USER}:${PASSWORD}`).toString('base64')), `no password in config.json:\n${text}`);
    const entry = (JSON.parse(text) as { auths: Record<string, { auth: string; identitytoken: string }> }).auths[reg.host]!;
    assert.equal(Buffer.from(entry.auth, 'base64').toString('utf8'), `${USER}:`);
    assert.equal(issuer.refreshTokens.get(entry.identitytoken), USER);

    issuer.requests.length = 0;
    const d = await berthEnv({ DOCKER_CONFIG: cfg }, ['digest', ref]);
    assert.equal(d.code, 0, d.stderr);
    noSecrets(d, 'digest after login', [entry.identitytoken]);
    assert.deepEqual(issuer.requests.map((r) => [r.method, r.grant, r.user]), [['POST', 'refresh_token', USER]]);
    const sk = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--authfile', path.join(cfg, 'config.json'), ref])) as { Digest: string };
    assert.equal(sk.Digest, d.stdout.trim());
  } finally {
    await stop();
  }
});
