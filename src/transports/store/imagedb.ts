/**
 * `image/<driver>/imagedb/`: image configs by ID and a little metadata (docs/formats.md 10.1).
 *
 *   imagedb/content/sha256/<id hex>               the config bytes; sha256 of the file = the image ID
 *   imagedb/metadata/sha256/<id hex>/parent       `sha256:<parent image id>` (commit/build/load only)
 *   imagedb/metadata/sha256/<id hex>/lastUpdated  RFC 3339 with nanoseconds
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { digestHex, digestOf, isDigest, type Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import { DEFAULT_LIMITS, limits } from '../../io/limits.js';

/** Image configs larger than this are refused (dockerd's are a few KiB). */
export const MAX_CONFIG_BYTES = DEFAULT_LIMITS.maxConfigBytes;

const HEX64 = /^[a-f0-9]{64}$/;

/** `imagedb/content/sha256/<hex>`, relative to the image dir. */
export function configFile(id: Digest): string {
  return `imagedb/content/sha256/${digestHex(id)}`;
}

/** Image IDs with a config file, sorted by hex (other file names, e.g. `*.tmp`, are ignored as dockerd ignores them). */
export async function listImageIds(imageDir: string): Promise<Digest[]> {
  const dir = path.join(imageDir, 'imagedb/content/sha256');
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw withContext(err, `listing ${dir}`);
  });
  return names.filter((n) => HEX64.test(n)).sort().map((n) => `sha256:${n}` as Digest);
}

/** The config bytes of image `id` and the digest they hash to (dockerd drops the image when that differs from `id`). */
export async function readConfig(imageDir: string, id: Digest): Promise<{ bytes: Uint8Array; digest: Digest }> {
  const file = path.join(imageDir, configFile(id));
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw withContext(err, `reading config of image ${id}`);
  }
  if (bytes.length > limits().maxConfigBytes) {
    throw new BerthError('BERTH_TOO_LARGE', `reading config of image ${id}: ${bytes.length} bytes is over the limit of ${limits().maxConfigBytes}`, {
      subject: id, want: limits().maxConfigBytes, got: bytes.length,
    });
  }
  const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { bytes: u8, digest: digestOf(u8) };
}

export interface ImageMetadata {
  /** `metadata/…/parent`, when present and a valid digest. */
  readonly parent?: Digest;
  /** `metadata/…/lastUpdated` as stored. */
  readonly lastUpdated?: string;
}

/** Reads imagedb/metadata for `id`; missing files are normal (pulled and loaded images have none). */
export async function readImageMetadata(imageDir: string, id: Digest): Promise<ImageMetadata> {
  const dir = path.join(imageDir, 'imagedb/metadata/sha256', digestHex(id));
  const read = (name: string) => readFile(path.join(dir, name), 'utf8').then((s) => s.trim(), () => undefined);
  const [parent, lastUpdated] = await Promise.all([read('parent'), read('lastUpdated')]);
  return { ...(parent !== undefined && isDigest(parent) ? { parent } : {}), ...(lastUpdated ? { lastUpdated } : {}) };
}
