/**
 * Mounting a container of a data root, offline (issue 10):
 *
 * - overlay2, as root, where the kernel allows it: the overlay mount dockerd makes
 *   (`lowerdir=` the `lower` file's `l/<link>` entries, `upperdir=<mount-id>/diff`,
 *   `workdir=<mount-id>/work`, relative to overlay2/ as dockerd does when options get long,
 *   `index=off` when the kernel knows it); vfs, as root: a bind mount of the container's copy;
 * - otherwise (or when asked) a MATERIALISED COPY: the container's merged file system unpacked
 *   into the directory, and a snapshot of what was unpacked (inode, birth time and ctime of every
 *   path: a path whose inode or birth time changed was replaced, one whose ctime changed was
 *   changed; file systems without birth times can reuse an inode number, and then a replaced
 *   directory comes out as its old children whited out instead of opaque — the same view).
 *   At unmount the copy is compared with that snapshot and the differences are folded into the
 *   writable layer: overlay2 deletions of what lower layers show become 0/0 character devices,
 *   replaced directories get `trusted.overlay.opaque=y` (set with setfattr/python3 as the store
 *   code does), everything else is copied in; vfs gets the same changes applied to its full copy.
 *
 * The mount is recorded in `image/<driver>/layerdb/mounts/<id>/.berth-mount.json` (dockerd reads
 * only mount-id, init-id and parent there, and removes the directory with the container), so
 * commit and rm can refuse a mounted container and unmount knows what to undo.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readFile, readlink, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { BerthError, withContext } from '../../core/errors.js';
import { writeFileAtomic } from '../../io/atomic-file.js';
import { comparePaths, lookupTree, type FsNode } from '../../layer/generate.js';
import { compareNames } from '../../layer/union.js';
import { readXattrs } from './containers.js';
import type { DataRoot } from './data-root.js';
import { setXattrs, xattrTool, type XattrWrite } from './xattr.js';

const run = promisify(execFile);

export type MountKind = 'overlay' | 'bind' | 'copy';

export interface MountState {
  readonly kind: MountKind;
  /** Absolute path of the mount point (or the copy). */
  readonly dir: string;
  readonly since: string;
}

const STATE_FILE = '.berth-mount.json';
const SNAPSHOT_FILE = '.berth-mount-snapshot.json.gz';

function mountRecordDir(store: DataRoot, id: string): string {
  return path.join(store.imageDir, 'layerdb/mounts', id);
}

