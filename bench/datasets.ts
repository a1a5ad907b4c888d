/**
 * The benchmark inputs, built once into the cache directory and reused:
 *   <data>/<ds>.docker.tar, <data>/<ds>.oci/   ../shared/tools/make-bench-datasets.sh (dockerd)
 *   <data>/layers/<ds>/NN.tar|.tar.gz|.tar.zst  the layers cut out, for the physical-limit rows
 *   <data>/huge.docker.tar                      5 GiB sparse archive for the metadata cases
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureHugeArchive } from './huge.js';
import { run } from './measure.js';

export const DATASETS = ['debian', 'bigfile', 'manyfiles'] as const;
export type DatasetName = (typeof DATASETS)[number];

export interface Dataset {
  readonly name: DatasetName;
  readonly dockerArchive: string;
  readonly oci: string;
  /** Layer files cut out of the archive, in manifest order. */
  readonly tars: readonly string[];
  /** The OCI layout's gzip layer blobs (hard links), same order. */
  readonly gzips: readonly string[];
  readonly zstds: readonly string[];
  /** Every blob file of the OCI layout (manifest, config, layers). */
  readonly ociBlobs: readonly string[];
  /** Uncompressed layer bytes: the basis of the MB/s figures. */
  readonly tarBytes: number;
}

export interface Data {
  readonly dir: string;
  readonly datasets: readonly Dataset[];
  readonly huge: string;
}

type Log = (msg: string) => void;

function datasetScript(repoRoot: string): string {
  return process.env.BERTH_BENCH_MAKE_DATASETS ?? path.resolve(repoRoot, '..', 'shared', 'tools', 'make-bench-datasets.sh');
}

function complete(dir: string, name: string): boolean {
  return existsSync(path.join(dir, `${name}.docker.tar`)) && existsSync(path.join(dir, `${name}.oci`, 'index.json'));
}

/** Runs the dataset script only when something is missing (it takes ~7 minutes and needs root). */
async function ensureDockerDatasets(dir: string, names: readonly DatasetName[], repoRoot: string, log: Log): Promise<void> {
  if (names.every((n) => complete(dir, n))) return;
  const script = datasetScript(repoRoot);
  if (!existsSync(script)) throw new Error(`datasets missing in ${dir} and ${script} not found (set BERTH_BENCH_MAKE_DATASETS)`);
  if (process.getuid?.() !== 0) throw new Error(`datasets missing in ${dir}: building them needs root (${script} runs its own dockerd)`);
  log(`building datasets with ${script} (about 7 minutes; log in ${dir}/make-datasets.log)`);
  await mkdir(dir, { recursive: true });
  await run(['bash', '-c', `exec bash "$0" "$1" >"$1/make-datasets.log" 2>&1`, script, dir]);
}

function tarText(archive: string, member: string): string {
  return execFileSync('tar', ['-xOf', archive, member], { maxBuffer: 64 << 20 }).toString();
}

function ociBlob(oci: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return path.join(oci, 'blobs', alg!, hex!);
}

async function ociLayers(oci: string): Promise<string[]> {
  const index = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse(await readFile(ociBlob(oci, index.manifests[0]!.digest), 'utf8')) as { layers: Array<{ digest: string }> };
  return manifest.layers.map((l) => ociBlob(oci, l.digest));
}

function layerNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(i + 1).padStart(2, '0'));
}

/** Cuts the layers out of the docker archive and recompresses them with zstd, once. */
async function ensureLayers(dir: string, name: DatasetName, log: Log): Promise<void> {
  const out = path.join(dir, 'layers', name);
  if (existsSync(path.join(out, '.complete'))) return;
  log(`${name}: cutting layers into ${out} (tar, gzip links, zstd -3)`);
  const tmp = `${out}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const archive = path.join(dir, `${name}.docker.tar`);
  const members = (JSON.parse(tarText(archive, 'manifest.json')) as Array<{ Layers: string[] }>)[0]!.Layers;
  const gz = await ociLayers(path.join(dir, `${name}.oci`));
  const names = layerNames(members.length);
  for (const [i, n] of names.entries()) {
    await run(['bash', '-c', 'tar -xOf "$0" "$1" > "$2"', archive, members[i]!, path.join(tmp, `${n}.tar`)]);
    await link(gz[i]!, path.join(tmp, `${n}.tar.gz`));
    await run(['zstd', '-q', '-3', '-T0', path.join(tmp, `${n}.tar`), '-o', path.join(tmp, `${n}.tar.zst`)]);
  }
  await writeFile(path.join(tmp, '.complete'), '');
  await rm(out, { recursive: true, force: true });
  await rename(tmp, out);
}

async function describe(dir: string, name: DatasetName): Promise<Dataset> {
  const layers = path.join(dir, 'layers', name);
  const oci = path.join(dir, `${name}.oci`);
  const names = (await readdir(layers)).filter((f) => f.endsWith('.tar')).map((f) => f.slice(0, -4)).sort();
  const tars = names.map((n) => path.join(layers, `${n}.tar`));
  const sizes = await Promise.all(tars.map(async (t) => (await stat(t)).size));
  const blobDir = path.join(oci, 'blobs', 'sha256');
  const ociBlobs = (await readdir(blobDir)).sort().map((f) => path.join(blobDir, f));
  return {
    name, dockerArchive: path.join(dir, `${name}.docker.tar`), oci, tars,
    gzips: names.map((n) => path.join(layers, `${n}.tar.gz`)),
    zstds: names.map((n) => path.join(layers, `${n}.tar.zst`)),
    ociBlobs, tarBytes: sizes.reduce((a, b) => a + b, 0),
  };
}

export function datasetNames(wanted: readonly string[] | undefined): DatasetName[] {
  if (wanted === undefined) return [...DATASETS];
  const unknown = wanted.filter((w) => !(DATASETS as readonly string[]).includes(w));
  if (unknown.length > 0) throw new Error(`unknown dataset ${unknown.join(', ')} (have ${DATASETS.join(', ')})`);
  return DATASETS.filter((d) => wanted.includes(d));
}

export async function ensureData(dir: string, names: readonly DatasetName[], repoRoot: string, log: Log): Promise<Data> {
  await mkdir(dir, { recursive: true });
  await ensureDockerDatasets(dir, names, repoRoot, log);
  const datasets: Dataset[] = [];
  for (const name of names) {
    await ensureLayers(dir, name, log);
    datasets.push(await describe(dir, name));
  }
  const huge = path.join(dir, 'huge.docker.tar');
  await ensureHugeArchive(huge, log);
  return { dir, datasets, huge };
}
