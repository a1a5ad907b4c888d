/**
 * Micro benchmarks of berth's hot paths (tar read/write, codecs, union, flatten, extract) on
 * generated data in tmpfs. Every run of every case is a fresh child process; the table gives
 * min and median wall time, CPU time (user+sys, children included for tar-x and cli-unpack) and
 * peak RSS (VmHWM of the case's process; for tar-x and cli-unpack that is the driver, not the child).
 *
 *   node dist/bench/micro/micro.js [--dir /dev/shm/berth-micro] [--runs 3] [case ...]
 *
 * Cases (default: all but the `big-*` ones and `cli-unpack`):
 *   encode       encodeHeader() of 200k file headers
 *   write-empty  writeTar() of 200k empty files, bytes discarded
 *   write-many   writeTar() of the manyfiles entries with their bodies
 *   cat          many.tar read in 1 MiB chunks and discarded (the floor for read)
 *   read         readTar() over many.tar (1 MiB reads), bodies skipped
 *   read-body    the same, every body drained
 *   union        LayerUnion.addLayer(many.tar) (what `berth ls` / `berth layers` do)
 *   flatten      union + flattenUnion() of many.tar, output discarded (`berth export`)
 *   unpack       extractLayers([many.tar]) into a fresh dir on tmpfs (`berth unpack` without codec)
 *   tar-x        GNU tar -xf many.tar into a fresh dir on tmpfs (the limit)
 *   cli-unpack   `berth unpack oci:<layout>:latest` of a gzip OCI image of many.tar
 *   big-node     node: read big.tar.gz, createGunzip, sha256 of the output (the limit)
 *   big-read     decompress() + verifyStream(diff_id) + readTar() of big.tar.gz, body drained
 *   big-unpack   extractLayers of big.tar.gz (gunzip, diff_id, write 1 GiB) to tmpfs
 *
 * Data (made once, in --dir): many.tar (200,000 files of 0–511 bytes in 20×20 dirs, fixed seed,
 * like the manyfiles benchmark image), many.oci/ (its gzip OCI layout), big.tar.gz (one 1 GiB
 * file of log-like text, gzip -1, about 4:1).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import nodePath from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import type { Digest } from '../../src/core/digest.js';
import { decompress } from '../../src/io/codec.js';
import type { ByteStream } from '../../src/io/stream.js';
import { verifyStream } from '../../src/io/verify.js';
import { extractLayers } from '../../src/layer/extract.js';
import { flattenUnion } from '../../src/layer/flatten.js';
import { LayerUnion } from '../../src/layer/union.js';
import { encodeHeader } from '../../src/tar/header.js';
import { readTar } from '../../src/tar/reader.js';
import { writeTar, type TarWriteEntry } from '../../src/tar/writer.js';

const MANY_FILES = 200_000;
const BIG_BYTES = 1 << 30;
const CHUNK = 1 << 20;

interface Args {
  dir: string;
  runs: number;
  cases: string[];
  one?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { dir: '/dev/shm/berth-micro', runs: 3, cases: [] };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--dir') a.dir = argv[++i]!;
    else if (x === '--runs') a.runs = Number(argv[++i]);
    else if (x === '--one') a.one = argv[++i]!;
    else a.cases.push(x);
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Data

/** xorshift32, fixed seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** The manyfiles entries: 20 top dirs × 20 subdirs, 500 files each, 0–511 bytes. */
function* manyEntries(): Generator<TarWriteEntry> {
  const r = rng(42);
  const pool = new Uint8Array(1024);
  for (let i = 0; i < pool.length; i++) pool[i] = 0x61 + (r() % 26);
  let n = 0;
  for (let a = 0; a < 20; a++) {
    const da = `d${String(a).padStart(2, '0')}`;
    yield { header: { name: `${da}/`, type: 'directory', mtime: 1_700_000_000 } };
    for (let b = 0; b < 20; b++) {
      const db = `${da}/d${String(b).padStart(2, '0')}`;
      yield { header: { name: `${db}/`, type: 'directory', mtime: 1_700_000_000 } };
      for (let f = 0; f < MANY_FILES / 400; f++, n++) {
        const size = r() % 512;
        const off = r() % 512;
        yield { header: { name: `${db}/f${String(n).padStart(6, '0')}.txt`, type: 'file', size, mtime: 1_700_000_000 }, body: pool.subarray(off, off + size) };
      }
    }
  }
}