export async function readMountState(store: DataRoot, id: string): Promise<MountState | undefined> {
  const text = await readFile(path.join(mountRecordDir(store, id), STATE_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<MountState>;
    if ((v.kind === 'overlay' || v.kind === 'bind' || v.kind === 'copy') && typeof v.dir === 'string') return { kind: v.kind, dir: v.dir, since: String(v.since ?? '') };
  } catch {
    // fall through
  }
  throw new BerthError('BERTH_INVALID_LAYOUT', `${store.imageRel}/layerdb/mounts/${id}/${STATE_FILE} is not a mount record berth wrote; remove it if no mount is active`, { subject: id });
}

export async function writeMountState(store: DataRoot, id: string, state: MountState): Promise<void> {
  await writeFileAtomic(path.join(mountRecordDir(store, id), STATE_FILE), JSON.stringify(state), { mode: 0o600 });
}

export async function clearMountState(store: DataRoot, id: string): Promise<void> {
  for (const f of [STATE_FILE, SNAPSHOT_FILE]) await rm(path.join(mountRecordDir(store, id), f), { force: true });
}

/** /proc/self/mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Whether something is mounted exactly at `dir`. */
export async function isMountPoint(dir: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const want = path.resolve(dir);
  return text.split('\n').some((line) => {
    const f = line.split(' ');
    return f.length > 4 && unescapeMountinfo(f[4]!) === want;
  });
}

/** Checks that `dir` can be a mount point: an empty directory (created when missing). */
export async function prepareMountPoint(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (st === undefined) {
    await mkdir(dir, { recursive: true, mode: 0o755 }).catch((err: unknown) => {
      throw withContext(err, `creating mount point ${dir}`);
    });
    return;
  }
  if (!st.isDirectory()) throw new BerthError('BERTH_USAGE', `mount point ${dir} is not a directory`, { subject: dir });
  if (await isMountPoint(dir)) throw new BerthError('BERTH_USAGE', `mount point ${dir} is already a mount point`, { subject: dir });
  if ((await readdir(dir)).length > 0) throw new BerthError('BERTH_USAGE', `mount point ${dir} is not empty`, { subject: dir });
}

async function tool(cmd: string, args: readonly string[], cwd?: string): Promise<void> {
  try {
    await run(cmd, [...args], { ...(cwd !== undefined ? { cwd } : {}), timeout: 120_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string; code?: string | number };
    if (e.code === 'ENOENT') throw new BerthError('BERTH_UNSUPPORTED', `${cmd} is not installed`, {});
    const text = (e.stderr ?? '').trim().split('\n').pop() || e.message;
    throw new BerthError('BERTH_IO', `${cmd} ${args.join(' ')}: ${text}`, { subject: args[args.length - 1] ?? cmd });
  }
}

/**
 * The overlay mount of container layer `mountId` at `dir`, as dockerd's overlay2 Get() makes it.
 * Options name lowers relative to overlay2/ (the mount runs there), so 128 lowers still fit.
 */
export async function overlayMount(store: DataRoot, mountId: string, dir: string): Promise<void> {
  const base = path.join(store.root, 'overlay2');
  const lower = (await readFile(path.join(base, mountId, 'lower'), 'utf8').catch(() => '')).trim();
  if (lower === '') throw new BerthError('BERTH_NOT_FOUND', `overlay2/${mountId}/lower is missing`, { subject: mountId });
  await mkdir(path.join(base, mountId, 'work'), { recursive: true, mode: 0o700 });
  const indexOff = (await stat('/sys/module/overlay/parameters/index').then(() => true, () => false)) ? 'index=off,' : '';
  const options = `${indexOff}lowerdir=${lower},upperdir=${mountId}/diff,workdir=${mountId}/work`;
  await tool('mount', ['-t', 'overlay', 'overlay', '-o', options, dir], base);
}

export async function bindMount(source: string, dir: string): Promise<void> {
  await tool('mount', ['--bind', source, dir]);
}

export async function unmount(dir: string): Promise<void> {
  if (!(await isMountPoint(dir))) return;
  await tool('umount', [dir]);
}

// ---------------------------------------------------------------------------------------------
// The materialised copy: snapshot, changes, fold

interface SnapEntry {
  readonly ino: bigint;
  /** Birth time (statx btime; 0 where the file system has none): an inode number freed and reused by `rm -rf d; mkdir d` gets a new one. */
  readonly born: bigint;
  readonly ctimeNs: bigint;
  readonly dir: boolean;
}

/** Every path under `dir` ('' for dir itself) with its inode and ctime (lstat, nothing followed). */
export async function snapshotTree(dir: string): Promise<Map<string, SnapEntry>> {
  const out = new Map<string, SnapEntry>();
  const walk = async (rel: string): Promise<void> => {
    const full = rel === '' ? dir : path.join(dir, rel);
    const st = await lstat(full, { bigint: true });
    const isDir = st.isDirectory();
    out.set(rel, { ino: st.ino, born: st.birthtimeNs, ctimeNs: st.ctimeNs, dir: isDir });
    if (!isDir) return;
    for (const name of (await readdir(full)).sort(compareNames)) await walk(rel === '' ? name : `${rel}/${name}`);
  };
  await walk('');
  return out;
}

export async function saveSnapshot(store: DataRoot, id: string, snap: Map<string, SnapEntry>): Promise<void> {
  const lines: string[] = [];
  for (const [rel, e] of snap) lines.push(JSON.stringify([rel, e.ino.toString(), e.ctimeNs.toString(), e.dir ? 1 : 0, e.born.toString()]));
  await writeFileAtomic(path.join(mountRecordDir(store, id), SNAPSHOT_FILE), gzipSync(lines.join('\n')), { mode: 0o600 });
}

export async function loadSnapshot(store: DataRoot, id: string): Promise<Map<string, SnapEntry>> {
  const file = path.join(mountRecordDir(store, id), SNAPSHOT_FILE);
  const raw = await readFile(file).catch((err: unknown) => {
    throw withContext(err, `reading the snapshot of the copy (${store.imageRel}/layerdb/mounts/${id}/${SNAPSHOT_FILE})`);
  });
  const out = new Map<string, SnapEntry>();
  for (const line of gunzipSync(raw).toString('utf8').split('\n')) {
    if (line === '') continue;
    const [rel, ino, ctime, dir, born] = JSON.parse(line) as [string, string, string, number, string];
    out.set(rel, { ino: BigInt(ino), born: BigInt(born), ctimeNs: BigInt(ctime), dir: dir === 1 });
  }
  return out;
}

/** A change of the copy: A added, C changed (in place or a different entry), R directory replaced (rm -rf + mkdir), D deleted. */
export interface CopyChange {
  readonly rel: string;
  readonly kind: 'A' | 'C' | 'R' | 'D';
}

function parentRel(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** What changed in the copy since `before` (a snapshot), parents before children, deletions of a directory's children included only below surviving directories. */
export function copyChanges(before: ReadonlyMap<string, SnapEntry>, now: ReadonlyMap<string, SnapEntry>): CopyChange[] {
  const out: CopyChange[] = [];
  const fresh = new Set<string>(); // directories replaced or added: everything below is new
  for (const rel of [...now.keys()].sort(comparePaths)) {
    if (rel === '') continue;
    const c = now.get(rel)!;
    const s = before.get(rel);
    const parent = parentRel(rel);
    if (parent !== '' && fresh.has(parent)) {
      out.push({ rel, kind: 'A' });
      if (c.dir) fresh.add(rel);
      continue;
    }
    if (s === undefined) {
      out.push({ rel, kind: 'A' });
      if (c.dir) fresh.add(rel);
    } else if (s.ino !== c.ino || s.born !== c.born) {
      if (s.dir && c.dir) {
        out.push({ rel, kind: 'R' });
        fresh.add(rel);
      } else out.push({ rel, kind: 'C' });
    } else if (s.ctimeNs !== c.ctimeNs) out.push({ rel, kind: 'C' });
  }
  for (const rel of [...before.keys()].sort(comparePaths)) {
    if (rel === '' || now.has(rel)) continue;
    const parent = parentRel(rel);
    const p = now.get(parent);
    const ps = before.get(parent);
    if (p === undefined || ps === undefined || !p.dir || fresh.has(parent) || p.ino !== ps.ino || p.born !== ps.born) continue;
    out.push({ rel, kind: 'D' });
  }
  return out.sort((a, b) => comparePaths(a.rel, b.rel));
}

export interface FoldOptions {
  /** overlay2: the writable layer is an upper dir (whiteouts, opaque markers); vfs: a full copy. */
  readonly overlay: boolean;
  /** overlay2: what the layers below the writable layer show (image + init), merged. */
  readonly lowers?: FsNode;
  /** overlay2: the upper dir as it was before the fold (scanned with its opaque markers). */
  readonly upper?: FsNode;
}

export interface FoldResult {
  readonly added: number;
  readonly changed: number;
  readonly deleted: number;
  readonly whiteouts: number;
  readonly opaque: number;
}

interface Step {
  readonly change: CopyChange;
  /** overlay2: a D that needs a 0/0 device, an A/R directory that needs the opaque marker. */
  readonly marker: boolean;
}

/**
 * Folds the changes of the copy `copyDir` into the writable layer `target`. Planned first (so a
 * fold that cannot be done without root stops before writing), then applied parents first.
 */
export async function foldChanges(copyDir: string, target: string, changes: readonly CopyChange[], opts: FoldOptions): Promise<FoldResult> {
  const privileged = process.getuid?.() === 0;
  const hidden = new Set<string>(); // overlay2: paths below which lower layers are not visible
  if (opts.overlay && opts.upper !== undefined) {
    const visit = (n: FsNode, rel: string): void => {
      if (rel !== '' && (n.stat.kind !== 'directory' || n.opaque === true)) hidden.add(rel);
      for (const [name, c] of n.children ?? []) visit(c, rel === '' ? name : `${rel}/${name}`);
    };
    visit(opts.upper, '');
  }
  const lowerVisible = (rel: string, wantDir: boolean): boolean => {
    if (!opts.overlay || opts.lowers === undefined) return false;
    const n = lookupTree(opts.lowers, rel);
    if (n === undefined || (wantDir && n.stat.kind !== 'directory')) return false;
    let p = parentRel(rel);
    while (p !== '') {
      if (hidden.has(p)) return false;
      p = parentRel(p);
    }
    return true;
  };
  const steps: Step[] = [];
  for (const change of changes) {
    let marker = false;
    if (opts.overlay) {
      if (change.kind === 'D') marker = lowerVisible(change.rel, false);
      else if (change.kind === 'R' || change.kind === 'A') {
        const st = await lstat(path.join(copyDir, change.rel)).catch(() => undefined);
        marker = st?.isDirectory() === true && lowerVisible(change.rel, true);
      }
      if (change.kind === 'R' || (change.kind === 'A' && marker)) hidden.add(change.rel);
      else if (change.kind !== 'D') {
        const st = await lstat(path.join(copyDir, change.rel)).catch(() => undefined);
        if (st !== undefined && !st.isDirectory()) hidden.add(change.rel);
      }
    }
    steps.push({ change, marker });
  }
  const needsRoot = steps.some((s) => s.marker);
  if (needsRoot && !privileged) {
    throw new BerthError('BERTH_UNSUPPORTED', 'folding deletions and replaced directories into an overlay2 layer needs root (whiteouts are device nodes, opaque markers trusted.* xattrs)', {});
  }
  if (steps.some((s) => s.marker && s.change.kind !== 'D') && xattrTool() === undefined) {
    throw new BerthError('BERTH_UNSUPPORTED', 'marking replaced directories opaque needs setfattr (Debian package attr) or python3', {});
  }

  const result = { added: 0, changed: 0, deleted: 0, whiteouts: 0, opaque: 0 };
  const ensured = new Set<string>();
  const ensureParents = async (rel: string): Promise<void> => {
    const parts = rel.split('/').slice(0, -1);
    for (let i = 0; i < parts.length; i++) {
      const p = parts.slice(0, i + 1).join('/');
      if (ensured.has(p)) continue;
      const host = path.join(target, p);
      const st = await lstat(host).catch(() => undefined);
      if (st?.isDirectory() !== true) {
        if (st !== undefined) await rm(host, { recursive: true, force: true });
        // A copy-up: the directory as the copy has it.
        const src = await lstat(path.join(copyDir, p));
        await mkdir(host, src.mode & 0o7777);
        await chmod(host, src.mode & 0o7777);
        if (privileged) await lchown(host, src.uid, src.gid);
      }
      ensured.add(p);
    }
  };
  const written = new Map<string, string>(); // dev:ino in the copy → path written in target
  const dirTimes: Array<{ host: string; atime: Date; mtime: Date }> = [];
  const xattrs: XattrWrite[] = [];
  const capCandidates: string[] = [];
  for (const { change, marker } of steps) {
    const rel = change.rel;
    const host = path.join(target, rel);
    const src = path.join(copyDir, rel);
    await ensureParents(rel);
    if (change.kind === 'D') {
      await rm(host, { recursive: true, force: true });
      if (marker) {
        await tool('mknod', ['-m', '000', '--', host, 'c', '0', '0']);
        await lchown(host, 0, 0);
        result.whiteouts++;
      }
      result.deleted++;
      continue;
    }
    if (change.kind === 'A') result.added++;
    else result.changed++;
    const st = await lstat(src);
    const existing = await lstat(host).catch(() => undefined);
    if (st.isDirectory()) {
      if (change.kind === 'R' || existing?.isDirectory() !== true) {
        if (existing !== undefined) await rm(host, { recursive: true, force: true });
        await mkdir(host, st.mode & 0o7777);
      }
      await chmod(host, st.mode & 0o7777);
      if (privileged) await lchown(host, st.uid, st.gid);
      if (marker) {
        xattrs.push({ path: rel, name: 'trusted.overlay.opaque', value: new Uint8Array([0x79]) });
        result.opaque++;
      }
      dirTimes.push({ host, atime: st.atime, mtime: st.mtime });
      ensured.add(rel);
      continue;
    }
    if (existing !== undefined) await rm(host, { recursive: true, force: true });
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? written.get(key) : undefined;
    if (first !== undefined) {
      await link(first, host);
      continue;
    }
    if (st.isFile()) {
      await copyFile(src, host, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
      if (privileged) await lchown(host, st.uid, st.gid);
      await chmod(host, st.mode & 0o7777);
      await lutimes(host, st.atime, st.mtime);
      capCandidates.push(rel);
    } else if (st.isSymbolicLink()) {
      await symlink(await readlink(src), host);
      if (privileged) await lchown(host, st.uid, st.gid);
      await lutimes(host, st.atime, st.mtime);
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isFIFO()) await tool('mkfifo', ['-m', mode, '--', host]);
      else {
        const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn);
        const minor = Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & ~0xffn));
        await tool('mknod', ['-m', mode, '--', host, st.isCharacterDevice() ? 'c' : 'b', String(major), String(minor)]);
      }
      if (privileged) await lchown(host, st.uid, st.gid);
      await lutimes(host, st.atime, st.mtime);
    } else {
      continue; // sockets are not kept in layers
    }
    if (st.nlink > 1) written.set(key, host);
  }
  // File capabilities are the one xattr layers carry.
  if (capCandidates.length > 0 && privileged) {
    const caps = await readXattrs(capCandidates.map((r) => path.join(copyDir, r)));
    for (const r of capCandidates) {
      const v = caps.get(path.join(copyDir, r))?.['security.capability'];
      if (v !== undefined) xattrs.push({ path: r, name: 'security.capability', value: v });
    }
  }
  if (xattrs.length > 0) await setXattrs(target, xattrs);
  for (const d of dirTimes.reverse()) await lutimes(d.host, d.atime, d.mtime);
  return result;
}

/** Empties a directory (the copy, after its changes were folded), keeping the directory itself. */
export async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(path.join(dir, name), { recursive: true, force: true, maxRetries: 3 });
}
