/**
 * Turns the samples into the results JSON and the Markdown tables. Machine paths are replaced
 * by $DATA, $SCRATCH and `./` so the file can be committed and compared across machines. The
 * tables are rendered from the JSON records, so a partial run (--only) can be merged into the
 * previous results and the whole table printed again.
 */
import os from 'node:os';
import type { Goal, Role, Skipped } from './cases.js';
import { commandText, type Sample } from './measure.js';
import type { CaseResult } from './runner.js';

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

export interface SideRecord {
  readonly role: Role;
  readonly tool: string;
  readonly command: string;
  readonly stats: Stats | null;
  readonly samples: readonly Sample[];
}

export type Verdict = 'met' | 'missed' | 'n/a';

export interface CaseRecord {
  readonly id: string;
  readonly date: string;
  readonly dataset: string;
  readonly what: string;
  readonly goal: Goal | null;
  readonly basisBytes: number | null;
  readonly error: string | null;
  readonly ratio: number | null;
  readonly verdict: Verdict;
  readonly loadavg: readonly number[];
  readonly sides: readonly SideRecord[];
}

export interface Results {
  readonly date: string;
  readonly machine: Record<string, unknown>;
  readonly settings: Record<string, unknown>;
  readonly cases: readonly CaseRecord[];
  readonly skipped: readonly Skipped[];
}

export type Substitutions = ReadonlyArray<readonly [string, string]>;

export const RSS_GOAL_MIB = 200;

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
  for (const [from, to] of subst) out = out.split(from).join(to);
  return out;
}

export function verdict(goal: Goal | null | undefined, berth: Stats | null | undefined, peer: Stats | null | undefined): Verdict {
  if (goal == null || berth == null) return 'n/a';
  if ('seconds' in goal) return berth.median <= goal.seconds ? 'met' : 'missed';
  if (peer == null) return 'n/a';
  return berth.median <= goal.ratio * peer.median ? 'met' : 'missed';
}

export function machine(): Record<string, unknown> {
  return { cpus: os.cpus().length, cpu: os.cpus()[0]?.model.trim() ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version };
}

export function caseRecord(r: CaseResult, subst: Substitutions): CaseRecord {
  const sides: SideRecord[] = r.sides.map((s) => ({
    role: s.side.role, tool: s.side.tool, command: scrub(commandText(s.side.cmd), subst), stats: stats(s.samples) ?? null,
    samples: s.samples.map((x) => ({ wall: +x.wall.toFixed(4), user: x.user, sys: x.sys, rssKiB: x.rssKiB })),
  }));
  const b = sides.find((s) => s.role === 'berth')?.stats;
  const p = sides.find((s) => s.role === 'peer')?.stats;
  return {
    id: r.c.id, date: new Date().toISOString(), dataset: r.c.dataset, what: r.c.what, goal: r.c.goal ?? null, basisBytes: r.c.basisBytes ?? null,
    error: r.error === undefined ? null : scrub(r.error, subst), ratio: b && p ? b.median / p.median : null, verdict: verdict(r.c.goal, b, p),
    loadavg: r.load.map((x) => +x.toFixed(2)), sides,
  };
}

/** Replaces the records of the cases just run and keeps the others, in the harness's case order. */
export function mergeCases(previous: readonly CaseRecord[], fresh: readonly CaseRecord[], order: readonly string[]): CaseRecord[] {
  const byId = new Map(previous.map((c) => [c.id, c]));
  for (const c of fresh) byId.set(c.id, c);
  const rank = (id: string): number => {
    const i = order.indexOf(id);
    return i < 0 ? order.length : i;
  };
  return [...byId.values()].sort((a, b) => rank(a.id) - rank(b.id));
}

const sec = (x: number): string => (x < 1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1));
const spread = (s: Stats): string => `${sec(s.min)}–${sec(s.max)}`;
const mib = (s: Stats): string => s.rssMiB.toFixed(0);
/** CPU seconds (user + sys medians): less disturbed than wall time when other work shares the cores. */
const cpu = (s: Stats | null): string => (s === null ? '–' : (s.userMedian + s.sysMedian).toFixed(2));
const loadText = (r: CaseRecord): string => r.loadavg.map((x) => x.toFixed(1)).join('→');
const sideOf = (r: CaseRecord, role: Role): SideRecord | undefined => r.sides.find((s) => s.role === role);

function goalText(goal: Goal | null, v: Verdict): string {
  if (goal === null) return '–';
  const g = 'seconds' in goal ? `< ${goal.seconds} s` : `≤ ${goal.ratio}×`;
  return `${g}: ${v === 'met' ? '**met**' : v === 'missed' ? '**missed**' : 'n/a'}`;
}

function pairRow(r: CaseRecord): string {
  const ps = sideOf(r, 'peer');
  const b = sideOf(r, 'berth')?.stats ?? null;
  const p = ps?.stats ?? null;
  if (r.error !== null && (b === null || p === null)) {
    return `| ${r.id} | ${ps?.tool ?? ''} | | failed: ${r.error.split('\n')[0]!.replace(/\|/g, '\\|').slice(0, 120)} | | | | | | | | | ${loadText(r)} |`;
  }
  const ratio = b && p ? (b.median / p.median).toFixed(2) : '–';
  const rssNote = b && b.rssMiB > RSS_GOAL_MIB ? ' (> 200)' : '';
  return `| ${r.id} | ${ps?.tool ?? '–'} | ${b?.runs ?? 0} | ${b ? sec(b.median) : '–'} | ${p ? sec(p.median) : '–'} | ${ratio} | ${b ? spread(b) : '–'} | ${p ? spread(p) : '–'} | ${cpu(b)} / ${cpu(p)} | `
    + `${b ? mib(b) + rssNote : '–'} | ${p ? mib(p) : '–'} | ${goalText(r.goal, r.verdict)} | ${loadText(r)} |`;
}

function limitRow(r: CaseRecord): string {
  const side = r.sides[0];
  const s = side?.stats ?? null;
  if (s === null) return `| ${r.dataset} | ${side?.tool ?? r.id} | 0 | failed | | | | ${loadText(r)} |`;
  const mbs = r.basisBytes ? (r.basisBytes / 1e6 / s.median).toFixed(0) : '–';
  return `| ${r.dataset} | ${side!.tool} | ${s.runs} | ${sec(s.median)} | ${spread(s)} | ${mbs} | ${mib(s)} | ${loadText(r)} |`;
}

export function markdown(cases: readonly CaseRecord[], skipped: readonly Skipped[], header: string): string {
  const pairs = cases.filter((r) => r.sides.some((s) => s.role === 'berth'));
  const limits = cases.filter((r) => r.sides.every((s) => s.role === 'limit'));
  const out = [header, ''];
  if (pairs.length > 0) {
    out.push('| case | peer | runs | berth median s | peer median s | berth/peer | berth min–max | peer min–max | CPU s berth / peer | berth RSS MiB | peer RSS MiB | goal | load |');
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
    for (const r of pairs) out.push(pairRow(r));
    out.push('');
  }
  if (limits.length > 0) {
    out.push('Physical limits (the machine alone; MB/s of uncompressed layer bytes):', '');
    out.push('| dataset | step | runs | median s | min–max | MB/s | RSS MiB | load |', '|---|---|---:|---:|---:|---:|---:|---|');
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