/** One 1 MiB block of log-like text (timestamps, levels, ids, words), different per seed. */
function logBlock(seed: number): Uint8Array {
  const r = rng(seed);
  const words = ['GET', 'POST', 'user', 'session', 'cache', 'miss', 'hit', 'request', 'served', 'in', 'ms', 'from', 'upstream', 'error', 'retry', 'ok'];
  const levels = ['INFO', 'WARN', 'DEBUG', 'ERROR'];
  let s = '';
  while (s.length < CHUNK) {
    let line = `2026-11-26T${String(r() % 24).padStart(2, '0')}:${String(r() % 60).padStart(2, '0')}:${String(r() % 60).padStart(2, '0')}.${String(r() % 1000).padStart(3, '0')}Z ${levels[r() % 4]} id=${(r() % 1_000_000).toString(16)}`;
    const n = 4 + (r() % 10);
    for (let i = 0; i < n; i++) line += ` ${words[r() % words.length]}`;
    s += `${line} ${r() % 10000}\n`;
  }
  return Buffer.from(s.slice(0, CHUNK));
}

async function* bigTarEntries(): AsyncGenerator<TarWriteEntry> {
  const blocks = Array.from({ length: 16 }, (_, i) => logBlock(i + 1));
  async function* body(): ByteStream {
    for (let i = 0; i < BIG_BYTES / CHUNK; i++) yield blocks[i % blocks.length]!;
  }
  yield { header: { name: 'data/', type: 'directory', mtime: 1_700_000_000 } };
  yield { header: { name: 'data/text.log', type: 'file', size: BIG_BYTES, mtime: 1_700_000_000 }, body: body() };
}

async function writeStreamTo(file: string, src: ByteStream): Promise<void> {
  const tmp = `${file}.tmp`;
  await pipeline(src, createWriteStream(tmp));
  await rename(tmp, file);
}

