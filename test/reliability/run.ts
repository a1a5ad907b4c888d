/**
 * The long crash-safety run: `node dist/test/reliability/run.js --kills N [--seed S] [--scenario TEXT]… [--no-registry]`.
 *
 * N kill points per scenario (half by delay, half by bytes written; see crash.ts), with a real
 * docker-registry on 127.0.0.1 for the push scenario when it is installed. Prints one line per
 * failed point as it happens, then a summary by scenario and outcome; exits 1 when any point
 * failed. Replay a run with the seed it prints.
 */
import { randomInt } from 'node:crypto';
import { peerPath } from '../support/peers.js';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { prepareContext, runScenarios, summarize } from './crash.js';
import { removeWorkspace, workspace } from './harness.js';

function usage(message: string): never {
  process.stderr.write(`reliability run: ${message}\nusage: node dist/test/reliability/run.js --kills N [--seed S] [--scenario TEXT]... [--no-registry]\n`);
  process.exit(2);
}

async function mainRun(argv: readonly string[]): Promise<number> {
  let kills = 20;
  let seed = randomInt(2 ** 31);
  let registry = true;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => argv[++i] ?? usage(`${a} needs a value`);
    if (a === '--kills') kills = Number(value());
    else if (a === '--seed') seed = Number(value());
    else if (a === '--scenario') only.push(value());
    else if (a === '--no-registry') registry = false;
    else usage(`unknown argument ${a}`);
  }
  if (!Number.isInteger(kills) || kills < 1) usage('--kills must be a positive integer');
  if (!Number.isInteger(seed)) usage('--seed must be an integer');
  const work = await workspace('berth-crash-');
  let reg: RunningRegistry | undefined;
  const stop = async () => {
    await reg?.stop();
    await removeWorkspace(work);
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    if (registry && peerPath('registry') !== undefined) reg = await startRegistry();
    else process.stdout.write('no registry: the push scenario is skipped\n');
    const ctx = await prepareContext(work, reg ? { host: reg.host, storageDir: reg.storageDir } : undefined);
    process.stdout.write(`seed ${seed}, ${kills} kill points per scenario\n`);
    let done = 0;
    const results = await runScenarios(ctx, {
      kills, seed,
      ...(only.length > 0 ? { select: (s) => only.some((o) => s.name.includes(o)) } : {}),
      report: (r) => {
        done++;
        if (r.problems.length > 0) process.stdout.write(`FAIL ${r.scenario}, killed ${r.plan}:\n  ${r.problems.join('\n  ')}\n`);
        else if (done % 25 === 0) process.stdout.write(`${done} points…\n`);
      },
    });
    process.stdout.write(`${summarize(results)}\nreplay: node dist/test/reliability/run.js --kills ${kills} --seed ${seed}\n`);
    return results.some((r) => r.problems.length > 0) ? 1 : 0;
  } finally {
    await stop();
  }
}

// `node --test dist/` also loads every module under a test/ directory: the long run is not a test
if (process.env.NODE_TEST_CONTEXT === undefined) process.exitCode = await mainRun(process.argv.slice(2));
