/**
 * The explorer's JSON API: routes, limits and response shapes, shared by ui/server.ts and the
 * front-end (ui/web). Types only, plus the few numbers both sides need: nothing here runs I/O.
 */
import type {
  AttestationsResult, DiffEntry, FileChange, FileInfo, InspectResult, LayerChangesResult, LayersResult, PlatformEntry, StoreDriver, TraceLayer, TracePath, TraceResult, TreeResult,
} from '../src/index.js';

/** Limits of the server: every response is bounded. */
export const LIMITS = {
  /** Directory listing page (entries); the default when `limit` is not given. */
  listPage: 1000,
  listPageMax: 5000,
  /** Path search hits returned. */
  searchMax: 500,
  /** One layer's changeset: entries returned per kind (added, modified, deleted). */
  changesMax: 5000,
  /** File-level diff: entries returned per kind (added, removed, modified). */
  diffMax: 5000,
  /** Largest file the preview shows whole; bigger ones only with `partial=1`. */
  previewBytes: 1024 * 1024,
  /** What `partial=1` shows of a bigger file. */
  partialBytes: 64 * 1024,
  /** Largest manifest, config or statement shown as JSON. */
  rawBytes: 4 * 1024 * 1024,
  /** Largest query parameter (references, paths). */
  paramChars: 4096,
  /** Store view: image rows listed (one per repository:tag, as `docker images`). */
  storeImagesMax: 2000,
  /** Store view: layers of one trace, and path events of one lookup. */
  traceLayersMax: 1000,
  traceEventsMax: 1000,
  /** Store view: longest image name or ID accepted. */
  storeNameChars: 512,
} as const;

/** Every API request carries this header: a cross-origin page cannot send it without a CORS preflight, which the server never grants. */
export const API_HEADER = 'x-berth-explorer';

export interface ApiError {
  readonly error: {
    /** A berth error code (BERTH_NOT_FOUND, …) or one of the server's: BAD_REQUEST, BAD_PATH, NOT_FOUND, FORBIDDEN, TOO_LARGE, INTERNAL. */
    readonly code: string;
    readonly message: string;
    readonly status: number;
    readonly size?: number;
    readonly limit?: number;
  };
}

export interface RefChoice {
  readonly ref: string;
  readonly label: string;
  readonly source: 'argument' | 'sample' | 'store';
  readonly detail?: string;
}

/** GET /api/refs */
export interface RefsResponse {
  readonly refs: readonly RefChoice[];
  /** The local store: listed when berth's store API exists and a store is there. */
  readonly store: { readonly available: boolean; readonly root?: string; readonly note?: string };
}

/** GET /api/tree?ref= */
export type TreeResponse = TreeResult;

/** GET /api/raw?ref=&digest= (no digest: the entry point file, index.json or manifest.json) */
export interface RawResponse {
  readonly reference: string;
  readonly digest?: string;
  readonly mediaType?: string;
  readonly size: number;
  /** The entry point's file name, when that is what was asked for. */
  readonly file?: string;
  /** `json`: `text` holds the document, indented; `binary`: not shown (layer tars and other blobs). */
  readonly kind: 'json' | 'binary';
  readonly text?: string;
}

/** GET /api/inspect?ref=&platform= */
export type InspectResponse = InspectResult;

/** GET /api/platforms?ref= */
export interface PlatformsResponse {
  readonly reference: string;
  readonly index: string | undefined;
  readonly platforms: readonly PlatformEntry[];
}

/** GET /api/attestations?ref=&platform= */
export type AttestationsResponse = AttestationsResult;

/** GET /api/layers?ref=&platform= */
export type LayersResponse = LayersResult;

export interface FileEntry extends FileInfo {
  /** Last path element. */
  readonly name: string;
}

/** GET /api/files?ref=&platform=&path=&layer=&offset=&limit= — one directory, sorted by name, paged. */
export interface FilesResponse {
  readonly reference: string;
  readonly path: string;
  /** Layers applied (all, or up to `layer`). */
  readonly layers: number;
  readonly total: number;
  readonly offset: number;
  readonly entries: readonly FileEntry[];
}

/** GET /api/search?ref=&platform=&q=&limit= — paths containing q (case-insensitive). */
export interface SearchResponse {
  readonly reference: string;
  readonly query: string;
  /** Matches in the whole image; `entries` holds at most the limit. */
  readonly total: number;
  readonly entries: readonly FileEntry[];
}

