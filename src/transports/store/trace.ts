/**
 * Which layer of a stored image provides a path, and which layers above it delete, hide or
 * replace it. The layers' own tar-split records are the source of truth (they list every member
 * of the layer tar, whiteout markers included, and need no root to read); the driver's files are
 * then looked up on disk to show where the bytes lie.
 */
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
export async function layerMembers(records: AsyncIterable<TarSplitRecord>): Promise<LayerMember[]> {
  const out: LayerMember[] = [];
  let last: Uint8Array | undefined;
  for await (const r of records) {
    if (r.type === 'segment') {
      if (r.payload.length >= 512) last = r.payload;
      continue;
    }
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
  return out;
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
export function resolvePath(path: string, layers: ReadonlyArray<readonly LayerMember[]>): PathResolution {
  const p = cleanPath(`/${path}`).slice(1);
  const anc = ancestors(p);
  const events: PathEvent[] = [];
  let visibleFrom: number | undefined;
  let visibleType: TarType | undefined;
  let merged: number[] = [];
  let removedBy: PathEvent | undefined;
  layers.forEach((members, layer) => {
    const byPath = new Map(members.map((m) => [m.path, m]));
    const hide: PathEvent[] = [];
    const own = byPath.get(p);
    const wh = byPath.get(whiteoutOf(p));
    if (wh) hide.push({ layer, action: 'deletes', member: wh });
    for (const a of anc) {
      const dw = byPath.get(whiteoutOf(a));
      if (dw) hide.push({ layer, action: 'deletes-parent', member: dw });
      const op = byPath.get(`${a}/${OPAQUE_MARKER}`);
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
    const opq = byPath.get(`${p}/${OPAQUE_MARKER}`);
    if (opq) events.push({ layer, action: 'opaque', member: opq });
  });
  return { path: p, events, visibleFrom, mergedFrom: visibleFrom === undefined ? [] : merged, ...(removedBy ? { removedBy } : {}) };
}
