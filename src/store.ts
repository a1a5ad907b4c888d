/**
 * The local image store as the `images`, `history` and `trace` commands see it: a Docker data
 * root read offline (docs/formats.md section 10). Every function opens the root, reads what it
 * needs and keeps nothing open. The read functions never write, lock or mount; the write side
 * (load, tag, rmi, gc, at the end) writes only under the root's writer lock, never under a live
 * dockerd, and only roots berth created unless allowed.
 */
import path from 'node:path';
import type { Descriptor } from './core/descriptor.js';
import { digestHex, shortDigest, type Digest } from './core/digest.js';
import { BerthError } from './core/errors.js';
import type { IoOptions } from './io/stream.js';
import { DataRoot, isStoredImage, shortId, type StoredImage } from './transports/store/data-root.js';
import { configFile } from './transports/store/imagedb.js';
import { tarSplitFile, type LayerEntry } from './transports/store/layerdb.js';
import { inspectOnDisk, readOverlayInfo, type OnDisk, type OverlayInfo, type StoreDriver } from './transports/store/overlay2.js';
import { defaultStoreRoot, parseStoreReference, storeAllowWrite } from './transports/store/reference.js';
import { lookupReference, storeReferenceKey } from './transports/store/repositories.js';
import { storeTransport } from './transports/store/transport.js';
import { copyImage, type CopyOptions } from './copy/copy.js';
import { parseDestinationName } from './copying.js';
import { cachedLayerIndex, indexLayer, resolvePath, type LayerIndex, type LayerMember, type PathAction } from './transports/store/trace.js';
import type { Platform } from './core/platform.js';
import { hostPlatform } from './image/resolve.js';
import { carriedNames } from './copying.js';
import { parseImageName } from './transports/all.js';
import type { ImageSource, NamedRoot, RootEntry } from './transports/transport.js';
import type { StoreReference } from './transports/store/reference.js';
import { StoreDestination, type LoadedImage } from './transports/store/destination.js';
import { checkStore, type FsckResult } from './transports/store/fsck.js';
import { collectGarbage, type GcRemoval } from './transports/store/gc.js';
import { referencedChains, takeInventory } from './transports/store/inventory.js';
import { RegistryReference } from './transports/docker/transport.js';
import { referenceName } from './core/reference.js';
import { assertWritable, failpoint, withStoreLock } from './transports/store/safety.js';
import { repositoryKeys, rfc3339Nano, StoreWriter } from './transports/store/writer.js';

export type { StoreDriver } from './transports/store/overlay2.js';
export { configureStore, configureStoreWrites, type StoreDefaults } from './store-settings.js';

/** The data root berth uses when none is named (`--root`, `$BERTH_ROOT`, `$XDG_DATA_HOME/berth`, `~/.local/share/berth`). */
export function storeRoot(): string {
  return defaultStoreRoot();
}

export interface StoreOptions extends IoOptions {
  /** The data root; default storeRoot(). */
  readonly root?: string;
}

/** `store:[ROOT]NAME` or `NAME` → the root and the name (an explicit `[ROOT]` wins over opts.root). */
function splitName(text: string, opts: StoreOptions): { root: string; name: string | undefined } {
  const parts = parseStoreReference(text.startsWith('store:') ? text.slice('store:'.length) : text);
  return { root: path.resolve(parts.root ?? opts.root ?? defaultStoreRoot()), name: parts.name };
}

async function imageNamed(store: DataRoot, name: string): Promise<StoredImage> {
  const id = await store.resolve(name);
  if (id === undefined) {
    throw new BerthError('BERTH_NOT_FOUND', `no image ${JSON.stringify(name)} in store ${store.root}`, { subject: name });
  }
  const image = await store.image(id);
  if (!isStoredImage(image)) throw new BerthError('BERTH_DIGEST_MISMATCH', image.problem, { subject: id });
  return image;
}

// ---------------------------------------------------------------------------------------------
// images

export interface StoreImageInfo {
  readonly id: Digest;
  /** Familiar `name:tag` references, repositories.json order. */
  readonly repoTags: readonly string[];
  /** Familiar `name@sha256:…` references. */
  readonly repoDigests: readonly string[];
  /** Config `created` (RFC 3339), when set. */
  readonly created: string | undefined;
  /** Sum of the layers' layerdb `size` (what `docker images` shows; per-driver rules). */
  readonly size: number;
  readonly layers: number;
  /** imagedb metadata parent. */
  readonly parent: Digest | undefined;
  /** No tags and no digests. */
  readonly dangling: boolean;
  /** Why dockerd would not use this image (missing layers, …); empty when fine. */
  readonly problems: readonly string[];
}

