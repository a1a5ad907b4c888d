/**
 * One timed run of a command: wall time from our own clock (GNU time's %e has only 10 ms
 * resolution, too coarse for the metadata commands), CPU times and peak RSS from GNU time.
 * For a shell pipeline GNU time reports the largest single process, as in bench-baseline.md.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const GNU_TIME = '/usr/bin/time';

/** A command: an argv run directly, or a bash script for pipelines and loops. */
export type Command = { readonly argv: readonly string[] } | { readonly shell: string };

export interface Sample {
  /** Wall seconds. */
  readonly wall: number;
  readonly user: number;
  readonly sys: number;
  /** Peak resident set size of the largest process, KiB. */
  readonly rssKiB: number;
}

export function commandArgv(cmd: Command): readonly string[] {
  return 'argv' in cmd ? cmd.argv : ['bash', '-c', `set -eo pipefail; ${cmd.shell}`];
}

export function commandText(cmd: Command): string {
  if ('shell' in cmd) return cmd.shell;
  return cmd.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

let timeDir: string | undefined;

async function timeFile(): Promise<string> {
  timeDir ??= await mkdtemp(path.join(os.tmpdir(), 'berth-bench-time-'));
  return path.join(timeDir, 'time.txt');
}

export async function cleanupMeasure(): Promise<void> {
  if (timeDir !== undefined) await rm(timeDir, { recursive: true, force: true });
  timeDir = undefined;
}

const running = new Set<number>();

/**
 * Stops the commands still running (on SIGINT/SIGTERM). Each runs in its own process group, so
 * the signal reaches the measured command behind GNU time too: an orphan left writing into the
 * scratch directory would break its cleanup and the next run.
 */
export function killRunning(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/** Runs a command to completion with stdout discarded; rejects with the tail of stderr on failure. */
export function run(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd, detached: true });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (pid !== undefined) running.delete(pid);
      if (code === 0) resolve();
      else reject(new Error(`${argv.join(' ')}: exit ${code ?? signal}\n${err.trim()}`));
    });
  });
}

/** Runs `cmd` once under GNU time and returns what it measured. */
export async function measure(cmd: Command, env?: NodeJS.ProcessEnv): Promise<Sample> {
  const out = await timeFile();
  const argv = [GNU_TIME, '-f', '%e %U %S %M', '-o', out, '--', ...commandArgv(cmd)];
  const start = process.hrtime.bigint();
  await run(argv, { env });
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  // GNU time may prepend "Command exited with non-zero status": the numbers are on the last line.
  const last = (await readFile(out, 'utf8')).trim().split('\n').pop() ?? '';
  const [, user, sys, rss] = last.split(' ').map(Number);
  if (user === undefined || sys === undefined || rss === undefined || Number.isNaN(rss)) throw new Error(`unexpected GNU time output: ${last}`);
  return { wall, user, sys, rssKiB: rss };
}
