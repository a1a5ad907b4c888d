/**
 * Which layer of a stored image provides a path, and which layers above it delete, hide or
 * replace it. The layers' own tar-split records are the source of truth (they list every member
 * of the layer tar, whiteout markers included, and need no root to read); the driver's files are
 * then looked up on disk to show where the bytes lie.
 */
import { stat } from 'node:fs/promises';
import nodePath from 'node:path';
import { typeFromFlag, decodeBlock, type TarType } from '../../tar/header.js';
import { cleanPath, type TarSplitRecord } from '../../tar/split.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** One member of a layer tar, from its tar-split records (type and mode from its header block). */
export interface LayerMember {
  /** As recorded (`./etc/`, `etc/.wh.x`). */
  readonly name: string;
  /** Cleaned, relative, no trailing slash (`etc`, `etc/.wh.x`). */
  readonly path: string;
  readonly type: TarType;
  readonly mode: number;
  readonly size: number;
  readonly linkname: string;
}

/** The members of a layer from its tar-split records (the header block closes the segment before each file record). */
export async function layerMembers(records: AsyncIterable<TarSplitRecord>): Promise<readonly LayerMember[]> {
  return (await readLayerIndex(records)).members;
}

/** A layer's members with their paths indexed, and the size of its tar, from one pass over its tar-split. */
export interface LayerIndex {
  readonly members: readonly LayerMember[];
  /** Cleaned path → member (the last one of a path, as a map built from the list keeps). */
  readonly byPath: ReadonlyMap<string, LayerMember>;
  /** Bytes of the tar the records rebuild: segment bytes plus file sizes (what assembledSize counts). */
  readonly tarSize: number;
}

/** Indexes members already read (e.g. in tests). */
export function indexLayer(members: readonly LayerMember[], tarSize = 0): LayerIndex {
  const byPath = new Map<string, LayerMember>();
  for (const m of members) byPath.set(m.path, m);
  return { members, byPath, tarSize };
}

/** Reads a layer's tar-split records once into a LayerIndex. */
export async function readLayerIndex(records: AsyncIterable<TarSplitRecord>): Promise<LayerIndex> {
  const out: LayerMember[] = [];
  let size = 0;
  let last: Uint8Array | undefined;
  for await (const r of records) {
    if (r.type === 'segment') {
      size += r.payload.length;
      if (r.payload.length >= 512) last = r.payload;
      continue;
    }
    size += r.size;
    const path = cleanPath(`/${r.nameRaw === undefined ? r.name : Buffer.from(r.nameRaw).toString('latin1')}`).slice(1);
    let type: TarType = 'file';
    let mode = 0;
    let linkname = '';
    if (last !== undefined) {
      try {
        const f = decodeBlock(last.subarray(last.length - 512));
        type = typeFromFlag(f.typeflag);
        mode = f.mode;
        linkname = f.linkname;
      } catch {
        // a header berth cannot decode still names the member; its type stays unknown
      }
    }
    last = undefined;
    out.push({ name: r.name, path, type, mode, size: r.size, linkname });
  }
  return indexLayer(out, size);
}

// ---------------------------------------------------------------------------------------------
// A per-process cache of layer indexes. The explorer traces path after path in the same image;
// decoding a 200k-member tar-split for each lookup dominated. A tar-split file belongs to one
// chainID (content-addressed), so an entry stays right as long as the file is the same one:
// its identity and times are checked on every use, and a removed or rewritten file is re-read.

/** At most this many layers, and this many members in all, are kept (least recently used go first). */
export const LAYER_CACHE_MAX_LAYERS = 64;
export const LAYER_CACHE_MAX_MEMBERS = 1_000_000;

interface CachedLayer {
  readonly stamp: string;
  readonly index: Promise<LayerIndex>;
  members: number;
}

const layerCache = new Map<string, CachedLayer>();