export interface StoreImagesResult {
  readonly root: string;
  readonly driver: StoreDriver;
  /** Newest first (as `docker images`). */
  readonly images: readonly StoreImageInfo[];
  /** Images dockerd drops (config not matching its ID) and names pointing nowhere. */
  readonly notes: readonly string[];
}

export interface ListImagesOptions extends StoreOptions {
  /** `docker images REPOSITORY[:TAG]`: only images with that repository (and tag). */
  readonly name?: string;
  /** Also untagged images that are parents of other images (docker images -a). */
  readonly all?: boolean;
}

/**
 * The images of a store, as `docker images` lists them: tagged images, plus untagged ones that
 * are no other image's parent (unless `all`), newest first, sizes summed from layerdb.
 */
export async function listStoreImages(opts: ListImagesOptions = {}): Promise<StoreImagesResult> {
  const store = await DataRoot.open(path.resolve(opts.root ?? defaultStoreRoot()));
  const ids = await store.imageIds();
  const repos = await store.repositories();
  const notes: string[] = [];
  const images: StoredImage[] = [];
  for (const id of ids) {
    const image = await store.image(id);
    if (isStoredImage(image)) images.push(image);
    else notes.push(image.problem);
  }
  for (const r of repos.refs) if (!ids.includes(r.id)) notes.push(`${r.reference} → ${shortDigest(r.id)}: no such image (kept by dockerd, unresolvable)`);
  const parents = new Set(images.map((i) => i.metadata.parent).filter((p): p is Digest => p !== undefined));
  // docker's `reference` filter: a path.Match pattern against the familiar reference or its name;
  // only the matching references are listed, and untagged images never match.
  const re = opts.name === undefined ? undefined : globPattern(opts.name);
  const matches = (ref: string) => re === undefined || re.test(ref) || re.test(ref.replace(/@.*$/, '').replace(/:[^/:]*$/, ''));
  const out: StoreImageInfo[] = [];
  for (const image of images) {
    const dangling = image.tags.length === 0 && image.digests.length === 0;
    if (dangling && (re !== undefined || (!opts.all && parents.has(image.id)))) continue;
    const repoTags = image.tags.filter(matches);
    const repoDigests = image.digests.filter(matches);
    if (!dangling && repoTags.length === 0 && repoDigests.length === 0) continue;
    let size = 0;
    for (const l of image.layers) size += l?.size ?? 0;
    out.push({
      id: image.id, repoTags, repoDigests, created: image.config.created ?? undefined, size, layers: image.diffIds.length,
      parent: image.metadata.parent, dangling, problems: image.problems,
    });
  }
  out.sort((a, b) => createdMs(b.created) - createdMs(a.created) || a.id.localeCompare(b.id));
  return { root: store.root, driver: store.driver, images: out, notes };
}

