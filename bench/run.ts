/**
 * `npm run bench`: berth against its peers (skopeo, umoci, sha256sum, …) and the machine's
 * physical limits on the benchmark datasets. Writes bench/results/latest.json and prints the
 * Markdown tables. See bench/README.md.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCases, type Case, type Context } from './cases.js';
import { datasetNames, ensureData, type Data, type DatasetName } from './datasets.js';
import { detect } from './detect.js';
import { DOCKER_HOST, FreshDockerd, LOAD_DOCKER_HOST, stopDockerd } from './dockerd.js';
import { cleanupMeasure, killRunning } from './measure.js';
import { parseOptions, type BenchOptions } from './options.js';
import { Registry } from './registry.js';
import { caseRecord, machine, markdown, mergeCases, type Results, type Substitutions } from './report.js';
import { runCase, type CaseResult } from './runner.js';
import { Scratch } from './scratch.js';

// dist/bench/run.js → the repository root two levels up.
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');

const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

/** Paths only, for --list before the datasets exist. */
function plannedData(dir: string, names: readonly DatasetName[]): Data {
  return {
    dir, huge: path.join(dir, 'huge.docker.tar'),
    datasets: names.map((name) => ({
      name, dockerArchive: path.join(dir, `${name}.docker.tar`), oci: path.join(dir, `${name}.oci`), tars: [], gzips: [], zstds: [], ociBlobs: [], tarBytes: 0,
    })),
  };
}

function header(r: Results): string {
  const m = r.machine;
  const st = r.settings;
  return `berth bench ${r.date.slice(0, 10)}: ${String(m.cpus)} × ${String(m.cpu)}, ${String(m.memGiB)} GiB, Linux ${String(m.kernel)}, Node ${String(m.node)}; `
    + `last run: ${String(st.runs)} runs (${String(st.slowRuns)} for slow cases) after ${String(st.warmup)} warm-up per side, alternating berth/peer, page cache warm; `
    + `outputs on ${st.scratchOnTmpfs === true ? 'tmpfs' : 'disk'}.`;
}

async function previousResults(file: string): Promise<Results | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Results;
  } catch {
    return undefined;
  }
}

/** Every daemon the cases started (each case stops its own; this covers interrupts and failures). */
async function stopDaemons(): Promise<void> {
  await Registry.stopAll();
  await FreshDockerd.stopAll();
  await stopDockerd();
}

function selected(id: string, opts: BenchOptions): boolean {
  return opts.only === undefined || opts.only.test(id);
}

async function main(argv: readonly string[]): Promise<number> {
  const opts = parseOptions(argv, REPO);
  if (opts.render) {
    const r = await previousResults(opts.out);
    if (r === undefined) throw new Error(`no results in ${opts.out}`);
    console.log(markdown(r.cases, r.skipped, header(r)));
    return 0;
  }
  const avail = detect(path.join(REPO, 'bin', 'berth'));
  log(`berth commands: ${[...avail.berth].join(', ')}`);
  const names = datasetNames(opts.datasets);
  const data = opts.list ? plannedData(opts.data, names) : await ensureData(opts.data, names, REPO, log);
  const scratch = await Scratch.create(opts.scratch);
  const ctx: Context = {
    data, scratch, avail, berth: [process.execPath, path.join(REPO, 'bin', 'berth')], node: process.execPath, limitsDir: path.join(HERE, 'limits'),
  };
  const all = buildCases(ctx, !opts.noLimits);
  const cases: Case[] = all.cases.filter((c) => selected(c.id, opts));
  const skipped = all.skipped.filter((s) => selected(s.id, opts));
  if (opts.list) {
    for (const c of cases) console.log(`${c.id}\t${c.what}`);
    for (const s of skipped) console.log(`${s.id}\tSKIPPED: ${s.reason}`);
    await scratch.cleanup();
    return 0;
  }
  const stop = (): void => {
    // Leave no multi-GiB outputs in tmpfs when interrupted.
    killRunning();
    void stopDaemons().then(() => scratch.cleanup()).finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const fixedSubst: Substitutions = [
    [scratch.dir, '$SCRATCH'], [opts.data, '$DATA'], [REPO + path.sep, './'], [process.execPath, 'node'], [DOCKER_HOST, 'unix://$BENCH_DOCKERD/docker.sock'],
    [LOAD_DOCKER_HOST, 'unix://$BENCH_DOCKERD_LOAD/docker.sock'],
  ];
  // Registry ports are picked when a case starts its registry.
  const substitutions = (): Substitutions => [...fixedSubst, ...Registry.hosts.map((h): [string, string] => [h, '$REGISTRY'])];
  // A partial run (--only, --datasets, --no-limits) updates its cases in the previous results
  // instead of dropping the rest.
  const partial = opts.only !== undefined || opts.datasets !== undefined || opts.noLimits;
  const previous = partial ? await previousResults(opts.out) : undefined;
  const results: CaseResult[] = [];
  const save = async (): Promise<Results> => {
    const subst = substitutions();
    const out: Results = {
      date: new Date().toISOString(), machine: machine(),
      settings: { runs: opts.runs, slowRuns: opts.slowRuns, warmup: opts.warmup, scratchOnTmpfs: scratch.tmpfs, berthCommands: [...avail.berth] },
      cases: mergeCases(previous?.cases ?? [], results.map((r) => caseRecord(r, subst)), all.cases.map((c) => c.id)),
      skipped: all.skipped,
    };
    await mkdir(path.dirname(opts.out), { recursive: true });
    // Scrubbed as a whole, so records merged from an earlier run get the same treatment.
    const text = subst.reduce((t, [from, to]) => t.split(JSON.stringify(from).slice(1, -1)).join(to), JSON.stringify(out, null, 2));
    await writeFile(`${opts.out}.tmp`, `${text}\n`);
    await rename(`${opts.out}.tmp`, opts.out);
    return out;
  };
  try {
    for (const [i, c] of cases.entries()) {
      log(`(${i + 1}/${cases.length}) ${c.id}: ${c.what}`);
      results.push(await runCase(c, { runs: opts.runs, slowRuns: opts.slowRuns, warmup: opts.warmup, log }));
      await scratch.afterCase();
      // Saved after every case: a long run that is interrupted still leaves its numbers.
      await save();
    }
  } finally {
    await stopDaemons();
    await scratch.cleanup();
    await cleanupMeasure();
  }
  const out = await save();
  console.log(markdown(out.cases, out.skipped, header(out)));
  log(`results: ${path.relative(process.cwd(), opts.out) || opts.out}${previous ? ' (merged into the previous results)' : ''}`);
  return results.some((r) => r.error !== undefined) ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2)).catch((err: unknown) => {
  log(`error: ${(err as Error).message}`);
  return 2;
});
