/**
 * Measurement (not a test): what opening an image's file tree costs the explorer's server.
 * Starts the explorer in this process, then times the requests the Layers view makes — the
 * first open (layers table and root listing, sent together), the same again (second open),
 * the last layer's changeset, a deep directory, a search and a file preview — as wall and CPU time (user+sys of this
 * process, zlib threads included), with the RSS after each step.
 * Usage: node dist/bench/ui-tree.js [REF] (default: the manyfiles OCI layout of the bench data)
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cpuUsage, memoryUsage } from 'node:process';
import { startExplorer } from '../ui/server.js';
import { API_HEADER } from '../ui/api.js';

// The bench harness's dataset cache (bench/README.md): $BERTH_BENCH_DATA, else <tmpdir>/berth-bench-data.
const data = process.env.BERTH_BENCH_DATA ?? path.join(tmpdir(), 'berth-bench-data');
const ref = process.argv[2] ?? `oci:${path.join(data, 'manyfiles.oci')}`;
const explorer = await startExplorer({ refs: [ref] });

async function get(route: string, q: Record<string, string>): Promise<number> {
  const res = await fetch(`${explorer.url}api/${route}?${new URLSearchParams({ ref, ...q }).toString()}`, { headers: { [API_HEADER]: '1' } });
  const body = await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${route} ${JSON.stringify(q)}: HTTP ${res.status}: ${Buffer.from(body).toString('utf8').slice(0, 300)}`);
  return body.byteLength;
}

async function step(name: string, fn: () => Promise<unknown>): Promise<void> {
  const c0 = cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = performance.now() - t0;
  const c = cpuUsage(c0);
  const rss = memoryUsage().rss / (1 << 20);
  console.log(`${name.padEnd(34)} wall ${(wall / 1000).toFixed(3)} s  cpu ${((c.user + c.system) / 1e6).toFixed(3)} s  rss ${rss.toFixed(0)} MiB`);
}

try {
  console.log(`explorer on ${ref}`);
  const open = (): Promise<unknown> => Promise.all([get('layers', {}), get('files', { path: '/' })]);
  await step('first open (layers + /)', open);
  await step('second open (layers + /)', open);
  const layers = JSON.parse(Buffer.from(await (await fetch(`${explorer.url}api/layers?${new URLSearchParams({ ref }).toString()}`, { headers: { [API_HEADER]: '1' } })).arrayBuffer()).toString('utf8')) as { layers: unknown[] };
  await step(`changes of layer ${layers.layers.length - 1}`, () => get('changes', { layer: String(layers.layers.length - 1) }));
  await step('deep directory /data/d07/d13', () => get('files', { path: '/data/d07/d13' }));
  await step('search "f123"', () => get('search', { q: 'f123' }));
  await step('preview /data/d00/d00/f000.txt', () => get('file', { path: '/data/d00/d00/f000.txt' }));
  globalThis.gc?.();
  await step('after gc (run with --expose-gc)', async () => {});
  console.log(`server stats: ${JSON.stringify(explorer.stats)}`);
} finally {
  await explorer.close();
}
