/**
 * Helpers for the explorer's tests: small OCI layouts built on the fly (with berth's own tar
 * writer), API calls with the explorer's header, and a headless Chromium that is required in CI
 * and optional elsewhere.
 */
import { accessSync, constants } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';
import { writeTar, type TarWriteEntry } from '../../src/tar/writer.js';
import { API_HEADER } from '../../ui/api.js';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function tarBytes(entries: Iterable<TarWriteEntry>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of writeTar(entries)) parts.push(chunk);
  return Buffer.concat(parts);
}

export interface LayerSpec {
  readonly entries: Iterable<TarWriteEntry>;
  readonly createdBy: string;
}

/**
 * Writes a one-image OCI layout (gzip layers, an image config with history) into `dir`; returns
 * its `oci:` reference.
 */
export async function writeImageLayout(dir: string, layers: readonly LayerSpec[], config: { env?: string[]; architecture?: string } = {}): Promise<string> {
  const blobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Uint8Array): Promise<{ digest: string; size: number }> => {
    const digest = sha256(bytes);
    await writeFile(path.join(blobs, digest.slice('sha256:'.length)), bytes);
    return { digest, size: bytes.length };
  };
  const layerDescs = [];
  const diffIds = [];
  for (const l of layers) {
    const tar = await tarBytes(l.entries);
    diffIds.push(sha256(tar));
    layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await put(gzipSync(tar, { level: 1 }))) });
  }
  const cfg = {
    created: '2024-06-01T12:00:00Z',
    architecture: config.architecture ?? 'amd64',
    os: 'linux',
    config: { Env: config.env ?? ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map((l) => ({ created: '2024-06-01T12:00:00Z', created_by: l.createdBy })),
  };
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(Buffer.from(JSON.stringify(cfg)))) };
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: layerDescs };
  const manifestDesc = {
    mediaType: manifest.mediaType, ...(await put(Buffer.from(JSON.stringify(manifest)))),
    annotations: { 'org.opencontainers.image.ref.name': 'latest' },
  };
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [manifestDesc] }));
  return `oci:${dir}`;
}

export function dirEntry(name: string): TarWriteEntry {
  return { header: { name, type: 'directory', mtime: 1717243200 } };
}

export function fileEntry(name: string, body: Uint8Array | string): TarWriteEntry {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return { header: { name, type: 'file', size: bytes.length, mtime: 1717243200 }, body: bytes };
}

/** A layer of `count` empty files under `many/` (the "200k files" image). */
export function* manyFiles(count: number): Iterable<TarWriteEntry> {
  yield dirEntry('many/');
  for (let i = 0; i < count; i++) yield { header: { name: `many/f${String(i).padStart(6, '0')}`, type: 'file', size: 0, mtime: 1717243200 }, body: new Uint8Array(0) };
}

/** GET an API route of a running explorer; returns the status, headers and parsed JSON (or bytes). */
export async function api(base: string, route: string, q: Record<string, string | number | undefined> = {}, headers: Record<string, string> = { [API_HEADER]: '1' }): Promise<{ status: number; headers: Headers; json: unknown; bytes: Buffer }> {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const res = await fetch(`${base.replace(/\/$/, '')}/api/${route}${p.size > 0 ? `?${p.toString()}` : ''}`, { headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: unknown;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) json = JSON.parse(bytes.toString('utf8'));
  return { status: res.status, headers: res.headers, json, bytes };
}

const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

export function chromiumPath(): string | undefined {
  return CHROMIUM_PATHS.find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * True when Debian's Chromium is installed. Missing, it fails the test in CI (CI=true: the peers
 * script installs it) and skips it elsewhere.
 */
export function needChromium(t: TestContext): boolean {
  if (chromiumPath() !== undefined) return true;
  if (process.env.CI === 'true') throw new Error('chromium is missing and CI requires it (run scripts/install-peers.sh)');
  const why = 'the browser (Debian chromium) is not installed: run scripts/install-peers.sh';
  t.diagnostic(why);
  t.skip(why);
  return false;
}

/** The flags for a headless Chromium that talks to nothing but the page it is given. */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];
