/**
 * A compact, immutable index of a union's paths: what listing, search, single-file reads and
 * per-layer changesets need, without file bodies. Built once by FileIndexBuilder straight from the
 * layer tars (one pass, LayerUnion's stacking rules), then a directory listing costs O(children)
 * and a lookup O(depth × log(children)), however large the image.
 *
 * Nodes are numbered in walk order (depth first, name order, a directory before its children),
 * so a subtree is one contiguous id range and a directory's children are one slice of `kids`.
 * Per node: a name string and a few typed-array slots (~80 bytes); link targets, devices and
 * xattrs are kept sparsely.
 */
import { BerthError } from '../core/errors.js';
import type { ByteStream } from '../io/stream.js';
import { scanTar } from '../tar/scan.js';
import { cleanEntryName, resolveInRoot, type ProbeResult } from './safe-path.js';
import { cleanLookupPath, compareNames, fastCleanName, type AddLayerOptions, type BodyRef, type LayerStats, type NodeType, type UnionHeader } from './union.js';
import { classifyEntry, WHITEOUT_PREFIX, type EntryRole } from './whiteout.js';

const TYPE_NAMES: readonly NodeType[] = ['file', 'directory', 'symlink', 'char', 'block', 'fifo'];
const TYPE_CODE: Readonly<Record<NodeType, number>> = { file: 0, directory: 1, symlink: 2, char: 3, block: 4, fifo: 5 };
const DIR = TYPE_CODE.directory;

/** One path of the index, as a plain object (made on demand). */
export interface IndexEntry {
  /** Clean path ('' for the root). */
  readonly path: string;
  readonly type: NodeType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Regular files: bytes; 0 otherwise. */
  readonly size: number;
  readonly mtime: number;
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** Layer the metadata comes from (-1: the root, never listed by a layer). */
  readonly layer: number;
  /** Where a regular file's bytes are. */
  readonly body: BodyRef | undefined;
  /** Paths sharing this file's body (1 when not a hard link). */
  readonly links: number;
  readonly xattrs: Readonly<Record<string, Uint8Array>> | undefined;
}

export class FileIndex {
  /** Paths including the root. */
  readonly size: number;
  /** Per-layer statistics of the layers applied (wasted bytes as of the last one). */
  readonly layers: readonly LayerStats[];
  private readonly names: string[];
  private readonly parent: Int32Array;
  private readonly type: Uint8Array;
  private readonly mode: Uint32Array;
  private readonly num: Float64Array; // uid, gid, size, mtime per node (4 slots)
  private readonly layer: Int32Array;
  private readonly bodyLayer: Int32Array;
  private readonly bodyEntry: Int32Array;
  private readonly links: Uint32Array;
  /** Children of directory i: kids[kidStart[i] .. kidStart[i + 1]). */
  private readonly kidStart: Int32Array;
  private readonly kids: Int32Array;
  /** Subtree of i: ids i .. end[i] - 1. */
  private readonly end: Int32Array;
  private readonly linknames = new Map<number, string>();
  private readonly devices = new Map<number, readonly [number, number]>();
  private readonly xattrs = new Map<number, Readonly<Record<string, Uint8Array>>>();

  /** Per layer: what it did to the paths below it (node ids; ghosts for paths gone later). */
  private readonly changeSets: readonly LayerChangeSet[];

  /** `n` live paths (ids 0..n-1, walk order), then `ghosts` nodes only changesets name (paths removed later). */
  private constructor(n: number, ghosts: number, layers: readonly LayerStats[], changeSets: readonly LayerChangeSet[], cols?: NodeColumns) {
    const m = n + ghosts;
    this.size = n;
    this.layers = layers;
    this.changeSets = changeSets;
    this.names = cols?.names ?? new Array<string>(m);
    this.parent = cols?.parent ?? new Int32Array(m);
    this.type = cols?.type ?? new Uint8Array(m);
    this.mode = cols?.mode ?? new Uint32Array(m);
    this.num = cols?.num ?? new Float64Array(m * 4);
    this.layer = cols?.layer ?? new Int32Array(m);
    this.bodyLayer = cols?.bodyLayer ?? new Int32Array(m);
    this.bodyEntry = cols?.bodyEntry ?? new Int32Array(m);
    this.links = new Uint32Array(m);
    this.kidStart = new Int32Array(n + 1);
    this.kids = new Int32Array(Math.max(0, n - 1));
    this.end = new Int32Array(n);
  }

