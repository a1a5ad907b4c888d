/**
 * The shared part of the reliability tests (issue 11): a workspace on tmpfs, a generated source
 * image big enough to be interrupted (two images sharing two of three layers, many small files,
 * a whiteout and a few MiB of random data), berth run as a child process and killed with SIGKILL
 * after a random delay or once a watched directory has grown by a random number of bytes, and
 * the checks every interrupted write must pass afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../cli/main.js';
import { digestOf } from '../../src/core/digest.js';
import { compress } from '../../src/io/codec.js';
import { toBytes } from '../../src/io/stream.js';
import { writeTar, type TarWriteEntry } from '../../src/tar/writer.js';
import { repoRoot } from '../support/paths.js';

export const BERTH_BIN = path.join(repoRoot, 'bin/berth');
export const SAMPLE = path.join(repoRoot, 'examples/sample');

/** A temp dir on /dev/shm when it is writable (this disk is slow to create files after mass deletes), else os.tmpdir(). */
export async function workspace(prefix: string): Promise<string> {
  let base = os.tmpdir();
  try {
    accessSync('/dev/shm', constants.W_OK);
    base = '/dev/shm';
  } catch {
    // no tmpfs: the default temp dir
  }
  return mkdtemp(path.join(base, prefix));
}

export async function removeWorkspace(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

// ---------------------------------------------------------------------------------------------
// A deterministic PRNG (mulberry32), so a run is replayed by its seed.

export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  // Incompressible but reproducible: sha256 in counter mode.
  const out = new Uint8Array(n);
  let at = 0;
  for (let i = 0; at < n; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    out.set(block.subarray(0, Math.min(32, n - at)), at);
    at += 32;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The source images

export interface SourceImage {
  /** The OCI layout holding `rel/a:1` and `rel/b:1`. */
  readonly layout: string;
  /** Image IDs (config digests) by name. */
  readonly ids: Readonly<Record<'a' | 'b', string>>;
  /** Manifest digests by name. */
  readonly manifests: Readonly<Record<'a' | 'b', string>>;
}

async function layerBlob(entries: TarWriteEntry[]): Promise<{ gz: Uint8Array; diffId: string }> {
  const tar = await toBytes(writeTar(entries));
  const gz = await toBytes(compress((async function* () { yield tar; })(), 'gzip', { level: 1 }));
  return { gz, diffId: digestOf(tar) };
}

function dir(name: string): TarWriteEntry {
  return { header: { name: `${name}/`, type: 'directory', mode: 0o755, mtime: 1_700_000_000 } };
}

function file(name: string, body: Uint8Array): TarWriteEntry {
  return { header: { name, type: 'file', mode: 0o644, size: body.length, mtime: 1_700_000_000 }, body };
}

/**
 * Writes an OCI layout with two linux/amd64 images: `a` = base + middle + topA, `b` = base +
 * middle + topB. The base has `smallFiles` files of 1-3 KiB and 1 MiB of random data; the middle
 * deletes one base file (a whiteout) and adds more; each top adds `bigBytes` of random data.
 */
export async function makeSource(where: string, opts: { smallFiles?: number; bigBytes?: number } = {}): Promise<SourceImage> {
  const small = opts.smallFiles ?? 300;
  const big = opts.bigBytes ?? 2 * 1024 * 1024;
  const blobs = path.join(where, 'blobs/sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Uint8Array): Promise<{ digest: string; size: number }> => {
    const digest = digestOf(bytes);
    await writeFile(path.join(blobs, digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };
  const base: TarWriteEntry[] = [dir('etc'), file('etc/greeting', new TextEncoder().encode('hello\n')), dir('data'), dir('data/small')];
  for (let i = 0; i < small; i++) base.push(file(`data/small/f${String(i).padStart(4, '0')}.bin`, pseudoRandomBytes(1024 + (i * 37) % 2048, i)));
  base.push(file('data/base.bin', pseudoRandomBytes(1024 * 1024, 9000)));
  const middle: TarWriteEntry[] = [dir('data'), dir('data/small'), file('data/small/.wh.f0000.bin', new Uint8Array(0)), dir('data/more')];
  for (let i = 0; i < Math.floor(small / 3); i++) middle.push(file(`data/more/m${i}.txt`, pseudoRandomBytes(512 + i, 20_000 + i)));
  const top = (tag: string, seed: number): TarWriteEntry[] => [dir('app'), file(`app/${tag}.bin`, pseudoRandomBytes(big, seed)), file('app/name', new TextEncoder().encode(`${tag}\n`))];
  const layers = [await layerBlob(base), await layerBlob(middle), await layerBlob(top('a', 1)), await layerBlob(top('b', 2))];
  const layerDescs: Array<{ mediaType: string; digest: string; size: number }> = [];
  for (const l of layers) layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await put(l.gz)) });
  const ids: Record<string, string> = {};
  const manifests: Record<string, string> = {};
  const index: unknown[] = [];
  for (const [name, topIndex] of [['a', 2], ['b', 3]] as const) {
    const config = new TextEncoder().encode(JSON.stringify({
      architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z',
      config: { Cmd: ['/bin/sh'], Env: [`IMAGE=${name}`] },
      rootfs: { type: 'layers', diff_ids: [layers[0]!.diffId, layers[1]!.diffId, layers[topIndex]!.diffId] },
      history: [{ created_by: 'base' }, { created_by: 'middle' }, { created_by: `top ${name}` }],
    }));
    const cfg = await put(config);
    ids[name] = cfg.digest;
    const manifest = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
      layers: [layerDescs[0], layerDescs[1], layerDescs[topIndex]],
    }));
    const m = await put(manifest);
    manifests[name] = m.digest;
    index.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m,
      annotations: { 'io.containerd.image.name': `docker.io/rel/${name}:1`, 'org.opencontainers.image.ref.name': `rel/${name}:1` },
    });
  }
  await writeFile(path.join(where, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(where, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index }));
  return { layout: where, ids: ids as Record<'a' | 'b', string>, manifests: manifests as Record<'a' | 'b', string> };
}

