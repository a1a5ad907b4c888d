/**
 * Layers made from directories on disk, deterministically (formats.md 8.1–8.4): a directory as a
 * layer (every entry added), or the difference between two trees as a layer (additions,
 * changes, and `.wh.` whiteouts for deletions). Also the tree model the container commands
 * share: a directory scanned with lstat into FsNodes, overlay-style merging of several scanned
 * layer directories (char 0/0 whiteouts, opaque and redirected directories), dockerd's naive
 * change detection between two trees (pkg/archive ChangesDirs) and its overlay variant
 * (OverlayChanges), and the tar entries of a tree or of a change list.
 *
 * Order and bytes are fixed: entries come depth-first, names sorted bytewise inside each
 * directory, a directory before its children; hard links (same device and inode) are one regular
 * file followed by type-1 entries; the tar bytes are Go-writer bytes (tar/writer.ts). Node
 * cannot read extended attributes: callers that know them (containers.ts asks a child process)
 * put them on the nodes; otherwise none are written.
 */
import { createReadStream, constants, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, withContext } from '../core/errors.js';
import type { ByteStream, IoOptions } from '../io/stream.js';
import { writeTar, type TarWriteEntry } from '../tar/writer.js';
import { compareNames, type NodeType } from './union.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './whiteout.js';

export type FsKind = NodeType | 'whiteout' | 'socket';

/** What lstat says about one path, as far as layers care. */
export interface FsStat {
  readonly kind: FsKind;
  /** Permission and setuid/setgid/sticky bits. */
  readonly mode: number;
  /** st_mode with the file-type bits (what Go's StatT.Mode() compares). */
  readonly rawMode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** mtime in nanoseconds since the epoch. */
  readonly mtimeNs: bigint;
  readonly rdev: number;
  readonly devmajor: number;
  readonly devminor: number;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly nlink: number;
}

/** One path of a scanned or merged tree. */
export interface FsNode {
  readonly stat: FsStat;
  /** Absolute path of the file on disk (where the bytes are). */
  readonly source: string;
  /** Symlink target. */
  readonly target?: string;
  /** Directories only. */
  readonly children?: Map<string, FsNode>;
  /** Directory marked opaque (xattr `trusted.overlay.opaque=y`). */
  opaque?: boolean;
  /** Directory renamed by overlayfs (xattr `trusted.overlay.redirect`): where its lower content is. */
  redirect?: string;
  /** Extended attributes worth carrying into a layer (`security.capability`). */
  xattrs?: Record<string, Uint8Array>;
}

export function statOf(st: BigIntStats): FsStat {
  let kind: FsKind;
  if (st.isSymbolicLink()) kind = 'symlink';
  else if (st.isDirectory()) kind = 'directory';
  else if (st.isFile()) kind = 'file';
  else if (st.isCharacterDevice()) kind = st.rdev === 0n ? 'whiteout' : 'char';
  else if (st.isBlockDevice()) kind = 'block';
  else if (st.isFIFO()) kind = 'fifo';
  else kind = 'socket';
  const rdev = Number(st.rdev);
  // Linux dev_t: major in bits 8–19 and 32–43, minor in bits 0–7 and 20–31.
  const major = Number(((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn));
  const minor = Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn));
  return {
    kind, mode: Number(st.mode) & 0o7777, rawMode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), size: Number(st.size),
    mtimeNs: st.mtimeNs, rdev, devmajor: major, devminor: minor,
    dev: st.dev, ino: st.ino, nlink: Number(st.nlink),
  };
}

export interface ScanOptions extends IoOptions {
  /** More entries than this is BERTH_LIMIT (default 4 000 000). */
  readonly maxEntries?: number;
}

