/**
 * Crash safety: every writing command of berth run as a child process and killed with SIGKILL
 * at many points, each point chosen at random either as a delay (uniform over the command's
 * measured run time) or as a number of bytes written (uniform over what a full run writes into
 * the watched directory, polled as fast as the file system allows). After each kill the
 * scenario's checks run (harness.ts: the store is only ever missing whole images, a destination
 * is untouched or complete, temps go with the next run or gc, a registry tag never names an
 * incomplete image), then the command runs again and must complete.
 *
 * Used by crash.test.ts (a fixed seed, a few points per scenario) and run.ts (`--kills N`).
 */
import { cp, mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  berth, bytesUnder, checkDestination, checkStore, describePlan, fingerprint, makeSource, prng, runAndKill, SAMPLE, spawnBerth, storeNames, tempLeftovers,
  type KillPlan, type SourceImage,
} from './harness.js';

export interface CrashContext {
  /** The workspace (removed by the caller). */
  readonly work: string;
  readonly source: SourceImage;
  /** A docker-archive of rel/a:1 and rel/b:1. */
  readonly archive: string;
  /** Stores to copy: sample only; sample + a + b. Never written by a case. */
  readonly storeSample: string;
  readonly storeAB: string;
  readonly sampleNames: Record<string, string>;
  /** `127.0.0.1:PORT` of a running registry, when there is one. */
  readonly registry?: { host: string; storageDir: string };
}

interface Case {
  readonly args: string[];
  /** The directory whose growth the byte-watching kill plans measure. */
  readonly watch: string;
  /** Checks after the kill; returns violations and what state the destination was found in. */
  check(): Promise<{ problems: string[]; state: string }>;
  /** Runs the command again (it must complete) and checks that no temp file is left. */
  rerun(): Promise<string[]>;
}

export interface Scenario {
  readonly name: string;
  readonly registry?: boolean;
  prepare(ctx: CrashContext, dir: string): Promise<Case>;
}

const run = promisify(execFile);

const OK = (state: string) => (problems: string[]) => ({ problems, state: problems.length === 0 ? state : 'broken' });

/** `cp -a` (a store has whiteout devices and xattrs, which fs.cp does not copy). */
export async function copyStore(from: string, to: string): Promise<string> {
  await run('cp', ['-a', '--', from, to]);
  return to;
}

function storeCase(ctx: CrashContext, root: string, args: string[], expect: { keep: Record<string, string>; allowed: Record<string, string>; after: Record<string, string> }, rerunArgs?: () => Promise<string[] | undefined>): Case {
  return {
    args: ['--root', root, ...args],
    watch: root,
    check: async () => OK('store consistent')(await checkStore(root, { keep: expect.keep, allowed: expect.allowed })),
    rerun: async () => {
      const a = rerunArgs ? await rerunArgs() : args;
      const bad: string[] = [];
      if (a !== undefined) {
        const r = await berth('--root', root, ...a);
        if (r.code !== 0) bad.push(`re-run ${a.join(' ')} failed: ${r.stderr.trim()}`);
      }
      const names = await storeNames(root);
      for (const [n, id] of Object.entries(expect.after)) if (names[n] !== id) bad.push(`after the re-run: name ${n} is ${names[n] ?? 'absent'}, want ${id}`);
      for (const n of Object.keys(names)) if (!(n in expect.after)) bad.push(`after the re-run: unexpected name ${n}`);
      bad.push(...(await checkStore(root, { keep: expect.after })));
      return bad;
    },
  };
}

function fileCase(target: string, args: string[], before: Record<string, string>, expect: { configs: string[]; transport: string }, rerunArgs: string[]): Case {
  const parent = path.dirname(target);
  return {
    args,
    watch: parent,
    check: async () => {
      const r = await checkDestination(target, before, expect);
      return { problems: r.problems, state: r.state };
    },
    rerun: async () => {
      const bad: string[] = [];
      const r = await berth(...rerunArgs);
      if (r.code !== 0) bad.push(`re-run failed: ${r.stderr.trim()}`);
      const d = await checkDestination(target, {}, expect);
      if (d.state !== 'complete') bad.push(`after the re-run: ${d.problems.join('; ')}`);
      const temps = await tempLeftovers(parent);
      if (temps.length > 0) bad.push(`after the re-run: temp files left: ${temps.join(', ')}`);
      return bad;
    },
  };
}

