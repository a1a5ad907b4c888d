/**
 * Command-line options of `npm run bench`. Kept dependency-free (no commander) so the harness
 * never depends on the CLI it measures.
 */
import os from 'node:os';
import path from 'node:path';

export interface BenchOptions {
  /** Cases whose id matches this regex (or one of the comma-separated parts) run; all when undefined. */
  readonly only: RegExp | undefined;
  /** Timed runs per side (after the warm-up). */
  readonly runs: number;
  readonly warmup: number;
  /** Cap on runs for the slow cases (bigfile/manyfiles copies and unpacks), so a full run stays under half an hour. */
  readonly slowRuns: number;
  /** Dataset cache: the docker archives, OCI layouts, cut layers and the 5 GiB archive. */
  readonly data: string;
  /** Where outputs go: tmpfs by default, so repeated unpacks do not measure ext4's inode reuse delay. */
  readonly scratch: string;
  /** Only list the cases (and why some are skipped), run nothing. */
  readonly list: boolean;
  /** Print the tables of the results file, run nothing. */
  readonly render: boolean;
  /** Skip the physical-limit rows. */
  readonly noLimits: boolean;
  /** Datasets to use (all by default); a missing one triggers the dataset script, which builds all. */
  readonly datasets: readonly string[] | undefined;
  /** Results file (JSON). */
  readonly out: string;
}

const USAGE = `usage: npm run bench -- [--only REGEX[,REGEX…]] [--runs N] [--warmup N] [--slow-runs N]
                           [--datasets debian,bigfile,manyfiles] [--data DIR] [--scratch DIR]
                           [--no-limits] [--list] [--render] [--out FILE]

  --only       run the cases whose id matches (ids look like verify-oci/debian, limit/debian/tar-x)
  --runs       timed runs per side, berth and peer alternating (default 5)
  --warmup     untimed runs per side before that (default 1)
  --slow-runs  runs for the cases marked slow (default: same as --runs)
  --datasets   only these datasets (the 5 GiB metadata archive is always built)
  --data       dataset cache (default $BERTH_BENCH_DATA or <tmpdir>/berth-bench-data)
  --scratch    output directory (default /dev/shm/berth-bench-scratch, else <data>/scratch)
  --no-limits  skip the physical-limit rows
  --list       print the cases and exit
  --render     print the tables of the results file and exit
               (with --only, a run updates its cases in the results file and keeps the others)
  --out        results JSON (default bench/results/latest.json)`;

function defaultScratch(data: string): string {
  return process.platform === 'linux' ? '/dev/shm/berth-bench-scratch' : path.join(data, 'scratch');
}

function positiveInt(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < min) throw new Error(`${name}: want an integer >= ${min}, got ${value ?? 'nothing'}\n${USAGE}`);
  return n;
}

/** Turns "a,b" into /a|b/; a bare case id matches as a substring, which is what people type. */
function onlyRegex(spec: string): RegExp {
  return new RegExp(spec.split(',').map((p) => `(?:${p})`).join('|'));
}

export function parseOptions(argv: readonly string[], repoRoot: string): BenchOptions {
  const env = process.env.BERTH_BENCH_DATA;
  let data = env !== undefined && env !== '' ? env : path.join(os.tmpdir(), 'berth-bench-data');
  let scratch: string | undefined;
  let only: RegExp | undefined;
  let runs = 5;
  let warmup = 1;
  let slowRuns: number | undefined;
  let datasets: string[] | undefined;
  let list = false;
  let render = false;
  let noLimits = false;
  let out = path.join(repoRoot, 'bench', 'results', 'latest.json');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--only': only = onlyRegex(value()); break;
      case '--runs': runs = positiveInt(flag, value(), 1); break;
      case '--warmup': warmup = positiveInt(flag, value(), 0); break;
      case '--slow-runs': slowRuns = positiveInt(flag, value(), 1); break;
      case '--datasets': datasets = value().split(',').filter((d) => d !== ''); break;
      case '--data': data = value(); break;
      case '--scratch': scratch = value(); break;
      case '--out': out = value(); break;
      case '--list': list = true; break;
      case '--render': render = true; break;
      case '--no-limits': noLimits = true; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  data = path.resolve(data);
  return {
    only, runs, warmup, slowRuns: slowRuns ?? runs, datasets, data, scratch: path.resolve(scratch ?? defaultScratch(data)), list, render, noLimits, out: path.resolve(out),
  };
}