/** Scans `dir` recursively with lstat (symlinks are never followed). The root node is `dir` itself. */
export async function scanTree(dir: string, opts: ScanOptions = {}): Promise<FsNode> {
  const max = opts.maxEntries ?? 4_000_000;
  let count = 0;
  const rootStat = await lstat(dir, { bigint: true }).catch((err: unknown) => {
    throw withContext(err, `reading ${dir}`);
  });
  if (!rootStat.isDirectory()) throw new BerthError('BERTH_USAGE', `${dir}: not a directory`, { subject: dir });
  const root: FsNode = { stat: statOf(rootStat), source: dir, children: new Map() };
  const walk = async (node: FsNode): Promise<void> => {
    if (opts.signal?.aborted === true) throw new BerthError('BERTH_ABORTED', `scanning ${dir}: aborted`, { cause: opts.signal.reason });
    let names: string[];
    try {
      names = await readdir(node.source);
    } catch (err) {
      throw withContext(err, `listing ${node.source}`);
    }
    for (const name of names.sort(compareNames)) {
      if (++count > max) throw new BerthError('BERTH_LIMIT', `scanning ${dir}: more than ${max} entries`, { subject: dir, want: max });
      const file = path.join(node.source, name);
      let st: BigIntStats;
      try {
        st = await lstat(file, { bigint: true });
      } catch (err) {
        // Gone while scanning (a running container): not part of the tree.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw withContext(err, `reading ${file}`);
      }
      const s = statOf(st);
      const child: FsNode = s.kind === 'directory' ? { stat: s, source: file, children: new Map() }
        : s.kind === 'symlink' ? { stat: s, source: file, target: await readlink(file) }
        : { stat: s, source: file };
      node.children!.set(name, child);
      if (child.children !== undefined) await walk(child);
    }
  };
  await walk(root);
  return root;
}

/** Depth-first walk in name order, a directory before its children; the root ('') first. */
export function* walkTree(node: FsNode, from = ''): Generator<[string, FsNode]> {
  yield [from, node];
  if (node.children === undefined) return;
  for (const name of [...node.children.keys()].sort(compareNames)) {
    yield* walkTree(node.children.get(name)!, from === '' ? name : `${from}/${name}`);
  }
}

/** The node at a clean relative path, without following symlinks. */
export function lookupTree(root: FsNode, rel: string): FsNode | undefined {
  if (rel === '' || rel === '/') return root;
  let cur: FsNode | undefined = root;
  for (const c of rel.split('/').filter((s) => s !== '')) {
    cur = cur.children?.get(c);
    if (cur === undefined) return undefined;
  }
  return cur;
}

function copyNode(n: FsNode, deep: boolean): FsNode {
  const children = n.children === undefined ? undefined : new Map([...n.children].map(([k, v]) => [k, deep ? copyNode(v, true) : v] as const));
  return { stat: n.stat, source: n.source, ...(n.target !== undefined ? { target: n.target } : {}), ...(children ? { children } : {}), ...(n.xattrs ? { xattrs: n.xattrs } : {}) };
}

/**
 * The view overlayfs gives of layer directories stacked bottom → top: a char device 0/0 hides
 * the name below, an opaque directory hides everything below it, a redirected directory takes
 * its lower content from where it was renamed from, any other entry replaces what is below
 * unless both are directories (then the upper directory's attributes win and children merge).
 * The layer trees are not modified.
 */
export function mergeLayers(layers: readonly FsNode[]): FsNode {
  if (layers.length === 0) throw new RangeError('mergeLayers: no layers');
  let merged: FsNode = copyNode(layers[0]!, true);
  stripMarkers(merged);
  for (const layer of layers.slice(1)) {
    const before = hasRedirect(layer) ? copyNode(merged, true) : merged;
    const root: FsNode = { stat: layer.stat, source: layer.source, children: merged.children! };
    applyDir(root, layer, '', before);
    merged = root;
  }
  return merged;
}

function hasRedirect(n: FsNode): boolean {
  if (n.redirect !== undefined) return true;
  for (const c of n.children?.values() ?? []) if (c.children !== undefined && hasRedirect(c)) return true;
  return false;
}

/** The base layer: whiteouts in it hide nothing. */
function stripMarkers(n: FsNode): void {
  for (const [name, c] of n.children ?? []) {
    if (c.stat.kind === 'whiteout') n.children!.delete(name);
    else stripMarkers(c);
  }
}

