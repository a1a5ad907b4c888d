/**
 * Large test images for the registry tests and measurements, made with berth's tar writer:
 * layers of random bytes (one file each), written as a docker-archive (`docker save` layout,
 * uncompressed layers) or as an OCI layout with gzip layers. Nothing is held in memory whole.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { writeTar, type TarWriteEntry } from '../../src/tar/writer.js';

const CHUNK = 1 << 20;

/** `size` random bytes in 1 MiB chunks. */
async function* randomStream(size: number): AsyncGenerator<Uint8Array> {
  for (let left = size; left > 0; left -= CHUNK) yield randomBytes(Math.min(CHUNK, left));
}

/** Writes a layer tar holding one file of `size` random bytes; returns its sha256 and size. */
async function writeLayer(file: string, name: string, size: number): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  const entries: TarWriteEntry[] = [
    { header: { name: 'data/', type: 'directory', mtime: 0 } },
    { header: { name: `data/${name}`, type: 'file', size, mtime: 0 }, body: randomStream(size) },
  ];
  await pipeline(writeTar(entries), async function* (src: AsyncIterable<Uint8Array>) {
    for await (const chunk of src) {
      hash.update(chunk);
      yield chunk;
    }
  }, createWriteStream(file));
  return { digest: `sha256:${hash.digest('hex')}`, size: (await stat(file)).size };
}

function config(diffIds: readonly string[]): Uint8Array {
  return Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: '2026-01-01T00:00:00Z', created_by: `random layer ${i + 1}` })),
  }));
}

export interface BigImage {
  /** `docker-archive:FILE` or `oci:DIR:NAME`. */
  readonly reference: string;
  /** Blobs a push uploads: the config and every layer. */
  readonly blobs: number;
  readonly layerDigests: readonly string[];
  readonly bytes: number;
}

/**
 * A docker-archive (`repoTags` in manifest.json) whose layers are uncompressed tars of
 * `sizes[i]` random bytes each. Built in `dir` (which it creates); the archive is `dir/image.tar`.
 */
export async function makeRandomDockerArchive(dir: string, sizes: readonly number[], repoTag = 'random:1'): Promise<BigImage> {
  const parts = path.join(dir, 'parts');
  await mkdir(parts, { recursive: true });
  const layers: Array<{ digest: string; size: number; file: string }> = [];
  for (const [i, size] of sizes.entries()) {
    const file = path.join(parts, `layer${i}.tar`);
    layers.push({ ...(await writeLayer(file, `blob${i}.bin`, size)), file });
  }
  const cfg = config(layers.map((l) => l.digest));
  const cfgHex = createHash('sha256').update(cfg).digest('hex');
  const manifest = Buffer.from(JSON.stringify([{ Config: `${cfgHex}.json`, RepoTags: [repoTag], Layers: layers.map((l) => `${l.digest.slice(7)}/layer.tar`) }]));
  const entries: TarWriteEntry[] = [
    { header: { name: `${cfgHex}.json`, type: 'file', size: cfg.length, mtime: 0 }, body: cfg },
    ...layers.flatMap((l): TarWriteEntry[] => [
      { header: { name: `${l.digest.slice(7)}/`, type: 'directory', mtime: 0 } },
      { header: { name: `${l.digest.slice(7)}/layer.tar`, type: 'file', size: l.size, mtime: 0 }, body: fileStream(l.file) },
    ]),
    { header: { name: 'manifest.json', type: 'file', size: manifest.length, mtime: 0 }, body: manifest },
  ];
  const archive = path.join(dir, 'image.tar');
  await pipeline(writeTar(entries), createWriteStream(archive));
  await rm(parts, { recursive: true, force: true });
  return { reference: `docker-archive:${archive}`, blobs: layers.length + 1, layerDigests: layers.map((l) => l.digest), bytes: layers.reduce((n, l) => n + l.size, 0) + cfg.length };
}

async function* fileStream(file: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) yield chunk as Buffer;
}

/** An OCI layout at `dir` holding one image named `name`, layers gzip-compressed (level 1: random data does not shrink). */
export async function makeRandomOciLayout(dir: string, sizes: readonly number[], name = 'latest'): Promise<BigImage> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const layers: Array<{ digest: string; size: number; diffId: string }> = [];
  for (const [i, size] of sizes.entries()) {
    const tmp = path.join(dir, `layer${i}.tar`);
    const plain = await writeLayer(tmp, `blob${i}.bin`, size);
    const gz = path.join(dir, `layer${i}.tar.gz`);
    const hash = createHash('sha256');
    await pipeline(createReadStream(tmp), createGzip({ level: 1 }), async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) {
        hash.update(chunk);
        yield chunk;
      }
    }, createWriteStream(gz));
    const digest = `sha256:${hash.digest('hex')}`;
    const { rename } = await import('node:fs/promises');
    await rename(gz, path.join(blobs, digest.slice(7)));
    await rm(tmp);
    layers.push({ digest, size: (await stat(path.join(blobs, digest.slice(7)))).size, diffId: plain.digest });
  }
  const cfg = config(layers.map((l) => l.diffId));
  const cfgDigest = `sha256:${createHash('sha256').update(cfg).digest('hex')}`;
  await writeFile(path.join(blobs, cfgDigest.slice(7)), cfg);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: cfg.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  }));
  const mDigest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  await writeFile(path.join(blobs, mDigest.slice(7)), manifest);
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: mDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': name } }],
  }));
  return { reference: `oci:${dir}:${name}`, blobs: layers.length + 1, layerDigests: layers.map((l) => l.digest), bytes: layers.reduce((n, l) => n + l.size, 0) + cfg.length };
}
