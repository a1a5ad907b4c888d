/**
 * `image/<driver>/layerdb/sha256/<chainID hex>/`: one read-only layer (docs/formats.md 10.3).
 *
 *   diff               `sha256:<diffID>`         (trimmed when read, as dockerd does)
 *   size               decimal, no newline       (NOT trimmed: `14\n` makes dockerd drop the layer)
 *   cache-id           64 hex: the driver directory holding the layer's files
 *   parent             `sha256:<parent chainID>` (absent for a base layer)
 *   tar-split.json.gz  how to rebuild the exact layer tar from those files (section 11)
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { digestHex, isDigest, type Digest } from '../../core/digest.js';
import type { IoOptions } from '../../io/stream.js';
import { readTarSplit, type TarSplitRecord } from '../../tar/split.js';

export interface LayerEntry {
  readonly chainId: Digest;
  /** `layerdb/sha256/<hex>`, relative to the image dir. */
  readonly dir: string;
  readonly diffId?: Digest;
  /** `size` as an integer, when it is one (dockerd's strict parse). */
  readonly size?: number;
  /** `size` exactly as stored. */
  readonly sizeText?: string;
  readonly cacheId?: string;
  readonly parent?: Digest;
  readonly hasTarSplit: boolean;
  /** What dockerd would reject, one phrase each. Empty for a healthy layer. */
  readonly problems: readonly string[];
}

const CACHE_ID = /^[a-f0-9]{64}(-init)?$/;

export function layerDir(chainId: Digest): string {
  return `layerdb/sha256/${digestHex(chainId)}`;
}

export function tarSplitFile(chainId: Digest): string {
  return `${layerDir(chainId)}/tar-split.json.gz`;
}

/** Reads one layerdb entry; undefined when its directory does not exist. */
export async function readLayerEntry(imageDir: string, chainId: Digest): Promise<LayerEntry | undefined> {
  const rel = layerDir(chainId);
  const dir = path.join(imageDir, rel);
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined || !st.isDirectory()) return undefined;
  const read = (name: string) => readFile(path.join(dir, name), 'utf8').catch(() => undefined);
  const [diff, size, cacheId, parent, tarSplit] = await Promise.all([
    read('diff'), read('size'), read('cache-id'), read('parent'), stat(path.join(dir, 'tar-split.json.gz')).catch(() => undefined),
  ]);
  const problems: string[] = [];
  let diffId: Digest | undefined;
  if (diff === undefined) problems.push('no diff file');
  else if (!isDigest(diff.trim())) problems.push(`diff ${JSON.stringify(diff)} is not a digest`);
  else diffId = diff.trim() as Digest;
  let sizeValue: number | undefined;
  if (size === undefined) problems.push('no size file');
  else if (!/^\d+$/.test(size)) problems.push(`size ${JSON.stringify(size)} is not a plain integer`);
  else sizeValue = Number(size);
  let cid: string | undefined;
  if (cacheId === undefined) problems.push('no cache-id file');
  else if (!CACHE_ID.test(cacheId.trim())) problems.push(`cache-id ${JSON.stringify(cacheId)} is not 64 hex`);
  else cid = cacheId.trim();
  let parentId: Digest | undefined;
  if (parent !== undefined) {
    if (isDigest(parent.trim())) parentId = parent.trim() as Digest;
    else problems.push(`parent ${JSON.stringify(parent)} is not a digest`);
  }
  return {
    chainId, dir: rel,
    ...(diffId ? { diffId } : {}),
    ...(sizeValue !== undefined ? { size: sizeValue } : {}),
    ...(size !== undefined ? { sizeText: size } : {}),
    ...(cid ? { cacheId: cid } : {}),
    ...(parentId ? { parent: parentId } : {}),
    hasTarSplit: tarSplit?.isFile() === true,
    problems,
  };
}

/** The tar-split records of a layer, streamed from its `tar-split.json.gz`. */
export function readLayerTarSplit(imageDir: string, chainId: Digest, what: string, opts: IoOptions = {}): AsyncGenerator<TarSplitRecord> {
  const file = path.join(imageDir, tarSplitFile(chainId));
  return readTarSplit(createReadStream(file, { highWaterMark: 1 << 16 }), { ...opts, what });
}