function applyDir(mDir: FsNode, lDir: FsNode, rel: string, lower: FsNode): void {
  for (const [name, l] of lDir.children!) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    if (l.stat.kind === 'whiteout') {
      mDir.children!.delete(name);
      continue;
    }
    const existing = mDir.children!.get(name);
    if (l.children === undefined) {
      mDir.children!.set(name, copyNode(l, false));
      continue;
    }
    let children: Map<string, FsNode>;
    if (l.redirect !== undefined) {
      const from = l.redirect.startsWith('/') ? l.redirect.slice(1) : rel === '' ? l.redirect : `${rel}/${l.redirect}`;
      const src = lookupTree(lower, from);
      children = src?.children !== undefined ? copyNode(src, true).children! : new Map();
    } else if (existing?.children !== undefined && l.opaque !== true) {
      children = existing.children;
    } else {
      children = new Map();
    }
    const node: FsNode = { stat: l.stat, source: l.source, children, ...(l.xattrs ? { xattrs: l.xattrs } : {}) };
    mDir.children!.set(name, node);
    applyDir(node, l, childRel, lower);
  }
}

// ---------------------------------------------------------------------------------------------
// Changes, as dockerd computes them (pkg/archive/changes.go)

export type ChangeKind = 'A' | 'C' | 'D';

export interface FsChange {
  /** Absolute path inside the container (`/app/x`). */
  readonly path: string;
  readonly kind: ChangeKind;
}

function sameCapability(a: FsNode, b: FsNode): boolean {
  const x = a.xattrs?.['security.capability'];
  const y = b.xattrs?.['security.capability'];
  if (x === undefined || y === undefined) return x === y;
  return Buffer.compare(Buffer.from(x), Buffer.from(y)) === 0;
}

function statDifferent(o: FsStat, n: FsStat): boolean {
  if (o.rawMode !== n.rawMode || o.uid !== n.uid || o.gid !== n.gid || o.rdev !== n.rdev) return true;
  // Size and mtime do not count for directories (moby#9874).
  return o.kind !== 'directory' && (o.mtimeNs !== n.mtimeNs || o.size !== n.size);
}

/**
 * dockerd's naive diff (ChangesDirs): walks the new tree against the old one. A path only in new
 * is `A` (its subtree too), a path whose mode, owner, device or (non-directories) size or mtime
 * differ is `C`, a path only in old is `D` (one line for a deleted directory), and a directory
 * that holds changes is `C` itself, listed before them. dockerd walks Go maps, so its order is
 * random; here children come in name order, deletions of a directory after its other changes.
 */
export function naiveChanges(newRoot: FsNode, oldRoot: FsNode | undefined): FsChange[] {
  const out: FsChange[] = [];
  const visit = (info: FsNode, old: FsNode | undefined, p: string, added: boolean): void => {
    const at = out.length;
    let marked = added;
    if (old === undefined && p !== '/') {
      out.push({ path: p, kind: 'A' });
      marked = true;
    }
    const oldChildren = new Map<string, FsNode>(old !== undefined && info.children !== undefined ? old.children ?? [] : []);
    if (info.children !== undefined) {
      for (const name of [...info.children.keys()].sort(compareNames)) {
        const child = info.children.get(name)!;
        const oldChild = oldChildren.get(name);
        const cp = p === '/' ? `/${name}` : `${p}/${name}`;
        let childAdded = false;
        if (oldChild !== undefined) {
          if (statDifferent(oldChild.stat, child.stat) || !sameCapability(oldChild, child)) {
            out.push({ path: cp, kind: 'C' });
            childAdded = true;
          }
          oldChildren.delete(name);
        }
        visit(child, oldChild, cp, childAdded);
      }
    }
    for (const name of [...oldChildren.keys()].sort(compareNames)) out.push({ path: p === '/' ? `/${name}` : `${p}/${name}`, kind: 'D' });
    if (out.length > at && info.children !== undefined && !marked && p !== '/') out.splice(at, 0, { path: p, kind: 'C' });
  };
  visit(newRoot, oldRoot, '/', false);
  return out;
}

function sameFsTime(a: bigint, b: bigint): boolean {
  if (a === b) return true;
  const sec = (x: bigint) => (x >= 0n ? x / 1_000_000_000n : -((-x + 999_999_999n) / 1_000_000_000n));
  return sec(a) === sec(b) && (a % 1_000_000_000n === 0n || b % 1_000_000_000n === 0n);
}

