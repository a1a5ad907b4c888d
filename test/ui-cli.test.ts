/** `berth ui` as a user runs it: it prints its URL, serves the API, and stops cleanly on SIGTERM. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadImages, parsePlatform } from '../src/index.js';
import type { RefsResponse, StoreImagesResponse } from '../ui/api.js';
import { sampleReference } from '../ui/server.js';
import { api, removeDir, tempDir } from './support/ui.js';

const BIN = fileURLToPath(new URL('../../bin/berth', import.meta.url));

function run(args: readonly string[], env: NodeJS.ProcessEnv = process.env): { child: ReturnType<typeof spawn>; firstLine: Promise<string>; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.on('exit', () => reject(new Error(`berth ui exited early: ${err}`)));
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, firstLine, exit, stderr: () => err };
}

test('berth ui REF --port 0: prints its URL, serves REF first, stops on SIGTERM with 0', async () => {
  const sample = sampleReference();
  const p = run(['ui', sample, '--port', '0']);
  try {
    const line = await p.firstLine;
    const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(line)?.[1];
    assert.ok(url !== undefined, line);
    const refs = (await api(url, 'refs')).json as RefsResponse;
    assert.deepEqual(refs.refs[0], { ref: sample, label: sample, source: 'argument' });
    assert.equal(p.stderr(), '', 'no warning on loopback');
  } finally {
    p.child.kill('SIGTERM');
  }
  assert.equal(await p.exit, 0);
});

test('berth ui: a bad --port is a usage error (exit 2)', async () => {
  const p = run(['ui', '--port', 'eighty']);
  p.firstLine.catch(() => undefined);
  assert.equal(await p.exit, 2);
  assert.match(p.stderr(), /--port must be a port number/);
});

test('berth ui --help names its options', async () => {
  const p = run(['ui', '--help']);
  const line = await p.firstLine;
  assert.match(line, /Usage: berth ui \[options\] \[refs\.\.\.\]/);
  assert.equal(await p.exit, 0);
});

test('berth ui --root DIR (and $BERTH_ROOT): the Store view reads that data root', async () => {
  const dir = await tempDir('berth-ui-cli-store-');
  try {
    const root = path.join(dir, 'root');
    await loadImages(sampleReference(), { root, fsync: false, platform: parsePlatform('linux/amd64') });
    const cases: Array<[readonly string[], NodeJS.ProcessEnv, string]> = [
      [['ui', '--port', '0', '--root', root], { ...process.env, BERTH_ROOT: path.join(dir, 'other') }, root],
      [['--root', root, 'ui', '--port', '0'], process.env, root],
      [['ui', '--port', '0'], { ...process.env, BERTH_ROOT: root }, root],
    ];
    for (const [args, env, want] of cases) {
      const p = run(args, env);
      try {
        const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(await p.firstLine)![1]!;
        const images = (await api(url, 'store/images')).json as StoreImagesResponse;
        assert.equal(images.root, want, args.join(' '));
        assert.deepEqual(images.images.map((i) => i.name), ['berth-sample:latest']);
        const refs = (await api(url, 'refs')).json as RefsResponse;
        assert.ok(refs.refs.some((r) => r.ref === 'store:berth-sample:latest'), 'the default root needs no [ROOT] in store: references');
      } finally {
        p.child.kill('SIGTERM');
      }
      assert.equal(await p.exit, 0);
    }
  } finally {
    await removeDir(dir);
  }
});
