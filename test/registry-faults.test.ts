/**
 * Faults during a push, against the real registry 2.8.2: the registry process is killed (SIGKILL)
 * in the middle of `berth push` of an image with a ~100 MB random layer. berth must stop with one
 * clean error line, and no tag may point at the incomplete image (the tag is the push's last
 * request). After the registry restarts on the same storage and address, the same push completes,
 * skipping exactly the blobs the registry already has, and the result verifies and reads back in
 * skopeo.
 */
import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { assertCleanError, json } from './support/cli.js';
import { needPeer } from './support/peers.js';
import { berthEnv, skopeoFacts } from './support/registry-cli.js';
import { makeRandomDockerArchive, type BigImage } from './support/registry-image.js';
import { freePort, skopeo, startRegistry } from './support/registry.js';

const MiB = 1024 * 1024;
let work = '';
let image: BigImage | undefined;

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-faults-'));
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** Polls (bounded) until `cond` holds; false when it never did. */
async function waitFor(cond: () => Promise<boolean>, stop: () => boolean, maxPolls = 60_000): Promise<boolean> {
  for (let i = 0; i < maxPolls; i++) {
    if (await cond()) return true;
    if (stop()) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

/** HEAD of a blob in a repository, as a client sees "already there". */
async function hasBlob(host: string, repo: string, digest: string): Promise<boolean> {
  const res = await fetch(`http://${host}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  return res.status === 200;
}

function counts(stdout: string): { uploaded: number; skipped: number } {
  const m = /\n(\d+) blob\(s\) uploaded \([^)]*\), (\d+) already there or mounted\n$/.exec(stdout);
  assert.ok(m, `no counts in:\n${stdout}`);
  return { uploaded: Number(m[1]), skipped: Number(m[2]) };
}

test('registry killed mid-push: one clean error, no tag; after a restart the same push completes and skips what is there', async (t) => {
  if (!(needPeer(t, 'registry') && needPeer(t, 'skopeo'))) return;
  // a small layer that finishes early, the ~100 MB layer, and one more
  image = await makeRandomDockerArchive(path.join(work, 'image'), [2 * MiB, 100 * MiB, 24 * MiB], 'random:1');
  const storageDir = path.join(work, 'storage');
  const port = await freePort();
  let reg = await startRegistry({ storageDir, port });
  const repo = 'faults/app';
  const dst = `docker://${reg.host}/${repo}:1`;
  const small = image.layerDigests[0]!.slice('sha256:'.length);
  const smallLink = path.join(storageDir, 'docker/registry/v2/repositories', repo, '_layers/sha256', small, 'link');
  try {
    let finished = false;
    const push = berthEnv({}, ['push', image.reference, dst]).finally(() => {
      finished = true;
    });
    // the small layer is in: kill the registry while the large one streams
    const seen = await waitFor(() => exists(smallLink), () => finished);
    await reg.crash();
    const r = await push;
    assert.ok(seen, `the small layer never arrived before the push ended:\n${r.stdout}${r.stderr}\n${reg.log()}`);
    assert.equal(r.code, 1, `the push must fail:\n${r.stdout}${r.stderr}`);
    assertCleanError(r, 'push into a killed registry');
    assert.match(r.stderr, /^berth: .*(?:pushing|checking) (?:layer|config|blob) sha256:[0-9a-f]{12} (?:to|in) docker:\/\/127\.0\.0\.1:\d+\/faults\/app: (?:cannot reach http:\/\/127\.0\.0\.1:\d+ \(connection refused, ECONNREFUSED\)|the connection to http:\/\/127\.0\.0\.1:\d+ broke \((?:ECONNRESET|EPIPE)\))$/m);
    assert.equal(r.stdout, '', 'nothing is reported as pushed');

    reg = await startRegistry({ storageDir, port });
    assert.equal(reg.host, `127.0.0.1:${port}`);
    // no tag points at the incomplete image; the tag list is empty or the repository has none
    const tags = await berthEnv({}, ['tags', `docker://${reg.host}/${repo}`]);
    assert.ok(tags.code === 0 ? tags.stdout === '' : /NAME_UNKNOWN|not found/i.test(tags.stderr), `tags after the crash: ${tags.stdout}${tags.stderr}`);
    const missing = await berthEnv({}, ['digest', dst]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /MANIFEST_UNKNOWN|no manifest/);

    const config = json<{ configDigest: string }>(await berthEnv({}, ['inspect', '--format', 'json', image.reference]), 'inspect').configDigest;
    const all = [config, ...image.layerDigests];
    const present = (await Promise.all(all.map((d) => hasBlob(reg.host, repo, d)))).filter(Boolean).length;
    assert.ok(present >= 1, 'the small layer was stored before the crash');
    assert.ok(present < all.length, 'the crash left some blob out');

    const again = await berthEnv({}, ['push', image.reference, dst]);
    assert.equal(again.code, 0, again.stderr);
    const c = counts(again.stdout);
    t.diagnostic(`after the restart: ${c.uploaded} uploaded, ${c.skipped} skipped (${present} of ${all.length} were there)`);
    assert.equal(c.skipped, present, `skips exactly the ${present} blob(s) the registry has:\n${again.stdout}`);
    assert.equal(c.uploaded, all.length - present, again.stdout);
    const digest = /: (sha256:[0-9a-f]{64})\n/.exec(again.stdout)?.[1];
    const facts = await skopeoFacts(dst);
    assert.equal(facts.digest, digest);
    assert.equal(facts.configDigest, config);
    assert.equal(facts.layers.length, 3);
    assert.deepEqual(JSON.parse(await skopeo(['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`])).Tags, ['1']);
    const v = await berthEnv({}, ['verify', '--quiet', dst]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  } finally {
    await reg.stop();
  }
});