  /** Fills an index from a builder's columns; `order` lists the live slots in walk order, then the ghosts. */
  static fromColumns(b: BuilderColumns, order: Int32Array, live: number, slotId: Int32Array, layers: readonly LayerStats[], changeSets: readonly LayerChangeSet[]): FileIndex {
    // Slots created in walk order with none removed (a layer written in name order): the columns are the index's as they are.
    let same = order.length === b.names.length;
    for (let id = 0; same && id < order.length; id++) same = order[id] === id;
    const n = order.length;
    const ix = new FileIndex(live, n - live, layers, changeSets, same ? {
      names: b.names, parent: b.parent.slice(0, n), type: b.type.slice(0, n), mode: b.mode.slice(0, n), num: b.num.slice(0, n * 4),
      layer: b.layer.slice(0, n), bodyLayer: b.bodyLayer.slice(0, n), bodyEntry: b.bodyEntry.slice(0, n),
    } : undefined);
    const bodies = new Map<number, number>();
    if (b.hasHardLinks) {
      for (let id = 0; id < live; id++) {
        const s = order[id]!;
        if (b.bodyLayer[s]! >= 0) {
          const key = bodyKey(b.bodyLayer[s]!, b.bodyEntry[s]!);
          bodies.set(key, (bodies.get(key) ?? 0) + 1);
        }
      }
    }
    if (same) {
      if (b.hasHardLinks) {
        for (let id = 0; id < n; id++) {
          const bl = b.bodyLayer[id]!;
          ix.links[id] = bl < 0 ? 1 : (bodies.get(bodyKey(bl, b.bodyEntry[id]!)) ?? 1);
        }
      } else ix.links.fill(1);
    } else {
      for (let id = 0; id < order.length; id++) {
        const s = order[id]!;
        ix.names[id] = b.names[s]!;
        ix.parent[id] = s === 0 ? -1 : slotId[b.parent[s]!]!;
        ix.type[id] = b.type[s]!;
        ix.mode[id] = b.mode[s]!;
        ix.num[id * 4] = b.num[s * 4]!;
        ix.num[id * 4 + 1] = b.num[s * 4 + 1]!;
        ix.num[id * 4 + 2] = b.num[s * 4 + 2]!;
        ix.num[id * 4 + 3] = b.num[s * 4 + 3]!;
        ix.layer[id] = b.layer[s]!;
        const bl = b.bodyLayer[s]!;
        ix.bodyLayer[id] = bl;
        ix.bodyEntry[id] = b.bodyEntry[s]!;
        ix.links[id] = bl < 0 || !b.hasHardLinks ? 1 : (bodies.get(bodyKey(bl, b.bodyEntry[s]!)) ?? 1);
      }
    }
    for (const [s, v] of b.linknames) if (slotId[s]! >= 0) ix.linknames.set(slotId[s]!, v);
    for (const [s, v] of b.devices) if (slotId[s]! >= 0) ix.devices.set(slotId[s]!, v);
    for (const [s, v] of b.xattrs) if (slotId[s]! >= 0) ix.xattrs.set(slotId[s]!, v);
    // Children appear in id order under their parent (walk order), already sorted by name.
    const count = new Int32Array(live + 1);
    for (let id = 1; id < live; id++) count[ix.parent[id]! + 1]!++;
    for (let i = 0; i < live; i++) ix.kidStart[i + 1] = ix.kidStart[i]! + count[i + 1]!;
    const fill = ix.kidStart.slice(0, live);
    for (let id = 1; id < live; id++) ix.kids[fill[ix.parent[id]!]!++] = id;
    for (let id = 0; id < live; id++) ix.end[id] = id + 1;
    for (let id = live - 1; id > 0; id--) {
      const p = ix.parent[id]!;
      if (ix.end[id]! > ix.end[p]!) ix.end[p] = ix.end[id]!;
    }
    return ix;
  }

  /**
   * What layer `layer` did to the filesystem of the layers below it: paths it added, paths it
   * replaced or changed (present below too), paths of the layers below it removed. The same sets
   * as comparing the full listings as of `layer` and `layer - 1`, without building either. Each
   * list holds its first `max` paths in walk order; counts count all.
   */
  changes(layer: number, max = Infinity): LayerChanges {
    const c = this.changeSets[layer];
    if (c === undefined) {
      throw new BerthError('BERTH_USAGE', `file index: no layer ${layer} (the index has ${this.changeSets.length})`, { want: `0…${this.changeSets.length - 1}`, got: layer });
    }
    const added: number[] = [];
    const addedModes: number[] = [];
    const modified: number[] = [];
    const modifiedModes: number[] = [];
    for (let i = 0; i < c.ids.length; i++) {
      if (c.added[i] === 1) {
        added.push(c.ids[i]!);
        addedModes.push(c.modes[i]!);
      } else {
        modified.push(c.ids[i]!);
        modifiedModes.push(c.modes[i]!);
      }
    }
    return {
      counts: { added: added.length, modified: modified.length, deleted: c.deleted.length },
      added: this.firstInWalkOrder(added, addedModes, max),
      modified: this.firstInWalkOrder(modified, modifiedModes, max),
      deleted: this.firstInWalkOrder([...c.deleted], [...c.deletedModes], max),
    };
  }

