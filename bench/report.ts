/**
 * Turns the samples into the results JSON and the Markdown tables. Machine paths are replaced
 * by $DATA, $SCRATCH and `.` so the file can be committed and compared across machines.
 */
import os from 'node:os';
import type { Goal, Skipped } from './cases.js';
import { commandText, type Sample } from './measure.js';
import type { CaseResult, SideResult } from './runner.js';

export interface Stats {
  readonly runs: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly userMedian: number;
  readonly sysMedian: number;
  /** Largest peak RSS over the runs, MiB. */
  readonly rssMiB: number;
}

export interface Substitutions {
  readonly pairs: ReadonlyArray<readonly [string, string]>;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function stats(samples: readonly Sample[]): Stats | undefined {
  if (samples.length === 0) return undefined;
  const wall = samples.map((s) => s.wall);
  return {
    runs: samples.length, median: median(wall), min: Math.min(...wall), max: Math.max(...wall),
    userMedian: median(samples.map((s) => s.user)), sysMedian: median(samples.map((s) => s.sys)),
    rssMiB: Math.max(...samples.map((s) => s.rssKiB)) / 1024,
  };
}

function scrub(text: string, subst: Substitutions): string {
  let out = text;
  for (const [from, to] of subst.pairs) out = out.split(from).join(to);
  return out;
}

const sideOf = (r: CaseResult, role: string): SideResult | undefined => r.sides.find((s) => s.side.role === role);

export type Verdict = 'met' | 'missed' | 'n/a';

export function verdict(goal: Goal | undefined, berth: Stats | undefined, peer: Stats | undefined): Verdict {
  if (goal === undefined || berth === undefined) return 'n/a';
  if ('seconds' in goal) return berth.median <= goal.seconds ? 'met' : 'missed';
  if (peer === undefined) return 'n/a';
  return berth.median <= goal.ratio * peer.median ? 'met' : 'missed';
}

export const RSS_GOAL_MIB = 200;

export function resultsJson(results: readonly CaseResult[], skipped: readonly Skipped[], meta: Record<string, unknown>, subst: Substitutions): unknown {
  return {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version },
    ...meta,
    cases: results.map((r) => {
      const b = stats(sideOf(r, 'berth')?.samples ?? []);
      const p = stats(sideOf(r, 'peer')?.samples ?? []);
      return {
        id: r.c.id, dataset: r.c.dataset, what: r.c.what, goal: r.c.goal ?? null, basisBytes: r.c.basisBytes ?? null,
        error: r.error === undefined ? null : scrub(r.error, subst),
        ratio: b && p ? b.median / p.median : null, verdict: verdict(r.c.goal, b, p), loadavg: r.load.map((x) => +x.toFixed(2)),
        sides: r.sides.map((s) => ({
          role: s.side.role, tool: s.side.tool, command: scrub(commandText(s.side.cmd), subst), stats: stats(s.samples) ?? null,
          samples: s.samples.map((x) => ({ wall: +x.wall.toFixed(4), user: x.user, sys: x.sys, rssKiB: x.rssKiB })),
        })),
      };
    }),
    skipped,
  };
}

const sec = (x: number): string => (x < 1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1));
const spread = (s: Stats): string => `${sec(s.min)}–${sec(s.max)}`;
const mib = (s: Stats): string => s.rssMiB.toFixed(0);

function goalText(goal: Goal | undefined, v: Verdict): string {
  if (goal === undefined) return '–';
  const g = 'seconds' in goal ? `< ${goal.seconds} s` : `≤ ${goal.ratio}×`;
  return `${g}: ${v === 'met' ? '**met**' : v === 'missed' ? '**missed**' : 'n/a'}`;
}

function pairRow(r: CaseResult): string {
  const bs = sideOf(r, 'berth');
  const ps = sideOf(r, 'peer');
  const b = stats(bs?.samples ?? []);
  const p = stats(ps?.samples ?? []);
  if (r.error !== undefined && (b === undefined || p === undefined)) {
    return `| ${r.c.id} | ${ps?.side.tool ?? ''} | failed: ${r.error.split('\n')[0]!.replace(/\|/g, '\\|').slice(0, 120)} | | | | | | | | ${loadText(r)} |`;
  }
  const ratio = b && p ? (b.median / p.median).toFixed(2) : '–';
  const rssNote = b && b.rssMiB > RSS_GOAL_MIB ? ' (> 200)' : '';
  return `| ${r.c.id} | ${ps?.side.tool ?? '–'} | ${b ? sec(b.median) : '–'} | ${p ? sec(p.median) : '–'} | ${ratio} | ${b ? spread(b) : '–'} | ${p ? spread(p) : '–'} | ${b ? mib(b) + rssNote : '–'} | ${p ? mib(p) : '–'} | ${goalText(r.c.goal, verdict(r.c.goal, b, p))} | ${loadText(r)} |`;
}

const loadText = (r: CaseResult): string => r.load.map((x) => x.toFixed(1)).join('→');

function limitRow(r: CaseResult): string {
  const s = stats(r.sides[0]?.samples ?? []);
  if (s === undefined) return `| ${r.c.dataset} | ${r.sides[0]?.side.tool ?? r.c.id} | failed | | | | ${loadText(r)} |`;
  const mbs = r.c.basisBytes ? (r.c.basisBytes / 1e6 / s.median).toFixed(0) : '–';
  return `| ${r.c.dataset} | ${r.sides[0]!.side.tool} | ${sec(s.median)} | ${spread(s)} | ${mbs} | ${mib(s)} | ${loadText(r)} |`;
}

export function markdown(results: readonly CaseResult[], skipped: readonly Skipped[], header: string): string {
  const pairs = results.filter((r) => r.sides.some((s) => s.side.role === 'berth'));
  const limits = results.filter((r) => r.sides.every((s) => s.side.role === 'limit'));
  const out = [header, ''];
  if (pairs.length > 0) {
    out.push('| case | peer | berth median s | peer median s | berth/peer | berth min–max | peer min–max | berth RSS MiB | peer RSS MiB | goal | load |');
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|');
    for (const r of pairs) out.push(pairRow(r));
    out.push('');
  }
  if (limits.length > 0) {
    out.push('Physical limits (the machine alone; MB/s of uncompressed layer bytes):', '');
    out.push('| dataset | step | median s | min–max | MB/s | RSS MiB | load |', '|---|---|---:|---:|---:|---:|---|');
    for (const r of limits) out.push(limitRow(r));
    out.push('');
  }
  if (skipped.length > 0) {
    out.push('Skipped:', '');
    for (const s of skipped) out.push(`- ${s.id}: ${s.reason}`);
    out.push('');
  }
  return out.join('\n');
}