/**
 * dockerd's overlay diff (OverlayChanges, used when the kernel allows "native overlay diff"):
 * walks the upper directory only. A whiteout or an opaque directory is `D`; anything else is
 * `C` when some lower directory has the path (stat, following symlinks, nearest lower first)
 * and `A` otherwise; an unchanged directory (same size, mode and mtime as below) is skipped; the
 * parent of an `A` or `D` is listed as `C` before it unless already listed. Order: the walk's.
 */
export async function overlayChanges(upper: FsNode, lowerDirs: readonly string[]): Promise<FsChange[]> {
  const out: FsChange[] = [];
  const changedDirs = new Set<string>();
  for (const [rel, f] of walkTree(upper)) {
    if (rel === '') continue;
    const p = `/${rel}`;
    let kind: ChangeKind;
    if (f.stat.kind === 'whiteout' || (f.stat.kind === 'directory' && f.opaque === true)) kind = 'D';
    else {
      kind = 'A';
      let skip = false;
      for (const layer of lowerDirs) {
        const st = await stat(path.join(layer, rel), { bigint: true }).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
          throw withContext(err, `reading ${path.join(layer, rel)}`);
        });
        if (st === undefined) continue;
        if (st.isDirectory() && f.stat.kind === 'directory') {
          if (Number(st.size) === f.stat.size && (Number(st.mode) & 0o7777) === f.stat.mode && sameFsTime(st.mtimeNs, f.stat.mtimeNs)) skip = true;
        }
        kind = 'C';
        break;
      }
      if (skip) continue;
    }
    if (f.stat.kind === 'directory') changedDirs.add(p);
    if (kind === 'A' || kind === 'D') {
      const parent = path.posix.dirname(p);
      if (parent !== '/' && !changedDirs.has(parent)) {
        out.push({ path: parent, kind: 'C' });
        changedDirs.add(parent);
      }
    }
    out.push({ path: p, kind });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tar entries

export interface LayerEntryOptions {
  /** Every mtime becomes this (seconds since the epoch); default: the files' own, whole seconds. */
  readonly mtime?: number;
  /** Keep the files' uid/gid (default: 0/0, as crane append and `tar --owner=0` do). */
  readonly keepOwner?: boolean;
}

function secondsOf(ns: bigint): number {
  return Number(ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n));
}

async function* fileBody(file: string, size: number): ByteStream {
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw withContext(err, `reading ${file}`);
  }
  try {
    if (size === 0) return;
    yield* createReadStream('', { fd: fh.fd, autoClose: false, start: 0, end: size - 1, highWaterMark: 1 << 20 });
  } finally {
    await fh.close();
  }
}

/** Hard-link bookkeeping: the first path of each (device, inode) with more than one link. */
export class LinkTracker {
  private readonly seen = new Map<string, string>();
  /** The earlier name this node is a hard link of, or undefined (then it is remembered as `name`). */
  linkOf(node: FsNode, name: string): string | undefined {
    const s = node.stat;
    if (s.kind === 'directory' || s.kind === 'whiteout' || s.nlink < 2) return undefined;
    const key = `${s.dev}:${s.ino}`;
    const first = this.seen.get(key);
    if (first === undefined) this.seen.set(key, name);
    return first;
  }
}

/** The tar entry of `node` at clean relative name `rel`; undefined for sockets (tar cannot hold them). */
export function entryOf(rel: string, node: FsNode, links: LinkTracker, opts: LayerEntryOptions = {}): TarWriteEntry | undefined {
  const s = node.stat;
  if (s.kind === 'socket') return undefined;
  const base = {
    mode: s.mode,
    uid: opts.keepOwner === true ? s.uid : 0,
    gid: opts.keepOwner === true ? s.gid : 0,
    mtime: opts.mtime ?? secondsOf(s.mtimeNs),
    ...(node.xattrs !== undefined ? { xattrs: node.xattrs } : {}),
  };
  if (s.kind === 'whiteout') {
    return { header: { ...base, name: whiteoutName(rel), type: 'file', mode: 0o600, size: 0 } };
  }
  if (s.kind === 'directory') return { header: { ...base, name: `${rel}/`, type: 'directory' } };
  const first = links.linkOf(node, rel);
  if (first !== undefined) return { header: { ...base, name: rel, type: 'link', linkname: first, size: 0 } };
  switch (s.kind) {
    case 'file':
      return { header: { ...base, name: rel, type: 'file', size: s.size }, body: fileBody(node.source, s.size) };
    case 'symlink':
      return { header: { ...base, name: rel, type: 'symlink', linkname: node.target ?? '' } };
    case 'char':
    case 'block':
      return { header: { ...base, name: rel, type: s.kind, devmajor: s.devmajor, devminor: s.devminor } };
    default:
      return { header: { ...base, name: rel, type: 'fifo' } };
  }
}

