/**
 * The long fuzz runner: `npm run fuzz -- --minutes N [--target NAME]… [--json FILE]`.
 *
 * Runs every target (or the ones named) round-robin in batches with fresh random seeds until the
 * time is up, in a worker thread watched from the main thread: a case that does not finish (even
 * a synchronous infinite loop, which no in-process deadline can stop) is reported as a hang with
 * its target and seed, and the worker is restarted. After every round the worker forces a
 * collection and checks the heap against a limit. Prints cases run per target and every failure
 * with the command that replays it; exits 1 when anything failed.
 *
 * Replay: `npm run fuzz -- --target NAME --seed SEED [--path PATH]` runs that one case (shrinking
 * it further) and prints the input and the error.
 */
import { randomInt } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { HEAP_LIMIT_BYTES, heapUsed, outcomeSnapshot } from './harness.js';
import { describeFailure } from './short.js';
import { TARGETS, findTarget, propertyOf, useFuzzWorkspace, type Target } from './targets.js';

interface Options {
  minutes: number;
  targets: string[];
  seed: number | undefined;
  path: string | undefined;
  json: string | undefined;
  batch: number | undefined;
}

type ToMain =
  | { type: 'case'; target: string; seed: number }
  | { type: 'batch'; target: string; seed: number; runs: number; ms: number; failure?: string }
  | { type: 'heap'; used: number; failure?: string }
  | { type: 'done'; outcomes: Record<string, Record<string, number>> };

interface Failure {
  readonly target: string;
  readonly kind: 'crash' | 'hang' | 'memory' | 'worker-error';
  readonly seed: number | undefined;
  readonly text: string;
}

/** A case that has sent no word for this long is a hang (each operation has a 15 s deadline of its own); `--watchdog SECONDS` changes it. */
let WATCHDOG_MS = 120_000;
/** Growth of the post-collection heap over the first round's that counts as a leak. */
const HEAP_GROWTH_LIMIT = 256 * 1024 * 1024;

function usage(message: string): never {
  process.stderr.write(`berth fuzz: ${message}\nusage: npm run fuzz -- [--minutes N] [--target NAME]... [--seed N [--path P]] [--batch N] [--watchdog SECONDS] [--json FILE]\ntargets: ${TARGETS.map((t) => t.name).join(', ')}\n`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { minutes: 1, targets: [], seed: undefined, path: undefined, json: undefined, batch: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === '--minutes') o.minutes = Number(value());
    else if (a === '--target') o.targets.push(value());
    else if (a === '--seed') o.seed = Number(value());
    else if (a === '--path') o.path = value();
    else if (a === '--json') o.json = value();
    else if (a === '--batch') o.batch = Number(value());
    else if (a === '--watchdog') WATCHDOG_MS = Number(value()) * 1000;
    else if (a === '--help' || a === '-h') usage('help');
    else usage(`unknown argument ${JSON.stringify(a)}`);
  }
  if (!(o.minutes > 0)) usage('--minutes must be a positive number');
  if (o.seed !== undefined && !Number.isInteger(o.seed)) usage('--seed must be an integer');
  if (o.batch !== undefined && !(Number.isInteger(o.batch) && o.batch > 0)) usage('--batch must be a positive integer');
  for (const t of o.targets) if (!TARGETS.some((x) => x.name === t)) usage(`no target ${JSON.stringify(t)}`);
  return o;
}

/** Cases per batch: small enough that the summary moves, large enough that arbitraries are built rarely. */
function batchSize(t: Target, override: number | undefined): number {
  return override ?? Math.max(20, t.shortRuns);
}

// ---------------------------------------------------------------------------------------------
// Worker side.

