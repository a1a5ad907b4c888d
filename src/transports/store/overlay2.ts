/**
 * The graph-driver side of a data root: where a layer's files lie and what they look like on
 * disk (docs/formats.md 10.5, 10.6).
 *
 *   overlay2/<cache-id>/diff/   the layer's own files (upper dir): deletions are char devices
 *                               0/0, replaced directories carry xattr trusted.overlay.opaque=y
 *   overlay2/<cache-id>/link    26-char id of the symlink overlay2/l/<link> → ../<cache-id>/diff
 *   overlay2/<cache-id>/lower   `l/<link>:l/<link>…`, nearest parent first
 *   vfs/dir/<cache-id>/         a complete copy of the file system at that layer
 *
 * Reads only: nothing here mounts, locks or writes.
 */
import { constants } from 'node:fs';
import { lstat, open, readFile, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, withContext } from '../../core/errors.js';
import type { ByteStream } from '../../io/stream.js';
import { cleanPath, type TarSplitFile, type TarSplitFileOpener } from '../../tar/split.js';

export type StoreDriver = 'overlay2' | 'vfs';

/** The graph drivers berth reads, in the order it looks for them. */
export const STORE_DRIVERS: readonly StoreDriver[] = ['overlay2', 'vfs'];

/** Drivers dockerd has had that berth does not read (named in errors). */
export const OTHER_DRIVERS = ['overlay', 'aufs', 'btrfs', 'zfs', 'devicemapper', 'fuse-overlayfs', 'windowsfilter'] as const;

/** The directory holding layer `cacheId`'s files, relative to the data root. */
export function filesDir(driver: StoreDriver, cacheId: string): string {
  return driver === 'overlay2' ? `overlay2/${cacheId}/diff` : `vfs/dir/${cacheId}`;
}

/** Where the driver keeps its layers, relative to the data root. */
export function driverDir(driver: StoreDriver): string {
  return driver === 'overlay2' ? 'overlay2' : 'vfs/dir';
}

export interface OverlayInfo {
  /** `link`: the short name under overlay2/l/. */
  readonly link?: string;
  /** `lower`, split: `l/<link>` entries, nearest parent first. */
  readonly lower: readonly string[];
  /** `committed` exists (a child layer was created on top). */
  readonly committed: boolean;
  /** Where overlay2/l/<link> points, when the symlink exists. */
  readonly linkTarget?: string;
}

/** The overlay2 bookkeeping files of one layer directory. */
export async function readOverlayInfo(root: string, cacheId: string): Promise<OverlayInfo> {
  const dir = path.join(root, 'overlay2', cacheId);
  const read = (name: string) => readFile(path.join(dir, name), 'utf8').then((s) => s.trim(), () => undefined);
  const [link, lower, committed] = await Promise.all([read('link'), read('lower'), stat(path.join(dir, 'committed')).then(() => true, () => false)]);
  const linkTarget = link === undefined ? undefined : await readlink(path.join(root, 'overlay2', 'l', link)).catch(() => undefined);
  return {
    ...(link !== undefined ? { link } : {}),
    lower: lower === undefined || lower === '' ? [] : lower.split(':'),
    committed,
    ...(linkTarget !== undefined ? { linkTarget } : {}),
  };
}

/**
 * The relative path a tar member name designates inside a layer directory, confined to it: `./a`,
 * `/a`, `a/` all give `a`, `..` cannot climb out (resolved against a virtual root). Raw names
 * (not UTF-8) are returned as bytes. Undefined for the root itself.
 */
export function memberPath(name: string, nameRaw?: Uint8Array): string | Buffer | undefined {
  const text = nameRaw === undefined ? name : Buffer.from(nameRaw).toString('latin1');
  const rel = cleanPath(`/${text}`).slice(1);
  if (rel === '') return undefined;
  return nameRaw === undefined ? rel : Buffer.from(rel, 'latin1');
}

function joinPath(base: string, rel: string | Buffer): string | Buffer {
  return typeof rel === 'string' ? path.join(base, rel) : Buffer.concat([Buffer.from(`${base}/`), rel]);
}

/**
 * Opens the data of tar-split file records from the layer directory `dir`: the member must be a
 * regular file inside `dir` (no symlinked parent leading out, no symlink as the file itself).
 */
export function layerFileOpener(dir: string): TarSplitFileOpener {
  let realBase: Promise<string> | undefined;
  const checkedParents = new Map<string, Promise<void>>();
  const confine = (parentRel: string | Buffer): Promise<void> => {
    const key = typeof parentRel === 'string' ? parentRel : `\0${parentRel.toString('latin1')}`;
    let p = checkedParents.get(key);
    if (p === undefined) {
      realBase ??= realpath(dir);
      p = (async () => {
        const base = await realBase!;
        const real = await realpath(joinPath(dir, parentRel));
        if (real !== base && !real.startsWith(`${base}/`)) {
          throw new BerthError('BERTH_UNSAFE_PATH', `${String(parentRel)} leads outside the layer directory (to ${real})`, { subject: String(parentRel) });
        }
      })();
      checkedParents.set(key, p);
    }
    return p;
  };
  return async (file: TarSplitFile): Promise<ByteStream> => {
    const rel = memberPath(file.name, file.nameRaw);
    if (rel === undefined) throw new BerthError('BERTH_INVALID_TAR', 'a member with data names the layer root', { subject: file.name });
    const parent = typeof rel === 'string' ? path.dirname(rel) : Buffer.from(path.dirname(rel.toString('latin1')), 'latin1');
    if (String(parent) !== '.') await confine(parent);
    const full = joinPath(dir, rel);
    let fh;
    try {
      fh = await open(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new BerthError('BERTH_UNSAFE_PATH', 'is a symlink in the layer directory, not the file the layer recorded', { subject: file.name });
      if (code === 'ENOENT') throw new BerthError('BERTH_NOT_FOUND', `missing from ${dir}`, { subject: file.name, cause: err });
      throw withContext(err, 'opening');
    }
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw new BerthError('BERTH_INVALID_LAYER', 'is not a regular file in the layer directory', { subject: file.name });
    }
    return fh.createReadStream({ highWaterMark: 1 << 20 });
  };
}

export type OnDiskKind = 'file' | 'directory' | 'symlink' | 'whiteout' | 'char' | 'block' | 'fifo' | 'socket' | 'absent';

export interface OnDisk {
  readonly kind: OnDiskKind;
  readonly mode?: number;
  readonly size?: number;
  readonly nlink?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Symlink target. */
  readonly target?: string;
}

/** What lies at `file` (lstat, never following a symlink); a char device 0/0 is an overlay whiteout. */
export async function inspectOnDisk(file: string): Promise<OnDisk> {
  const st = await lstat(file).catch(() => undefined);
  if (st === undefined) return { kind: 'absent' };
  const base = { mode: st.mode & 0o7777, size: st.size, nlink: st.nlink, uid: st.uid, gid: st.gid };
  if (st.isSymbolicLink()) return { kind: 'symlink', ...base, target: await readlink(file).catch(() => '?') };
  if (st.isDirectory()) return { kind: 'directory', ...base };
  if (st.isFile()) return { kind: 'file', ...base };
  if (st.isCharacterDevice()) return { kind: st.rdev === 0 ? 'whiteout' : 'char', ...base };
  if (st.isBlockDevice()) return { kind: 'block', ...base };
  if (st.isFIFO()) return { kind: 'fifo', ...base };
  return { kind: 'socket', ...base };
}