/** A layout that existed before: untouched, or complete; or untouched but for unreferenced blobs moved in before index.json was replaced. */
function layoutCase(ctx: CrashContext, target: string, args: string[], before: Record<string, string>, rerunArgs: string[]): Case {
  const parent = path.dirname(target);
  const expect = { configs: [ctx.source.ids.a], transport: 'oci' };
  return {
    args,
    watch: parent,
    check: async () => {
      const r = await checkDestination(target, before, expect);
      if (r.state !== 'broken' || Object.keys(before).length === 0) return { problems: r.problems, state: r.state };
      const now = await fingerprint(target);
      const changed = Object.keys(before).filter((k) => now[k] !== before[k]);
      const added = Object.keys(now).filter((k) => !(k in before));
      const harmless = added.every((k) => k.startsWith('blobs/') || path.basename(k).startsWith('.berth-tmp-') || k === '.berth.lock');
      if (changed.length === 0 && harmless) return { problems: [], state: 'untouched (index.json as before; unreferenced blobs or temps added)' };
      return r;
    },
    rerun: async () => {
      const bad: string[] = [];
      const r = await berth(...rerunArgs);
      if (r.code !== 0) bad.push(`re-run failed: ${r.stderr.trim()}`);
      const d = await checkDestination(target, {}, expect);
      if (d.state !== 'complete') bad.push(`after the re-run: ${d.problems.join('; ')}`);
      const temps = [...(await tempLeftovers(parent)).filter((n) => !n.startsWith(path.basename(target) + '/'))];
      if (temps.length > 0) bad.push(`after the re-run: temp files left: ${temps.join(', ')}`);
      return bad;
    },
  };
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'load (OCI layout)',
    async prepare(ctx, dir) {
      const root = await copyStore(ctx.storeSample, path.join(dir, 'root'));
      const allowed = { 'rel/a:1': ctx.source.ids.a, 'rel/b:1': ctx.source.ids.b };
      return storeCase(ctx, root, ['load', ctx.source.layout], { keep: ctx.sampleNames, allowed, after: { ...ctx.sampleNames, ...allowed } });
    },
  },
  {
    name: 'load -i (docker-archive)',
    async prepare(ctx, dir) {
      const root = await copyStore(ctx.storeSample, path.join(dir, 'root'));
      const allowed = { 'rel/a:1': ctx.source.ids.a, 'rel/b:1': ctx.source.ids.b };
      return storeCase(ctx, root, ['load', '-i', ctx.archive], { keep: ctx.sampleNames, allowed, after: { ...ctx.sampleNames, ...allowed } });
    },
  },
  {
    name: 'copy to store:',
    async prepare(ctx, dir) {
      const root = await copyStore(ctx.storeSample, path.join(dir, 'root'));
      const allowed = { 'copied:1': ctx.source.ids.a };
      return storeCase(ctx, root, ['copy', `oci:${ctx.source.layout}:rel/a:1`, `store:[${root}]copied:1`], { keep: ctx.sampleNames, allowed, after: { ...ctx.sampleNames, ...allowed } });
    },
  },
  {
    name: 'rmi (two images sharing layers)',
    async prepare(ctx, dir) {
      const root = await copyStore(ctx.storeAB, path.join(dir, 'root'));
      const allowed = { 'rel/a:1': ctx.source.ids.a, 'rel/b:1': ctx.source.ids.b };
      return storeCase(ctx, root, ['rmi', 'rel/a:1', 'rel/b:1'], { keep: ctx.sampleNames, allowed, after: ctx.sampleNames }, async () => {
        const left = Object.keys(await storeNames(root)).filter((n) => n in allowed);
        return left.length === 0 ? undefined : ['rmi', ...left];
      });
    },
  },
  {
    name: 'store gc (two orphaned images)',
    async prepare(ctx, dir) {
      const root = await copyStore(ctx.storeAB, path.join(dir, 'root'));
      // Orphan a and b: their configs and names go, their layers stay for gc.
      for (const id of [ctx.source.ids.a, ctx.source.ids.b]) await unlink(path.join(root, 'image/overlay2/imagedb/content/sha256', id.slice(7)));
      const repos = { Repositories: {} as Record<string, Record<string, string>> };
      for (const [n, id] of Object.entries(ctx.sampleNames)) (repos.Repositories[n.slice(0, n.lastIndexOf(':'))] ??= {})[n] = id;
      await writeFile(path.join(root, 'image/overlay2/repositories.json'), JSON.stringify(repos));
      return storeCase(ctx, root, ['store', 'gc'], { keep: ctx.sampleNames, allowed: {}, after: ctx.sampleNames });
    },
  },
  {
    name: 'tag',
    async prepare(ctx, dir) {
      const root = await copyStore(ctx.storeAB, path.join(dir, 'root'));
      const before = await storeNames(root);
      return storeCase(ctx, root, ['tag', 'rel/a:1', 'tagged:1'], { keep: before, allowed: { 'tagged:1': ctx.source.ids.a }, after: { ...before, 'tagged:1': ctx.source.ids.a } });
    },
  },
  {
    name: 'save (new file)',
    async prepare(ctx, dir) {
      const out = path.join(dir, 'out', 'saved.tar');
      await mkdir(path.dirname(out));
      const args = ['--root', ctx.storeAB, 'save', 'rel/a:1', 'rel/b:1', '-o', out];
      return fileCase(out, args, {}, { configs: [ctx.source.ids.a, ctx.source.ids.b], transport: 'docker-archive' }, [...args, '--overwrite']);
    },
  },
  {
    name: 'save --overwrite (over another archive)',
    async prepare(ctx, dir) {
      const out = path.join(dir, 'out', 'saved.tar');
      await mkdir(path.dirname(out));
      await cp(ctx.archive, out);
      const before = await fingerprint(out);
      const args = ['--root', ctx.storeAB, 'save', 'rel/a:1', '-o', out, '--format', 'oci', '--overwrite'];
      return fileCase(out, args, before, { configs: [ctx.source.ids.a], transport: 'oci-archive' }, args);
    },
  },
  {
    name: 'copy to oci: (new directory)',
    async prepare(ctx, dir) {
      const out = path.join(dir, 'out', 'layout');
      await mkdir(path.dirname(out));
      const args = ['copy', `oci:${ctx.source.layout}:rel/a:1`, `oci:${out}:rel/a:1`];
      return layoutCase(ctx, out, args, {}, args);
    },
  },
  {
    name: 'copy to oci: (existing layout)',
    async prepare(ctx, dir) {
      const out = path.join(dir, 'out', 'layout');
      await mkdir(path.dirname(out));
      await cp(SAMPLE, out, { recursive: true });
      const before = await fingerprint(out);
      const args = ['copy', `oci:${ctx.source.layout}:rel/a:1`, `oci:${out}:rel/a:1`];
      return layoutCase(ctx, out, args, before, [...args, '--overwrite']);
    },
  },
  {
    name: 'copy to oci-archive:',
    async prepare(ctx, dir) {
      const out = path.join(dir, 'out', 'a.tar');
      await mkdir(path.dirname(out));
      const args = ['copy', `oci:${ctx.source.layout}:rel/a:1`, `oci-archive:${out}`];
      return fileCase(out, args, {}, { configs: [ctx.source.ids.a], transport: 'oci-archive' }, [...args, '--overwrite']);
    },
  },
  {
    name: 'copy to docker-archive:',
    async prepare(ctx, dir) {
      const out = path.join(dir, 'out', 'a.tar');
      await mkdir(path.dirname(out));
      const args = ['copy', `oci:${ctx.source.layout}:rel/a:1`, `docker-archive:${out}:rel/a:1`];
      return fileCase(out, args, {}, { configs: [ctx.source.ids.a], transport: 'docker-archive' }, [...args, '--overwrite']);
    },
  },
  {
    name: 'push (registry)',
    registry: true,
    async prepare(ctx, dir) {
      const reg = ctx.registry!;
      const repo = `crash/${path.basename(dir).toLowerCase().replace(/[^a-z0-9]/g, '')}`;
      const ref = `docker://${reg.host}/${repo}:1`;
      const args = ['push', `oci:${ctx.source.layout}:rel/a:1`, ref];
      const tagState = async (): Promise<{ problems: string[]; state: string }> => {
        const d = await berth('digest', ref);
        if (d.code !== 0) {
          return /has no manifest|not found|unknown|404/i.test(d.stderr) ? { problems: [], state: 'no tag' } : { problems: [`digest ${ref}: ${d.stderr.trim()}`], state: 'broken' };
        }
        const problems: string[] = [];
        if (d.stdout.trim() !== ctx.source.manifests.a) problems.push(`the tag names ${d.stdout.trim()}, not ${ctx.source.manifests.a}`);
        const v = await berth('verify', '--quiet', ref);
        if (v.code !== 0) problems.push(`the tag names an image that does not verify: ${(v.stdout + v.stderr).trim().split('\n')[0]}`);
        return { problems, state: problems.length === 0 ? 'tag complete' : 'broken' };
      };
      return {
        args,
        watch: reg.storageDir,
        check: tagState,
        rerun: async () => {
          const r = await berth(...args);
          const bad = r.code === 0 ? [] : [`re-run push failed: ${r.stderr.trim()}`];
          const s = await tagState();
          if (s.state !== 'tag complete') bad.push(`after the re-run: ${s.state} ${s.problems.join('; ')}`);
          return bad;
        },
      };
    },
  },
];