async function workerMain(): Promise<void> {
  const data = workerData as { targets: string[]; endAt: number; workspace: string; batch: number | undefined };
  useFuzzWorkspace(data.workspace);
  const post = (m: ToMain): void => parentPort!.postMessage(m);
  const targets = data.targets.map(findTarget);
  const props = new Map<string, fc.IAsyncProperty<[unknown]>>();
  let current = { target: '', seed: 0 };
  for (const t of targets) props.set(t.name, await propertyOf(t, () => post({ type: 'case', ...current })));
  let baseline: number | undefined;
  while (Date.now() < data.endAt) {
    for (const t of targets) {
      if (Date.now() >= data.endAt) break;
      const seed = randomInt(2 ** 31 - 1);
      current = { target: t.name, seed };
      const started = Date.now();
      const details = await fc.check(props.get(t.name)!, { seed, numRuns: batchSize(t, data.batch), endOnFailure: true });
      post({ type: 'batch', target: t.name, seed, runs: details.numRuns, ms: Date.now() - started, ...(details.failed ? { failure: describeFailure(t, details) } : {}) });
    }
    const used = heapUsed();
    baseline ??= used;
    const failure = used > HEAP_LIMIT_BYTES ? `heap after a collection is ${used} bytes, over the limit of ${HEAP_LIMIT_BYTES}`
      : used - baseline > HEAP_GROWTH_LIMIT ? `heap after a collection grew from ${baseline} to ${used} bytes over the run (a leak?)` : undefined;
    post({ type: 'heap', used, ...(failure === undefined ? {} : { failure }) });
  }
  post({ type: 'done', outcomes: outcomeSnapshot() });
}

// ---------------------------------------------------------------------------------------------
// Main side.

interface Tally {
  cases: number;
  batches: number;
  ms: number;
  failures: number;
}

