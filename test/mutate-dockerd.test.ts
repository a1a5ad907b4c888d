/**
 * Proof against dockerd 20.10: images mutated by berth without a daemon load and run.
 *
 * - `berth append` of the same directory twice gives the same digests (from a `docker save`
 *   archive and from an OCI layout); the docker-archive berth writes loads with `docker load`,
 *   dockerd gives it the config digest as image ID and the new diff_id as top layer, and
 *   `docker run` sees the added files;
 * - `berth config-set` changes (flags and `--change` instructions) are what
 *   `docker image inspect` shows after loading, and `docker run` runs with them.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { berth, json } from './support/cli.js';
import { APP_IMAGE, buildTestImages, startDockerd } from './support/docker.js';
import { needPeer, needRoot } from './support/peers.js';


interface Result { manifest: string; config: string; layer?: { diffId: string; digest: string } }

interface Inspect {
  Id: string;
  Created: string;
  Architecture: string;
  RootFS: { Layers: string[] };
  Config: { Env: string[]; Entrypoint: string[] | null; Cmd: string[] | null; WorkingDir: string; User: string; Labels: Record<string, string> | null; ExposedPorts: Record<string, unknown> | null };
}

const EPOCH = '1700000000';

test('images mutated by berth load into dockerd and run', { timeout: 900_000 }, async (t) => {
  if (!needPeer(t, 'dockerd') || !needPeer(t, 'docker') || !needPeer(t, 'busybox') || !needRoot(t)) return;
  const d = await startDockerd();
  const work = await mkdtemp('/tmp/bmd-');
  t.after(async () => {
    await d.stop();
    await rm(work, { recursive: true, force: true });
  });
  await buildTestImages(d);
  const base = path.join(work, 'base.tar');
  await d.docker(['save', '-o', base, APP_IMAGE]);

  const tree = path.join(work, 'tree');
  await mkdir(path.join(tree, 'etc'), { recursive: true });
  await mkdir(path.join(tree, 'usr/local/bin'), { recursive: true });
  await writeFile(path.join(tree, 'etc/berth-added.txt'), 'added by berth\n');
  await writeFile(path.join(tree, 'usr/local/bin/hi'), '#!/bin/sh\necho hi from the appended layer\n');
  await chmod(path.join(tree, 'usr/local/bin/hi'), 0o755);

  // Twice from the docker save archive, twice from an OCI copy of it: same digests each time.
  const appended: Result[] = [];
  for (const n of [1, 2]) {
    const r = await berth('append', `docker-archive:${base}`, '--layer', tree, '-t', `docker-archive:${path.join(work, `out${n}.tar`)}:berth-test/appended:1`, '--source-date-epoch', EPOCH, '--json');
    assert.equal(r.code, 0, r.stderr);
    appended.push(json<Result>(r, 'append'));
  }
  assert.equal(appended[0]!.manifest, appended[1]!.manifest);
  assert.equal(appended[0]!.config, appended[1]!.config);
  const copy = await berth('copy', `docker-archive:${base}`, `oci:${path.join(work, 'oci')}:base`);
  assert.equal(copy.code, 0, copy.stderr);
  const fromOci: Result[] = [];
  for (const n of [1, 2]) {
    const r = await berth('append', `oci:${path.join(work, 'oci')}:base`, '--layer', tree, '-t', `oci:${path.join(work, `oci${n}`)}:x`, '--source-date-epoch', EPOCH, '--json');
    assert.equal(r.code, 0, r.stderr);
    fromOci.push(json<Result>(r, 'append oci'));
  }
  assert.equal(fromOci[0]!.manifest, fromOci[1]!.manifest);
  assert.equal(fromOci[0]!.layer!.diffId, appended[0]!.layer!.diffId, 'the same directory gives the same layer whatever the source');

  // docker load of the archive berth wrote; docker run sees the added files.
  const loaded = await d.docker(['load', '-i', path.join(work, 'out1.tar')]);
  assert.match(loaded.stdout, /Loaded image: berth-test\/appended:1/);
  const ins = (JSON.parse((await d.docker(['image', 'inspect', 'berth-test/appended:1'])).stdout) as Inspect[])[0]!;
  assert.equal(ins.Id, appended[0]!.config);
  assert.equal(ins.RootFS.Layers.at(-1), appended[0]!.layer!.diffId);
  assert.equal(ins.Created, '2023-11-14T22:13:20Z');
  const run = await d.docker(['run', '--rm', '--network', 'none', 'berth-test/appended:1', '/bin/sh', '-c', 'cat /etc/berth-added.txt && /usr/local/bin/hi && cat /app/hello.txt']);
  assert.equal(run.stdout, 'added by berth\nhi from the appended layer\nhello from berth\n');
  const hist = (await d.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'berth-test/appended:1'])).stdout.split('\n')[0];
  assert.equal(hist, 'berth append tree');

  // config-set: flags and --change instructions, visible in docker image inspect after load.
  const cfgTar = path.join(work, 'cfg.tar');
  const cs = await berth('config-set', `docker-archive:${base}`, '-t', `docker-archive:${cfgTar}:berth-test/configured:1`, '--source-date-epoch', EPOCH,
    '--env', 'A=b', '--change', 'ENV B="two words"', '--label', 'k=v', '--change', 'LABEL x=y', '--expose', '9090/udp', '--change', 'EXPOSE 7070',
    '--workdir', '/srv', '--user', '1000:1000', '--entrypoint', '["/bin/sh","-c"]', '--cmd', '["echo configured; id -u; pwd; echo $B"]', '--json');
  assert.equal(cs.code, 0, cs.stderr);
  const csr = json<Result>(cs, 'config-set');
  await d.docker(['load', '-i', cfgTar]);
  const ci = (JSON.parse((await d.docker(['image', 'inspect', 'berth-test/configured:1'])).stdout) as Inspect[])[0]!;
  assert.equal(ci.Id, csr.config);
  assert.ok(ci.Config.Env.includes('A=b') && ci.Config.Env.includes('B=two words') && ci.Config.Env.includes('APP_MODE=test'), ci.Config.Env.join(' '));
  assert.deepEqual(ci.Config.Entrypoint, ['/bin/sh', '-c']);
  assert.deepEqual(ci.Config.Cmd, ['echo configured; id -u; pwd; echo $B']);
  assert.equal(ci.Config.WorkingDir, '/srv');
  assert.equal(ci.Config.User, '1000:1000');
  assert.deepEqual(ci.Config.Labels, { 'org.berth.test': 'app', k: 'v', x: 'y' });
  assert.deepEqual(Object.keys(ci.Config.ExposedPorts ?? {}).sort(), ['7070/tcp', '8080/tcp', '9090/udp']);
  const ran = await d.docker(['run', '--rm', '--network', 'none', 'berth-test/configured:1']);
  assert.equal(ran.stdout, 'configured\n1000\n/srv\ntwo words\n');
  const csHistory = (await d.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Comment}}', 'berth-test/configured:1'])).stdout.split('\n');
  assert.equal(csHistory[0], 'EXPOSE 7070/tcp|berth config-set');
});
