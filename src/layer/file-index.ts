/**
 * A compact, immutable index of a union's paths: what listing, search and single-file reads need,
 * without file bodies. Built once from a LayerUnion (one pass over the layers), then a directory
 * listing costs O(children) and a lookup O(depth × log(children)), however large the image.
 *
 * Nodes are numbered in walk order (depth first, name order, a directory before its children),
 * so a subtree is one contiguous id range and a directory's children are one slice of `kids`.
 * Per node: a name string and a few typed-array slots (~80 bytes); link targets, devices and
 * xattrs are kept sparsely.
 */
import { BerthError } from '../core/errors.js';
import { resolveInRoot, type ProbeResult } from './safe-path.js';
import { cleanLookupPath, compareNames, type BodyRef, type LayerStats, type LayerUnion, type NodeType, type UnionNode } from './union.js';

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

  private constructor(n: number, layers: readonly LayerStats[]) {
    this.size = n;
    this.layers = layers;
    this.names = new Array<string>(n);
    this.parent = new Int32Array(n);
    this.type = new Uint8Array(n);
    this.mode = new Uint32Array(n);
    this.num = new Float64Array(n * 4);
    this.layer = new Int32Array(n);
    this.bodyLayer = new Int32Array(n);
    this.bodyEntry = new Int32Array(n);
    this.links = new Uint32Array(n);
    this.kidStart = new Int32Array(n + 1);
    this.kids = new Int32Array(Math.max(0, n - 1));
    this.end = new Int32Array(n);
  }

  /** Indexes a built union (which is not kept: it can be dropped afterwards). */
  static fromUnion(union: LayerUnion): FileIndex {
    const stats = union.layers.map((s) => ({ ...s }));
    const nodes: UnionNode[] = [];
    const parents: number[] = [];
    const names: string[] = [];
    // Same order as LayerUnion.walk, without building path strings; three parallel stacks (no tuple per node).
    const stackNode: UnionNode[] = [union.root];
    const stackParent: number[] = [-1];
    const stackName: string[] = [''];
    while (stackNode.length > 0) {
      const n = stackNode.pop()!;
      const id = nodes.length;
      nodes.push(n);
      parents.push(stackParent.pop()!);
      names.push(stackName.pop()!);
      if (n.children === undefined || n.children.size === 0) continue;
      const [kidNames, kidNodes] = sortedChildren(n.children);
      for (let i = kidNames.length - 1; i >= 0; i--) {
        stackNode.push(kidNodes[i]!);
        stackParent.push(id);
        stackName.push(kidNames[i]!);
      }
    }
    const ix = new FileIndex(nodes.length, stats);
    // Link counts need a pass only when some entry was a hard link (otherwise every body has one path).
    const bodies = new Map<BodyRef, number>();
    if (union.hasHardLinks) for (const n of nodes) if (n.body !== undefined) bodies.set(n.body, (bodies.get(n.body) ?? 0) + 1);
    for (let id = 0; id < nodes.length; id++) {
      const n = nodes[id]!;
      ix.names[id] = names[id]!;
      ix.parent[id] = parents[id]!;
      ix.type[id] = TYPE_CODE[n.type];
      ix.mode[id] = n.mode;
      ix.num[id * 4] = n.uid;
      ix.num[id * 4 + 1] = n.gid;
      ix.num[id * 4 + 2] = n.type === 'file' ? n.size : 0;
      ix.num[id * 4 + 3] = n.mtime;
      ix.layer[id] = n.layer;
      ix.bodyLayer[id] = n.body?.layer ?? -1;
      ix.bodyEntry[id] = n.body?.entry ?? -1;
      ix.links[id] = n.body === undefined ? 1 : (bodies.get(n.body) ?? 1);
      if (n.type === 'symlink') ix.linknames.set(id, n.linkname);
      if (n.type === 'char' || n.type === 'block') ix.devices.set(id, [n.devmajor, n.devminor]);
      if (n.xattrs !== undefined) ix.xattrs.set(id, n.xattrs);
    }
    // Children appear in id order under their parent (walk order), already sorted by name.
    const count = new Int32Array(nodes.length + 1);
    for (let id = 1; id < nodes.length; id++) count[ix.parent[id]! + 1]!++;
    for (let i = 0; i < nodes.length; i++) ix.kidStart[i + 1] = ix.kidStart[i]! + count[i + 1]!;
    const fill = ix.kidStart.slice(0, nodes.length);
    for (let id = 1; id < nodes.length; id++) ix.kids[fill[ix.parent[id]!]!++] = id;
    for (let id = 0; id < nodes.length; id++) ix.end[id] = id + 1;
    for (let id = nodes.length - 1; id > 0; id--) {
      const p = ix.parent[id]!;
      if (ix.end[id]! > ix.end[p]!) ix.end[p] = ix.end[id]!;
    }
    return ix;
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

/** A directory's children as [names, nodes], in name order. */
function sortedChildren(children: Map<string, UnionNode>): [string[], UnionNode[]] {
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
  if (sorted) return [names, [...children.values()]];
  if (!names.some(hasSurrogate)) names.sort();
  return [names, names.map((k) => children.get(k)!)];
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
