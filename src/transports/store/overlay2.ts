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
import { closeSync, constants, createReadStream, fstatSync, lstatSync, openSync, readlinkSync } from 'node:fs';
import { lstat, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, withContext } from '../../core/errors.js';
import type { ByteStream } from '../../io/stream.js';
import { resolveInRoot, type PathProbe, type ProbeResult } from '../../layer/safe-path.js';
import { assembleFileOf, type AssembleFile, type FdOpener } from '../../tar/assemble.js';
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
 * Opens the data of tar-split file records from the layer directory `dir`, as file descriptors.
 * A member's parent is resolved inside `dir` as the applier placed it there (and as dockerd's
 * chroot'd applier does): a symlink met on the way is followed as if `dir` were `/` (an absolute
 * target restarts at `dir`, `..` stops there), never out of it. So `evil/x` under `evil -> /`, or
 * `lib/x` under a vfs copy's `lib -> /usr/lib`, is read from the file the load wrote, not refused
 * and never read from the host. The member itself must not be a symlink (and the assembler
 * reads only a regular file). Synchronous once a directory is known: a layer is mostly many tiny files, and a thread-pool
 * round trip per call left the main thread idle.
 */
export function layerFdOpener(dir: string): FdOpener {
  // Raw (non-UTF-8) names are handled as latin1 strings, one character per byte.
  // rel is clean (no empty, `.` or `..` parts), so joining is concatenating.
  const hostOf = (rel: string, raw: boolean): string | Buffer => (raw ? joinPath(dir, Buffer.from(rel, 'latin1')) : `${dir}/${rel}`);
  // What lies at each path probed while resolving parents (the resolved parents are cached too).
  const probed = new Map<string, ProbeResult>();
  const probeOf = (raw: boolean): PathProbe => (rel: string): ProbeResult => {
    const key = raw ? `\0${rel}` : rel;
    let r = probed.get(key);
    if (r === undefined) {
      r = probe(hostOf(rel, raw), raw);
      probed.set(key, r);
    }
    return r;
  };
  /** The resolved directory each parent name stands for, null when there is none. */
  const parents = new Map<string, string | null>();
  const openIn = (file: AssembleFile, parent: string | null, name: string, raw: boolean): number => {
    if (parent === null) throw new BerthError('BERTH_NOT_FOUND', `missing from ${dir} (its directory is not there)`, { subject: file.name });
    return openRegular(hostOf(parent === '' ? name : `${parent}/${name}`, raw), dir, file.name);
  };
  return (file: AssembleFile): number | Promise<number> => {
    const rel = file.rel;
    if (rel === '') throw new BerthError('BERTH_INVALID_TAR', 'a member with data names the layer root', { subject: file.name });
    const raw = file.nameRaw !== undefined;
    const slash = rel.lastIndexOf('/');
    if (slash < 0) return openRegular(hostOf(rel, raw), dir, file.name);
    const parentName = rel.slice(0, slash);
    const name = rel.slice(slash + 1);
    const key = raw ? `\0${parentName}` : parentName;
    const known = parents.get(key);
    if (known !== undefined) return openIn(file, known, name, raw);
    return resolveInRoot(parentName, probeOf(raw), { followFinal: true }).then((r) => {
      const parent = r.missingParent || r.last.kind !== 'directory' ? null : r.path;
      parents.set(key, parent);
      return openIn(file, parent, name, raw);
    });
  };
}

function probe(p: string | Buffer, raw: boolean): ProbeResult {
  try {
    const s = lstatSync(p);
    if (s.isSymbolicLink()) return { kind: 'symlink', target: raw ? readlinkSync(p, { encoding: 'buffer' }).toString('latin1') : readlinkSync(p, 'utf8') };
    return s.isDirectory() ? { kind: 'directory' } : { kind: 'other' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'absent' };
    throw err;
  }
}

/**
 * Opens `full` for reading, never through a symlink; O_NONBLOCK so a FIFO in its place does not
 * block (the assembler then refuses anything but a regular file).
 */
function openRegular(full: string | Buffer, dir: string, name: string): number {
  try {
    return openSync(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new BerthError('BERTH_UNSAFE_PATH', 'is a symlink in the layer directory, not the file the layer recorded', { subject: name });
    if (code === 'ENOENT') throw new BerthError('BERTH_NOT_FOUND', `missing from ${dir}`, { subject: name, cause: err });
    throw withContext(err, 'opening');
  }
}

/** layerFdOpener as a split.ts TarSplitFileOpener (a stream of a regular file; for assembleTar over records). */
export function layerFileOpener(dir: string): TarSplitFileOpener {
  const open = layerFdOpener(dir);
  return async (file: TarSplitFile): Promise<ByteStream> => {
    const fd = await open(assembleFileOf(file));
    let regular = false;
    try {
      regular = fstatSync(fd).isFile();
    } finally {
      if (!regular) closeSync(fd);
    }
    if (!regular) throw new BerthError('BERTH_INVALID_LAYER', 'is not a regular file in the layer directory', { subject: file.name });
    return createReadStream('', { fd, highWaterMark: 1 << 20 });
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
