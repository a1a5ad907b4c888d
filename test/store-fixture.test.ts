/**
 * A real data root from 2018 (google/docker-explorer's overlay2.v2 test data: busybox pulled by
 * dockerd 18.x, containers created from it): berth lists, inspects, rebuilds and traces it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { berth, json } from './support/cli.js';
import { realFixtures } from './support/paths.js';

const FIXTURE = path.join(realFixtures, 'google__docker-explorer/test_data/overlay2.v2.tgz');
const BUSYBOX_ID = 'sha256:8ac48589692a53a9b8c2d1ceaa6b402665aa7fe667ba51ccc03002300856d8c7';
const BUSYBOX_DIFF = 'sha256:0314be9edf00a925d59f9b88c9d8ccb34447ab677078874d8c14e7a6816e21e1';

test('the docker-explorer overlay2 root lists, inspects, rebuilds and traces its busybox image', { skip: !existsSync(FIXTURE) && 'fixture missing' }, async (t) => {
  const dir = await mkdtemp('/tmp/bsf-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  // As root this keeps owners, device files and xattrs; as another user tar cannot create them.
  const x = spawnSync('tar', ['-xzf', FIXTURE, '-C', dir, '--xattrs', '--xattrs-include=*', '--numeric-owner'], { encoding: 'utf8' });
  if (x.status !== 0) {
    if (process.getuid?.() === 0) assert.fail(`extracting the fixture: ${x.stderr}`);
    t.diagnostic(`extraction as non-root reported errors (device files, owners, xattrs): ${x.stderr.trim().split('\n')[0]}`);
  }
  const root = path.join(dir, 'docker');

  const list = json<{ driver: string; images: Array<{ id: string; repoTags: string[]; repoDigests: string[]; size: number }> }>(await berth('--root', root, 'images', '--format', 'json'), 'images');
  assert.equal(list.driver, 'overlay2', 'image/overlay is empty: overlay2 is the driver in use');
  assert.deepEqual(list.images.map((i) => [i.id, i.repoTags, i.repoDigests, i.size]), [
    [BUSYBOX_ID, ['busybox:latest'], ['busybox@sha256:58ac43b2cc92c687a32c8be6278e50a063579655fe3090125dcb2af0ff9e1a64'], 1146369],
  ]);
  const text = await berth('--root', root, 'images');
  assert.match(text.stdout, /^busybox +latest +8ac48589692a +.* ago +1\.15MB$/m);

  const inspect = json<{ configDigest: string; layers: Array<{ diffId: string }>; names: string[] }>(await berth('--root', root, 'inspect', 'busybox', '--format', 'json'), 'inspect');
  assert.equal(inspect.configDigest, BUSYBOX_ID);
  assert.deepEqual(inspect.layers.map((l) => l.diffId), [BUSYBOX_DIFF]);

  const blob = await berth('--root', root, 'blob', 'busybox@sha256:58ac43b2cc92c687a32c8be6278e50a063579655fe3090125dcb2af0ff9e1a64', BUSYBOX_DIFF);
  assert.equal(blob.code, 0, blob.stderr);
  assert.equal(`sha256:${createHash('sha256').update(blob.bytes).digest('hex')}`, BUSYBOX_DIFF);
  const v = await berth('--root', root, 'verify', 'busybox:latest');
  assert.equal(v.code, 0, v.stdout + v.stderr);

  const trace = json<{ layers: Array<{ files: string; filesExist: boolean; cacheId: string }>; path: { visibleFrom: number; onDisk: string } }>(await berth('--root', root, 'trace', 'busybox', '/bin/sh', '--format', 'json'), 'trace');
  assert.deepEqual(trace.layers.map((l) => [l.files, l.filesExist]), [['overlay2/583c602e6bded61f85a9deb504a724d5cc7cce3902c8385a7620fe1c78ad3176/diff', true]]);
  assert.equal(trace.path.visibleFrom, 0);
  assert.equal(trace.path.onDisk, 'overlay2/583c602e6bded61f85a9deb504a724d5cc7cce3902c8385a7620fe1c78ad3176/diff/bin/sh');

  const history = json<{ entries: Array<{ id: string | null; createdBy: string; size: number }> }>(await berth('--root', root, 'history', 'busybox', '--format', 'json'), 'history');
  assert.deepEqual(history.entries.map((e) => [e.id ?? null, e.size]), [[BUSYBOX_ID, 0], [null, 1146369]]);
});