/** Builds the sources and template stores every scenario copies. */
export async function prepareContext(work: string, registry?: { host: string; storageDir: string }): Promise<CrashContext> {
  const source = await makeSource(path.join(work, 'source'));
  const archive = path.join(work, 'ab.tar');
  const must = async (...argv: string[]) => {
    const r = await berth(...argv);
    if (r.code !== 0) throw new Error(`berth ${argv.join(' ')}: ${r.stderr}`);
  };
  const storeSample = path.join(work, 'store-sample');
  await must('--root', storeSample, 'load', SAMPLE, '--platform', 'linux/amd64');
  const storeAB = path.join(work, 'store-ab');
  await copyStore(storeSample, storeAB);
  await must('--root', storeAB, 'load', source.layout);
  await must('--root', storeAB, 'save', 'rel/a:1', 'rel/b:1', '-o', archive);
  return { work, source, archive, storeSample, storeAB, sampleNames: await storeNames(storeSample), ...(registry ? { registry } : {}) };
}

export interface KillPointResult {
  readonly scenario: string;
  readonly plan: string;
  /** False when the command finished before the kill (still checked). */
  readonly killed: boolean;
  readonly state: string;
  readonly problems: readonly string[];
}

export interface Calibration {
  readonly ms: number;
  readonly bytes: number;
}