// ---------------------------------------------------------------------------------------------
// Running berth

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `berth ARGV…` in this process (fast: no node start-up); env is empty, as test/support/cli.ts. */
export async function berth(...argv: string[]): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (chunks: Buffer[]) => new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
      cb();
    },
  });
  const code = await main(argv, { stdout: sink(out), stderr: sink(err), env: {} });
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

export interface ChildRun {
  readonly child: ChildProcess;
  readonly exit: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>;
  exited(): boolean;
}

/** Starts bin/berth as a child process (its own env: no BERTH_ROOT, no failpoint). */
export function spawnBerth(args: readonly string[]): ChildRun {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.BERTH_FAILPOINT;
  delete env.BERTH_ROOT;
  const child = spawn(process.execPath, [BERTH_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  let done = false;
  const exit = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => {
      done = true;
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, exit, exited: () => done };
}

/** Total bytes of regular files under `dir` (symlinks and directories count 0); 0 when missing. */
export async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(p);
    } catch {
      return;
    }
    for (const n of names) {
      const full = path.join(p, n);
      const st = await lstat(full).catch(() => undefined);
      if (st === undefined) continue;
      if (st.isDirectory()) await walk(full);
      else if (st.isFile()) total += st.size;
    }
  };
  const st = await lstat(dir).catch(() => undefined);
  if (st?.isFile()) return st.size;
  await walk(dir);
  return total;
}

export type KillPlan =
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'bytes'; readonly dir: string; readonly bytes: number };

export function describePlan(p: KillPlan): string {
  return p.kind === 'delay' ? `after ${p.ms} ms` : `once ${p.bytes} bytes more are under ${path.basename(p.dir)}`;
}

/**
 * Runs `args` and kills the process with SIGKILL as `plan` says. Returns whether the kill
 * landed (false: the command finished first) and the exit.
 */
