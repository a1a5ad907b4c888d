/**
 * The 5 GiB docker-archive for the metadata cases: one layer holding a single 5 GiB file of
 * zeros, written with berth's own tar writer, laid out as `docker save` does (layer first,
 * config and manifest.json after it, so a reader has to get past 5 GiB to find them).
 * Zero chunks are skipped instead of written, so the file is sparse: it costs a few MiB of
 * disk and about 5 s of CPU (one sha256 pass for the layer's diff_id), not 5 GiB of writes.
 * All digests are real, so `berth verify` accepts it.
 */
import { createHash } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { writeTar, type TarWriteEntry } from '../src/tar/writer.js';

export const HUGE_LAYER_BYTES = 5 * 1024 ** 3;
export const HUGE_TAG = 'berth-bench/huge:latest';
const MTIME = 1700000000;
const CREATED = '2023-11-14T22:13:20Z';

/** One shared all-zero chunk: the sparse writer recognises it by identity, with no scan. */
const ZERO_CHUNK = new Uint8Array(4 * 1024 * 1024);

async function* zeros(n: number): AsyncGenerator<Uint8Array> {
  for (let left = n; left > 0; left -= ZERO_CHUNK.length) yield left >= ZERO_CHUNK.length ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, left);
}

/** The layer tar as a stream; called twice (digest pass, write pass) because it is cheaper than storing it. */
function layerTar(): AsyncIterable<Uint8Array> {
  const entries: TarWriteEntry[] = [
    { header: { name: 'data/', type: 'directory', mtime: MTIME } },
    { header: { name: 'data/zero.bin', type: 'file', size: HUGE_LAYER_BYTES, mtime: MTIME }, body: zeros(HUGE_LAYER_BYTES) },
  ];
  return writeTar(entries);
}

async function digestAndSize(src: AsyncIterable<Uint8Array>): Promise<{ hex: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of src) {
    h.update(chunk);
    size += chunk.length;
  }
  return { hex: h.digest('hex'), size };
}

function isZero(chunk: Uint8Array): boolean {
  if (chunk.buffer === ZERO_CHUNK.buffer) return true;
  // Padding and end-of-archive blocks are small fresh buffers: a scan is cheap.
  if (chunk.length > 64 * 1024) return false;
  for (const b of chunk) if (b !== 0) return false;
  return true;
}

/** Writes a byte stream to `file`, seeking over zero chunks so they become holes. */
async function writeSparse(file: string, src: AsyncIterable<Uint8Array>): Promise<number> {
  const fh = await open(file, 'w');
  let pos = 0;
  try {
    for await (const chunk of src) {
      if (!isZero(chunk)) await fh.write(chunk, 0, chunk.length, pos);
      pos += chunk.length;
    }
    await fh.truncate(pos);
  } finally {
    await fh.close();
  }
  return pos;
}

function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Builds `file` unless it is already there. */
export async function ensureHugeArchive(file: string, log: (msg: string) => void): Promise<void> {
  if ((await stat(file).catch(() => undefined))?.isFile() === true) return;
  log(`building the 5 GiB sparse docker-archive (${file})`);
  const layer = await digestAndSize(layerTar());
  const config = jsonBytes({
    architecture: 'amd64', os: 'linux', created: CREATED,
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layer.hex}`] },
    history: [{ created: CREATED, created_by: 'berth bench: 5 GiB of zeros in /data/zero.bin' }],
  });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  const layerName = `${layer.hex}/layer.tar`;
  const manifest = jsonBytes([{ Config: configName, RepoTags: [HUGE_TAG], Layers: [layerName] }]);
  const outer: TarWriteEntry[] = [
    { header: { name: `${layer.hex}/`, type: 'directory', mtime: MTIME } },
    { header: { name: layerName, type: 'file', size: layer.size, mtime: MTIME }, body: layerTar() },
    { header: { name: configName, type: 'file', mtime: MTIME }, body: config },
    { header: { name: 'manifest.json', type: 'file', mtime: MTIME }, body: manifest },
  ];
  const tmp = `${file}.tmp`;
  await rm(tmp, { force: true });
  await writeSparse(tmp, writeTar(outer));
  await rename(tmp, file);
}