  private firstInWalkOrder(ids: number[], modes: number[], max: number): IndexChange[] {
    const at = ids.map((_, i) => i);
    if (ids.every((id) => id < this.size)) at.sort((a, b) => ids[a]! - ids[b]!);
    else {
      // Ghosts have no place in the walk: compare their paths component by component (the walk's order).
      const parts = ids.map((id) => this.anyPath(id).split('/'));
      at.sort((a, b) => comparePaths(parts[a]!, parts[b]!));
    }
    return at.slice(0, Math.min(max, at.length)).map((i) => {
      const id = ids[i]!;
      return { path: this.anyPath(id), type: TYPE_NAMES[this.type[id]!]!, size: this.num[id * 4 + 2]!, mode: modes[i]!, linkname: this.linknames.get(id) ?? '' };
    });
  }

  /** pathOf for any node, ghosts included. */
  private anyPath(id: number): string {
    const parts: string[] = [];
    for (let cur = id; cur > 0; cur = this.parent[cur]!) parts.push(this.names[cur]!);
    return parts.reverse().join('/');
  }

  /** Paths in the union, the root excluded. */
  count(): number {
    return this.size - 1;
  }

  /** The node at a clean path without following symlinks; -1 when absent. */
  lookup(clean: string): number {
    if (clean === '') return 0;
    let cur = 0;
    for (const c of clean.split('/')) {
      cur = this.child(cur, c);
      if (cur < 0) return -1;
    }
    return cur;
  }

  /** The child `name` of directory `id` (binary search: children are in name order); -1 when absent. */
  child(id: number, name: string): number {
    if (this.type[id] !== DIR) return -1;
    let lo = this.kidStart[id]!;
    let hi = this.kidStart[id + 1]! - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const k = this.kids[mid]!;
      const c = compareNames(this.names[k]!, name);
      if (c === 0) return k;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Resolves a user path inside the image root, following symlinks (the last one only with followFinal); id -1 when absent. */
  async resolve(path: string, opts: { followFinal?: boolean } = {}): Promise<{ path: string; id: number }> {
    const r = await resolveInRoot(cleanLookupPath(path), (p) => this.probe(p), { followFinal: opts.followFinal ?? true, what: JSON.stringify(path) });
    return { path: r.path, id: r.missingParent ? -1 : this.lookup(r.path) };
  }

  private probe(clean: string): ProbeResult {
    const id = this.lookup(clean);
    if (id < 0) return { kind: 'absent' };
    const t = this.type[id]!;
    if (t === TYPE_CODE.symlink) return { kind: 'symlink', target: this.linknames.get(id)! };
    return t === DIR ? { kind: 'directory' } : { kind: 'other' };
  }

  /** Children ids of a directory, in name order (empty for anything else). */
  children(id: number): Int32Array {
    this.check(id);
    return this.type[id] === DIR ? this.kids.subarray(this.kidStart[id]!, this.kidStart[id + 1]!) : new Int32Array(0);
  }

  /** The subtree of `id` (itself included) as the id range [from, to), in walk order. */
  subtree(id: number): { from: number; to: number } {
    this.check(id);
    return { from: id, to: this.end[id]! };
  }

  /** Clean path of a node ('' for the root). */
  pathOf(id: number): string {
    this.check(id);
    const parts: string[] = [];
    for (let cur = id; cur > 0; cur = this.parent[cur]!) parts.push(this.names[cur]!);
    return parts.reverse().join('/');
  }

  /** Last path element ('' for the root). */
  nameOf(id: number): string {
    this.check(id);
    return this.names[id]!;
  }

  typeOf(id: number): NodeType {
    this.check(id);
    return TYPE_NAMES[this.type[id]!]!;
  }

  /** Every path of the subtree of `id` in walk order, as [id, clean path]; paths are built incrementally. */
  *walk(id = 0): Generator<[number, string]> {
    const { from, to } = this.subtree(id);
    const dirPaths = new Map<number, string>();
    const top = this.pathOf(from);
    for (let i = from; i < to; i++) {
      let p: string;
      if (i === from) p = top;
      else {
        const pp = dirPaths.get(this.parent[i]!)!;
        p = pp === '' ? this.names[i]! : `${pp}/${this.names[i]!}`;
      }
      if (this.type[i] === DIR) dirPaths.set(i, p);
      yield [i, p];
    }
  }

  /**
   * Ids (walk order, root excluded) whose absolute path ('/' + path) contains `needle`, ignoring
   * case. Without a '/' in the needle a path matches when one of its components does, so only
   * names are lowercased, once each, instead of every full path.
   */
  *matching(needle: string): Generator<number> {
    const q = needle.toLowerCase();
    if (q.includes('/')) {
      for (const [id, p] of this.walk()) if (id > 0 && `/${p}`.toLowerCase().includes(q)) yield id;
      return;
    }
    const hit = new Uint8Array(this.size);
    for (let id = 1; id < this.size; id++) {
      hit[id] = hit[this.parent[id]!]! === 1 || this.names[id]!.toLowerCase().includes(q) ? 1 : 0;
      if (hit[id] === 1) yield id;
    }
  }

  /** The full record of one node. */
  entry(id: number, path: string = this.pathOf(id)): IndexEntry {
    this.check(id);
    const dev = this.devices.get(id);
    const bl = this.bodyLayer[id]!;
    return {
      path, type: TYPE_NAMES[this.type[id]!]!, mode: this.mode[id]!, uid: this.num[id * 4]!, gid: this.num[id * 4 + 1]!,
      size: this.num[id * 4 + 2]!, mtime: this.num[id * 4 + 3]!, linkname: this.linknames.get(id) ?? '',
      devmajor: dev?.[0] ?? 0, devminor: dev?.[1] ?? 0, layer: this.layer[id]!,
      body: bl < 0 ? undefined : { layer: bl, entry: this.bodyEntry[id]!, size: this.num[id * 4 + 2]! },
      links: this.links[id]!, xattrs: this.xattrs.get(id),
    };
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) {
      throw new BerthError('BERTH_USAGE', `file index: no node ${id} (the index has ${this.size})`, { want: `0…${this.size - 1}`, got: id });
    }
  }
}

