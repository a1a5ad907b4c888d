/**
 * The filesystem side of berth by reference: what each layer does, list and read files of the
 * union, export the flattened filesystem, unpack securely, and compare two images. Every layer
 * byte is verified twice as it streams: the compressed blob against its descriptor and the
 * uncompressed tar against the config's diff_id. Nothing is buffered: the union keeps metadata
 * only, and bodies are copied from the layer streams as they pass.
 */
import type { Descriptor } from './core/descriptor.js';
import { createDigester, shortDigest, type Digest } from './core/digest.js';
import { configDiffIds, historyForLayers } from './core/config.js';
import { BerthError, withContext } from './core/errors.js';
import { classifyMediaType } from './core/media-types.js';
import { openVerified } from './content/store.js';
import { decompress, detectCompression } from './io/codec.js';
import { writeStreamAtomic } from './io/atomic-file.js';
import type { ByteStream, IoOptions, Opener } from './io/stream.js';
import { verifyStream } from './io/verify.js';
import { resolveImage, type ResolvedImage } from './image/resolve.js';
import { extractLayers, type ExtractLimits, type ExtractResult } from './layer/extract.js';
import { flattenIndex, wantedEntries } from './layer/flatten.js';
import { LayerUnion, type BodyRef, type NodeType, type UnionNode } from './layer/union.js';
import { FileIndexBuilder, FileIndexCache, type FileIndex, type IndexChange } from './layer/file-index.js';
import { parseImageName } from './transports/all.js';
import type { ImageSource } from './transports/transport.js';
import type { ReadOptions } from './images.js';

interface OpenedImage {
  readonly reference: string;
  readonly image: ResolvedImage;
  readonly diffIds: readonly Digest[];
  /** Uncompressed, verified layer tars (compressed digest and diff_id), index i = layer i. */
  readonly openers: readonly Opener[];
  /** The same without the diff_id check (for callers that check it themselves). */
  readonly plainOpeners: readonly Opener[];
}

function layerWhat(i: number, desc: Descriptor): string {
  return `layer ${i} ${shortDigest(desc.digest)}`;
}

async function openImage(src: ImageSource, opts: ReadOptions): Promise<OpenedImage> {
  const where = src.reference.toString();
  const root = await src.root(opts);
  const image = await resolveImage(src, root.descriptor, { ...opts, where });
  if (image.config === undefined) {
    throw new BerthError('BERTH_UNSUPPORTED', `${where}: config ${shortDigest(image.manifest.config.digest)} has media type ${image.manifest.config.mediaType}, not an image config (an artifact has no filesystem)`, {
      subject: image.manifest.config.digest,
    });
  }
  const diffIds = configDiffIds(image.config);
  const layers = image.manifest.layers;
  if (diffIds.length !== layers.length) {
    throw new BerthError('BERTH_INVALID_CONFIG', `${where}: config lists ${diffIds.length} diff_ids for ${layers.length} layers (rootfs.diff_ids)`, {
      path: 'rootfs.diff_ids', want: layers.length, got: diffIds.length,
    });
  }
  const plainOpeners = layers.map((desc, i): Opener => {
    const what = layerWhat(i, desc);
    const kind = classifyMediaType(desc.mediaType);
    if (kind.kind !== 'layer' || kind.encrypted === true) {
      throw new BerthError('BERTH_UNSUPPORTED', `${where}: ${what} has media type ${desc.mediaType}, not a (decryptable) layer tar`, { subject: desc.digest, got: desc.mediaType });
    }
    return async (o?: IoOptions) => {
      const raw = await openVerified(src, desc, { ...o, what });
      const { compression, stream } = await detectCompression(raw, { what });
      return decompress(stream, compression, { what, ...(o?.signal ? { signal: o.signal } : {}) });
    };
  });
  const openers = plainOpeners.map((open, i): Opener => async (o?: IoOptions) => verifyStream(await open(o), {
    digest: diffIds[i]!, what: `${layerWhat(i, layers[i]!)} (uncompressed, against diff_id ${shortDigest(diffIds[i]!)})`,
  }));
  return { reference: where, image, diffIds, openers, plainOpeners };
}