export async function runAndKill(args: readonly string[], plan: KillPlan): Promise<{ killed: boolean; code: number | null; stderr: string }> {
  const start = plan.kind === 'bytes' ? await bytesUnder(plan.dir) : 0;
  const run = spawnBerth(args);
  if (plan.kind === 'delay') {
    const timer = setTimeout(() => run.child.kill('SIGKILL'), plan.ms);
    const r = await run.exit;
    clearTimeout(timer);
    return { killed: r.signal === 'SIGKILL', code: r.code, stderr: r.stderr };
  }
  while (!run.exited()) {
    if ((await bytesUnder(plan.dir)) - start >= plan.bytes) {
      run.child.kill('SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  const r = await run.exit;
  return { killed: r.signal === 'SIGKILL', code: r.code, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------------
// Checks

/** path → kind + content hash (links by target, nodes by rdev) under `dir`; {} when missing. */
export async function fingerprint(dirOrFile: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    const full = rel === '' ? dirOrFile : path.join(dirOrFile, rel);
    const st = await lstat(full);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out[rel || '.'] = `dir ${mode}`;
      for (const n of (await readdir(full)).sort()) await walk(rel ? `${rel}/${n}` : n);
    } else if (st.isSymbolicLink()) out[rel] = `link ${await readlink(full)}`;
    else if (st.isFile()) out[rel || '.'] = `file ${mode} ${createHash('sha256').update(await readFile(full)).digest('hex')}`;
    else out[rel] = `node ${mode} ${st.rdev}`;
  };
  if (existsSync(dirOrFile)) await walk('');
  return out;
}

/** Every path under `dir` whose name says it is a berth temp file or a stale lock. */
export async function tempLeftovers(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = await readdir(path.join(dir, rel)).catch(() => [] as string[]);
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      if (n.startsWith('.berth-tmp-') || n.startsWith('.berth.lock')) out.push(r);
      const st = await lstat(path.join(dir, r)).catch(() => undefined);
      if (st?.isDirectory() && !n.startsWith('.berth-tmp-')) await walk(r);
    }
  };
  await walk('');
  return out.sort();
}

interface FsckJson {
  images: number;
  layers: number;
  layersVerified: number;
  problems: Array<{ kind: string; subject: string; message: string }>;
}

/** repositories.json of a store root, parsed (the test fails on anything but valid JSON). */
export async function storeNames(root: string): Promise<Record<string, string>> {
  const file = path.join(root, 'image/overlay2/repositories.json');
  if (!existsSync(file)) return {};
  const text = await readFile(file, 'utf8');
  const doc = JSON.parse(text) as { Repositories?: Record<string, Record<string, string>> };
  const out: Record<string, string> = {};
  for (const refs of Object.values(doc.Repositories ?? {})) Object.assign(out, refs);
  return out;
}

/**
 * The store invariants after an interrupted write. Returns a list of violations (empty = fine):
 * - before gc: fsck finds nothing but orphans (no name points nowhere, no image misses a layer,
 *   every layer rebuilds to its diff_id): nothing is half visible;
 * - `names` (the names that must still resolve to the same image) are there;
 * - gc succeeds, then fsck is clean and no temp file or lock is left.
 */
export async function checkStore(root: string, opts: { keep?: Record<string, string>; allowed?: Record<string, string> } = {}): Promise<string[]> {
  const bad: string[] = [];
  if (!existsSync(path.join(root, 'image'))) return bad; // killed before the root was created
  let names: Record<string, string>;
  try {
    names = await storeNames(root);
  } catch (err) {
    return [`repositories.json is not valid JSON: ${(err as Error).message}`];
  }
  for (const [n, id] of Object.entries(opts.keep ?? {})) if (names[n] !== id) bad.push(`name ${n} lost or moved (${names[n] ?? 'absent'}, want ${id})`);
  if (opts.allowed !== undefined) {
    for (const [n, id] of Object.entries(names)) {
      if (opts.allowed[n] !== id && opts.keep?.[n] !== id) bad.push(`unexpected name ${n} → ${id}`);
    }
  }
  const pre = await berth('--root', root, 'store', 'fsck', '--format', 'json');
  const preJson = JSON.parse(pre.stdout) as FsckJson;
  for (const p of preJson.problems) if (p.kind !== 'orphan') bad.push(`before gc: ${p.kind}: ${p.message}`);
  const gc = await berth('--root', root, 'store', 'gc');
  if (gc.code !== 0) bad.push(`gc failed: ${gc.stderr.trim()}`);
  const post = await berth('--root', root, 'store', 'fsck', '--format', 'json');
  const postJson = JSON.parse(post.stdout) as FsckJson;
  for (const p of postJson.problems) bad.push(`after gc: ${p.kind}: ${p.message}`);
  if (post.code !== 0 && postJson.problems.length === 0) bad.push(`fsck exit ${post.code}: ${post.stderr.trim()}`);
  if (postJson.layersVerified !== postJson.layers) bad.push(`fsck rebuilt ${postJson.layersVerified} of ${postJson.layers} layers`);
  const temps = await tempLeftovers(root);
  if (temps.length > 0) bad.push(`after gc: temp files left: ${temps.join(', ')}`);
  return bad;
}

/**
 * An archive or layout destination after an interrupted write: exactly as before, or complete
 * (berth verify passes and it holds the expected images). `before` is its fingerprint before.
 */
export async function checkDestination(target: string, before: Record<string, string>, expect: { configs: string[]; transport: string }): Promise<{ state: 'untouched' | 'complete' | 'broken'; problems: string[] }> {
  const now = await fingerprint(target);
  if (JSON.stringify(now) === JSON.stringify(before)) return { state: 'untouched', problems: [] };
  const problems: string[] = [];
  const v = await berth('verify', '--quiet', `${expect.transport}:${target}`);
  if (v.code !== 0) problems.push(`changed but does not verify: ${(v.stdout + v.stderr).trim().split('\n').slice(0, 3).join(' | ')}`);
  const tree = await berth('tree', '--format', 'json', `${expect.transport}:${target}`);
  for (const c of expect.configs) if (!tree.stdout.includes(c)) problems.push(`changed but lacks image ${c.slice(0, 19)}`);
  return { state: problems.length === 0 ? 'complete' : 'broken', problems };
}