/** One path of a layer's changeset. */
export interface IndexChange {
  /** Clean path. */
  readonly path: string;
  readonly type: NodeType;
  /** Regular files: bytes; 0 otherwise. */
  readonly size: number;
  /** As of that layer (added, modified) or of the layer below it (deleted). */
  readonly mode: number;
  /** Symlink target ('' for other types). */
  readonly linkname: string;
}

export interface LayerChanges {
  readonly counts: { readonly added: number; readonly modified: number; readonly deleted: number };
  readonly added: readonly IndexChange[];
  readonly modified: readonly IndexChange[];
  readonly deleted: readonly IndexChange[];
}

/** A layer's changeset as node ids of the index. */
interface LayerChangeSet {
  /** Paths whose metadata come from the layer once it is applied; added[i] 1 when absent below. */
  readonly ids: Int32Array;
  readonly added: Uint8Array;
  readonly modes: Uint32Array;
  /** Paths of the layers below that the layer removed, with their mode below. */
  readonly deleted: Int32Array;
  readonly deletedModes: Uint32Array;
}

/** Per-node columns, indexed by id. */
interface NodeColumns {
  readonly names: string[];
  readonly parent: Int32Array;
  readonly type: Uint8Array;
  readonly mode: Uint32Array;
  readonly num: Float64Array;
  readonly layer: Int32Array;
  readonly bodyLayer: Int32Array;
  readonly bodyEntry: Int32Array;
}

/** The columns FileIndex.fromColumns reads: the node columns plus the sparse ones. */
interface BuilderColumns extends NodeColumns {
  readonly hasHardLinks: boolean;
  readonly linknames: ReadonlyMap<number, string>;
  readonly devices: ReadonlyMap<number, readonly [number, number]>;
  readonly xattrs: ReadonlyMap<number, Readonly<Record<string, Uint8Array>>>;
}

/** One number per body (layer, entry): layers and entries stay far below 2^21 and 2^32. */
function bodyKey(layer: number, entry: number): number {
  return layer * 0x1_0000_0000 + entry;
}

