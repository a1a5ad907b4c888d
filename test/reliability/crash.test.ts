/**
 * Crash safety, short mode (inside `npm test`): every scenario of crash.ts once, its kill point
 * drawn from a fixed seed (by delay for even scenarios, by bytes written for odd ones), with a
 * real docker-registry for push when it is installed. The long mode is run.ts (`--kills N`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { peerPath } from '../support/peers.js';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { calibrate, killPoint, prepareContext, SCENARIOS, summarize, type KillPointResult } from './crash.js';
import { prng, removeWorkspace, workspace } from './harness.js';
import path from 'node:path';

const SEED = 11;

test('SIGKILL at a random point of every writing command: stores consistent, destinations untouched or complete, tags never on incomplete images', { timeout: 300_000 }, async (t) => {
  const work = await workspace('berth-crash-');
  let reg: RunningRegistry | undefined;
  t.after(async () => {
    await reg?.stop();
    await removeWorkspace(work);
  });
  if (peerPath('registry') !== undefined) reg = await startRegistry();
  else if (process.env.CI === 'true') throw new Error('docker-registry is missing and CI requires it');
  else t.diagnostic('no docker-registry: the push scenario is skipped');
  const ctx = await prepareContext(work, reg ? { host: reg.host, storageDir: reg.storageDir } : undefined);
  const rand = prng(SEED);
  const results: KillPointResult[] = [];
  for (const [i, s] of SCENARIOS.entries()) {
    if (s.registry && ctx.registry === undefined) continue;
    const cal = await calibrate(ctx, s, path.join(work, `cal-${i}`));
    const r = await killPoint(ctx, s, path.join(work, `case-${i}`), (c) => i % 2 === 1
      ? { kind: 'bytes', dir: c.watch, bytes: 1 + Math.floor(rand() * cal.bytes) }
      : { kind: 'delay', ms: Math.floor(rand() * cal.ms) });
    results.push(r);
  }
  for (const line of summarize(results).split('\n')) t.diagnostic(line);
  const failed = results.filter((r) => r.problems.length > 0).map((r) => `${r.scenario} (killed ${r.plan}):\n  ${r.problems.join('\n  ')}`);
  assert.deepEqual(failed, []);
});