function whiteoutName(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? `${WHITEOUT_PREFIX}${rel}` : `${rel.slice(0, slash)}/${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
}

/**
 * Every entry of a tree as a layer (the root itself left out): an overlay upper directory comes
 * out with its whiteout devices as `.wh.` files and each opaque directory followed by its
 * `.wh..wh..opq` marker (mode = the directory's permissions, mtime 0), as dockerd converts them.
 */
export function* treeEntries(root: FsNode, opts: LayerEntryOptions = {}): Generator<TarWriteEntry> {
  const links = new LinkTracker();
  for (const [rel, node] of walkTree(root)) {
    if (rel === '') continue;
    const e = entryOf(rel, node, links, opts);
    if (e === undefined) continue;
    yield e;
    if (node.stat.kind === 'directory' && node.opaque === true) {
      yield {
        header: {
          name: `${rel}/${OPAQUE_MARKER}`, type: 'file', size: 0, mode: node.stat.mode & 0o777, mtime: 0,
          uid: opts.keepOwner === true ? node.stat.uid : 0, gid: opts.keepOwner === true ? node.stat.gid : 0,
        },
      };
    }
  }
}

/**
 * A layer from a change list (dockerd's ExportChanges): each added or changed path as it is in
 * `newRoot` (a changed directory without its unchanged children), each deleted path as a
 * `.wh.` whiteout (mode 0, mtime `opts.mtime` or 0), in path order.
 */
export function* changeEntries(newRoot: FsNode, changes: readonly FsChange[], opts: LayerEntryOptions = {}): Generator<TarWriteEntry> {
  const links = new LinkTracker();
  const sorted = [...changes].sort((a, b) => comparePaths(a.path, b.path));
  for (const c of sorted) {
    const rel = c.path.replace(/^\/+/, '');
    if (c.kind === 'D') {
      yield { header: { name: whiteoutName(rel), type: 'file', size: 0, mode: 0, mtime: opts.mtime ?? 0 } };
      continue;
    }
    const node = lookupTree(newRoot, rel);
    if (node === undefined) continue;
    const e = entryOf(rel, node, links, opts);
    if (e !== undefined) yield e;
  }
}

/** Depth-first name order of absolute or relative paths (a directory before its children). */
export function comparePaths(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = compareNames(x[i]!, y[i]!);
    if (c !== 0) return c;
  }
  return x.length - y.length;
}

// ---------------------------------------------------------------------------------------------
// Layers from directories

export interface DirectoryLayerOptions extends LayerEntryOptions, ScanOptions {}

/** A layer tar holding everything under `dir` (not `dir` itself), deterministic for the same tree. */
export async function layerFromDirectory(dir: string, opts: DirectoryLayerOptions = {}): Promise<ByteStream> {
  const root = await scanTree(dir, opts);
  return writeTar(treeEntries(root, opts), opts.signal ? { signal: opts.signal } : {});
}

/** A layer tar that turns the tree `oldDir` into the tree `newDir` (naive diff, explicit whiteouts). */
export async function layerFromDirectoryDiff(oldDir: string, newDir: string, opts: DirectoryLayerOptions = {}): Promise<ByteStream> {
  const [oldRoot, newRoot] = await Promise.all([scanTree(oldDir, opts), scanTree(newDir, opts)]);
  return writeTar(changeEntries(newRoot, naiveChanges(newRoot, oldRoot), opts), opts.signal ? { signal: opts.signal } : {});
}
