/**
 * The union of a stack of layers, in memory and without file bodies (formats.md 8.5): apply
 * uncompressed layer tars in order to a tree of nodes. Whiteouts and opaque markers hide lower
 * content only (never what the same layer adds, whatever the order); an entry replaces what is
 * at its path unless both are directories; missing parents are created; a hard link shares the
 * body of its target (which may later be deleted or replaced without affecting the link); within
 * a layer the last duplicate wins. Symlinks are never followed while stacking: a later entry
 * under a path that is a symlink (or a file) replaces it with a directory, as overlayfs shows it.
 *
 * A regular file remembers where its bytes are (layer index, entry index) so that flatten.ts and
 * readers can fetch them later by re-reading that layer. Memory is a few hundred bytes per path.
 */
import { BerthError } from '../core/errors.js';
import type { ByteStream, IoOptions } from '../io/stream.js';
import type { TarHeader } from '../tar/header.js';
import { scanTar } from '../tar/scan.js';
import { baseOf, cleanEntryName, parentOf, resolveInRoot, type ProbeResult } from './safe-path.js';
import { classifyEntry, WHITEOUT_PREFIX, type EntryRole } from './whiteout.js';

/** The header fields the union reads (a TarHeader or a scanTar record). */
export type UnionHeader = Pick<TarHeader, 'name' | 'type' | 'typeflag' | 'mode' | 'uid' | 'gid' | 'size' | 'mtime' | 'linkname' | 'devmajor' | 'devminor' | 'xattrs'>;

export type NodeType = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo';

/** Where a regular file's bytes are. Hard links share one BodyRef object. */
export interface BodyRef {
  readonly layer: number;
  readonly entry: number;
  readonly size: number;
}

/** One path of the union. */
export class UnionNode {
  /** Children by name (directories only). */
  children: Map<string, UnionNode> | undefined;
  /** The file's bytes (regular files only; shared by hard links). */
  body: BodyRef | undefined;
  xattrs: Readonly<Record<string, Uint8Array>> | undefined;

  constructor(
    public type: NodeType,
    public mode: number,
    public uid: number,
    public gid: number,
    public size: number,
    public mtime: number,
    /** Symlink target as stored ('' for other types). */
    public linkname: string,
    public devmajor: number,
    public devminor: number,
    /** Index of the layer this node's metadata comes from. */
    public layer: number,
    /** Index of the tar entry in that layer (-1 for a directory created implicitly as a parent). */
    public entry: number,
  ) {
    this.children = type === 'directory' ? new Map() : undefined;
    this.body = undefined;
    this.xattrs = undefined;
  }

  static implicitDir(layer: number): UnionNode {
    return new UnionNode('directory', 0o755, 0, 0, 0, 0, '', 0, 0, layer, -1);
  }
}

/** What one layer did to the union. */
export interface LayerStats {
  readonly index: number;
  /** Tar members, markers included. */
  entries: number;
  /** Bytes of the uncompressed tar stream. */
  tarBytes: number;
  /** Paths that did not exist below (implicit parents included). */
  added: number;
  /** Paths that existed below and were replaced (directories: only when mode, owner or xattrs changed). */
  modified: number;
  /** Paths of lower layers removed (by whiteouts, opaque markers or replacement of a directory). */
  deleted: number;
  whiteouts: number;
  opaqueDirs: number;
  /** Bytes of regular-file bodies stored in this layer. */
  fileBytes: number;
  /** Of those, bytes not visible in the final union: overwritten or deleted by a later layer (or a later duplicate). */
  wastedBytes: number;
}

export interface AddLayerOptions extends IoOptions {
  /** More tar members than this in the layer is BERTH_LIMIT (default: the tar reader's 1 000 000). */
  readonly maxEntries?: number;
}

const TYPES: Readonly<Record<string, NodeType | 'link'>> = {
  file: 'file', directory: 'directory', symlink: 'symlink', char: 'char', block: 'block', fifo: 'fifo', link: 'link',
};

