/** `berth copy` run in process: flags, output, usage errors, --quiet. */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { main } from '../cli/main.js';
import { MULTI_FIXTURE, readJson, tempDir } from './support/copy-fixtures.js';

function sink(): Writable & { text: string } {
  const w = new Writable({
    write(chunk, _enc, cb) {
      w.text += String(chunk);
      cb();
    },
  }) as Writable & { text: string };
  w.text = '';
  return w;
}

async function berth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = sink();
  const stderr = sink();
  const code = await main(args, { stdout, stderr, env: {} });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

test('berth copy: one platform, recompressed, named; then usage errors', async (t) => {
  const dir = await tempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'o');
  const r = await berth(['copy', '--platform', 'linux/arm64', '--compression', 'gzip', '--name', 'hello:arm', `oci-archive:${MULTI_FIXTURE}`, `oci:${out}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^copied oci-archive:.* to oci:.* as hello:arm: sha256:[a-f0-9]{64}\n\d+ blob\(s\) copied/);
  assert.equal(r.stderr, '', 'no progress when stderr is not a terminal');
  const index = (await readJson(path.join(out, 'index.json'))) as { manifests: Array<{ annotations: Record<string, string> }> };
  assert.equal(index.manifests[0]!.annotations['org.opencontainers.image.ref.name'], 'hello:arm');

  const q = await berth(['copy', '-q', '--format', 'docker-legacy', '--platform', 'linux/amd64', `oci-archive:${MULTI_FIXTURE}`, `docker-archive:${path.join(dir, 'l.tar')}:hello:1`]);
  assert.equal(q.code, 0, q.stderr);
  assert.equal(q.stdout + q.stderr, '');

  const usage = [
    ['copy', `oci-archive:${MULTI_FIXTURE}`],
    ['copy', '--compression', 'lz4', `oci-archive:${MULTI_FIXTURE}`, `oci:${path.join(dir, 'x')}`],
    ['copy', '--format', 'docker-legacy', `oci-archive:${MULTI_FIXTURE}`, `oci:${path.join(dir, 'x')}`],
    ['copy', '--platform', 'linux/amd64', '--all-platforms', `oci-archive:${MULTI_FIXTURE}`, `oci:${path.join(dir, 'x')}`],
    ['copy', '--concurrency', '0', `oci-archive:${MULTI_FIXTURE}`, `oci:${path.join(dir, 'x')}`],
    ['copy', `oci-archive:${MULTI_FIXTURE}`, path.join(dir, 'no-prefix')],
  ];
  for (const args of usage) {
    const u = await berth(args);
    assert.equal(u.code, 2, `${args.join(' ')}: ${u.stderr}`);
    assert.match(u.stderr, /\S/);
  }
  const refused = await berth(['copy', '--compression', 'zstd', `oci-archive:${MULTI_FIXTURE}`, `docker-archive:${path.join(dir, 'z.tar')}:a:1`]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /uncompressed/);
});