function stampOf(st: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

function evict(): void {
  let members = 0;
  for (const c of layerCache.values()) members += c.members;
  for (const [key, c] of layerCache) {
    if (layerCache.size <= LAYER_CACHE_MAX_LAYERS && members <= LAYER_CACHE_MAX_MEMBERS) break;
    layerCache.delete(key);
    members -= c.members;
  }
}

/**
 * The LayerIndex of the tar-split file `file`, whose records `read` streams; cached while the
 * file is unchanged. A file that cannot be stat'ed is not cached: `read` reports why.
 */
export async function cachedLayerIndex(file: string, read: () => AsyncIterable<TarSplitRecord>): Promise<LayerIndex> {
  const key = nodePath.resolve(file);
  const st = await stat(key).catch(() => undefined);
  if (st === undefined) {
    layerCache.delete(key);
    return readLayerIndex(read());
  }
  const stamp = stampOf(st);
  const hit = layerCache.get(key);
  if (hit !== undefined && hit.stamp === stamp) {
    // most recently used last
    layerCache.delete(key);
    layerCache.set(key, hit);
    return hit.index;
  }
  const entry: CachedLayer = { stamp, index: readLayerIndex(read()), members: 0 };
  layerCache.set(key, entry);
  try {
    const index = await entry.index;
    entry.members = index.members.length;
    evict();
    return index;
  } catch (err) {
    if (layerCache.get(key) === entry) layerCache.delete(key);
    throw err;
  }
}

/** Forgets every cached layer (tests; a caller that knows files changed within a timestamp tick). */
export function clearLayerIndexCache(): void {
  layerCache.clear();
}

/** How many layers the cache holds (tests). */
export function layerIndexCacheSize(): number {
  return layerCache.size;
}

export type PathAction =
  /** The layer has the path (first time, or over a lower layer's). */
  | 'adds'
  | 'overrides'
  /** `dir/.wh.name`: the path is deleted. */
  | 'deletes'
  /** `a/.wh.b` for an ancestor `a/b` of the path. */
  | 'deletes-parent'
  /** `a/.wh..wh..opq` for an ancestor `a`: everything lower layers had under `a` is hidden. */
  | 'opaque-parent'
  /** An ancestor is replaced by something that is not a directory. */
  | 'replaces-parent'
  /** `path/.wh..wh..opq`: the directory itself stays, its lower contents are hidden. */
  | 'opaque';

export interface PathEvent {
  readonly layer: number;
  readonly action: PathAction;
  /** The member that does it (`app/.wh.old.txt`, `app/data/.wh..wh..opq`, `app/config.ini`). */
  readonly member: LayerMember;
}

export interface PathResolution {
  readonly path: string;
  /** Every layer event touching the path, base first. */
  readonly events: readonly PathEvent[];
  /** The layer whose member the container sees (the last `adds`/`overrides` not hidden later), or undefined when the path does not exist. */
  readonly visibleFrom: number | undefined;
  /** For a visible directory: every layer that contributes to it since it was last hidden. */
  readonly mergedFrom: readonly number[];
  /** The event that last removed the path, when it is not visible. */
  readonly removedBy?: PathEvent;
}

function isLayerIndex(x: readonly LayerMember[] | LayerIndex): x is LayerIndex {
  return !Array.isArray(x);
}

function ancestors(p: string): string[] {
  const parts = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

function whiteoutOf(p: string): string {
  const slash = p.lastIndexOf('/');
  return slash < 0 ? `${WHITEOUT_PREFIX}${p}` : `${p.slice(0, slash)}/${WHITEOUT_PREFIX}${p.slice(slash + 1)}`;
}

/**
 * Resolves `path` (any spelling: `/app/x`, `./app/x/`) through the layers, base first, with the
 * OCI rules: in each layer, deletions (whiteouts, opaque markers, non-directory ancestors)
 * apply to the layers below, then the layer's own members apply.
 */
export function resolvePath(path: string, layers: ReadonlyArray<readonly LayerMember[] | LayerIndex>): PathResolution {
  const p = cleanPath(`/${path}`).slice(1);
  const anc = ancestors(p);
  const whiteouts = anc.map(whiteoutOf);
  const opaques = anc.map((a) => `${a}/${OPAQUE_MARKER}`);
  const ownWhiteout = whiteoutOf(p);
  const ownOpaque = `${p}/${OPAQUE_MARKER}`;
  const events: PathEvent[] = [];
  let visibleFrom: number | undefined;
  let visibleType: TarType | undefined;
  let merged: number[] = [];
  let removedBy: PathEvent | undefined;
  layers.forEach((layerOrMembers, layer) => {
    // a list is indexed here (once per call); a LayerIndex comes indexed, so a lookup is a few map gets per layer
    const byPath = isLayerIndex(layerOrMembers) ? layerOrMembers.byPath : indexLayer(layerOrMembers).byPath;
    const hide: PathEvent[] = [];
    const own = byPath.get(p);
    const wh = byPath.get(ownWhiteout);
    if (wh) hide.push({ layer, action: 'deletes', member: wh });
    for (const [i, a] of anc.entries()) {
      const dw = byPath.get(whiteouts[i]!);
      if (dw) hide.push({ layer, action: 'deletes-parent', member: dw });
      const op = byPath.get(opaques[i]!);
      if (op) hide.push({ layer, action: 'opaque-parent', member: op });
      const am = byPath.get(a);
      if (am && am.type !== 'directory') hide.push({ layer, action: 'replaces-parent', member: am });
    }
    events.push(...hide);
    if (hide.length > 0 && visibleFrom !== undefined) {
      visibleFrom = undefined;
      visibleType = undefined;
      merged = [];
      removedBy = hide[0];
    }
    if (own) {
      const lower = visibleFrom;
      events.push({ layer, action: lower === undefined ? 'adds' : 'overrides', member: own });
      // A directory over a directory merges; anything else replaces what was there.
      if (own.type === 'directory' && visibleType === 'directory') merged.push(layer);
      else merged = [layer];
      visibleFrom = layer;
      visibleType = own.type;
      removedBy = undefined;
    }
    const opq = byPath.get(ownOpaque);
    if (opq) events.push({ layer, action: 'opaque', member: opq });
  });
  return { path: p, events, visibleFrom, mergedFrom: visibleFrom === undefined ? [] : merged, ...(removedBy ? { removedBy } : {}) };
}
