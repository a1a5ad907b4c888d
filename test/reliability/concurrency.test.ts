/**
 * Eight berth processes at once in one store (issue 11): loading, tagging, untagging, removing
 * and reloading an image that shares layers with another, and saving, while this process reads
 * repositories.json and every config in a loop. Afterwards: no tag lost, no layer gone that an
 * image needs (fsck rebuilds every layer), no corrupt JSON ever read, every archive saved
 * verifies. And a lock holder killed with SIGKILL does not block the next writer.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { copyStore } from './crash.js';
import { berth, checkStore, makeSource, removeWorkspace, SAMPLE, spawnBerth, storeNames, workspace } from './harness.js';

async function cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string; args: string }> {
  const r = await spawnBerth(args).exit;
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, args: args.join(' ') };
}

test('8 processes load, tag, rmi and save in one store at once: nothing lost, nothing corrupt', { timeout: 240_000 }, async (t) => {
  const work = await workspace('berth-conc-');
  t.after(() => removeWorkspace(work));
  const src = await makeSource(path.join(work, 'src'), { smallFiles: 80, bigBytes: 256 * 1024 });
  const R = path.join(work, 'root');
  assert.equal((await berth('--root', R, 'load', SAMPLE, '--platform', 'linux/amd64')).code, 0);
  const sampleId = (await storeNames(R))['berth-sample:latest']!;
  assert.ok(sampleId);
  const root = ['--root', R];
  const failures: string[] = [];
  const must = async (args: string[]) => {
    const r = await cli([...root, ...args]);
    if (r.code !== 0) failures.push(`${r.args}: exit ${r.code}: ${r.stderr.trim()}`);
    return r;
  };
  const saved: string[] = [];
  const saveErrors: string[] = [];
  const workers: Array<() => Promise<void>> = [
    // 0: loads a and b, then tags a
    async () => {
      await must(['load', src.layout]);
      for (let k = 1; k <= 3; k++) await must(['tag', 'rel/a:1', `w0:${k}`]);
    },
    // 1: loads another platform of the sample under its own name
    async () => {
      await must(['load', SAMPLE, '--platform', 'linux/arm64', '-t', 'arm:1']);
    },
    // 2-4: tag the sample, five names each
    ...[2, 3, 4].map((w) => async () => {
      for (let k = 1; k <= 5; k++) await must(['tag', 'berth-sample', `w${w}:${k}`]);
    }),
    // 5: removes b (whose base layers a needs) and loads it again, twice
    async () => {
      for (let k = 0; k < 2; k++) {
        const names = await storeNames(R);
        if (names['rel/b:1'] !== undefined) await must(['rmi', 'rel/b:1']);
        await must(['load', src.layout]);
      }
    },
    // 6: tags and untags names of its own
    async () => {
      for (let k = 1; k <= 3; k++) {
        await must(['tag', 'berth-sample', `gone:${k}`]);
        await must(['rmi', `gone:${k}`]);
      }
    },
    // 7: saves the sample (never removed) three times; each archive must verify
    async () => {
      for (let k = 1; k <= 3; k++) {
        const out = path.join(work, `saved-${k}.tar`);
        const r = await cli([...root, 'save', 'berth-sample', '-o', out]);
        if (r.code === 0) saved.push(out);
        else saveErrors.push(r.stderr.trim());
      }
    },
  ];
  assert.equal(workers.length, 8);
  // This process reads while they write: every read of repositories.json and of each config must parse.
  let reads = 0;
  const badReads: string[] = [];
  let running = true;
  const reader = (async () => {
    const repos = path.join(R, 'image/overlay2/repositories.json');
    const configs = path.join(R, 'image/overlay2/imagedb/content/sha256');
    while (running) {
      const text = await readFile(repos, 'utf8');
      try {
        JSON.parse(text);
      } catch (err) {
        badReads.push(`repositories.json: ${(err as Error).message}: ${text.slice(0, 200)}`);
      }
      for (const name of await readdir(configs).catch(() => [] as string[])) {
        if (name.startsWith('.')) continue;
        const c = await readFile(path.join(configs, name), 'utf8').catch(() => undefined);
        if (c === undefined) continue; // removed meanwhile
        try {
          JSON.parse(c);
        } catch (err) {
          badReads.push(`config ${name}: ${(err as Error).message}`);
        }
      }
      reads++;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  await Promise.all(workers.map((w) => w()));
  running = false;
  await reader;

  assert.deepEqual(failures, [], 'every command succeeded');
  assert.deepEqual(badReads, [], `no partial or corrupt JSON in ${reads} read rounds`);
  assert.ok(reads > 0);
  assert.deepEqual(saveErrors, [], 'saving an image nobody removes never fails');
  for (const out of saved) {
    const v = await berth('verify', '--quiet', `docker-archive:${out}`);
    assert.equal(v.code, 0, `${out}: ${v.stdout}${v.stderr}`);
  }
  const names = await storeNames(R);
  const want: Record<string, string> = { 'berth-sample:latest': sampleId, 'rel/a:1': src.ids.a, 'rel/b:1': src.ids.b };
  for (const w of [2, 3, 4]) for (let k = 1; k <= 5; k++) want[`w${w}:${k}`] = sampleId;
  for (let k = 1; k <= 3; k++) want[`w0:${k}`] = src.ids.a;
  assert.ok(names['arm:1'] !== undefined, 'arm:1 is there');
  assert.deepEqual({ ...names, 'arm:1': undefined }, { ...want, 'arm:1': undefined }, 'no tag lost, no removed tag back');
  const fsck = await berth(...root, 'store', 'fsck');
  assert.equal(fsck.code, 0, `fsck after the concurrent writes (every layer rebuilt; no orphan):\n${fsck.stdout}`);
  t.diagnostic(`${reads} read rounds of repositories.json and configs during the writes; ${saved.length} archives saved and verified`);
});

test('a lock holder killed with SIGKILL does not block the next writer', { timeout: 240_000 }, async (t) => {
  const work = await workspace('berth-lock-');
  t.after(() => removeWorkspace(work));
  const src = await makeSource(path.join(work, 'src'), { smallFiles: 200, bigBytes: 4 * 1024 * 1024 });
  const seed = path.join(work, 'seed');
  assert.equal((await berth('--root', seed, 'load', SAMPLE, '--platform', 'linux/amd64')).code, 0);
  let killedHolding = 0;
  for (const [i, command] of [['load', src.layout], ['store', 'gc'], ['tag', 'berth-sample', 'x:1']].entries()) {
    const R = await copyStore(seed, path.join(work, `root-${i}`));
    const lock = path.join(R, '.berth.lock');
    const run = spawnBerth(['--root', R, ...command]);
    // Kill it while it holds the lock (its pid is in the lock file).
    let held = false;
    while (!run.exited()) {
      const text = await readFile(lock, 'utf8').catch(() => '');
      if (text.startsWith(`${run.child.pid}\n`)) {
        run.child.kill('SIGKILL');
        held = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    const r = await run.exit;
    if (!held) {
      t.diagnostic(`${command.join(' ')} finished before its lock was seen (${r.code})`);
      continue;
    }
    assert.equal(r.signal, 'SIGKILL');
    killedHolding++;
    assert.ok(existsSync(lock), 'the dead holder left its lock file');
    // The next writer takes the stale lock over (a live lock would make it wait for 10 minutes, past this test's timeout).
    const tag = await berth('--root', R, 'tag', 'berth-sample', 'after:1');
    assert.equal(tag.code, 0, tag.stderr);
    assert.ok(!existsSync(lock), 'the lock is released after the next writer');
    assert.equal((await storeNames(R))['after:1'] !== undefined, true);
    assert.deepEqual(await checkStore(R), [], `${command.join(' ')} killed holding the lock`);
  }
  assert.ok(killedHolding > 0, 'at least one writer was killed while it held the lock');
  t.diagnostic(`${killedHolding} of 3 writers killed while holding the lock; the next writer took it over each time`);
});