/** Go path.Match as a RegExp: `*` and `?` stop at `/`, `[…]` classes, `\\` escapes. */
function globPattern(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      const body = pattern.slice(i + 1, end).replace(/^\^/, '^').replace(/\\/g, '\\\\');
      re += `[${body}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function createdMs(created: string | undefined): number {
  const t = created === undefined ? NaN : Date.parse(created);
  return Number.isNaN(t) ? 0 : t;
}

// ---------------------------------------------------------------------------------------------
// history

export interface StoreHistoryEntry {
  /** The image this step's top is (followed through imagedb parents, as dockerd does), or undefined (`<missing>`). */
  readonly id: Digest | undefined;
  readonly created: string | undefined;
  readonly createdBy: string;
  /** The layer's own layerdb `size`, 0 for an empty layer. */
  readonly size: number;
  readonly comment: string;
  readonly emptyLayer: boolean;
  /** Tags of `id`. */
  readonly tags: readonly string[];
  /** For a step that made a layer: its diff_id and chainID. */
  readonly diffId?: Digest;
  readonly chainId?: Digest;
}

export interface StoreHistoryResult {
  readonly root: string;
  readonly id: Digest;
  /** Newest first (as `docker history`). */
  readonly entries: readonly StoreHistoryEntry[];
}

/** `docker history NAME`, offline. */
export async function storeHistory(text: string, opts: StoreOptions = {}): Promise<StoreHistoryResult> {
  const { root, name } = splitName(text, opts);
  if (name === undefined) throw new BerthError('BERTH_USAGE', 'an image name or ID is required', {});
  const store = await DataRoot.open(root);
  const image = await imageNamed(store, name);
  const history = image.config.history ?? [];
  const entries: Array<Omit<StoreHistoryEntry, 'id' | 'tags'> & { id?: Digest; tags?: string[] }> = [];
  let layer = 0;
  for (const h of history) {
    const empty = h.empty_layer === true;
    let size = 0;
    let extra = {};
    if (!empty && layer < image.diffIds.length) {
      size = image.layers[layer]?.size ?? 0;
      extra = { diffId: image.diffIds[layer]!, chainId: image.chainIds[layer]! };
      layer++;
    }
    entries.unshift({ created: h.created ?? undefined, createdBy: h.created_by ?? '', size, comment: h.comment ?? '', emptyLayer: empty, ...extra });
  }
  // IDs: this image for the newest entry, then its parent, the parent's parent… (dockerd's rule).
  let id: Digest | undefined = image.id;
  const result: StoreHistoryEntry[] = [];
  for (const e of entries) {
    const img: StoredImage | undefined = id === undefined ? undefined : await storedOrUndefined(store, id);
    result.push({ ...e, id, tags: img?.tags ?? [] });
    const parent: Digest | undefined = img?.metadata.parent;
    id = parent !== undefined && (await store.imageIds()).includes(parent) ? parent : undefined;
  }
  return { root: store.root, id: image.id, entries: result };
}

async function storedOrUndefined(store: DataRoot, id: Digest): Promise<StoredImage | undefined> {
  const img = await store.image(id).catch(() => undefined);
  return img !== undefined && isStoredImage(img) ? img : undefined;
}

// ---------------------------------------------------------------------------------------------
// trace

export interface TraceLayer {
  readonly index: number;
  readonly diffId: Digest;
  readonly chainId: Digest;
  /** How the chainID was computed: `= diff_id` or `sha256(<parent chain> + " " + <diff_id>)`. */
  readonly chainRule: string;
  /** `image/<driver>/layerdb/sha256/<chain hex>` */
  readonly layerdb: string;
  readonly exists: boolean;
  readonly diff: Digest | undefined;
  readonly diffMatches: boolean;
  /** `size` as stored. */
  readonly size: string | undefined;
  readonly cacheId: string | undefined;
  readonly parent: Digest | undefined;
  /** `…/tar-split.json.gz`, when present. */
  readonly tarSplit: string | undefined;
  /** Bytes of the tar tar-split rebuilds. */
  readonly tarSize: number | undefined;
  readonly members: number | undefined;
  /** `overlay2/<cache-id>/diff` or `vfs/dir/<cache-id>`. */
  readonly files: string | undefined;
  readonly filesExist: boolean;
  /** overlay2 only: link, lower, committed. */
  readonly overlay?: OverlayInfo;
  readonly problems: readonly string[];
}

export interface TracePathEvent {
  readonly layer: number;
  readonly action: PathAction;
  /** The tar member (`app/.wh.old.txt`). */
  readonly member: string;
  readonly type: string;
  readonly size: number;
  readonly linkname?: string;
  /** Where it lies in the driver (`overlay2/<id>/diff/app/old.txt`) and what is there. */
  readonly onDisk: string | undefined;
  readonly disk: OnDisk | undefined;
}

export interface TracePath {
  readonly path: string;
  readonly events: readonly TracePathEvent[];
  /** The layer the container sees the path from; undefined when it does not exist. */
  readonly visibleFrom: number | undefined;
  /** For a directory: the layers merged into it. */
  readonly mergedFrom: readonly number[];
  /** The file the container reads (in the provider layer's directory). */
  readonly onDisk: string | undefined;
  readonly removedBy?: TracePathEvent;
}

export interface TraceResult {
  readonly root: string;
  readonly driver: StoreDriver;
  readonly name: string;
  /** How the name became an ID. */
  readonly resolution:
    | { readonly via: 'repositories.json'; readonly file: string; readonly repository: string; readonly reference: string; readonly id: Digest }
    | { readonly via: 'id'; readonly id: Digest };
  readonly image: {
    readonly id: Digest;
    readonly config: string;
    readonly configSize: number;
    readonly tags: readonly string[];
    readonly digests: readonly string[];
    readonly parent: Digest | undefined;
    readonly lastUpdated: string | undefined;
  };
  readonly layers: readonly TraceLayer[];
  readonly path?: TracePath;
  readonly problems: readonly string[];
}

export interface TraceOptions extends StoreOptions {
  /** A path inside the image: which layer provides it, which delete or override it. */
  readonly path?: string;
}

const NO_MEMBERS: LayerIndex = indexLayer([]);

/** The walk from a name to the files of each layer, with real paths and values (docs/formats.md 14). */
export async function traceStore(text: string, opts: TraceOptions = {}): Promise<TraceResult> {
  const { root, name } = splitName(text, opts);
  if (name === undefined) throw new BerthError('BERTH_USAGE', 'an image name or ID is required', {});
  const store = await DataRoot.open(root);
  const image = await imageNamed(store, name);
  const repos = await store.repositories();
  const ref = name.startsWith('@') || /^(?:sha256:)?[a-f0-9]{64}$/.test(name) ? undefined : lookupReference(repos, name);
  const resolution: TraceResult['resolution'] = ref !== undefined && ref.id === image.id
    ? { via: 'repositories.json', file: `${store.imageRel}/repositories.json`, repository: ref.repository, reference: ref.reference, id: image.id }
    : { via: 'id', id: image.id };
  const layers: TraceLayer[] = [];
  const membersByLayer: LayerIndex[] = [];
  for (const [i, diffId] of image.diffIds.entries()) {
    const chainId = image.chainIds[i]!;
    const entry: LayerEntry | undefined = image.layers[i];
    const layerdb = `${store.imageRel}/layerdb/sha256/${digestHex(chainId)}`;
    const files = entry === undefined ? undefined : store.filesOf(entry);
    const filesExist = files !== undefined && (await inspectOnDisk(path.join(store.root, files))).kind === 'directory';
    let tarSize: number | undefined;
    let members = NO_MEMBERS;
    const problems: string[] = [...(entry?.problems ?? [])];
    if (entry?.hasTarSplit === true) {
      try {
        // one cached pass gives members, path index and tar size (the explorer traces path after path)
        members = await cachedLayerIndex(path.join(store.imageDir, tarSplitFile(chainId)), () => store.tarSplit(chainId, opts));
        tarSize = members.tarSize;
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    membersByLayer.push(members);
    if (entry === undefined) problems.push(`no ${layerdb}`);
    else if (!filesExist) problems.push(`${files ?? 'the layer files'}: no such directory`);
    layers.push({
      index: i, diffId, chainId,
      chainRule: i === 0 ? '= diff_id (base layer)' : `sha256("${image.chainIds[i - 1]} ${diffId}")`,
      layerdb, exists: entry !== undefined, diff: entry?.diffId, diffMatches: entry?.diffId === diffId, size: entry?.sizeText, cacheId: entry?.cacheId, parent: entry?.parent,
      tarSplit: entry?.hasTarSplit ? `${layerdb}/tar-split.json.gz` : undefined, tarSize, members: entry?.hasTarSplit ? members.members.length : undefined,
      files, filesExist,
      ...(store.driver === 'overlay2' && entry?.cacheId !== undefined ? { overlay: await readOverlayInfo(store.root, entry.cacheId) } : {}),
      problems,
    });
  }
  let tracePath: TracePath | undefined;
  if (opts.path !== undefined) {
    const r = resolvePath(opts.path, membersByLayer);
    const diskOf = async (layer: number, member: LayerMember): Promise<{ onDisk: string | undefined; disk: OnDisk | undefined }> => {
      const files = layers[layer]?.files;
      if (files === undefined) return { onDisk: undefined, disk: undefined };
      // overlay2 stores `.wh.x` as a char device `x`, and the opaque marker as an xattr on the directory.
      let rel = member.path;
      const base = rel.slice(rel.lastIndexOf('/') + 1);
      if (base === '.wh..wh..opq') rel = rel.slice(0, Math.max(0, rel.lastIndexOf('/')));
      else if (base.startsWith('.wh.') && store.driver === 'overlay2') rel = `${rel.slice(0, rel.lastIndexOf('/') + 1)}${base.slice(4)}`;
      else if (base.startsWith('.wh.')) return { onDisk: undefined, disk: undefined };
      const onDisk = rel === '' ? files : `${files}/${rel}`;
      return { onDisk, disk: await inspectOnDisk(path.join(store.root, onDisk)) };
    };
    const events: TracePathEvent[] = [];
    for (const e of r.events) {
      events.push({
        layer: e.layer, action: e.action, member: e.member.path, type: e.member.type, size: e.member.size,
        ...(e.member.linkname ? { linkname: e.member.linkname } : {}), ...(await diskOf(e.layer, e.member)),
      });
    }
    const provider = r.visibleFrom === undefined ? undefined : events.filter((e) => e.layer === r.visibleFrom && (e.action === 'adds' || e.action === 'overrides')).at(-1);
    const removed = r.removedBy === undefined ? undefined : events.find((e) => e.layer === r.removedBy!.layer && e.member === r.removedBy!.member.path && e.action === r.removedBy!.action);
    tracePath = { path: r.path, events, visibleFrom: r.visibleFrom, mergedFrom: r.mergedFrom, onDisk: provider?.onDisk, ...(removed ? { removedBy: removed } : {}) };
  }
  return {
    root: store.root, driver: store.driver, name, resolution,
    image: {
      id: image.id, config: `${store.imageRel}/${configFile(image.id)}`, configSize: image.configBytes.length, tags: image.tags, digests: image.digests,
      parent: image.metadata.parent, lastUpdated: image.metadata.lastUpdated,
    },
    layers, ...(tracePath ? { path: tracePath } : {}), problems: image.problems,
  };
}

// ---------------------------------------------------------------------------------------------
// save

export type SaveFormat = 'docker' | 'docker-legacy' | 'oci';

export interface SaveOptions extends StoreOptions {
  /** `docker` (Docker 25+ layout, default), `docker-legacy` (what dockerd ≤ 24 writes) or `oci` (an oci-archive). */
  readonly format?: SaveFormat;
  /** Replace an existing file (default false: BERTH_EXISTS). */
  readonly overwrite?: boolean;
  /** Skip fsync (tests). */
  readonly fsync?: boolean;
  readonly onEvent?: CopyOptions['onEvent'];
}

export interface SaveResult {
  readonly file: string;
  readonly format: SaveFormat;
  readonly images: ReadonlyArray<{ readonly id: Digest; readonly names: readonly string[]; readonly manifest: Digest }>;
  readonly bytes: number;
}

/**
 * The images `names` select, with the names docker save gives them: a tag names itself, a
 * repository without tag every tagged image of it, an ID (or `@ID`) no name.
 */
async function saveSelection(store: DataRoot, names: readonly string[]): Promise<Array<{ id: Digest; names: string[] }>> {
  const repos = await store.repositories();
  const ids = await store.imageIds();
  const out = new Map<string, string[]>();
  const add = (id: Digest, name: string | undefined) => {
    const list = out.get(id) ?? [];
    if (name !== undefined && !list.includes(name)) list.push(name);
    out.set(id, list);
  };
  for (const text of names) {
    const key = text.startsWith('@') ? undefined : storeReferenceKey(text);
    const explicit = key !== undefined && (/@/.test(text) || /:[\w][\w.-]{0,127}$/.test(text.slice(text.lastIndexOf('/') + 1)));
    if (key !== undefined && !explicit) {
      const repo = key.replace(/:[^/:]*$/, '');
      const tagged = repos.refs.filter((r) => r.kind === 'tag' && r.repository === repo && ids.includes(r.id));
      if (tagged.length > 0) {
        for (const r of tagged) add(r.id, r.reference);
        continue;
      }
    }
    const id = await store.resolve(text);
    if (id === undefined) throw new BerthError('BERTH_NOT_FOUND', `no image ${JSON.stringify(text)} in store ${store.root}`, { subject: text });
    const ref = key === undefined ? undefined : lookupReference(repos, text);
    add(id, ref !== undefined && ref.kind === 'tag' && ref.id === id ? ref.reference : undefined);
  }
  return [...out].map(([id, n]) => ({ id: id as Digest, names: n }));
}

/**
 * `docker save`, offline: writes the selected images into one archive through the copy engine,
 * layers rebuilt byte-exact from tar-split (so their digests are the diff_ids dockerd would write).
 */
export async function saveStoreImages(names: readonly string[], file: string, opts: SaveOptions = {}): Promise<SaveResult> {
  if (names.length === 0) throw new BerthError('BERTH_USAGE', 'save: at least one image is required', {});
  const format = opts.format ?? 'docker';
  const root = path.resolve(opts.root ?? defaultStoreRoot());
  const store = await DataRoot.open(root);
  const selection = await saveSelection(store, names);
  const dstRef = await parseDestinationName(`${format === 'oci' ? 'oci-archive' : 'docker-archive'}:${file}`);
  const dst = await dstRef.openDestination({
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.overwrite !== undefined ? { overwrite: opts.overwrite } : {}),
    ...(opts.fsync !== undefined ? { fsync: opts.fsync } : {}),
    ...(format === 'docker-legacy' ? { archiveLayout: 'legacy' as const } : {}),
  });
  try {
    const images: Array<{ id: Digest; names: string[]; manifest: Digest; root: Descriptor }> = [];
    let bytes = 0;
    for (const sel of selection) {
      const src = await storeTransport.parseReference(`[${root}]@${digestHex(sel.id)}`).openSource(opts);
      try {
        const result = await copyImage(src, dst, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onEvent ? { onEvent: opts.onEvent } : {}) });
        images.push({ id: sel.id, names: sel.names, manifest: result.root.digest, root: result.root });
        bytes += result.bytes;
      } finally {
        await src.close();
      }
    }
    await dst.commit(images.map((i) => ({ descriptor: i.root, names: i.names })), opts);
    return { file, format, images: images.map(({ id, names: n, manifest }) => ({ id, names: n, manifest })), bytes };
  } finally {
    await dst.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The write side: load, tag, rmi, fsck, gc (issue 6)

export type { LoadedImage } from './transports/store/destination.js';
export type { FsckProblem, FsckResult } from './transports/store/fsck.js';
export type { GcRemoval } from './transports/store/gc.js';

export interface StoreWriteOptions extends StoreOptions {
  /** Write to a data root berth did not create (default: refused, such roots are read-only). */
  readonly allowWrite?: boolean;
  /** Skip fsync (tests). */
  readonly fsync?: boolean;
}

export interface LoadOptions extends StoreWriteOptions {
  /** For an index: the platform to load (default: the host's). */
  readonly platform?: Platform;
  /** Names to give (NAME[:TAG]); default the names the source carries. Only with one image. */
  readonly tags?: readonly string[];
  /** Storage driver when the root is created now (default overlay2). */
  readonly driver?: StoreDriver;
  readonly onEvent?: CopyOptions['onEvent'];
}

export interface LoadResult {
  readonly root: string;
  readonly driver: StoreDriver;
  readonly images: readonly LoadedImage[];
  readonly notes: readonly string[];
}

/** A view of `src` whose root() is one given root (to copy every image of an archive). */
function sourceFor(src: ImageSource, root: RootEntry): ImageSource {
  return {
    reference: src.reference,
    entryPoint: (o) => src.entryPoint(o),
    root: async () => root,
    open: (d, o) => src.open(d, o),
    has: (d, o) => src.has(d, o),
    close: async () => undefined,
  };
}

/**
 * `docker load`, offline: every image of `source` (an archive, a layout, any reference berth
 * reads; one reference's image when it selects one) into the data root, through the copy engine
 * and the store destination. Layers the root has (by chainID) are reused.
 */
export async function loadImages(source: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const root = path.resolve(opts.root ?? defaultStoreRoot());
  const srcRef = await parseImageName(source);
  const dstRef = storeTransport.parseReference(`[${root}]`) as StoreReference;
  const allowWrite = opts.allowWrite ?? storeAllowWrite();
  const dst = await StoreDestination.open(dstRef, {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.fsync !== undefined ? { fsync: opts.fsync } : {}),
    ...(allowWrite !== undefined ? { allowWrite } : {}),
    ...(opts.driver !== undefined ? { driver: opts.driver } : {}),
  });
  try {
    const src = await srcRef.openSource(opts);
    const notes: string[] = [];
    const named: NamedRoot[] = [];
    try {
      const roots: RootEntry[] = srcRef.selector !== undefined ? [await src.root(opts)] : [...(await src.entryPoint(opts)).roots];
      if (roots.length === 0) throw new BerthError('BERTH_NOT_FOUND', `${source}: holds no image`, { subject: source });
      if (opts.tags !== undefined && opts.tags.length > 0 && roots.length > 1) {
        throw new BerthError('BERTH_USAGE', `${source}: holds ${roots.length} images; --tag names a single image`, { subject: source });
      }
      for (const r of roots) {
        const result = await copyImage(sourceFor(src, r), dst, {
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
          platforms: [opts.platform ?? hostPlatform()],
          attestations: 'drop',
        });
        for (const n of result.notes) if (!notes.includes(n)) notes.push(n);
        // As docker load: names that are full references; a bare ref.name tag (`latest`) names nothing.
        const names = opts.tags !== undefined && opts.tags.length > 0 ? opts.tags : carriedNames(r.names).filter((n) => n.includes(':') || n.includes('/'));
        named.push({ descriptor: result.root, names });
        // As docker pull: the digest the tag resolved to becomes a RepoDigest, the layers' sources are remembered.
        if (srcRef instanceof RegistryReference) dst.recordPull(result.root.digest, { repository: referenceName(srcRef.docker), digest: r.descriptor.digest });
      }
    } finally {
      await src.close();
    }
    await dst.commit(named, opts);
    return { root: dstRef.path, driver: (await DataRoot.open(root)).driver, images: dst.loaded, notes: [...notes, ...dst.notes] };
  } finally {
    await dst.close();
  }
}

/** Runs `fn` on an open root with the writer lock held, after the write checks. */
async function writeLocked<T>(opts: StoreWriteOptions, fn: (store: DataRoot) => Promise<T>): Promise<T> {
  const root = path.resolve(opts.root ?? defaultStoreRoot());
  const allowWrite = opts.allowWrite ?? storeAllowWrite() === true;
  const state = await assertWritable(root, { allowWrite });
  if (state === 'absent' || state === 'empty') throw new BerthError('BERTH_NOT_FOUND', `store ${root}: holds no images (nothing to change)`, { subject: root });
  return withStoreLock(root, async () => {
    await assertWritable(root, { allowWrite });
    return fn(await DataRoot.open(root));
  });
}

export interface TagResult {
  readonly id: Digest;
  /** The familiar name written, e.g. `app:2`. */
  readonly name: string;
  /** The image the name pointed at before, if another one. */
  readonly replaced?: Digest;
}

/** `docker tag SRC DST`, offline: DST (NAME[:TAG], default tag latest) now names SRC's image. */
export async function tagStoreImage(srcName: string, dstName: string, opts: StoreWriteOptions = {}): Promise<TagResult> {
  return writeLocked(opts, async (store) => {
    const image = await imageNamed(store, splitName(srcName, opts).name ?? srcName);
    let keys;
    try {
      keys = repositoryKeys(dstName);
    } catch (err) {
      throw new BerthError('BERTH_INVALID_REFERENCE', `tag ${JSON.stringify(dstName)}: ${(err as Error).message}`, { subject: dstName, cause: err });
    }
    if (keys.kind === 'digest') throw new BerthError('BERTH_INVALID_REFERENCE', `tag ${JSON.stringify(dstName)}: refusing to create a tag with a digest reference`, { subject: dstName });
    const before = lookupReference(await store.repositories(), keys.reference)?.id;
    const writer = new StoreWriter(store, opts.fsync !== undefined ? { fsync: opts.fsync } : {});
    await writer.updateRepositories((r) => {
      (r[keys.repository] ??= {})[keys.reference] = image.id;
    });
    await writer.writeMetadata(image.id, 'lastUpdated', rfc3339Nano());
    return { id: image.id, name: keys.reference, ...(before !== undefined && before !== image.id ? { replaced: before } : {}) };
  });
}

export interface RemoveOptions extends StoreWriteOptions {
  /** Remove images that containers use, and images named in several repositories, by ID. */
  readonly force?: boolean;
}

export interface RemoveResult {
  /** What happened, in order, as docker rmi prints it: `Untagged: app:1`, `Deleted: sha256:…` (images, then their layers). */
  readonly events: ReadonlyArray<{ readonly action: 'untagged' | 'deleted'; readonly ref: string }>;
  readonly untagged: readonly string[];
  readonly deleted: readonly Digest[];
  /** Chains of the layers removed. */
  readonly layers: readonly Digest[];
}

/**
 * `docker rmi NAME|ID...`, offline. A name is untagged; an image whose last name goes (or named
 * by ID) is deleted, with the layers no other image or container uses (top first, so a crash
 * never leaves a layer without its parent). An image a container uses needs `force` (its layers
 * stay for the container); an image other images name as their parent cannot be removed.
 */
export async function removeStoreImages(names: readonly string[], opts: RemoveOptions = {}): Promise<RemoveResult> {
  if (names.length === 0) throw new BerthError('BERTH_USAGE', 'rmi: at least one image is required', {});
  return writeLocked(opts, async (store) => {
    const writer = new StoreWriter(store, opts.fsync !== undefined ? { fsync: opts.fsync } : {});
    const untagged: string[] = [];
    const deleted: Digest[] = [];
    const layers: Digest[] = [];
    const events: Array<{ action: 'untagged' | 'deleted'; ref: string }> = [];
    for (const text of names) {
      const { name } = splitName(text, opts);
      if (name === undefined) throw new BerthError('BERTH_USAGE', 'rmi: an image name or ID is required', {});
      const repos = await store.repositories();
      const inv = await takeInventory(store);
      const byId = name.startsWith('@') || /^(?:sha256:)?[a-f0-9]{1,64}$/.test(name) && lookupReference(repos, name) === undefined;
      const id = await store.resolve(name);
      if (id === undefined) throw new BerthError('BERTH_NOT_FOUND', `rmi: no image ${JSON.stringify(name)} in store ${store.root}`, { subject: name });
      const refs = repos.refs.filter((r) => r.id === id);
      const ref = byId ? undefined : lookupReference(repos, name);
      const remaining = ref === undefined ? [] : refs.filter((r) => r.reference !== ref.reference);
      const users = inv.containers.filter((c) => c.image === id);
      const children = inv.images.filter((i) => i.parent === id);
      if (ref !== undefined && remaining.length > 0) {
        // Only a name goes.
        await writer.updateRepositories((r) => {
          delete r[ref.repository]?.[ref.reference];
        });
        untagged.push(ref.reference);
        events.push({ action: 'untagged', ref: ref.reference });
        continue;
      }
      if (byId && new Set(refs.map((r) => r.repository)).size > 1 && opts.force !== true) {
        throw new BerthError('BERTH_USAGE', `rmi: conflict: unable to delete ${shortId(id)} (must be forced) - image is referenced in multiple repositories`, { subject: name });
      }
      if (users.length > 0 && opts.force !== true) {
        const c = users[0]!;
        throw new BerthError('BERTH_USAGE', `rmi: conflict: unable to ${ref ? `remove repository reference ${JSON.stringify(ref.reference)}` : `delete ${shortId(id)}`} (must force) - container ${c.id.slice(0, 12)}${c.name ? ` (${c.name})` : ''} is using its referenced image ${shortId(id)}`, { subject: name });
      }
      if (children.length > 0) {
        throw new BerthError('BERTH_USAGE', `rmi: conflict: unable to delete ${shortId(id)} (cannot be forced) - image has dependent child images (${children.map((c) => shortId(c.id)).join(', ')})`, { subject: name });
      }
      // Names first, then the image record, then the layers it alone used (top first).
      if (refs.length > 0) {
        await writer.updateRepositories((r) => {
          for (const x of refs) delete r[x.repository]?.[x.reference];
        });
        failpoint('rmi-untagged');
        for (const x of refs) {
          untagged.push(x.reference);
          events.push({ action: 'untagged', ref: x.reference });
        }
      }
      await writer.removeImageRecord(id);
      deleted.push(id);
      events.push({ action: 'deleted', ref: id });
      const image = inv.images.find((i) => i.id === id);
      const stillUsed = referencedChains(inv, new Set([id]));
      for (const chain of [...(image?.chains ?? [])].reverse()) {
        if (stillUsed.has(chain) || !inv.layers.has(chain)) break;
        await writer.removeLayer(chain);
        layers.push(chain);
        events.push({ action: 'deleted', ref: chain });
      }
    }
    return { events, untagged, deleted, layers };
  });
}

export interface FsckStoreOptions extends StoreOptions {
  /** Rebuild and hash every layer (default true). */
  readonly content?: boolean;
}

/** `berth store fsck`: every problem of the data root as one line (reads only). */
export async function fsckStore(opts: FsckStoreOptions = {}): Promise<FsckResult> {
  const store = await DataRoot.open(path.resolve(opts.root ?? defaultStoreRoot()));
  return checkStore(store, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.content !== undefined ? { content: opts.content } : {}) });
}

export interface GcStoreOptions extends StoreWriteOptions {
  readonly dryRun?: boolean;
}

export interface GcResult {
  readonly root: string;
  readonly removed: readonly GcRemoval[];
  readonly dryRun: boolean;
}

/** `berth store gc`: removes unreferenced layers, orphan driver directories, dead links and temp leftovers. */
export async function gcStore(opts: GcStoreOptions = {}): Promise<GcResult> {
  const run = async (store: DataRoot) => ({ root: store.root, removed: await collectGarbage(store, opts), dryRun: opts.dryRun === true });
  if (opts.dryRun === true) return run(await DataRoot.open(path.resolve(opts.root ?? defaultStoreRoot())));
  return writeLocked(opts, run);
}