async function buildUnion(img: OpenedImage, upTo: number | undefined, opts: IoOptions): Promise<LayerUnion> {
  const union = new LayerUnion();
  const last = upTo ?? img.openers.length - 1;
  for (let i = 0; i <= last; i++) {
    try {
      await union.addLayer(await img.openers[i]!(opts), opts);
    } catch (err) {
      throw withContext(err, `reading ${layerWhat(i, img.image.manifest.layers[i]!)} of ${img.reference}`);
    }
  }
  return union;
}

export { FileIndexCache };
export type { FileIndexCacheStats } from './layer/file-index.js';

export interface IndexOptions {
  /**
   * Keeps the file index of each image (by manifest digest and layers applied) for later calls:
   * the layers are read once, then listings and lookups cost no layer read at all.
   */
  readonly fileIndexCache?: FileIndexCache;
}

/** The path index of layers 0..upTo (default all), from the cache when one is given. */
async function fileIndexOf(img: OpenedImage, upTo: number | undefined, opts: IoOptions & IndexOptions): Promise<FileIndex> {
  const build = async (): Promise<FileIndex> => {
    // Straight from the layer tars into compact columns (no union of node objects on the way).
    const b = new FileIndexBuilder();
    const last = upTo ?? img.openers.length - 1;
    for (let i = 0; i <= last; i++) {
      try {
        await b.addLayer(await img.openers[i]!(opts), opts);
      } catch (err) {
        throw withContext(err, `reading ${layerWhat(i, img.image.manifest.layers[i]!)} of ${img.reference}`);
      }
    }
    return b.finish();
  };
  const cache = opts.fileIndexCache;
  return cache === undefined ? build() : cache.get(img.image.descriptor.digest, (upTo ?? img.openers.length - 1) + 1, build);
}

/** Opens a source that stays open until the returned stream ends (or fails). */
async function* withSourceStream(text: string, opts: IoOptions, fn: (src: ImageSource) => AsyncIterable<Uint8Array>): ByteStream {
  const ref = await parseImageName(text);
  const src = await ref.openSource(opts);
  try {
    yield* fn(src);
  } finally {
    await src.close();
  }
}

async function withImage<T>(text: string, opts: ReadOptions, fn: (img: OpenedImage) => Promise<T>): Promise<T> {
  const ref = await parseImageName(text);
  const src = await ref.openSource(opts);
  try {
    return await fn(await openImage(src, opts));
  } finally {
    await src.close();
  }
}

// ---------------------------------------------------------------------------------------------
// layers

export interface LayerInfo {
  readonly index: number;
  readonly digest: string;
  readonly mediaType: string;
  /** Compressed (blob) size. */
  readonly size: number;
  readonly diffId: string;
  /** Bytes of the uncompressed tar. */
  readonly uncompressedSize: number;
  readonly entries: number;
  readonly filesAdded: number;
  readonly filesModified: number;
  readonly filesDeleted: number;
  readonly whiteouts: number;
  readonly opaqueDirs: number;
  /** Bytes of file bodies the layer stores. */
  readonly fileBytes: number;
  /** Of those, bytes a later layer overwrites or deletes (not visible in the image). */
  readonly wastedBytes: number;
  readonly history: { readonly created?: string; readonly createdBy?: string; readonly comment?: string } | undefined;
}

export interface LayersResult {
  readonly reference: string;
  readonly manifest: string;
  readonly layers: readonly LayerInfo[];
  readonly totals: { readonly size: number; readonly uncompressedSize: number; readonly fileBytes: number; readonly wastedBytes: number; readonly files: number };
}

