/**
 * Runs the cases: page cache warmed once, then warm-up runs, then the timed runs with the sides
 * alternating (berth, peer, berth, peer, …) so drifting machine noise hits both alike.
 */
import os from 'node:os';
import type { Case, Side } from './cases.js';
import { measure, run, type Sample } from './measure.js';
import { addDaemon, peakRssKiB, processCpu, resetPeakRss } from './procstat.js';

export interface SideResult {
  readonly side: Side;
  readonly samples: Sample[];
}

export interface CaseResult {
  readonly c: Case;
  readonly sides: SideResult[];
  /** Set when a run failed: the case is reported without numbers. */
  readonly error?: string;
  /** 1-minute load average before and after: other work on the machine shows up here. */
  readonly load: readonly [number, number];
}

export interface RunPlan {
  readonly runs: number;
  readonly slowRuns: number;
  readonly warmup: number;
  readonly log: (msg: string) => void;
}

/** Reads the inputs so both sides start with them in the page cache (24 GiB holds every dataset). */
async function warmInputs(inputs: readonly string[]): Promise<void> {
  // xargs keeps the argument list under the kernel's limit (manyfiles' layout has few blobs, but be safe).
  if (inputs.length === 0) return;
  await run(['bash', '-c', 'printf "%s\\0" "$@" | xargs -0 cat > /dev/null', 'warm', ...inputs]);
}

async function once(side: Side): Promise<Sample> {
  await side.prepare?.();
  const pid = side.daemon?.();
  if (pid === undefined) return measure(side.cmd);
  await resetPeakRss(pid);
  const before = await processCpu(pid);
  const client = await measure(side.cmd);
  return addDaemon(client, before, await processCpu(pid), await peakRssKiB(pid));
}

function fmt(s: Sample): string {
  return `${s.wall.toFixed(3)}s ${Math.round(s.rssKiB / 1024)}MiB`;
}

export async function runCase(c: Case, plan: RunPlan): Promise<CaseResult> {
  const results: SideResult[] = c.sides.map((side) => ({ side, samples: [] }));
  const runs = c.slow === true ? Math.min(plan.slowRuns, plan.runs) : plan.runs;
  const before = os.loadavg()[0]!;
  const load = (): [number, number] => [before, os.loadavg()[0]!];
  try {
    await warmInputs(c.inputs);
    for (let i = 0; i < plan.warmup; i++) for (const side of c.sides) await once(side);
    for (let i = 0; i < runs; i++) {
      const line: string[] = [];
      for (const r of results) {
        const s = await once(r.side);
        r.samples.push(s);
        line.push(`${r.side.tool} ${fmt(s)}`);
      }
      plan.log(`  ${c.id} run ${i + 1}/${runs}: ${line.join(' | ')}`);
    }
    // The last output is left for inspection until the scratch directory is cleaned at exit.
    return { c, sides: results, load: load() };
  } catch (err) {
    const msg = (err as Error).message.split('\n').slice(0, 6).join('\n');
    plan.log(`  ${c.id} FAILED: ${msg}`);
    return { c, sides: results, error: msg, load: load() };
  } finally {
    // Daemons the case started (registry, dockerd) end with it; a failure here only gets logged.
    await c.teardown?.().catch((err: unknown) => plan.log(`  ${c.id} teardown: ${(err as Error).message}`));
  }
}
