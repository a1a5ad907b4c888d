/**
 * Helpers for the copy tests: temp dirs, fixture paths, directory fingerprints (to prove a
 * destination was left exactly as it was), running peer tools, and a generated OCI layout with
 * large random layers (for interruption and disk-full tests).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { digestOf } from '../../src/core/digest.js';
import { compress } from '../../src/io/codec.js';
import { toBytes } from '../../src/io/stream.js';
import { writeTar } from '../../src/tar/writer.js';
import { repoRoot } from './paths.js';

export { repoRoot };
export const MULTI_FIXTURE = path.resolve(repoRoot, '../shared/fixtures/real/docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar');
export const SAMPLE = path.join(repoRoot, 'examples', 'sample');
export const BERTH_BIN = path.join(repoRoot, 'bin', 'berth');

export async function tempDir(prefix = 'berth-copy-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** path → kind and sha256 of content (or link target) for everything under `dir`. */
export async function fingerprint(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(rel: string): Promise<void> {
    const full = path.join(dir, rel);
    const st = await lstat(full);
    if (st.isDirectory()) {
      out[rel || '.'] = `dir ${(st.mode & 0o7777).toString(8)}`;
      for (const name of (await readdir(full)).sort()) await walk(rel ? `${rel}/${name}` : name);
    } else if (st.isSymbolicLink()) {
      out[rel] = `link ${await readlink(full)}`;
    } else {
      out[rel] = `file ${createHash('sha256').update(await readFile(full)).digest('hex')}`;
    }
  }
  if (existsSync(dir)) await walk('');
  return out;
}

/** Entries of `dir` whose names berth uses for temp files. */
export async function tempLeftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('.berth-tmp-'));
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(file: string, args: readonly string[], opts: { input?: Buffer; env?: NodeJS.ProcessEnv; encoding?: 'buffer' } = {}): Promise<RunResult & { raw?: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, [...args], {
      maxBuffer: 256 * 1024 * 1024, env: opts.env ?? process.env, ...(opts.encoding === 'buffer' ? { encoding: 'buffer' as const } : {}),
    }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      if (err !== null && code === -1) {
        reject(err);
        return;
      }
      const raw = Buffer.isBuffer(stdout) ? stdout : undefined;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), ...(raw ? { raw } : {}) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function readJson(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
}

/**
 * Writes an OCI layout at `dir` with one linux/amd64 image whose layers are gzip tars holding one
 * file of `layerBytes` random bytes each (random data does not compress, so sizes are predictable).
 * Returns the manifest digest and the diff_ids.
 */
export async function makeLargeLayout(dir: string, opts: { layers: number; layerBytes: number; name: string }): Promise<{ manifest: string; diffIds: string[] }> {
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (bytes: Uint8Array): Promise<string> => {
    const d = digestOf(bytes);
    await writeFile(path.join(dir, 'blobs', 'sha256', d.slice(7)), bytes);
    return d;
  };
  const layers: Array<{ mediaType: string; digest: string; size: number }> = [];
  const diffIds: string[] = [];
  for (let i = 0; i < opts.layers; i++) {
    const data = randomBytes(opts.layerBytes);
    const tar = await toBytes(writeTar([{ header: { name: `data/blob-${i}.bin`, type: 'file', mode: 0o644 }, body: data }]));
    diffIds.push(digestOf(tar));
    const gz = await toBytes(compress((async function* () { yield tar; })(), 'gzip', { level: 1 }));
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await put(gz), size: gz.length });
  }
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map((_, i) => ({ created_by: `layer ${i}` })),
  }));
  const configDigest = await put(config);
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length }, layers,
  }));
  const manifestDigest = await put(manifest);
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': opts.name } }],
  }));
  return { manifest: manifestDigest, diffIds };
}