/** Every layer of one image with what it does to the filesystem (reads every layer once). */
export async function layersOf(text: string, opts: ReadOptions & IndexOptions = {}): Promise<LayersResult> {
  return withImage(text, opts, async (img) => {
    const ix = await fileIndexOf(img, undefined, opts);
    const history = new Map<number, LayerInfo['history']>();
    for (const row of historyForLayers(img.image.config!)) {
      if (row.layerIndex === undefined || row.entry === undefined) continue;
      const e = row.entry;
      history.set(row.layerIndex, {
        ...(e.created ? { created: e.created } : {}), ...(e.created_by ? { createdBy: e.created_by } : {}), ...(e.comment ? { comment: e.comment } : {}),
      });
    }
    const layers = ix.layers.map((s): LayerInfo => {
      const desc = img.image.manifest.layers[s.index]!;
      return {
        index: s.index, digest: desc.digest, mediaType: desc.mediaType, size: desc.size, diffId: img.diffIds[s.index]!,
        uncompressedSize: s.tarBytes, entries: s.entries, filesAdded: s.added, filesModified: s.modified, filesDeleted: s.deleted,
        whiteouts: s.whiteouts, opaqueDirs: s.opaqueDirs, fileBytes: s.fileBytes, wastedBytes: s.wastedBytes, history: history.get(s.index),
      };
    });
    const sum = (f: (l: LayerInfo) => number): number => layers.reduce((n, l) => n + f(l), 0);
    return {
      reference: img.reference, manifest: img.image.descriptor.digest, layers,
      totals: { size: sum((l) => l.size), uncompressedSize: sum((l) => l.uncompressedSize), fileBytes: sum((l) => l.fileBytes), wastedBytes: sum((l) => l.wastedBytes), files: ix.count() },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// ls, cat

export interface FileInfo {
  /** Absolute path inside the image (`/` for the root). */
  readonly path: string;
  readonly type: NodeType;
  /** Permission bits with setuid/setgid/sticky (12 bits). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  /** Symlink target. */
  readonly linkTarget?: string;
  /** Device numbers (char and block devices). */
  readonly device?: { readonly major: number; readonly minor: number };
  /** Paths sharing this file's body (hard links), when more than one. */
  readonly links?: number;
  /** Index of the layer the entry comes from (-1: the root, never listed by a layer). */
  readonly layer: number;
}

export interface ListOptions extends ReadOptions, IndexOptions {
  /** Directory or file to list (default `/`); symlinks on the way are followed inside the image, the last one only with a trailing `/`. */
  readonly path?: string;
  /** The filesystem as of this layer (layers 0..N applied); default all. */
  readonly layer?: number;
  /** The whole subtree instead of the children. */
  readonly recursive?: boolean;
}

export interface ListResult {
  readonly reference: string;
  readonly path: string;
  readonly layers: number;
  readonly entries: readonly FileInfo[];
}

function displayPath(clean: string): string {
  return `/${clean}`;
}

function fileInfo(ix: FileIndex, id: number, path: string): FileInfo {
  const n = ix.entry(id, path);
  return {
    path: displayPath(path), type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, mtime: n.mtime,
    ...(n.type === 'symlink' ? { linkTarget: n.linkname } : {}),
    ...(n.type === 'char' || n.type === 'block' ? { device: { major: n.devmajor, minor: n.devminor } } : {}),
    ...(n.links > 1 ? { links: n.links } : {}),
    layer: n.layer,
  };
}

function checkLayer(img: OpenedImage, layer: number | undefined, doing: string): void {
  const count = img.openers.length;
  if (layer !== undefined && (!Number.isInteger(layer) || layer < 0 || layer >= count)) {
    throw new BerthError('BERTH_USAGE', `${doing} ${img.reference}: no layer ${layer} (the image has ${count}, numbered from 0)`, { want: `0…${count - 1}`, got: layer });
  }
}

/** Lists files of the union (children of a directory, or the whole subtree): O(entries listed) once the index is built. */
export async function listFiles(text: string, opts: ListOptions = {}): Promise<ListResult> {
  return withImage(text, opts, async (img) => {
    checkLayer(img, opts.layer, 'listing');
    const ix = await fileIndexOf(img, opts.layer, opts);
    const asked = opts.path ?? '/';
    const { path, id } = await ix.resolve(asked, { followFinal: asked.endsWith('/') || asked.endsWith('/.') });
    if (id < 0) throw new BerthError('BERTH_NOT_FOUND', `${img.reference}: no ${JSON.stringify(asked)} in the image${opts.layer !== undefined ? ` as of layer ${opts.layer}` : ''}`, { subject: asked });
    const entries: FileInfo[] = [];
    if (ix.typeOf(id) !== 'directory') entries.push(fileInfo(ix, id, path));
    else if (opts.recursive === true) {
      for (const [i, p] of ix.walk(id)) if (i !== id) entries.push(fileInfo(ix, i, p));
    } else {
      const prefix = path === '' ? '' : `${path}/`;
      for (const i of ix.children(id)) entries.push(fileInfo(ix, i, prefix + ix.nameOf(i)));
    }
    return { reference: img.reference, path: displayPath(path), layers: opts.layer !== undefined ? opts.layer + 1 : img.openers.length, entries };
  });
}

export interface SearchOptions extends ReadOptions, IndexOptions {
  /** Entries returned at most (default 500); `total` still counts every match. */
  readonly limit?: number;
  /** The filesystem as of this layer (layers 0..N applied); default all. */
  readonly layer?: number;
}

export interface SearchResult {
  readonly reference: string;
  readonly query: string;
  /** Paths that match, in the whole image. */
  readonly total: number;
  /** The first `limit` of them, in walk order (depth first, by name). */
  readonly entries: readonly FileInfo[];
}

/** Paths of the image (`/a/b`) holding `query`, case-insensitively. */
export async function searchFiles(text: string, query: string, opts: SearchOptions = {}): Promise<SearchResult> {
  return withImage(text, opts, async (img) => {
    checkLayer(img, opts.layer, 'searching');
    const limit = opts.limit ?? 500;
    const ix = await fileIndexOf(img, opts.layer, opts);
    const entries: FileInfo[] = [];
    let total = 0;
    for (const i of ix.matching(query)) {
      total++;
      if (entries.length < limit) entries.push(fileInfo(ix, i, ix.pathOf(i)));
    }
    return { reference: img.reference, query, total, entries };
  });
}

export interface LayerChangesOptions extends ReadOptions, IndexOptions {
  /** Paths returned per list at most (the first in walk order); counts still count every path. Default all. */
  readonly max?: number;
}

export interface FileChange {
  /** Absolute path inside the image. */
  readonly path: string;
  readonly type: NodeType;
  readonly size: number;
  /** As of the layer (added, modified) or of the layer below it (deleted). */
  readonly mode: number;
  readonly linkTarget?: string;
}

export interface LayerChangesResult {
  readonly reference: string;
  readonly layer: number;
  readonly counts: { readonly added: number; readonly modified: number; readonly deleted: number };
  /** Paths absent below the layer. */
  readonly added: readonly FileChange[];
  /** Paths present below that the layer replaces or changes. */
  readonly modified: readonly FileChange[];
  /** Paths present below that the layer removes. */
  readonly deleted: readonly FileChange[];
}

/**
 * What one layer does to the filesystem of the layers below it. Comes from the image's one file
 * index (shared with listings when a cache is given), not from listings as of two layers.
 */
export async function layerChanges(text: string, layer: number, opts: LayerChangesOptions = {}): Promise<LayerChangesResult> {
  return withImage(text, opts, async (img) => {
    checkLayer(img, layer, 'changes of');
    const ix = await fileIndexOf(img, undefined, opts);
    const c = ix.changes(layer, opts.max);
    const out = (l: readonly IndexChange[]): FileChange[] => l.map((e) => ({
      path: displayPath(e.path), type: e.type, size: e.size, mode: e.mode, ...(e.type === 'symlink' ? { linkTarget: e.linkname } : {}),
    }));
    return { reference: img.reference, layer, counts: c.counts, added: out(c.added), modified: out(c.modified), deleted: out(c.deleted) };
  });
}

export interface ReadFileResult {
  /** The path read, after following symlinks inside the image. */
  readonly path: string;
  readonly size: number;
  readonly layer: number;
  /** The bytes; the source closes at its end. The layer is read to its end so both digests are checked before the stream ends. */
  readonly stream: ByteStream;
}

/** The content of one regular file of the image, following symlinks inside the image root only. */
export async function readFile(text: string, path: string, opts: ReadOptions & IndexOptions = {}): Promise<ReadFileResult> {
  const ref = await parseImageName(text);
  const src = await ref.openSource(opts);
  try {
    const img = await openImage(src, opts);
    const ix = await fileIndexOf(img, undefined, opts);
    const r = await ix.resolve(path, { followFinal: true });
    if (r.id < 0) throw new BerthError('BERTH_NOT_FOUND', `${img.reference}: no ${JSON.stringify(path)} in the image`, { subject: path });
    const node = ix.entry(r.id, r.path);
    if (node.type !== 'file' || node.body === undefined) {
      throw new BerthError('BERTH_UNSUPPORTED', `${img.reference}: ${JSON.stringify(path)} is a ${node.type}, not a regular file`, { subject: path, got: node.type });
    }
    const body = node.body;
    async function* content(): ByteStream {
      try {
        const wanted = new Map([[body.layer, new Map([[body.entry, true]])]]);
        for await (const { entry } of wantedEntries(img.openers, wanted, opts)) yield* entry.body();
      } finally {
        await src.close();
      }
    }
    return { path: displayPath(r.path), size: body.size, layer: body.layer, stream: content() };
  } catch (err) {
    await src.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// export, unpack

/** The flattened filesystem of one image as a tar stream (whiteouts resolved, hard links kept). */
export function exportFlattened(text: string, opts: ReadOptions = {}): ByteStream {
  return withSourceStream(text, opts, async function* (src) {
    const img = await openImage(src, opts);
    // the compact index, not a union of node objects: 200k paths stay well under 100 MiB
    const index = await fileIndexOf(img, undefined, opts);
    yield* flattenIndex(index, img.openers, opts);
  });
}

/** Writes the flattened filesystem to `file` atomically (temp file, then rename); returns the byte count. */
export async function exportFlattenedToFile(text: string, file: string, opts: ReadOptions = {}): Promise<number> {
  return writeStreamAtomic(file, exportFlattened(text, opts));
}

export interface UnpackOptions extends ReadOptions {
  /** Unpack into a directory that is not empty. */
  readonly force?: boolean;
  readonly limits?: ExtractLimits;
  /** Act as root (ownership, setuid, devices); default: whether the process is root. */
  readonly privileged?: boolean;
  readonly onWarning?: (message: string) => void;
}

export interface UnpackResult extends ExtractResult {
  readonly reference: string;
  readonly manifest: string;
  readonly directory: string;
}

/** Unpacks one image into `dir` securely (nothing outside `dir` is touched), checking every diff_id. */
export async function unpack(text: string, dir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  return withImage(text, opts, async (img) => {
    const layers = img.plainOpeners.map((open, i) => ({ open, diffId: img.diffIds[i]!, what: layerWhat(i, img.image.manifest.layers[i]!) }));
    const r = await extractLayers(layers, dir, opts);
    return { ...r, reference: img.reference, manifest: img.image.descriptor.digest, directory: dir };
  });
}

// ---------------------------------------------------------------------------------------------
// diff

export interface DiffSide {
  readonly type: NodeType;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** sha256 of a regular file's content. */
  readonly digest?: string;
  readonly linkTarget?: string;
}

export interface DiffEntry {
  readonly path: string;
  /** Present for removed and modified paths. */
  readonly before?: DiffSide;
  /** Present for added and modified paths. */
  readonly after?: DiffSide;
  /** For modified paths: what differs (type, content, size, mode, owner, link target, device). */
  readonly changes?: readonly string[];
}

export interface DiffResult {
  readonly a: string;
  readonly b: string;
  readonly added: readonly DiffEntry[];
  readonly removed: readonly DiffEntry[];
  readonly modified: readonly DiffEntry[];
  readonly summary: {
    readonly added: number;
    readonly removed: number;
    readonly modified: number;
    readonly unchanged: number;
    readonly bytesAdded: number;
    readonly bytesRemoved: number;
  };
}

export interface DiffOptions extends IoOptions {
  readonly platformA?: ReadOptions['platform'];
  readonly platformB?: ReadOptions['platform'];
  readonly platform?: ReadOptions['platform'];
}

/**
 * Compares the filesystems of two images: paths added, removed and modified (type, content,
 * size, mode, owner, link target; mtimes are ignored). Contents are compared by sha256; a file
 * that comes from the same entry of a layer both images share is known equal without reading it.
 */
export async function diffImages(textA: string, textB: string, opts: DiffOptions = {}): Promise<DiffResult> {
  const optsA: ReadOptions = { ...opts, ...(opts.platformA ?? opts.platform ? { platform: opts.platformA ?? opts.platform } : {}) };
  const optsB: ReadOptions = { ...opts, ...(opts.platformB ?? opts.platform ? { platform: opts.platformB ?? opts.platform } : {}) };
  return withImage(textA, optsA, (a) => withImage(textB, optsB, async (b) => {
    const ua = await buildUnion(a, undefined, opts);
    const ub = await buildUnion(b, undefined, opts);
    const before = new Map<string, UnionNode>();
    for (const [p, n] of ua.walk()) if (p !== '') before.set(p, n);
    const pairs: Array<[string, UnionNode | undefined, UnionNode | undefined]> = [];
    for (const [p, n] of ub.walk()) {
      if (p === '') continue;
      pairs.push([p, before.get(p), n]);
      before.delete(p);
    }
    for (const [p, n] of before) pairs.push([p, n, undefined]);
    const sameBody = (x: BodyRef, y: BodyRef): boolean => x.entry === y.entry && a.diffIds[x.layer] === b.diffIds[y.layer];
    const needA = new Map<number, Map<number, BodyRef>>();
    const needB = new Map<number, Map<number, BodyRef>>();
    const need = (m: Map<number, Map<number, BodyRef>>, ref: BodyRef): void => {
      let inner = m.get(ref.layer);
      if (inner === undefined) m.set(ref.layer, (inner = new Map()));
      inner.set(ref.entry, ref);
    };
    const metaSame = (x: UnionNode, y: UnionNode): boolean =>
      x.type === y.type && x.mode === y.mode && x.uid === y.uid && x.gid === y.gid && x.linkname === y.linkname && x.size === y.size && x.devmajor === y.devmajor && x.devminor === y.devminor;
    let unchanged = 0;
    const kept: typeof pairs = [];
    for (const pair of pairs) {
      const [, x, y] = pair;
      if (x !== undefined && y !== undefined && metaSame(x, y) && (x.body === undefined || (y.body !== undefined && sameBody(x.body, y.body)))) {
        unchanged++;
        continue;
      }
      if (x?.body !== undefined) need(needA, x.body);
      if (y?.body !== undefined) need(needB, y.body);
      kept.push(pair);
    }
    const digestsA = await hashBodies(a.openers, needA, opts);
    const digestsB = await hashBodies(b.openers, needB, opts);
    const side = (n: UnionNode, digests: Map<BodyRef, string>): DiffSide => ({
      type: n.type, size: n.type === 'file' ? n.size : 0, mode: n.mode, uid: n.uid, gid: n.gid,
      ...(n.body !== undefined ? { digest: digests.get(n.body)! } : {}),
      ...(n.type === 'symlink' ? { linkTarget: n.linkname } : {}),
    });
    const added: DiffEntry[] = [];
    const removed: DiffEntry[] = [];
    const modified: DiffEntry[] = [];
    for (const [p, x, y] of kept) {
      const path = displayPath(p);
      if (x === undefined) added.push({ path, after: side(y!, digestsB) });
      else if (y === undefined) removed.push({ path, before: side(x, digestsA) });
      else {
        const bs = side(x, digestsA);
        const as = side(y, digestsB);
        const changes: string[] = [];
        if (bs.type !== as.type) changes.push('type');
        if (bs.digest !== as.digest && bs.type === as.type) changes.push('content');
        if (bs.size !== as.size) changes.push('size');
        if (bs.mode !== as.mode) changes.push('mode');
        if (bs.uid !== as.uid || bs.gid !== as.gid) changes.push('owner');
        if (bs.linkTarget !== as.linkTarget) changes.push('link target');
        if (x.devmajor !== y.devmajor || x.devminor !== y.devminor) changes.push('device');
        if (changes.length === 0) unchanged++;
        else modified.push({ path, before: bs, after: as, changes });
      }
    }
    const byPath = (m: DiffEntry, n: DiffEntry): number => (m.path < n.path ? -1 : m.path > n.path ? 1 : 0);
    added.sort(byPath);
    removed.sort(byPath);
    modified.sort(byPath);
    return {
      a: a.reference, b: b.reference, added, removed, modified,
      summary: {
        added: added.length, removed: removed.length, modified: modified.length, unchanged,
        bytesAdded: added.reduce((n, e) => n + (e.after?.size ?? 0), 0), bytesRemoved: removed.reduce((n, e) => n + (e.before?.size ?? 0), 0),
      },
    };
  }));
}

async function hashBodies(openers: readonly Opener[], wanted: Map<number, Map<number, BodyRef>>, opts: IoOptions): Promise<Map<BodyRef, string>> {
  const out = new Map<BodyRef, string>();
  for await (const { entry, item } of wantedEntries(openers, wanted, opts)) {
    const d = createDigester();
    for await (const chunk of entry.body()) d.update(chunk);
    out.set(item, d.digest());
  }
  return out;
}