export class LayerUnion {
  readonly root: UnionNode = UnionNode.implicitDir(-1);
  private readonly stats: LayerStats[] = [];
  private wasteDirty = false;
  /** Whether any hard link was applied (only then can paths share a body). */
  hasHardLinks = false;

  /** Per-layer statistics so far (wasted bytes reflect the layers applied up to now). */
  get layers(): readonly LayerStats[] {
    if (this.wasteDirty) this.computeWaste();
    return this.stats;
  }

  /** Applies the next layer (an uncompressed tar stream), reading it to the end. */
  async addLayer(stream: ByteStream, opts: AddLayerOptions = {}): Promise<LayerStats> {
    const index = this.stats.length;
    const stats: LayerStats = {
      index, entries: 0, tarBytes: 0, added: 0, modified: 0, deleted: 0, whiteouts: 0, opaqueDirs: 0, fileBytes: 0, wastedBytes: 0,
    };
    this.stats.push(stats);
    this.wasteDirty = true;
    // Headers only: bodies are skipped unread, one synchronous pass per chunk.
    const r = await scanTar(stream, (h) => {
      stats.entries++;
      this.applyEntry(h, h.index, stats);
    }, { ...(opts.maxEntries !== undefined ? { maxEntries: opts.maxEntries } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    stats.tarBytes = r.bytes;
    return stats;
  }

  /** Applies one member of layer `stats.index` (exposed for tests and for callers that read tars themselves). */
  applyEntry(h: UnionHeader, entry: number, stats: LayerStats): void {
    const L = stats.index;
    if (h.type === 'g') return;
    const where = (): string => `layer ${L} entry ${entry}`;
    const clean = fastCleanName(h.name) ?? cleanEntryName(h.name, where());
    const role = clean.includes(WHITEOUT_PREFIX) ? classifyEntry(clean) : NORMAL;
    if (role.kind === 'meta') return;
    if (role.kind === 'opaque') {
      stats.opaqueDirs++;
      this.lastDir = undefined;
      const dir = this.ensureDir(role.dir, L, stats, true);
      for (const name of dir.children!.keys()) this.hide(dir, name, L, stats);
      return;
    }
    if (role.kind === 'whiteout') {
      stats.whiteouts++;
      const dir = this.lookup(role.dir);
      if (dir?.children?.has(role.name) === true) this.hide(dir, role.name, L, stats);
      return;
    }
    const type = TYPES[h.type];
    if (type === undefined) {
      throw new BerthError('BERTH_UNSUPPORTED', `${where()} ${JSON.stringify(h.name)}: entry type ${JSON.stringify(h.typeflag)} is not supported in a layer`, { subject: h.name, got: h.typeflag });
    }
    if (clean === '') {
      if (type !== 'directory') throw new BerthError('BERTH_INVALID_LAYER', `${where()} ${JSON.stringify(h.name)}: the root must be a directory (got a ${type})`, { subject: h.name });
      setMeta(this.root, h, L, entry);
      return;
    }
    const parentPath = parentOf(clean);
    let parent: UnionNode;
    if (this.lastDir !== undefined && this.lastDir.path === parentPath) {
      parent = this.lastDir.node;
    } else {
      parent = this.ensureDir(parentPath, L, stats, false);
      this.lastDir = { path: parentPath, node: parent };
    }
    const base = baseOf(clean);
    const existing = parent.children!.get(base);
    let node: UnionNode;
    if (type === 'link') {
      this.hasHardLinks = true;
      const targetName = cleanEntryName(h.linkname, `${where()} ${JSON.stringify(h.name)}: hard link target`);
      const target = this.lookup(targetName);
      if (target === undefined || target.type === 'directory') {
        throw new BerthError('BERTH_INVALID_LAYER', `${where()} ${JSON.stringify(h.name)}: hard link target ${JSON.stringify(h.linkname)} ${target === undefined ? 'does not exist' : 'is a directory'}`, {
          subject: h.name,
        });
      }
      node = new UnionNode(target.type, target.mode, target.uid, target.gid, target.size, target.mtime, target.linkname, target.devmajor, target.devminor, L, entry);
      node.body = target.body;
      node.xattrs = target.xattrs;
    } else if (type === 'directory' && existing?.type === 'directory') {
      if (existing.layer < L && (existing.mode !== h.mode || existing.uid !== h.uid || existing.gid !== h.gid)) stats.modified++;
      setMeta(existing, h, L, entry);
      return;
    } else {
      node = new UnionNode(type, h.mode, h.uid, h.gid, type === 'file' ? h.size : 0, h.mtime, type === 'symlink' ? h.linkname : '', h.devmajor, h.devminor, L, entry);
      if (hasOwnKeys(h.xattrs)) node.xattrs = h.xattrs;
      if (type === 'file') {
        node.body = { layer: L, entry, size: h.size };
        stats.fileBytes += h.size;
      }
    }
    if (existing === undefined) stats.added++;
    else {
      // Replacing a node may drop a directory the parent cache points into.
      if (existing.children !== undefined) this.lastDir = undefined;
      if (existing.layer < L) stats.modified++;
      if (existing.children !== undefined) stats.deleted += countLower(existing, L);
    }
    parent.children!.set(base, node);
  }

  /** The node at a clean path, without following symlinks. */
  lookup(clean: string): UnionNode | undefined {
    if (clean === '') return this.root;
    let cur: UnionNode | undefined = this.root;
    for (const c of clean.split('/')) {
      cur = cur.children?.get(c);
      if (cur === undefined) return undefined;
    }
    return cur;
  }

  /**
   * Resolves a path the way a process inside the image would, following symlinks but never
   * leaving the image root. Returns the resolved clean path and its node (undefined when absent).
   */
  async resolve(path: string, opts: { followFinal?: boolean } = {}): Promise<{ path: string; node: UnionNode | undefined }> {
    const clean = cleanLookupPath(path);
    const r = await resolveInRoot(clean, (p) => this.probe(p), { followFinal: opts.followFinal ?? true, what: JSON.stringify(path) });
    return { path: r.path, node: r.missingParent ? undefined : this.lookup(r.path) };
  }

  private probe(clean: string): ProbeResult {
    const n = this.lookup(clean);
    if (n === undefined) return { kind: 'absent' };
    if (n.type === 'symlink') return { kind: 'symlink', target: n.linkname };
    return n.type === 'directory' ? { kind: 'directory' } : { kind: 'other' };
  }

  /** Depth-first walk in name order, a directory before its children; the root ('') first. */
  *walk(from = '', node: UnionNode | undefined = this.lookup(from)): Generator<[string, UnionNode]> {
    if (node === undefined) return;
    // One generator with an explicit stack (nested yield* costs a hop per level per path).
    const stack: [string, UnionNode][] = [[from, node]];
    while (stack.length > 0) {
      const item = stack.pop()!;
      yield item;
      const [path, n] = item;
      if (n.children === undefined) continue;
      const names = sortedNames(n.children);
      for (let i = names.length - 1; i >= 0; i--) {
        const name = names[i]!;
        stack.push([path === '' ? name : `${path}/${name}`, n.children.get(name)!]);
      }
    }
  }

  /** Number of paths in the union (the root excluded). */
  count(): number {
    let n = -1;
    forEachNode(this.root, () => { n++; });
    return n;
  }

  /** The parent directory of the last entry (most entries share it with the one before). */
  private lastDir: { path: string; node: UnionNode } | undefined;

  private ensureDir(clean: string, L: number, stats: LayerStats, markLayer: boolean): UnionNode {
    let cur = this.root;
    if (clean !== '') {
      for (const c of clean.split('/')) {
        const child = cur.children!.get(c);
        if (child?.type === 'directory') {
          cur = child;
          continue;
        }
        const dir = UnionNode.implicitDir(L);
        if (child === undefined) stats.added++;
        else if (child.layer < L) stats.modified++;
        cur.children!.set(c, dir);
        cur = dir;
      }
    }
    // An opaque directory belongs to the layer that marks it.
    if (markLayer && cur.layer < L && cur !== this.root) cur.layer = L;
    return cur;
  }

  /** Hides the lower-layer content at parent/name: removes it, keeping what layer L added there. */
  private hide(parent: UnionNode, name: string, L: number, stats: LayerStats): void {
    this.lastDir = undefined;
    const c = parent.children!.get(name)!;
    if (c.children !== undefined) for (const k of c.children.keys()) this.hide(c, k, L, stats);
    if (c.layer < L && (c.children === undefined || c.children.size === 0)) {
      parent.children!.delete(name);
      stats.deleted++;
    }
  }

  private computeWaste(): void {
    const live = new Array<number>(this.stats.length).fill(0);
    const seen = new Set<BodyRef>();
    forEachNode(this.root, (n) => {
      if (n.body !== undefined && !seen.has(n.body)) {
        seen.add(n.body);
        live[n.body.layer]! += n.body.size;
      }
    });
    for (const s of this.stats) s.wastedBytes = s.fileBytes - live[s.index]!;
    this.wasteDirty = false;
  }
}

/** A path as a user types it (`/etc/passwd`, `etc/`, `.`), as a clean name; `..` is kept for resolution. */
export function cleanLookupPath(path: string): string {
  if (path.includes('\0')) throw new BerthError('BERTH_UNSAFE_PATH', `path ${JSON.stringify(path)}: holds a NUL byte`, { subject: path });
  return path.split('/').filter((s) => s !== '' && s !== '.').join('/');
}

function setMeta(n: UnionNode, h: UnionHeader, L: number, entry: number): void {
  n.mode = h.mode;
  n.uid = h.uid;
  n.gid = h.gid;
  n.mtime = h.mtime;
  n.xattrs = Object.keys(h.xattrs).length > 0 ? h.xattrs : undefined;
  n.layer = L;
  n.entry = entry;
}

/** Nodes below `n` from layers before L. */
function countLower(n: UnionNode, L: number): number {
  let count = 0;
  for (const c of n.children?.values() ?? []) {
    if (c.layer < L) count++;
    count += countLower(c, L);
  }
  return count;
}

function sortedNames(children: Map<string, UnionNode>): string[] {
  const names = [...children.keys()];
  // Without surrogates, compareNames is plain UTF-16 order: the default sort (one scan instead of a regex per comparison).
  for (const name of names) if (/[\uD800-\uDFFF]/.test(name)) return names.sort(compareNames);
  return names.sort();
}

/** Every node below and including `n`, in no particular order. */
function forEachNode(n: UnionNode, fn: (n: UnionNode) => void): void {
  fn(n);
  if (n.children !== undefined) for (const c of n.children.values()) forEachNode(c, fn);
}

function hasOwnKeys(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

const NORMAL: EntryRole = { kind: 'normal' };

/**
 * cleanEntryName for the common name (`a/b`, `./a/b`, `a/b/`): no empty, `.` or `..` component,
 * not absolute, no NUL. Undefined for anything else, which cleanEntryName then handles.
 */
export function fastCleanName(name: string): string | undefined {
  let start = 0;
  if (name.charCodeAt(0) === 0x2e && name.charCodeAt(1) === 0x2f) start = 2;
  let end = name.length;
  if (end > start && name.charCodeAt(end - 1) === 0x2f) end--;
  if (end <= start) return undefined;
  let seg = start;
  for (let i = start; i <= end; i++) {
    const c = i < end ? name.charCodeAt(i) : 0x2f;
    if (c === 0) return undefined;
    if (c !== 0x2f) continue;
    const len = i - seg;
    if (len === 0) return undefined;
    if (len <= 2 && name.charCodeAt(seg) === 0x2e && (len === 1 || name.charCodeAt(seg + 1) === 0x2e)) return undefined;
    seg = i + 1;
  }
  return start === 0 && end === name.length ? name : name.slice(start, end);
}

/**
 * Name order as dockerd and GNU tar --sort=name use (bytewise UTF-8). UTF-16 code-unit order is
 * the same except for astral characters against U+E000–U+FFFF, which are compared as bytes.
 */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  if (/[\uD800-\uDFFF]/.test(a) || /[\uD800-\uDFFF]/.test(b)) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : 1;
}