/** Walk order of two paths given as components: name order per level, a directory before what it holds. */
function comparePaths(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareNames(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

const TYPES: Readonly<Record<string, NodeType | 'link'>> = {
  file: 'file', directory: 'directory', symlink: 'symlink', char: 'char', block: 'block', fifo: 'fifo', link: 'link',
};
const NORMAL: EntryRole = { kind: 'normal' };
const NO_KIDS: ReadonlyMap<string, number> = new Map();

/**
 * Builds a FileIndex straight from layer tars, with the stacking rules of LayerUnion (union.ts),
 * entry for entry and statistic for statistic, but in growable typed columns: a path costs its
 * name string and a few array slots (plus a Map per directory), so a 200k-file layer leaves no
 * per-path objects for the garbage collector. Slots are never reused: a replaced path gets a new
 * slot, and the old one keeps its path, which is how each layer's changeset survives later layers.
 */
export class FileIndexBuilder implements BuilderColumns {
  names: string[] = [];
  parent = new Int32Array(1024);
  type = new Uint8Array(1024);
  mode = new Uint32Array(1024);
  num = new Float64Array(4096);
  layer = new Int32Array(1024);
  bodyLayer = new Int32Array(1024);
  bodyEntry = new Int32Array(1024);
  private dead = new Uint8Array(1024);
  /** Children by name, per directory slot. */
  private kidMaps: (Map<string, number> | undefined)[] = [];
  readonly linknames = new Map<number, string>();
  readonly devices = new Map<number, readonly [number, number]>();
  readonly xattrs = new Map<number, Readonly<Record<string, Uint8Array>>>();
  hasHardLinks = false;
  private slots = 0;
  /** finish() hands the columns to the index: no layer may follow. */
  private finished = false;
  /** The last xattrs object seen empty (scanTar shares one for every entry without xattrs). */
  private noXattrs: object | undefined;
  private readonly stats: LayerStats[] = [];
  private readonly changeSlots: LayerChangeSet[] = [];
  /** The parent directory of the last entry (most entries share it with the one before). */
  private lastDirPath = '';
  private lastDir = -1;
  // The layer being applied: its first slot, slots it set the metadata of, lower slots it removed, their modes before it.
  private layerStart = 0;
  private touched: number[] = [];
  private removed: number[] = [];
  private readonly oldModes = new Map<number, number>();

  constructor() {
    this.newSlot(-1, '', DIR, 0o755, 0, 0, 0, 0, -1);
  }

  /** Applies the next layer (an uncompressed tar stream), reading it to the end. */
  async addLayer(stream: ByteStream, opts: AddLayerOptions = {}): Promise<LayerStats> {
    const stats = this.beginLayer();
    // Headers only: bodies are skipped unread, one synchronous pass per chunk.
    const r = await scanTar(stream, (h) => {
      stats.entries++;
      this.applyEntry(h, h.index, stats);
    }, { ...(opts.maxEntries !== undefined ? { maxEntries: opts.maxEntries } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    stats.tarBytes = r.bytes;
    this.endLayer();
    return stats;
  }

  /** Starts a layer fed by applyEntry (addLayer does this itself). */
  beginLayer(): LayerStats {
    if (this.finished) throw new BerthError('BERTH_USAGE', 'file index builder: finished, no layer can be added', {});
    if (this.stats.length > this.changeSlots.length) throw new BerthError('BERTH_USAGE', `file index builder: layer ${this.stats.length - 1} is not ended`, {});
    const stats: LayerStats = {
      index: this.stats.length, entries: 0, tarBytes: 0, added: 0, modified: 0, deleted: 0, whiteouts: 0, opaqueDirs: 0, fileBytes: 0, wastedBytes: 0,
    };
    this.stats.push(stats);
    this.layerStart = this.slots;
    this.touched = [];
    this.removed = [];
    this.oldModes.clear();
    this.lastDir = -1;
    return stats;
  }

  /** Applies one member of layer `stats.index` (as LayerUnion.applyEntry does). */
  applyEntry(h: UnionHeader, entry: number, stats: LayerStats): void {
    const L = stats.index;
    if (h.type === 'g') return;
    const where = (): string => `layer ${L} entry ${entry}`;
    const clean = fastCleanName(h.name) ?? cleanEntryName(h.name, where());
    const role = clean.includes(WHITEOUT_PREFIX) ? classifyEntry(clean) : NORMAL;
    if (role.kind === 'meta') return;
    if (role.kind === 'opaque') {
      stats.opaqueDirs++;
      this.lastDir = -1;
      const dir = this.ensureDir(role.dir, L, stats, true);
      for (const name of this.kidMaps[dir]!.keys()) this.hide(dir, name, L, stats);
      return;
    }
    if (role.kind === 'whiteout') {
      stats.whiteouts++;
      const dir = this.lookup(role.dir);
      if (dir >= 0 && this.kidMaps[dir]?.has(role.name) === true) this.hide(dir, role.name, L, stats);
      return;
    }
    const type = TYPES[h.type];
    if (type === undefined) {
      throw new BerthError('BERTH_UNSUPPORTED', `${where()} ${JSON.stringify(h.name)}: entry type ${JSON.stringify(h.typeflag)} is not supported in a layer`, { subject: h.name, got: h.typeflag });
    }
    if (clean === '') {
      if (type !== 'directory') throw new BerthError('BERTH_INVALID_LAYER', `${where()} ${JSON.stringify(h.name)}: the root must be a directory (got a ${type})`, { subject: h.name });
      this.setMeta(0, h, L);
      return;
    }
    const slash = clean.lastIndexOf('/');
    const parentPath = slash < 0 ? '' : clean.slice(0, slash);
    let parent: number;
    if (this.lastDir >= 0 && this.lastDirPath === parentPath) parent = this.lastDir;
    else {
      parent = this.ensureDir(parentPath, L, stats, false);
      this.lastDir = parent;
      this.lastDirPath = parentPath;
    }
    const base = slash < 0 ? clean : clean.slice(slash + 1);
    const siblings = this.kidMaps[parent]!;
    const existing = siblings.get(base) ?? -1;
    let node: number;
    if (type === 'link') {
      this.hasHardLinks = true;
      const targetName = cleanEntryName(h.linkname, `${where()} ${JSON.stringify(h.name)}: hard link target`);
      const target = this.lookup(targetName);
      if (target < 0 || this.type[target] === DIR) {
        throw new BerthError('BERTH_INVALID_LAYER', `${where()} ${JSON.stringify(h.name)}: hard link target ${JSON.stringify(h.linkname)} ${target < 0 ? 'does not exist' : 'is a directory'}`, {
          subject: h.name,
        });
      }
      const t4 = target * 4;
      node = this.newSlot(parent, base, this.type[target]!, this.mode[target]!, this.num[t4]!, this.num[t4 + 1]!, this.num[t4 + 2]!, this.num[t4 + 3]!, L);
      this.bodyLayer[node] = this.bodyLayer[target]!;
      this.bodyEntry[node] = this.bodyEntry[target]!;
      const ln = this.linknames.get(target);
      if (ln !== undefined) this.linknames.set(node, ln);
      const dev = this.devices.get(target);
      if (dev !== undefined) this.devices.set(node, dev);
      const xa = this.xattrs.get(target);
      if (xa !== undefined) this.xattrs.set(node, xa);
    } else if (type === 'directory' && existing >= 0 && this.type[existing] === DIR) {
      if (this.layer[existing]! < L && (this.mode[existing] !== h.mode || this.num[existing * 4] !== h.uid || this.num[existing * 4 + 1] !== h.gid)) stats.modified++;
      this.setMeta(existing, h, L);
      return;
    } else {
      const code = TYPE_CODE[type];
      node = this.newSlot(parent, base, code, h.mode, h.uid, h.gid, type === 'file' ? h.size : 0, h.mtime, L);
      if (h.xattrs !== this.noXattrs) {
        if (hasOwnKeys(h.xattrs)) this.xattrs.set(node, h.xattrs);
        else this.noXattrs = h.xattrs;
      }
      if (type === 'file') {
        this.bodyLayer[node] = L;
        this.bodyEntry[node] = entry;
        stats.fileBytes += h.size;
      } else if (type === 'symlink') this.linknames.set(node, h.linkname);
      else if (type === 'char' || type === 'block') this.devices.set(node, [h.devmajor, h.devminor]);
    }
    if (existing < 0) stats.added++;
    else {
      if (this.layer[existing]! < L) stats.modified++;
      if (this.type[existing] === DIR) {
        // Replacing a directory may drop the one the parent cache points into.
        this.lastDir = -1;
        stats.deleted += this.removeTree(existing, L);
      } else this.kill(existing);
    }
    siblings.set(base, node);
  }

  /** Ends the layer begun last: records its changeset. */
  endLayer(): void {
    const L = this.stats.length - 1;
    if (L < 0 || this.changeSlots.length !== L) throw new BerthError('BERTH_USAGE', 'file index builder: no layer begun', {});
    const start = this.layerStart;
    // A slot new in this layer sits on a path of the layers below only when a removed lower slot had that path.
    let removedPaths: Map<string, number> | undefined;
    let removedNames: Set<string> | undefined;
    if (this.removed.length > 0) {
      removedPaths = new Map();
      removedNames = new Set();
      for (const r of this.removed) {
        removedPaths.set(this.slotPath(r), r);
        removedNames.add(this.names[r]!);
      }
    }
    const back = new Set<number>();
    let live = 0;
    for (const s of this.touched) if (this.dead[s] === 0) live++;
    const ids = new Int32Array(live);
    const added = new Uint8Array(live);
    const modes = new Uint32Array(live);
    let i = 0;
    for (const s of this.touched) {
      if (this.dead[s] === 1) continue;
      let isNew = s >= start;
      if (isNew && removedNames?.has(this.names[s]!) === true) {
        const r = removedPaths!.get(this.slotPath(s));
        if (r !== undefined) {
          isNew = false;
          back.add(r);
        }
      }
      ids[i] = s;
      added[i] = isNew ? 1 : 0;
      modes[i++] = this.mode[s]!;
    }
    const deleted = this.removed.filter((r) => !back.has(r));
    this.changeSlots.push({
      ids, added, modes,
      deleted: Int32Array.from(deleted), deletedModes: Uint32Array.from(deleted, (r) => this.oldModes.get(r) ?? this.mode[r]!),
    });
    this.touched = [];
    this.removed = [];
    this.oldModes.clear();
    this.lastDir = -1;
  }

  /** The index of the layers applied (the builder is not needed afterwards). */
  finish(): FileIndex {
    if (this.stats.length > this.changeSlots.length) throw new BerthError('BERTH_USAGE', `file index builder: layer ${this.stats.length - 1} is not ended`, {});
    this.finished = true;
    const slotId = new Int32Array(this.slots).fill(-1);
    const order = new Int32Array(this.slots);
    let n = 0;
    // Walk order (depth first, name order) over a flat stack.
    const stack: number[] = [0];
    while (stack.length > 0) {
      const s = stack.pop()!;
      slotId[s] = n;
      order[n++] = s;
      const kids = this.kidMaps[s];
      if (kids === undefined || kids.size === 0) continue;
      const sorted = sortedKids(kids);
      for (let i = sorted.length - 1; i >= 0; i--) stack.push(sorted[i]!);
    }
    const live = n;
    // Slots only changesets name (paths removed by a later layer), with their removed ancestors.
    const ghost = (s: number): void => {
      if (slotId[s]! >= 0) return;
      ghost(this.parent[s]!);
      slotId[s] = n;
      order[n++] = s;
    };
    for (const c of this.changeSlots) {
      for (const s of c.ids) ghost(s);
      for (const s of c.deleted) ghost(s);
    }
    // Wasted bytes: a body is live when some path still holds it.
    const liveBytes = new Float64Array(this.stats.length);
    const seen = new Set<number>();
    for (let id = 0; id < live; id++) {
      const s = order[id]!;
      const bl = this.bodyLayer[s]!;
      if (bl < 0) continue;
      if (this.hasHardLinks) {
        const key = bodyKey(bl, this.bodyEntry[s]!);
        if (seen.has(key)) continue;
        seen.add(key);
      }
      liveBytes[bl]! += this.num[s * 4 + 2]!;
    }
    const stats = this.stats.map((s) => ({ ...s, wastedBytes: s.fileBytes - liveBytes[s.index]! }));
    const remap = (a: Int32Array): Int32Array => a.map((s) => slotId[s]!);
    const changeSets = this.changeSlots.map((c) => ({ ...c, ids: remap(c.ids), deleted: remap(c.deleted) }));
    return FileIndex.fromColumns(this, order.subarray(0, n), live, slotId, stats, changeSets);
  }

  /** The slot at a clean path without following symlinks; -1 when absent. */
  lookup(clean: string): number {
    if (clean === '') return 0;
    let cur = 0;
    for (const c of clean.split('/')) {
      const next = this.kidMaps[cur]?.get(c);
      if (next === undefined) return -1;
      cur = next;
    }
    return cur;
  }

  private newSlot(parent: number, name: string, type: number, mode: number, uid: number, gid: number, size: number, mtime: number, L: number): number {
    const s = this.slots++;
    if (s === this.parent.length) this.grow();
    this.names.push(name);
    this.parent[s] = parent;
    this.type[s] = type;
    this.mode[s] = mode;
    const s4 = s * 4;
    this.num[s4] = uid;
    this.num[s4 + 1] = gid;
    this.num[s4 + 2] = size;
    this.num[s4 + 3] = mtime;
    this.layer[s] = L;
    this.bodyLayer[s] = -1;
    this.bodyEntry[s] = -1;
    this.kidMaps.push(type === DIR ? new Map() : undefined);
    if (s > 0) this.touched.push(s);
    return s;
  }

  private grow(): void {
    const n = this.parent.length * 2;
    const more = <T extends Int32Array | Uint32Array | Uint8Array | Float64Array>(a: T, size: number): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.parent = more(this.parent, n);
    this.type = more(this.type, n);
    this.mode = more(this.mode, n);
    this.num = more(this.num, n * 4);
    this.layer = more(this.layer, n);
    this.bodyLayer = more(this.bodyLayer, n);
    this.bodyEntry = more(this.bodyEntry, n);
    this.dead = more(this.dead, n);
  }

  /** Marks a lower slot as taken by this layer (its mode below kept for the changeset). */
  private touch(s: number, L: number): void {
    if (this.layer[s] === L || s === 0) return;
    this.touched.push(s);
    if (s < this.layerStart) this.oldModes.set(s, this.mode[s]!);
  }

  private setMeta(s: number, h: UnionHeader, L: number): void {
    this.touch(s, L);
    this.mode[s] = h.mode;
    this.num[s * 4] = h.uid;
    this.num[s * 4 + 1] = h.gid;
    this.num[s * 4 + 3] = h.mtime;
    if (hasOwnKeys(h.xattrs)) this.xattrs.set(s, h.xattrs);
    else this.xattrs.delete(s);
    this.layer[s] = L;
  }

  private kill(s: number): void {
    this.dead[s] = 1;
    if (s < this.layerStart) this.removed.push(s);
  }

  /** Removes a replaced directory's subtree; returns how many nodes below it came from layers before L. */
  private removeTree(s: number, L: number): number {
    this.kill(s);
    let count = 0;
    for (const c of (this.kidMaps[s] ?? NO_KIDS).values()) {
      if (this.layer[c]! < L) count++;
      count += this.removeTree(c, L);
    }
    return count;
  }

  private ensureDir(clean: string, L: number, stats: LayerStats, markLayer: boolean): number {
    let cur = 0;
    if (clean !== '') {
      for (const c of clean.split('/')) {
        const kids = this.kidMaps[cur]!;
        const child = kids.get(c);
        if (child !== undefined && this.type[child] === DIR) {
          cur = child;
          continue;
        }
        const dir = this.newSlot(cur, c, DIR, 0o755, 0, 0, 0, 0, L);
        if (child === undefined) stats.added++;
        else {
          if (this.layer[child]! < L) stats.modified++;
          this.kill(child);
        }
        kids.set(c, dir);
        cur = dir;
      }
    }
    // An opaque directory belongs to the layer that marks it.
    if (markLayer && this.layer[cur]! < L && cur !== 0) {
      this.touch(cur, L);
      this.layer[cur] = L;
    }
    return cur;
  }

  /** Hides the lower-layer content at parent/name: removes it, keeping what layer L added there. */
  private hide(parent: number, name: string, L: number, stats: LayerStats): void {
    this.lastDir = -1;
    const c = this.kidMaps[parent]!.get(name)!;
    const kids = this.kidMaps[c];
    if (kids !== undefined) for (const k of kids.keys()) this.hide(c, k, L, stats);
    if (this.layer[c]! < L && (kids === undefined || kids.size === 0)) {
      this.kidMaps[parent]!.delete(name);
      stats.deleted++;
      this.kill(c);
    }
  }

  private slotPath(s: number): string {
    const parts: string[] = [];
    for (let cur = s; cur > 0; cur = this.parent[cur]!) parts.push(this.names[cur]!);
    return parts.reverse().join('/');
  }
}

/** A directory's children slots in name order. */
function sortedKids(children: Map<string, number>): number[] {
  const names = [...children.keys()];
  // Layers are mostly written in name order: then the insertion order is the answer, without a sort.
  let sorted = true;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (hasSurrogate(name)) {
      sorted = false;
      names.sort(compareNames);
      break;
    }
    if (sorted && i > 0 && !(names[i - 1]! < name)) sorted = false;
  }
  if (sorted) return [...children.values()];
  if (!names.some(hasSurrogate)) names.sort();
  return names.map((k) => children.get(k)!);
}

function hasOwnKeys(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/** Whether a name holds a UTF-16 surrogate (then compareNames differs from plain string order). */
function hasSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) return true;
  }
  return false;
}

export interface FileIndexCacheStats {
  /** Indexes built (each one pass over the layers). */
  builds: number;
  /** Requests served by an index built (or being built) before. */
  hits: number;
}

/**
 * A bounded LRU of file indexes, keyed by what identifies an image's filesystem exactly: its
 * manifest digest (which pins every layer digest) and how many layers are applied. Two images
 * with different manifests never share an entry. Concurrent requests for one key share one build;
 * a failed build is forgotten.
 */
export class FileIndexCache {
  readonly stats: FileIndexCacheStats = { builds: 0, hits: 0 };
  private readonly map = new Map<string, Promise<FileIndex>>();

  constructor(readonly max = 4) {
    if (!Number.isInteger(max) || max < 1) throw new BerthError('BERTH_USAGE', `file index cache: max must be a positive integer (got ${max})`, { got: max });
  }

  get(manifest: string, layers: number, build: () => Promise<FileIndex>): Promise<FileIndex> {
    const key = `${manifest} ${layers}`;
    const hit = this.map.get(key);
    if (hit !== undefined) {
      this.stats.hits++;
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    this.stats.builds++;
    const p = build();
    this.map.set(key, p);
    p.catch(() => { if (this.map.get(key) === p) this.map.delete(key); });
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
    return p;
  }

  /** Keys held, least recently used first (`<manifest digest> <layers applied>`). */
  keys(): string[] {
    return [...this.map.keys()];
  }

  clear(): void {
    this.map.clear();
  }
}