/**
 * Runs one case to completion: how long it takes and by how many bytes, at most, the watched
 * directory grew while it ran (temp files included, so an overwrite of a same-sized file counts).
 */
export async function calibrate(ctx: CrashContext, scenario: Scenario, dir: string): Promise<Calibration> {
  await mkdir(dir, { recursive: true });
  const c = await scenario.prepare(ctx, dir);
  const before = await bytesUnder(c.watch);
  const start = process.hrtime.bigint();
  const child = spawnBerth(c.args);
  let peak = 0;
  while (!child.exited()) {
    peak = Math.max(peak, (await bytesUnder(c.watch)) - before);
    await new Promise((r) => setTimeout(r, 2));
  }
  const r = await child.exit;
  const ms = Number((process.hrtime.bigint() - start) / 1_000_000n);
  if (r.code !== 0) throw new Error(`${scenario.name}: an uninterrupted run failed (${r.code}): ${r.stderr}`);
  peak = Math.max(peak, (await bytesUnder(c.watch)) - before);
  await rm(dir, { recursive: true, force: true });
  return { ms, bytes: Math.max(1, peak) };
}

/** One kill point: prepare, run and kill by `plan`, check, run again, check. */
export async function killPoint(ctx: CrashContext, scenario: Scenario, dir: string, plan: (c: { watch: string }) => KillPlan): Promise<KillPointResult> {
  await mkdir(dir, { recursive: true });
  const c = await scenario.prepare(ctx, dir);
  const p = plan(c);
  const k = await runAndKill(c.args, p);
  const problems: string[] = [];
  if (!k.killed && k.code !== 0) problems.push(`exited ${k.code} without being killed: ${k.stderr.trim()}`);
  const checked = await c.check();
  problems.push(...checked.problems);
  problems.push(...(await c.rerun()));
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  return { scenario: scenario.name, plan: describePlan(p), killed: k.killed, state: k.killed ? checked.state : 'finished before the kill', problems };
}

/**
 * `kills` kill points per scenario, half by delay and half by bytes written, drawn from `seed`.
 * Calls `report` after each point.
 */
export async function runScenarios(ctx: CrashContext, opts: { kills: number; seed: number; select?: (s: Scenario) => boolean; report?: (r: KillPointResult) => void }): Promise<KillPointResult[]> {
  const rand = prng(opts.seed);
  const results: KillPointResult[] = [];
  let n = 0;
  for (const s of SCENARIOS) {
    if (s.registry && ctx.registry === undefined) continue;
    if (opts.select && !opts.select(s)) continue;
    const cal = await calibrate(ctx, s, path.join(ctx.work, `cal-${n++}`));
    for (let i = 0; i < opts.kills; i++) {
      const byBytes = i % 2 === 1;
      const r = await killPoint(ctx, s, path.join(ctx.work, `case-${n++}`), (c) => byBytes
        ? { kind: 'bytes', dir: c.watch, bytes: 1 + Math.floor(rand() * cal.bytes) }
        : { kind: 'delay', ms: Math.floor(rand() * cal.ms * 1.1) });
      results.push(r);
      opts.report?.(r);
    }
  }
  return results;
}

/** Counts of results by scenario and state, for the summary. */
export function summarize(results: readonly KillPointResult[]): string {
  const rows = new Map<string, Map<string, number>>();
  for (const r of results) {
    const m = rows.get(r.scenario) ?? new Map<string, number>();
    const key = r.problems.length > 0 ? 'FAILED' : r.state;
    m.set(key, (m.get(key) ?? 0) + 1);
    rows.set(r.scenario, m);
  }
  const lines: string[] = [];
  for (const [s, m] of rows) lines.push(`${s}: ${[...m].map(([k, v]) => `${v} ${k}`).join(', ')}`);
  const killed = results.filter((r) => r.killed).length;
  lines.push(`${results.length} kill points tried, ${killed} landed (the others finished first and were checked too), ${results.filter((r) => r.problems.length > 0).length} failed`);
  return lines.join('\n');
}