async function sha256File(file: string): Promise<Digest> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: CHUNK })) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}` as Digest;
}

function gzipFile(src: string, dst: string): void {
  const r = spawnSync('sh', ['-c', `pigz -1 -c "${src}" > "${dst}.tmp" && mv "${dst}.tmp" "${dst}"`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`pigz failed for ${src}`);
}

async function ensureData(dir: string, cases: readonly string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const many = nodePath.join(dir, 'many.tar');
  if (!existsSync(many)) {
    console.error(`making ${many}`);
    await writeStreamTo(many, writeTar(manyEntries()));
  }
  if (cases.includes('cli-unpack') && !existsSync(nodePath.join(dir, 'many.oci', 'index.json'))) {
    console.error('making many.oci');
    const gz = nodePath.join(dir, 'many.tar.gz');
    gzipFile(many, gz);
    await makeOciLayout(nodePath.join(dir, 'many.oci'), gz, await sha256File(many));
  }
  if (cases.some((c) => c.startsWith('big-'))) {
    const big = nodePath.join(dir, 'big.tar');
    const gz = nodePath.join(dir, 'big.tar.gz');
    if (!existsSync(gz)) {
      console.error(`making ${gz}`);
      await writeStreamTo(big, writeTar(bigTarEntries()));
      gzipFile(big, gz);
      await writeFile(`${gz}.diffid`, await sha256File(big));
      await rm(big);
    }
  }
}

async function makeOciLayout(out: string, gz: string, diffId: Digest): Promise<void> {
  await rm(out, { recursive: true, force: true });
  const blobs = nodePath.join(out, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Uint8Array): Promise<{ digest: string; size: number }> => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    await writeFile(nodePath.join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const layerDigest = await sha256File(gz);
  const layerSize = (await stat(gz)).size;
  await rename(gz, nodePath.join(blobs, layerDigest.slice(7)));
  const config = await put(Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] }, history: [{ created_by: 'bench/micro' }],
  })));
  const manifest = await put(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layerSize }],
  })));
  await writeFile(nodePath.join(out, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(nodePath.join(out, 'index.json'), JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
}

// ---------------------------------------------------------------------------------------------
// Cases (each runs once, in its own process)

function fileStream(file: string): ByteStream {
  return createReadStream(file, { highWaterMark: CHUNK });
}

async function drainCount(src: ByteStream): Promise<number> {
  let n = 0;
  for await (const c of src) n += c.length;
  return n;
}

/** A fresh output directory on tmpfs (never delete-then-create in place). */
async function freshDir(dir: string, what: string): Promise<string> {
  const out = nodePath.join(dir, 'out', `${what}-${process.pid}-${Date.now()}`);
  await mkdir(nodePath.dirname(out), { recursive: true });
  return out;
}

const CASES: Record<string, (dir: string) => Promise<string>> = {
  async encode() {
    let n = 0;
    for (let i = 0; i < MANY_FILES; i++) {
      n += encodeHeader({
        name: `d${i % 20}/d${i % 400}/f${String(i).padStart(6, '0')}.txt`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: i % 512, mtime: 1_700_000_000,
        linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: {}, pax: {},
      }).length;
    }
    return `${n} bytes`;
  },
  async 'write-empty'() {
    function* entries(): Generator<TarWriteEntry> {
      for (let i = 0; i < MANY_FILES; i++) yield { header: { name: `d${i % 20}/d${i % 400}/f${String(i).padStart(6, '0')}.txt`, type: 'file' } };
    }
    return `${await drainCount(writeTar(entries()))} bytes`;
  },
  async 'write-many'() {
    const h = createHash('sha256');
    let n = 0;
    for await (const c of writeTar(manyEntries())) {
      h.update(c);
      n += c.length;
    }
    return `${n} bytes, sha256 ${h.digest('hex').slice(0, 16)}`;
  },
  async cat(dir) {
    return `${await drainCount(fileStream(nodePath.join(dir, 'many.tar')))} bytes`;
  },
  async read(dir) {
    let n = 0;
    for await (const e of readTar(fileStream(nodePath.join(dir, 'many.tar')))) n += e.dataSize > 0 ? 1 : 0;
    return `${n} bodies skipped`;
  },
  async 'read-body'(dir) {
    let n = 0;
    for await (const e of readTar(fileStream(nodePath.join(dir, 'many.tar')))) for await (const c of e.body()) n += c.length;
    return `${n} body bytes`;
  },
  async union(dir) {
    const u = new LayerUnion();
    const s = await u.addLayer(fileStream(nodePath.join(dir, 'many.tar')));
    return `${s.entries} entries, ${u.count()} paths`;
  },
  async flatten(dir) {
    const file = nodePath.join(dir, 'many.tar');
    const u = new LayerUnion();
    await u.addLayer(fileStream(file));
    return `${await drainCount(flattenUnion(u, [async () => fileStream(file)]))} bytes out`;
  },
  async unpack(dir) {
    const out = await freshDir(dir, 'unpack');
    const r = await extractLayers([{ open: async () => fileStream(nodePath.join(dir, 'many.tar')) }], out);
    await trash(out);
    return `${r.entries} entries`;
  },
  async 'tar-x'(dir) {
    const out = await freshDir(dir, 'tarx');
    await mkdir(out);
    const r = spawnSync('tar', ['-xf', nodePath.join(dir, 'many.tar'), '-C', out]);
    if (r.status !== 0) throw new Error(`tar -x failed: ${String(r.stderr)}`);
    await trash(out);
    return 'ok';
  },
  async 'cli-unpack'(dir) {
    const out = await freshDir(dir, 'cli');
    const bin = nodePath.join(repoRoot(), 'bin', 'berth');
    const r = spawnSync(process.execPath, [bin, 'unpack', `oci:${nodePath.join(dir, 'many.oci')}:latest`, out], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`berth unpack failed: ${r.stderr}`);
    await trash(out);
    return r.stdout.trim().split('\n').pop() ?? '';
  },
  async 'big-node'(dir) {
    const h = createHash('sha256');
    let n = 0;
    await pipeline(createReadStream(nodePath.join(dir, 'big.tar.gz'), { highWaterMark: CHUNK }), createGunzip(), async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) {
        h.update(c);
        n += c.length;
      }
    });
    return `${n} bytes, ${h.digest('hex').slice(0, 12)}`;
  },
  async 'big-read'(dir) {
    const gz = nodePath.join(dir, 'big.tar.gz');
    const diffId = (await readFile(`${gz}.diffid`, 'utf8')).trim() as Digest;
    const tar = verifyStream(decompress(fileStream(gz), 'gzip'), { digest: diffId });
    let n = 0;
    for await (const e of readTar(tar)) for await (const c of e.body()) n += c.length;
    return `${n} body bytes`;
  },
  async 'big-unpack'(dir) {
    const gz = nodePath.join(dir, 'big.tar.gz');
    const diffId = (await readFile(`${gz}.diffid`, 'utf8')).trim() as Digest;
    const out = await freshDir(dir, 'big');
    const r = await extractLayers([{ open: async () => decompress(fileStream(gz), 'gzip'), diffId }], out);
    await trash(out);
    return `${r.bytes} bytes`;
  },
};

/** Removes an output tree after the clock stopped (the parent does it, see runOne). */
async function trash(out: string): Promise<void> {
  process.stdout.write(`TRASH ${out}\n`);
}

function repoRoot(): string {
  return nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

// ---------------------------------------------------------------------------------------------
// Driver

interface Sample { wall: number; cpu: number; rss: number; note: string }

async function runOne(name: string, dir: string): Promise<void> {
  const fn = CASES[name];
  if (fn === undefined) throw new Error(`unknown case ${name}`);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const note = await fn(dir);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(cpu0);
  // VmHWM, not getrusage's maxRSS: the latter keeps the parent's peak across fork+exec.
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
  // Child processes (tar, berth) count too.
  const children = name === 'tar-x' || name === 'cli-unpack' ? childCpu() : 0;
  process.stdout.write(`RESULT ${JSON.stringify({ wall, cpu: (c.user + c.system) / 1e6 + children, rss: hwm / 1024, note })}\n`);
}

function childCpu(): number {
  // /proc/self/stat fields 16 and 17: cutime and cstime in clock ticks.
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

function spawnCase(name: string, dir: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--dir', dir, '--one', name], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('close', async (code) => {
      for (const line of out.split('\n')) if (line.startsWith('TRASH ')) await rm(line.slice(6), { recursive: true, force: true });
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || line === undefined) reject(new Error(`${name}: exit ${code}\n${out}`));
      else resolve(JSON.parse(line.slice(7)) as Sample);
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.one !== undefined) return runOne(args.one, args.dir);
  const cases = args.cases.length > 0 ? args.cases : Object.keys(CASES).filter((c) => !c.startsWith('big-') && c !== 'cli-unpack');
  for (const c of cases) if (CASES[c] === undefined) throw new Error(`unknown case ${c} (known: ${Object.keys(CASES).join(', ')})`);
  await ensureData(args.dir, cases);
  console.log(`| case | runs | min s | median s | CPU s (median) | peak RSS MiB | note |`);
  console.log(`|---|---:|---:|---:|---:|---:|---|`);
  for (const c of cases) {
    const samples: Sample[] = [];
    for (let i = 0; i < args.runs; i++) samples.push(await spawnCase(c, args.dir));
    const walls = samples.map((s) => s.wall);
    console.log(`| ${c} | ${samples.length} | ${Math.min(...walls).toFixed(3)} | ${median(walls).toFixed(3)} | ${median(samples.map((s) => s.cpu)).toFixed(2)} | ${Math.max(...samples.map((s) => s.rss)).toFixed(0)} | ${samples[0]!.note} |`);
  }
}

await main();