async function replay(o: Options): Promise<void> {
  const t = findTarget(o.targets[0]!);
  const dir = await mkdtemp(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'berth-fuzz-'));
  useFuzzWorkspace(dir);
  try {
    const details = await fc.check(await propertyOf(t), { seed: o.seed!, ...(o.path === undefined ? {} : { path: o.path }), numRuns: o.path === undefined ? batchSize(t, o.batch) : 1 });
    if (!details.failed) {
      process.stdout.write(`${t.name} seed ${o.seed}${o.path === undefined ? '' : ` path ${o.path}`}: ${details.numRuns} cases, no failure\n`);
      return;
    }
    process.stdout.write(`${describeFailure(t, details)}\n`);
    process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Outcomes = Map<string, Map<string, number>>;

function runWorker(
  names: string[], endAt: number, workspace: string, batch: number | undefined, tally: Map<string, Tally>, failures: Failure[], outcomes: Outcomes, log: (s: string) => void,
): Promise<'done' | 'restart'> {
  return new Promise((resolve) => {
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { targets: names, endAt, workspace, batch } });
    let last = { target: '(start)', seed: undefined as number | undefined };
    let lastWord = Date.now();
    let settled = false;
    const finish = (how: 'done' | 'restart'): void => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      resolve(how);
    };
    const watch = setInterval(() => {
      if (Date.now() - lastWord < WATCHDOG_MS) return;
      failures.push({ target: last.target, kind: 'hang', seed: last.seed, text: `no progress for ${WATCHDOG_MS / 1000} s in a case of ${last.target} (replay: npm run fuzz -- --target ${last.target} --seed ${last.seed})` });
      const t = tally.get(last.target);
      if (t !== undefined) t.failures++;
      log(`HANG in ${last.target} seed ${last.seed}: restarting the worker`);
      void worker.terminate().then(() => finish('restart'));
    }, 1000);
    worker.on('message', (m: ToMain) => {
      lastWord = Date.now();
      if (m.type === 'case') {
        last = { target: m.target, seed: m.seed };
      } else if (m.type === 'batch') {
        const t = tally.get(m.target)!;
        t.cases += m.runs;
        t.batches++;
        t.ms += m.ms;
        if (m.failure !== undefined) {
          t.failures++;
          failures.push({ target: m.target, kind: 'crash', seed: m.seed, text: m.failure });
          log(`FAILURE in ${m.target} seed ${m.seed}\n${m.failure}\n`);
        }
      } else if (m.type === 'heap') {
        if (m.failure !== undefined) {
          failures.push({ target: '(all)', kind: 'memory', seed: undefined, text: m.failure });
          log(`MEMORY: ${m.failure}`);
        }
      } else {
        for (const [op, counts] of Object.entries(m.outcomes)) {
          const into = outcomes.get(op) ?? new Map<string, number>();
          outcomes.set(op, into);
          for (const [k, n] of Object.entries(counts)) into.set(k, (into.get(k) ?? 0) + n);
        }
        finish('done');
      }
    });
    worker.on('error', (err) => {
      failures.push({ target: last.target, kind: 'worker-error', seed: last.seed, text: `the worker died (an exception outside any case's promise, e.g. an unhandled stream error): ${err.stack ?? String(err)}` });
      const t = tally.get(last.target);
      if (t !== undefined) t.failures++;
      log(`WORKER DIED during ${last.target} seed ${last.seed}: ${err.message}`);
      finish('restart');
    });
    worker.on('exit', () => finish(Date.now() >= endAt ? 'done' : 'restart'));
  });
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.seed !== undefined) {
    if (o.targets.length !== 1) usage('--seed needs exactly one --target');
    await replay(o);
    return;
  }
  const names = o.targets.length > 0 ? o.targets : TARGETS.map((t) => t.name);
  const tally = new Map<string, Tally>(names.map((n) => [n, { cases: 0, batches: 0, ms: 0, failures: 0 }]));
  const failures: Failure[] = [];
  const outcomes: Outcomes = new Map();
  const started = Date.now();
  const endAt = started + o.minutes * 60_000;
  const log = (s: string): void => void process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${s}\n`);
  const workspace = await mkdtemp(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'berth-fuzz-'));
  log(`fuzzing ${names.length} targets for ${o.minutes} min (workspace ${workspace})`);
  const progress = setInterval(() => {
    const total = [...tally.values()].reduce((n, t) => n + t.cases, 0);
    log(`${total} cases, ${failures.length} failures`);
  }, 60_000);
  try {
    for (let restarts = 0; Date.now() < endAt && restarts < 50; restarts++) {
      if ((await runWorker(names, endAt, workspace, o.batch, tally, failures, outcomes, log)) === 'done') break;
    }
  } finally {
    clearInterval(progress);
    await rm(workspace, { recursive: true, force: true });
  }
  const seconds = (Date.now() - started) / 1000;
  const rows = names.map((n) => {
    const t = tally.get(n)!;
    return `| ${n} | ${t.cases} | ${t.cases === 0 ? '-' : (t.ms / t.cases).toFixed(2)} | ${t.failures} |`;
  });
  const total = [...tally.values()].reduce((n, t) => n + t.cases, 0);
  process.stdout.write([
    `berth fuzz: ${total} cases in ${seconds.toFixed(0)} s, ${failures.length} failures`,
    '',
    '| target | cases | ms/case | failures |',
    '|---|---:|---:|---:|',
    ...rows,
    '',
    'How the operations ended (ok, or the BerthError code):',
    '',
    ...[...outcomes].sort(([a], [b]) => a.localeCompare(b)).map(([op, m]) => `- ${op}: ${[...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`),
    '',
    ...failures.map((f) => `--- ${f.kind} in ${f.target}${f.seed === undefined ? '' : ` (seed ${f.seed})`}\n${f.text}\n`),
  ].join('\n') + '\n');
  if (o.json !== undefined) {
    const outcomeData = Object.fromEntries([...outcomes].map(([op, m]) => [op, Object.fromEntries(m)]));
    writeFileSync(o.json, `${JSON.stringify({ seconds, total, targets: Object.fromEntries(tally), outcomes: outcomeData, failures }, null, 2)}\n`);
  }
  if (failures.length > 0) process.exitCode = 1;
}

// `node --test dist/` also loads every module under a test/ directory: do nothing there.
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  // loaded by the test runner, not run
} else if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`berth fuzz: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
} else {
  workerMain().catch((err: unknown) => {
    throw err;
  });
}
