/**
 * CPU and peak memory of a daemon that does the work for its client (`docker load`: the CLI only
 * streams the archive to dockerd). GNU time sees only the client, so the runner adds the daemon's
 * CPU over the run, the children it reaped included (dockerd's docker-untar re-execs), and takes
 * its VmHWM after resetting it (`clear_refs` 5) just before the run.
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { Sample } from './measure.js';

export interface Cpu {
  /** Seconds. */
  readonly user: number;
  readonly sys: number;
}

/**
 * utime + cutime and stime + cstime of a /proc/PID/stat line, in clock ticks. The command name
 * (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
 */
export function parseProcStat(text: string): { user: number; sys: number } {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error(`/proc stat: no ')' after the command name in ${JSON.stringify(text.slice(0, 80))}`);
  // After ')': field 3 (state) is index 0, so field N is index N - 3.
  const f = text.slice(close + 1).trim().split(/\s+/).map(Number);
  const [utime, stime, cutime, cstime] = [f[14 - 3], f[15 - 3], f[16 - 3], f[17 - 3]];
  if ([utime, stime, cutime, cstime].some((x) => x === undefined || !Number.isFinite(x))) {
    throw new Error(`/proc stat: fields 14-17 (utime..cstime) missing or not numbers in ${JSON.stringify(text.slice(0, 80))}`);
  }
  return { user: utime! + cutime!, sys: stime! + cstime! };
}

/** VmHWM of a /proc/PID/status text, KiB. */
export function parseVmHwm(text: string): number {
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(text);
  if (m === null) throw new Error('/proc status: no VmHWM line');
  return Number(m[1]);
}

let ticks: number | undefined;

function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticks;
}

export async function processCpu(pid: number): Promise<Cpu> {
  const t = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  const hz = clockTicks();
  return { user: t.user / hz, sys: t.sys / hz };
}

/** Resets the peak RSS the kernel reports, so VmHWM afterwards covers only the measured run. */
export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

export async function peakRssKiB(pid: number): Promise<number> {
  return parseVmHwm(await readFile(`/proc/${pid}/status`, 'utf8'));
}

/** The client's sample with the daemon's CPU over the run added and the larger of the two peaks. */
export function addDaemon(client: Sample, before: Cpu, after: Cpu, daemonPeakKiB: number): Sample {
  return {
    wall: client.wall,
    user: client.user + Math.max(0, after.user - before.user),
    sys: client.sys + Math.max(0, after.sys - before.sys),
    rssKiB: Math.max(client.rssKiB, daemonPeakKiB),
  };
}
