/**
 * Flattening: the union of a stack of layers as one tar stream, whiteouts resolved (no markers
 * in the output). Bodies are never held in memory: after the union is built (one pass over the
 * layers), the output streams directories, symlinks, devices and FIFOs from the union's metadata,
 * then regular files layer by layer, re-reading each layer that still holds visible bytes exactly
 * once, in order, and copying each visible body straight from the layer to the output.
 * Hard links (paths sharing one body) come out as one regular file followed by type-1 links.
 */
import { BerthError } from '../core/errors.js';
import type { ByteStream, IoOptions, Opener } from '../io/stream.js';
import type { TarHeader } from '../tar/header.js';
import { readTar, type TarEntry } from '../tar/reader.js';
import { writeTar, type TarWriteEntry } from '../tar/writer.js';
import type { FileIndex, IndexEntry } from './file-index.js';
import type { BodyRef, LayerUnion, UnionNode } from './union.js';

/**
 * Reads each layer that has wanted entries once, in layer order, and yields every wanted entry
 * with its item. The consumer must read (or ignore) `entry.body()` before asking for the next
 * one. Each layer is read to its end, so a verifying opener checks all of it.
 */
export async function* wantedEntries<T>(layers: readonly Opener[], wanted: ReadonlyMap<number, ReadonlyMap<number, T>>, opts: IoOptions = {}): AsyncGenerator<{ layer: number; entry: TarEntry; item: T }> {
  const order = [...wanted.keys()].sort((a, b) => a - b);
  for (const layer of order) {
    const items = wanted.get(layer)!;
    if (items.size === 0) continue;
    const open = layers[layer];
    if (open === undefined) throw new RangeError(`no opener for layer ${layer}`);
    const it = (await open(opts))[Symbol.asyncIterator]();
    // The tar reader gets a view it cannot close: after the last wanted entry, the rest of the
    // layer is drained without parsing (a verifying opener still checks every byte at its end).
    const view: ByteStream = { [Symbol.asyncIterator]: () => ({ next: () => it.next(), return: () => Promise.resolve({ done: true, value: undefined }) }) };
    let left = items.size;
    let drained = false;
    try {
      for await (const entry of readTar(view, opts.signal ? { signal: opts.signal } : {})) {
        const item = items.get(entry.index);
        if (item === undefined) continue;
        yield { layer, entry, item };
        if (--left === 0) break;
      }
      for (;;) {
        if (opts.signal?.aborted === true) throw new BerthError('BERTH_ABORTED', `reading layer ${layer}: aborted`, { cause: opts.signal.reason });
        if ((await it.next()).done === true) break;
      }
      drained = true;
    } finally {
      if (!drained) await it.return?.();
    }
  }
}

/** The tar header of a union node (or file index entry) at `path` (directories get a trailing slash). */
export function headerOf(path: string, n: UnionNode | IndexEntry): { -readonly [K in keyof TarHeader]?: TarHeader[K] } & { name: string; type: TarHeader['type'] } {
  return {
    name: n.type === 'directory' ? `${path}/` : path,
    type: n.type,
    mode: n.mode,
    uid: n.uid,
    gid: n.gid,
    size: n.type === 'file' ? n.size : 0,
    mtime: n.mtime,
    linkname: n.linkname,
    devmajor: n.devmajor,
    devminor: n.devminor,
    xattrs: n.xattrs ?? {},
  };
}

/**
 * The flattened file system of `union` as a tar stream. `layers` must open the same
 * uncompressed layer tars the union was built from (index i = layer i).
 */
export function flattenUnion(union: LayerUnion, layers: readonly Opener[], opts: IoOptions = {}): ByteStream {
  return writeTar(flattenEntries(union, layers, opts), opts);
}

async function* flattenEntries(union: LayerUnion, layers: readonly Opener[], opts: IoOptions): AsyncGenerator<TarWriteEntry> {
  // Paths (with their nodes) of each visible body, first path first (walk order), grouped by layer and entry.
  const paths = new Map<BodyRef, [string, UnionNode][]>();
  const wanted = new Map<number, Map<number, BodyRef>>();
  for (const item of union.walk()) {
    const [path, n] = item;
    if (path === '') continue;
    if (n.type !== 'file' || n.body === undefined) {
      yield { header: headerOf(path, n) };
      continue;
    }
    const list = paths.get(n.body);
    if (list !== undefined) {
      list.push(item);
      continue;
    }
    paths.set(n.body, [item]);
    let m = wanted.get(n.body.layer);
    if (m === undefined) wanted.set(n.body.layer, (m = new Map()));
    m.set(n.body.entry, n.body);
  }
  for await (const { entry, item } of wantedEntries(layers, wanted, opts)) {
    const list = paths.get(item)!;
    const [first, node] = list[0]!;
    const header = headerOf(first, node);
    header.size = item.size;
    yield { header, body: entry.body() };
    for (let i = 1; i < list.length; i++) {
      const [other, n] = list[i]!;
      const link = headerOf(other, n);
      link.type = 'link';
      link.size = 0;
      link.linkname = first;
      yield { header: link };
    }
  }
}

/**
 * The same tar as flattenUnion, from a compact FileIndex: per path only an id is held while the
 * bodies stream (paths are rebuilt from the index), so memory stays a few dozen bytes per path.
 */
export function flattenIndex(index: FileIndex, layers: readonly Opener[], opts: IoOptions = {}): ByteStream {
  return writeTar(flattenIndexEntries(index, layers, opts), opts);
}

async function* flattenIndexEntries(index: FileIndex, layers: readonly Opener[], opts: IoOptions): AsyncGenerator<TarWriteEntry> {
  // Node ids of each visible body, first in walk order first; keyed like the index (layer, entry).
  const ids = new Map<number, number | number[]>();
  const wanted = new Map<number, Map<number, number>>();
  for (const [id, path] of index.walk()) {
    if (id === 0) continue;
    const e = index.entry(id, path);
    if (e.type !== 'file' || e.body === undefined) {
      yield { header: headerOf(path, e) };
      continue;
    }
    const key = e.body.layer * 0x1_0000_0000 + e.body.entry;
    const seen = ids.get(key);
    if (seen === undefined) ids.set(key, id);
    else if (typeof seen === 'number') ids.set(key, [seen, id]);
    else seen.push(id);
    if (seen !== undefined) continue;
    let m = wanted.get(e.body.layer);
    if (m === undefined) wanted.set(e.body.layer, (m = new Map()));
    m.set(e.body.entry, key);
  }
  for await (const { entry, item: key } of wantedEntries(layers, wanted, opts)) {
    const seen = ids.get(key)!;
    const list = typeof seen === 'number' ? [seen] : seen;
    const first = index.entry(list[0]!);
    const header = headerOf(first.path, first);
    header.size = first.body!.size;
    yield { header, body: entry.body() };
    for (let i = 1; i < list.length; i++) {
      const other = index.entry(list[i]!);
      const link = headerOf(other.path, other);
      link.type = 'link';
      link.size = 0;
      link.linkname = first.path;
      yield { header: link };
    }
  }
}