/** One path a layer adds, modifies or deletes: the library's FileChange. */
export type ChangeEntry = FileChange;

/** GET /api/changes?ref=&platform=&layer= — what one layer does to the filesystem below it (lists sorted by path). */
export interface ChangesResponse extends LayerChangesResult {
  /** True when a list was cut at LIMITS.changesMax. */
  readonly truncated: boolean;
}

/**
 * GET /api/file?ref=&platform=&path=&partial= — the bytes of one regular file (application/octet-stream),
 * verified before they are sent, with these headers.
 */
export const FILE_HEADERS = {
  path: 'x-berth-path',
  size: 'x-berth-size',
  layer: 'x-berth-layer',
  truncated: 'x-berth-truncated',
} as const;

export interface ConfigChange {
  /** JSON path of the field (`config.Env`, `history[3].created_by`). */
  readonly path: string;
  /** JSON text of each side; undefined where the field is missing. */
  readonly a?: string;
  readonly b?: string;
}

export interface DiffImageSide {
  readonly reference: string;
  readonly digest: string;
  readonly configDigest: string;
  readonly platform?: string;
  readonly created?: string;
  readonly layers: number;
  readonly totalSize: number;
}

/** GET /api/diff?a=&b=&platformA=&platformB= */
export interface DiffResponse {
  readonly a: DiffImageSide;
  readonly b: DiffImageSide;
  readonly config: readonly ConfigChange[];
  readonly summary: {
    readonly added: number;
    readonly removed: number;
    readonly modified: number;
    readonly unchanged: number;
    readonly bytesAdded: number;
    readonly bytesRemoved: number;
  };
  readonly added: readonly DiffEntry[];
  readonly removed: readonly DiffEntry[];
  readonly modified: readonly DiffEntry[];
  readonly truncated: boolean;
}

/** One row of GET /api/store/images: one per repository:tag, as `docker images` prints them (`<none>` for an untagged image). */
export interface StoreImageRow {
  readonly repository: string;
  readonly tag: string;
  /** What to ask /api/store/trace for: `repository:tag`, or the image ID for an untagged image. */
  readonly name: string;
  readonly id: string;
  readonly created?: string;
  /** Sum of the layers' layerdb sizes, bytes. */
  readonly size: number;
  readonly layers: number;
  readonly dangling: boolean;
  readonly problems: readonly string[];
}

/** GET /api/store/images — the images of the explorer's data root (`berth ui --root DIR`, $BERTH_ROOT, …), newest first. */
export interface StoreImagesResponse {
  readonly root: string;
  readonly driver: StoreDriver;
  /** Rows in the store; `images` holds at most LIMITS.storeImagesMax. */
  readonly total: number;
  readonly images: readonly StoreImageRow[];
  readonly notes: readonly string[];
  readonly truncated: boolean;
}

/**
 * GET /api/store/trace?name= — the walk from a name to the files on disk, as `berth trace NAME`:
 * repositories.json entry → image ID → config in imagedb → each diff_id → chainID → layerdb
 * directory (size, cache-id, parent) → the driver's directory. Paths are relative to `root`.
 */
export interface StoreTraceResponse extends Omit<TraceResult, 'path' | 'layers'> {
  readonly layers: readonly TraceLayer[];
  /** True when the image has more than LIMITS.traceLayersMax layers and the list was cut. */
  readonly truncated: boolean;
}

/**
 * GET /api/store/path?name=&path=/abs — "where on disk is this file?", as `berth trace NAME PATH`:
 * which layer provides the path, where it lies on disk, which upper layers delete or override it.
 */
export interface StorePathResponse {
  readonly root: string;
  readonly driver: StoreDriver;
  readonly name: string;
  readonly id: string;
  readonly path: TracePath;
  /** `root/onDisk` of the provider, when the path is visible. */
  readonly file?: string;
  /** Per layer (index): its chainID and driver directory, for reading the events. */
  readonly layers: ReadonlyArray<{ readonly index: number; readonly chainId: string; readonly files: string | undefined }>;
  /** True when the events were cut at LIMITS.traceEventsMax. */
  readonly truncated: boolean;
}
