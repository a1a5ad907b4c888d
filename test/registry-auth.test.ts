/**
 * Auth and TLS against the real registry 2.8.2: htpasswd Basic auth (a clear 401 without
 * credentials; --creds; a docker config.json; berth login/logout writing that file like docker),
 * token auth with a tiny token issuer whose JWTs the registry verifies against a test certificate
 * (tokens cached per scope), and HTTPS with a self-signed certificate (refused without --ca-file,
 * accepted with it or SSL_CERT_FILE). Credentials never appear in any output.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { assertCleanError, fixture, json } from './support/cli.js';
import { needPeer } from './support/peers.js';
import { berthEnv } from './support/registry-cli.js';
import { hasTool, makeCertificate, makeHtpasswd, skopeo, startRegistry, startTokenIssuer } from './support/registry.js';

const IMAGE = fixture('containers__image/docker/archive/fixtures/almostempty.tar');
const USER = 'berth-user';
const PASSWORD = 's3cret:with-colon';

function need(t: TestContext): boolean {
  if (!(needPeer(t, 'registry') && needPeer(t, 'skopeo'))) return false;
  if (!hasTool('/usr/bin/htpasswd') || !hasTool('/usr/bin/openssl')) {
    if (process.env.CI === 'true') throw new Error('htpasswd (apache2-utils) or openssl is missing and CI requires them');
    t.skip('htpasswd (apache2-utils) or openssl is missing');
    return false;
  }
  return true;
}

let work: string;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-auth-'));
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

function noSecrets(text: string, what: string): void {
  assert.ok(!text.includes(PASSWORD), `${what}: the password leaked:\n${text}`);
  assert.ok(!text.includes(Buffer.from(`${USER}:${PASSWORD}`).toString('base64')), `${what}: the base64 credentials leaked:\n${text}`);
}

test('htpasswd Basic auth: clear 401 without credentials, works with --creds, with config.json, and after berth login', async (t) => {
  if (!need(t)) return;
  const htpasswd = path.join(work, 'htpasswd');
  await makeHtpasswd(htpasswd, USER, PASSWORD);
  const reg = await startRegistry({ htpasswd });
  try {
    const ref = `docker://${reg.host}/secure/app:1`;
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, `docker-archive:${IMAGE}`, ref]);

    const anon = await berthEnv({}, ['inspect', ref]);
    assert.equal(anon.code, 1);
    assertCleanError(anon, 'anonymous');
    assert.match(anon.stderr, new RegExp(`reading ${ref.replace(/\./g, '\\.')}: registry answered 401 UNAUTHORIZED: authentication required for repository:secure/app:pull \\(no credentials for ${reg.host.replace(/\./g, '\\.')}: use --creds USER:PASS or berth login`));

    const wrong = await berthEnv({}, ['--creds', `${USER}:nope`, 'digest', ref]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /registry answered 401 Unauthorized \(the registry refused the credentials for 127\.0\.0\.1:\d+\)/);
    assert.doesNotMatch(wrong.stderr, /nope/);

    const withCreds = await berthEnv({}, ['inspect', '--format', 'json', '--creds', `${USER}:${PASSWORD}`, ref]);
    assert.equal(withCreds.code, 0, withCreds.stderr);
    const want = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, ref])) as { Digest: string; Layers: string[] };
    const got = json<{ digest: string; layers: Array<{ digest: string }> }>(withCreds, 'inspect');
    assert.equal(got.digest, want.Digest);
    assert.deepEqual(got.layers.map((l) => l.digest), want.Layers);
    const v = await berthEnv({}, ['--creds', `${USER}:${PASSWORD}`, 'verify', '--quiet', ref]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    noSecrets(withCreds.stdout + withCreds.stderr + v.stdout + v.stderr, 'with --creds');

    // a docker config.json with base64 auth
    const cfgDir = path.join(work, 'docker-config');
    await rm(cfgDir, { recursive: true, force: true });
    const env = { DOCKER_CONFIG: cfgDir };
    const { mkdir } = await import('node:fs/promises');
    await mkdir(cfgDir, { recursive: true });
    await writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } }, psFormat: 'keep me' }));
    const viaConfig = await berthEnv(env, ['tags', `docker://${reg.host}/secure/app`]);
    assert.equal(viaConfig.code, 0, viaConfig.stderr);
    assert.equal(viaConfig.stdout, '1\n');

    // logout removes it (other keys kept), login checks and writes it back, mode 0600
    const out = await berthEnv(env, ['logout', reg.host]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, `Removed login credentials for ${reg.host}\n`);
    let cfg = JSON.parse(await readFile(path.join(cfgDir, 'config.json'), 'utf8')) as { auths: Record<string, unknown>; psFormat: string };
    assert.deepEqual(cfg.auths, {});
    assert.equal(cfg.psFormat, 'keep me');
    const denied = await berthEnv(env, ['tags', `docker://${reg.host}/secure/app`]);
    assert.equal(denied.code, 1);

    const badLogin = await berthEnv(env, ['login', reg.host, '-u', USER, '--password-stdin'], 'wrong\n');
    assert.equal(badLogin.code, 1);
    assert.match(badLogin.stderr, /logging in to 127\.0\.0\.1:\d+: the registry refused the user name or password/);
    const login = await berthEnv(env, ['login', reg.host, '-u', USER, '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /^Login Succeeded/);
    noSecrets(login.stdout + login.stderr, 'login');
    const file = path.join(cfgDir, 'config.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    cfg = JSON.parse(await readFile(file, 'utf8')) as typeof cfg;
    assert.deepEqual(cfg.auths, { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } });
    assert.equal(cfg.psFormat, 'keep me');
    const after = await berthEnv(env, ['digest', ref]);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout.trim(), want.Digest);
    // skopeo reads the file berth wrote
    const sk = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--authfile', file, ref])) as { Digest: string };
    assert.equal(sk.Digest, want.Digest);
    const again = await berthEnv(env, ['logout', reg.host]);
    assert.equal(again.stdout, `Removed login credentials for ${reg.host}\n`);
    const none = await berthEnv(env, ['logout', reg.host]);
    assert.equal(none.stdout, `Not logged in to ${reg.host}\n`);
  } finally {
    await reg.stop();
  }
});

test('token auth: berth fetches a bearer token from the realm, caches it per scope, and reports a refused token clearly', async (t) => {
  if (!need(t)) return;
  const { cert, key } = await makeCertificate(work, 'token-signer', 'berth token signer');
  const issuer = await startTokenIssuer({ cert, key, issuer: 'berth-test-issuer', service: 'berth-test-registry', users: { [USER]: PASSWORD } });
  const reg = await startRegistry({ token: { realm: issuer.realm, service: 'berth-test-registry', issuer: 'berth-test-issuer', rootCertBundle: cert } });
  try {
    const ref = `docker://${reg.host}/tok/app:1`;
    await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, `docker-archive:${IMAGE}`, ref]);
    issuer.requests.length = 0;

    const anon = await berthEnv({}, ['inspect', ref]);
    assert.equal(anon.code, 1);
    assertCleanError(anon, 'anonymous token');
    assert.match(anon.stderr, /registry answered 401 UNAUTHORIZED: authentication required for repository:tok\/app:pull \(no credentials for 127\.0\.0\.1:\d+/);
    assert.ok(issuer.requests.some((r) => r.user === undefined && r.scopes.includes('repository:tok/app:pull')), JSON.stringify(issuer.requests));

    issuer.requests.length = 0;
    const v = await berthEnv({}, ['--creds', `${USER}:${PASSWORD}`, 'verify', '--quiet', '--format', 'json', ref]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    noSecrets(v.stdout + v.stderr, 'token verify');
    // one command, one scope: one token, however many manifests and blobs were read
    assert.equal(issuer.requests.filter((r) => r.scopes.includes('repository:tok/app:pull')).length, 1, JSON.stringify(issuer.requests));
    assert.ok(json<{ blobs: number }>(v, 'verify').blobs >= 3);

    const want = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, ref])) as { Digest: string; Layers: string[] };
    const ins = await berthEnv({}, ['--creds', `${USER}:${PASSWORD}`, 'inspect', '--format', 'json', ref]);
    assert.equal(json<{ digest: string }>(ins, 'inspect').digest, want.Digest);
    const tags = await berthEnv({}, ['--creds', `${USER}:${PASSWORD}`, 'tags', `docker://${reg.host}/tok/app`]);
    assert.equal(tags.stdout, '1\n', tags.stderr);
    const cat = await berthEnv({}, ['--creds', `${USER}:${PASSWORD}`, 'catalog', `docker://${reg.host}`]);
    assert.equal(cat.stdout, 'tok/app\n', cat.stderr);
    assert.ok(issuer.requests.some((r) => r.scopes.includes('registry:catalog:*')));

    const wrong = await berthEnv({}, ['--creds', `${USER}:wrong`, 'digest', ref]);
    assert.equal(wrong.code, 1);
    assertCleanError(wrong, 'wrong token creds');
    assert.match(wrong.stderr, /getting a token from http:\/\/127\.0\.0\.1:\d+\/token: registry answered 401 UNAUTHORIZED: bad user name or password \(the token service refused the credentials/);

    const login = await berthEnv({ DOCKER_CONFIG: path.join(work, 'tok-config') }, ['login', reg.host, '-u', USER, '--password-stdin'], PASSWORD);
    assert.equal(login.code, 0, login.stderr);

    // push: every request of the push shares one pull,push token, even with parallel uploads
    issuer.requests.length = 0;
    const pushed = await berthEnv({ DOCKER_CONFIG: path.join(work, 'tok-config') }, ['push', `docker-archive:${IMAGE}`, `docker://${reg.host}/tok/pushed:1`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    // (the config was read from tok/app before, so it is mounted from there: a second scope set; skopeo
    // gzipped the layer when it pushed tok/app, berth pushes it as stored, so the layer is uploaded)
    const sets = issuer.requests.map((r) => [...r.scopes].sort().join(' '));
    assert.equal(new Set(sets).size, sets.length, `one token per scope set: ${JSON.stringify(issuer.requests)}`);
    assert.ok(sets.every((x) => x.includes('repository:tok/pushed:pull,push')), JSON.stringify(issuer.requests));
    assert.match(pushed.stdout, /\n1 blob\(s\) uploaded \([\d.]+ KiB read\), 1 already there or mounted\n$/);
    const back = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', `${USER}:${PASSWORD}`, `docker://${reg.host}/tok/pushed:1`])) as { Digest: string };
    assert.match(pushed.stdout, new RegExp(`: ${back.Digest}\\n`));
  } finally {
    await reg.stop();
    await issuer.stop();
  }
});

test('TLS: a self-signed registry is refused without --ca-file and read with it (or with SSL_CERT_FILE)', async (t) => {
  if (!need(t)) return;
  const { cert, key } = await makeCertificate(work, 'registry-tls');
  const reg = await startRegistry({ tls: { cert, key } });
  try {
    const ref = `docker://${reg.host}/tls/app:1`;
    await skopeo(['copy', '--dest-cert-dir', await certDir(cert), `docker-archive:${IMAGE}`, ref]);
    const want = JSON.parse(await skopeo(['inspect', '--cert-dir', await certDir(cert), ref])) as { Digest: string };

    const refused = await berthEnv({}, ['digest', ref]);
    assert.equal(refused.code, 1);
    assertCleanError(refused, 'untrusted');
    assert.match(refused.stderr, /TLS certificate of 127\.0\.0\.1:\d+ is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\): pass --ca-file/);

    const ok = await berthEnv({}, ['--ca-file', cert, 'digest', ref]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), want.Digest);
    const v = await berthEnv({}, ['verify', '--quiet', '--ca-file', cert, ref]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const env = await berthEnv({ SSL_CERT_FILE: cert }, ['digest', ref]);
    assert.equal(env.stdout.trim(), want.Digest, env.stderr);
    const insecure = await berthEnv({}, ['--insecure', reg.host, 'digest', ref]);
    assert.equal(insecure.stdout.trim(), want.Digest, insecure.stderr);
  } finally {
    await reg.stop();
  }
});

/** skopeo wants a directory holding `*.crt` CA files. */
async function certDir(cert: string): Promise<string> {
  const dir = path.join(path.dirname(cert), 'skopeo-certs');
  const { mkdir, copyFile } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  await copyFile(cert, path.join(dir, 'ca.crt'));
  return dir;
}
