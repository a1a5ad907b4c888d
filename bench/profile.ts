/**
 * Summarises a V8 CPU profile (`node --cpu-prof bin/berth …`): self time per function and per
 * file, so the README can say where berth's time goes without opening DevTools.
 * Usage: node dist/bench/profile.js FILE.cpuprofile [TOP]
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Shortens file URLs to what identifies them: the part after dist/ or node_modules/, or node:… */
function where(url: string): string {
  if (url === '') return '(native)';
  const m = /(?:\/dist\/|\/node_modules\/)(.*)$/.exec(url);
  if (m !== null) return m[1]!;
  return url.startsWith('node:') ? url : path.basename(url);
}

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

function top(map: Map<string, number>, total: number, n: number): string[] {
  return [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
}

export function summarize(profile: CpuProfile, n = 15): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const f = byId.get(id)?.callFrame;
    if (f === undefined) return;
    total += us;
    const file = where(f.url);
    add(byFunction, `${f.functionName || '(anonymous)'}  ${file}:${f.lineNumber + 1}`, us);
    add(byFile, file, us);
  });
  return [
    `profile: ${((profile.endTime - profile.startTime) / 1e6).toFixed(2)} s wall, ${(total / 1e6).toFixed(2)} s sampled on the main thread`,
    'self time by function:', ...top(byFunction, total, n),
    'self time by file:', ...top(byFile, total, n),
  ].join('\n');
}

const [file, count] = process.argv.slice(2);
if (file !== undefined && process.argv[1]?.endsWith('profile.js') === true) {
  console.log(summarize(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, count === undefined ? 15 : Number(count)));
}
