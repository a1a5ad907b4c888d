/**
 * Containers of a Docker data root, offline (issue 10): list them, show what a container changed
 * (`docker diff`), export its merged file system (`docker export`) or only its writable layer as
 * an OCI layer tar. Read-only: nothing here mounts, locks or writes into the root. Reading
 * overlay2 layer directories needs root (the directories are 0710 root, and opaque-directory
 * markers are `trusted.*` xattrs only root can see).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDigester, type Digest } from './core/digest.js';
import { BerthError } from './core/errors.js';
import { compress, type Compression } from './io/codec.js';
import { writeStreamAtomic } from './io/atomic-file.js';
import type { ByteStream, IoOptions } from './io/stream.js';
import {
  changeEntries, comparePaths, lookupTree, mergeLayers, naiveChanges, overlayChanges, treeEntries, walkTree,
  type FsChange, type FsNode,
} from './layer/generate.js';
import { writeTar } from './tar/writer.js';
import {
  containerLayers, findContainer, listContainerRecords, scanLayerDir,
  type ContainerLayers, type ContainerRecord,
} from './transports/store/containers.js';
import { DataRoot, isStoredImage } from './transports/store/data-root.js';
import { appendLayer, configSteps, type MutateResult } from './mutate.js';
import type { StoreDriver } from './transports/store/overlay2.js';
import { defaultStoreRoot, storeAllowWrite } from './transports/store/reference.js';
import { extractLayers } from './layer/extract.js';
import { assertWritable, withStoreLock } from './transports/store/safety.js';
import {
  CONTAINER_NAME, newContainerId, removeContainerFiles, writeNewContainer,
} from './transports/store/container-write.js';
import {
  bindMount, clearMountState, copyChanges, emptyDir, foldChanges, isMountPoint, loadSnapshot, overlayMount, prepareMountPoint, readMountState,
  saveSnapshot, snapshotTree, unmount, writeMountState, type FoldResult, type MountKind,
} from './transports/store/container-mount.js';

export type { FsChange, ChangeKind } from './layer/generate.js';

export interface ContainerOptions extends IoOptions {
  /** The data root; default the store root (`--root`, $BERTH_ROOT, …). */
  readonly root?: string;
}

/** How changes are computed: dockerd's naive tree comparison, or its overlay upper-dir walk. */
export type DiffMode = 'naive' | 'overlay';

export interface ContainerInfo {
  readonly id: string;
  readonly name: string | undefined;
  readonly image: string | undefined;
  readonly imageId: Digest | undefined;
  readonly created: string | undefined;
  readonly running: boolean | undefined;
  readonly command: string | undefined;
  /** Bytes of the writable layer (dockerd's rules: the upper dir for overlay2, changed files for vfs); undefined when unreadable. */
  readonly size: number | undefined;
  readonly problems: readonly string[];
}

export interface ContainersResult {
  readonly root: string;
  readonly driver: StoreDriver;
  /** Newest first. */
  readonly containers: readonly ContainerInfo[];
}

async function openRoot(opts: ContainerOptions): Promise<DataRoot> {
  return DataRoot.open(path.resolve(opts.root ?? defaultStoreRoot()));
}

function needRoot(store: DataRoot): void {
  if (store.driver === 'overlay2' && process.getuid !== undefined && process.getuid() !== 0) {
    throw new BerthError('BERTH_UNSUPPORTED', `store ${store.root}: reading overlay2 container layers needs root (the layer directories are root-only, and opaque-directory markers are trusted.* xattrs only root can see)`, { subject: store.root });
  }
}

/** Sums sizes of non-directories, each inode once (dockerd's directory.Size / ChangesSize). */
function sizeOf(nodes: Iterable<FsNode>): number {
  const seen = new Set<string>();
  let n = 0;
  for (const node of nodes) {
    const s = node.stat;
    if (s.kind === 'directory') continue;
    if (s.nlink > 1) {
      const key = `${s.dev}:${s.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    n += s.size;
  }
  return n;
}

/** The containers of a data root, as `docker ps -a -s` lists them. */
export async function listContainers(opts: ContainerOptions = {}): Promise<ContainersResult> {
  const store = await openRoot(opts);
  const records = await listContainerRecords(store);
  const canRead = store.driver === 'vfs' || process.getuid?.() === 0;
  const containers: ContainerInfo[] = [];
  for (const r of records) {
    let size: number | undefined;
    const problems = [...r.problems];
    if (canRead && r.mountId !== undefined) {
      try {
        const layers = await containerLayers(store, r);
        size = await writableSize(layers, opts);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    containers.push({
      id: r.id, name: r.name, image: r.image, imageId: r.imageId, created: r.created, running: r.running, command: r.command, size, problems,
    });
  }
  return { root: store.root, driver: store.driver, containers };
}

async function writableSize(layers: ContainerLayers, opts: IoOptions): Promise<number> {
  if (layers.driver === 'overlay2') {
    const upper = await scanLayerDir(layers.rw, opts);
    return sizeOf([...walkTree(upper)].map(([, n]) => n));
  }
  const [oldRoot, newRoot] = await Promise.all([scanLayerDir(layers.init, opts), scanLayerDir(layers.rw, opts)]);
  const changes = naiveChanges(newRoot, oldRoot);
  return sizeOf(changes.filter((c) => c.kind !== 'D').map((c) => lookupTree(newRoot, c.path.slice(1))).filter((n): n is FsNode => n !== undefined));
}

interface OpenedContainer {
  readonly store: DataRoot;
  readonly record: ContainerRecord;
  readonly layers: ContainerLayers;
}

async function openContainer(text: string, opts: ContainerOptions): Promise<OpenedContainer> {
  if (text === '') throw new BerthError('BERTH_USAGE', 'a container ID or name is required', {});
  const store = await openRoot(opts);
  const record = await findContainer(store, text);
  needRoot(store);
  const layers = await containerLayers(store, record);
  return { store, record, layers };
}

interface Trees {
  /** What the container sees. */
  readonly merged: FsNode;
  /** What it saw when created (the image plus the init layer). */
  readonly before: FsNode;
  /** overlay2: the upper dir scanned. */
  readonly upper?: FsNode;
}

async function buildTrees(layers: ContainerLayers, opts: IoOptions): Promise<Trees> {
  if (layers.driver === 'vfs') {
    const [before, merged] = await Promise.all([scanLayerDir(layers.init, opts), scanLayerDir(layers.rw, opts)]);
    return { merged, before };
  }
  const lowers: FsNode[] = [];
  for (const dir of [...layers.lowers].reverse()) lowers.push(await scanLayerDir(dir, opts));
  const upper = await scanLayerDir(layers.rw, opts);
  return { merged: mergeLayers([...lowers, upper]), before: mergeLayers(lowers), upper };
}

function hasRedirects(n: FsNode): boolean {
  for (const [, c] of walkTree(n)) if (c.redirect !== undefined) return true;
  return false;
}

export interface ContainerDiffOptions extends ContainerOptions {
  /**
   * Default naive: dockerd's ChangesDirs over the merged trees, exact, and what dockerd 20.10
   * answered `docker diff` with in our tests on both drivers (even with "Native Overlay Diff:
   * true"). 'overlay' follows moby's OverlayChanges walk of the upper dir (not checked against a
   * dockerd that uses it). vfs is always naive.
   */
  readonly mode?: DiffMode;
}

export interface ContainerDiffResult {
  readonly id: string;
  readonly name: string | undefined;
  readonly driver: StoreDriver;
  readonly mode: DiffMode;
  /** `docker diff` lines: A added, C changed, D deleted. */
  readonly changes: readonly FsChange[];
}

async function chooseMode(layers: ContainerLayers, want: DiffMode | undefined): Promise<DiffMode> {
  if (layers.driver === 'vfs') {
    if (want === 'overlay') throw new BerthError('BERTH_USAGE', '--mode overlay needs an overlay2 store (this one uses vfs)', {});
    return 'naive';
  }
  return want ?? 'naive';
}

/** `docker diff ID`, offline. */
export async function containerDiff(text: string, opts: ContainerDiffOptions = {}): Promise<ContainerDiffResult> {
  const c = await openContainer(text, opts);
  const mode = await chooseMode(c.layers, opts.mode);
  let changes: FsChange[];
  if (mode === 'overlay') {
    const upper = await scanLayerDir(c.layers.rw, opts);
    if (hasRedirects(upper)) {
      throw new BerthError('BERTH_UNSUPPORTED', `container ${c.record.id.slice(0, 12)}: its upper dir has renamed directories (overlay redirect_dir), which the overlay walk cannot follow; use --mode naive`, { subject: c.record.id });
    }
    changes = await overlayChanges(upper, c.layers.lowers);
  } else {
    const trees = await buildTrees(c.layers, opts);
    changes = naiveChanges(trees.merged, trees.before);
  }
  return { id: c.record.id, name: c.record.name, driver: c.store.driver, mode, changes };
}

/** The merged file system of a container as a tar stream (`docker export`), hard links kept, owners kept. */
export async function exportContainer(text: string, opts: ContainerOptions = {}): Promise<ByteStream> {
  const c = await openContainer(text, opts);
  const trees = await buildTrees(c.layers, opts);
  return writeTar(treeEntries(trees.merged, { keepOwner: true }), opts.signal ? { signal: opts.signal } : {});
}

export async function exportContainerToFile(text: string, file: string, opts: ContainerOptions = {}): Promise<number> {
  return writeStreamAtomic(file, await exportContainer(text, opts));
}

export interface ContainerLayerOptions extends ContainerOptions {
  /** Compression of the written file (default none: a plain layer tar). */
  readonly compression?: Compression;
}

export interface ContainerLayerResult {
  readonly id: string;
  readonly file: string;
  /** sha256 of the uncompressed tar. */
  readonly diffId: Digest;
  /** sha256 of the file as written. */
  readonly digest: Digest;
  readonly size: number;
  /** How the layer was made: the upper dir converted (overlay2), or dockerd's naive change export. */
  readonly method: 'upper' | 'changes';
  readonly entries: number;
}

async function* tee(src: ByteStream, onChunk: (c: Uint8Array) => void): ByteStream {
  for await (const c of src) {
    onChunk(c);
    yield c;
  }
}

/**
 * Only the writable layer of a container, as an OCI layer tar: overlay2's upper dir with its
 * whiteout devices as `.wh.` files and opaque directories followed by `.wh..wh..opq`; for vfs
 * (and for overlay2 upper dirs with renamed directories) dockerd's naive export of the changes.
 */
export async function containerLayerStream(text: string, opts: ContainerOptions = {}): Promise<{ id: string; method: 'upper' | 'changes'; entries: number; stream: ByteStream }> {
  const c = await openContainer(text, opts);
  const io = opts.signal ? { signal: opts.signal } : {};
  if (c.layers.driver === 'overlay2') {
    const upper = await scanLayerDir(c.layers.rw, opts);
    if (!hasRedirects(upper)) {
      const entries = [...treeEntries(upper, { keepOwner: true })];
      return { id: c.record.id, method: 'upper', entries: entries.length, stream: writeTar(entries, io) };
    }
  }
  const trees = await buildTrees(c.layers, opts);
  const changes = naiveChanges(trees.merged, trees.before).sort((a, b) => comparePaths(a.path, b.path));
  const entries = [...changeEntries(trees.merged, changes, { keepOwner: true })];
  return { id: c.record.id, method: 'changes', entries: entries.length, stream: writeTar(entries, io) };
}

export async function containerLayerToFile(text: string, file: string, opts: ContainerLayerOptions = {}): Promise<ContainerLayerResult> {
  const { id, method, entries, stream } = await containerLayerStream(text, opts);
  const raw = createDigester();
  const out = createDigester();
  const compression = opts.compression ?? 'none';
  const size = await writeStreamAtomic(file, tee(compress(tee(stream, (c) => raw.update(c)), compression, opts.signal ? { signal: opts.signal } : {}), (c) => out.update(c)));
  return { id, file, diffId: raw.digest(), digest: out.digest(), size, method, entries };
}

export interface CommitOptions extends ContainerOptions {
  /** History comment (`docker commit -m`). */
  readonly message?: string;
  readonly author?: string;
  /** Dockerfile instructions applied to the config (`docker commit --change`). */
  readonly changes?: readonly string[];
  readonly sourceDateEpoch?: number;
}

/**
 * `docker commit`, offline: the container's writable layer (as `containerLayerStream` makes it)
 * appended to its image, with `--change` instructions, written to `target`: a bare
 * `NAME[:TAG]` goes into the same data root (`store:[ROOT]NAME`), anything else is a transport
 * reference. Writing into a root berth did not create needs the store's --allow-write, and a
 * root a live dockerd uses is refused by the store destination.
 */
export async function commitContainer(text: string, target: string, opts: CommitOptions = {}): Promise<MutateResult> {
  const c = await openContainer(text, opts);
  if (c.record.running === true) {
    throw new BerthError('BERTH_UNSUPPORTED', `container ${c.record.name ?? c.record.id.slice(0, 12)} is running (config.v2.json says so); stop it first: berth reads its files without pausing it`, { subject: c.record.id });
  }
  if (c.record.imageId === undefined) throw new BerthError('BERTH_NOT_FOUND', `container ${c.record.id.slice(0, 12)}: containers/${c.record.id}/config.v2.json names no image ID`, { subject: c.record.id });
  const mounted = await readMountState(c.store, c.record.id);
  if (mounted !== undefined) {
    throw new BerthError('BERTH_USAGE', `container ${c.record.name ?? c.record.id.slice(0, 12)} is mounted at ${mounted.dir} (${mounted.kind}); unmount it first (berth container unmount ${c.record.name ?? c.record.id.slice(0, 12)})`, { subject: c.record.id });
  }
  if (!(await c.store.imageIds()).includes(c.record.imageId)) {
    throw new BerthError('BERTH_NOT_FOUND', `container ${c.record.name ?? c.record.id.slice(0, 12)}: its image ${c.record.imageId} is no longer in store ${c.store.root} (removed with rmi --force?), so there is nothing to commit its layer onto`, { subject: c.record.id });
  }
  // Check the instructions before any work.
  configSteps({ ...(opts.changes !== undefined ? { changes: opts.changes } : {}) });
  const work = await mkdtemp(path.join(tmpdir(), 'berth-commit-'));
  try {
    const layer = path.join(work, 'layer.tar');
    await containerLayerToFile(c.record.id, layer, { ...opts, root: c.store.root });
    const dest = /^(?:oci|oci-archive|docker-archive|store):|^docker:\/\//.test(target) ? target : `store:[${c.store.root}]${target}`;
    return await appendLayer(`store:[${c.store.root}]@${c.record.imageId.replace(/^sha256:/, '')}`, layer, dest, {
      createdBy: c.record.command ?? '',
      ...(opts.message !== undefined ? { message: opts.message } : {}),
      ...(opts.author !== undefined ? { author: opts.author } : {}),
      ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      config: opts.changes !== undefined ? { changes: opts.changes } : {},
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Working containers: create, mount, unmount, rm (offline, into the data root)

export interface ContainerWriteOptions extends ContainerOptions {
  /** Write to a data root berth did not create (default: the CLI's --allow-write). */
  readonly allowWrite?: boolean;
  /** Skip fsync (tests). */
  readonly fsync?: boolean;
}

/** Runs `fn` on an open root with the writer lock held, after the write checks (no live dockerd; berth's root or --allow-write). */
async function writeLockedRoot<T>(opts: ContainerWriteOptions, fn: (store: DataRoot) => Promise<T>): Promise<T> {
  const root = path.resolve(opts.root ?? defaultStoreRoot());
  const allowWrite = opts.allowWrite ?? storeAllowWrite() === true;
  const state = await assertWritable(root, { allowWrite });
  if (state === 'absent' || state === 'empty') throw new BerthError('BERTH_NOT_FOUND', `store ${root}: holds no images`, { subject: root });
  return withStoreLock(root, async () => {
    await assertWritable(root, { allowWrite });
    return fn(await DataRoot.open(root));
  });
}

const NAME_LEFT = ['brave', 'calm', 'eager', 'fond', 'keen', 'lucid', 'quiet', 'swift', 'tidy', 'witty'];
const NAME_RIGHT = ['anchor', 'buoy', 'cabin', 'deck', 'harbor', 'keel', 'mast', 'pier', 'quay', 'sail'];

export interface CreateContainerOptions extends ContainerWriteOptions {
  /** Container name (default: a generated `adjective_noun`). */
  readonly name?: string;
  /** Replaces the image's Cmd. */
  readonly command?: readonly string[];
  /** HostConfig.NetworkMode (default `default`, dockerd's default bridge network). */
  readonly network?: string;
}

export interface CreateContainerResult {
  readonly id: string;
  readonly name: string;
  readonly image: Digest;
  readonly driver: StoreDriver;
  readonly mountId: string;
}

/**
 * `docker create IMAGE [COMMAND…]`, offline: the container's init and writable layers, its
 * layerdb mount record and containers/<id>/{config.v2.json,hostconfig.json}, laid out as dockerd
 * 20.10 lays them out, so a dockerd started on the root lists (and can start) it.
 */
export async function createContainer(imageText: string, opts: CreateContainerOptions = {}): Promise<CreateContainerResult> {
  if (imageText === '') throw new BerthError('BERTH_USAGE', 'an image is required', {});
  if (opts.name !== undefined && !CONTAINER_NAME.test(opts.name.replace(/^\//, ''))) {
    throw new BerthError('BERTH_USAGE', `invalid container name ${JSON.stringify(opts.name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, { subject: opts.name });
  }
  const network = opts.network ?? 'default';
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(network)) throw new BerthError('BERTH_USAGE', `invalid network ${JSON.stringify(network)}`, { subject: network });
  return writeLockedRoot(opts, async (store) => {
    const id = await store.resolve(imageText);
    if (id === undefined) throw new BerthError('BERTH_NOT_FOUND', `no such image ${JSON.stringify(imageText)} in store ${store.root}`, { subject: imageText });
    const image = await store.image(id);
    if (!isStoredImage(image)) throw new BerthError('BERTH_DIGEST_MISMATCH', image.problem, { subject: id });
    if (image.problems.length > 0) throw new BerthError('BERTH_INVALID_LAYER', `image ${id.slice(7, 19)} cannot be used: ${image.problems[0]}`, { subject: id });
    const existing = await listContainerRecords(store);
    const taken = new Map(existing.filter((c) => c.name !== undefined).map((c) => [c.name!, c.id]));
    let name = opts.name?.replace(/^\//, '');
    if (name !== undefined && taken.has(name)) {
      throw new BerthError('BERTH_EXISTS', `the container name "/${name}" is already in use by container "${taken.get(name)}"; remove (or rename) that container to reuse the name`, { subject: name });
    }
    const cid = newContainerId();
    if (name === undefined) {
      const h = Buffer.from(cid.slice(0, 4), 'hex');
      name = `${NAME_LEFT[h[0]! % NAME_LEFT.length]}_${NAME_RIGHT[h[1]! % NAME_RIGHT.length]}`;
      if (taken.has(name)) name = `${name}_${cid.slice(0, 6)}`;
    }
    const created = await writeNewContainer(store, {
      id: cid, name, imageRef: imageText, image, network, driver: store.driver, created: new Date(),
      ...(opts.command !== undefined && opts.command.length > 0 ? { cmd: opts.command } : {}),
    }, opts.fsync !== undefined ? { fsync: opts.fsync } : {});
    return { id: cid, name, image: id, driver: store.driver, mountId: created.mountId };
  });
}

export interface MountContainerOptions extends ContainerWriteOptions {
  /** Always make a materialised copy (no kernel mount). */
  readonly copy?: boolean;
}

export interface MountContainerResult {
  readonly id: string;
  readonly dir: string;
  readonly kind: MountKind;
  /** Why a copy was made instead of a mount, when one was. */
  readonly notes: readonly string[];
}

function label(rec: ContainerRecord): string {
  return rec.name ?? rec.id.slice(0, 12);
}

/**
 * `berth container mount ID DIR`: the container's file system at DIR (an empty or new
 * directory). As root: an overlay mount (overlay2) or a bind mount of its copy (vfs), the
 * writable layer changed in place; otherwise, or with `copy`, a materialised copy whose changes
 * `unmountContainer` folds back into the writable layer.
 */
export async function mountContainer(text: string, dir: string, opts: MountContainerOptions = {}): Promise<MountContainerResult> {
  if (text === '') throw new BerthError('BERTH_USAGE', 'a container ID or name is required', {});
  if (dir === '') throw new BerthError('BERTH_USAGE', 'a mount point is required', {});
  const target = path.resolve(dir);
  return writeLockedRoot(opts, async (store) => {
    const record = await findContainer(store, text);
    if (record.running === true) throw new BerthError('BERTH_USAGE', `container ${label(record)} is running (config.v2.json says so); stop it first`, { subject: record.id });
    const layers = await containerLayers(store, record);
    const state = await readMountState(store, record.id);
    if (state !== undefined) throw new BerthError('BERTH_USAGE', `container ${label(record)} is already mounted at ${state.dir} (${state.kind}); unmount it first`, { subject: record.id });
    if (target === store.root || target.startsWith(`${store.root}/`)) throw new BerthError('BERTH_USAGE', `mount point ${target} is inside the data root`, { subject: target });
    await prepareMountPoint(target);
    const notes: string[] = [];
    const since = new Date().toISOString();
    const privileged = process.getuid?.() === 0;
    if (opts.copy !== true && privileged) {
      let kind: MountKind | undefined;
      try {
        if (store.driver === 'overlay2') {
          await overlayMount(store, record.mountId!, target);
          kind = 'overlay';
        } else {
          await bindMount(layers.rw, target);
          kind = 'bind';
        }
      } catch (err) {
        if (!isBerthErrorLike(err, 'BERTH_IO')) throw err;
        notes.push(`the kernel refused the ${store.driver === 'overlay2' ? 'overlay' : 'bind'} mount (${(err as Error).message}); made a copy instead`);
      }
      if (kind !== undefined) {
        try {
          await writeMountState(store, record.id, { kind, dir: target, since });
        } catch (err) {
          await unmount(target).catch(() => undefined);
          throw err;
        }
        return { id: record.id, dir: target, kind, notes };
      }
    } else if (opts.copy !== true) {
      notes.push('not running as root: made a copy (its changes are folded into the container at unmount)');
    }
    // A materialised copy: the merged file system, then a snapshot of what was written.
    const trees = await buildTrees(layers, opts);
    try {
      await extractLayers([{ open: async () => writeTar(treeEntries(trees.merged, { keepOwner: true }), opts.signal ? { signal: opts.signal } : {}), what: `container ${label(record)}` }], target, {
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      await saveSnapshot(store, record.id, await snapshotTree(target));
      await writeMountState(store, record.id, { kind: 'copy', dir: target, since });
    } catch (err) {
      await emptyDir(target).catch(() => undefined);
      await clearMountState(store, record.id).catch(() => undefined);
      throw err;
    }
    return { id: record.id, dir: target, kind: 'copy', notes };
  });
}

function isBerthErrorLike(err: unknown, code: string): boolean {
  return err instanceof BerthError && err.code === code;
}

export interface UnmountContainerOptions extends ContainerWriteOptions {
  /** A copy: drop its changes instead of folding them in. */
  readonly discard?: boolean;
}

export interface UnmountContainerResult {
  readonly id: string;
  readonly dir: string;
  readonly kind: MountKind;
  /** A copy: what was folded into the writable layer. */
  readonly folded?: FoldResult;
}

async function undoMount(store: DataRoot, record: ContainerRecord, layers: ContainerLayers, discard: boolean, opts: IoOptions): Promise<UnmountContainerResult> {
  const state = await readMountState(store, record.id);
  if (state === undefined) throw new BerthError('BERTH_USAGE', `container ${label(record)} is not mounted`, { subject: record.id });
  if (state.kind !== 'copy') {
    await unmount(state.dir);
    await clearMountState(store, record.id);
    return { id: record.id, dir: state.dir, kind: state.kind };
  }
  if (discard) {
    await emptyDir(state.dir).catch(() => undefined);
    await clearMountState(store, record.id);
    return { id: record.id, dir: state.dir, kind: 'copy' };
  }
  if ((await isMountPoint(state.dir)) || !(await stat(state.dir).then((s) => s.isDirectory(), () => false))) {
    throw new BerthError('BERTH_NOT_FOUND', `the copy of container ${label(record)} at ${state.dir} is gone or replaced; remove the container with --force to drop the mount record`, { subject: state.dir });
  }
  const before = await loadSnapshot(store, record.id);
  const changes = copyChanges(before, await snapshotTree(state.dir));
  let folded: FoldResult;
  if (layers.driver === 'overlay2') {
    const lowers: FsNode[] = [];
    for (const d of [...layers.lowers].reverse()) lowers.push(await scanLayerDir(d, opts));
    const upper = await scanLayerDir(layers.rw, opts);
    folded = await foldChanges(state.dir, layers.rw, changes, { overlay: true, lowers: mergeLayers(lowers), upper });
  } else {
    folded = await foldChanges(state.dir, layers.rw, changes, { overlay: false });
  }
  await emptyDir(state.dir);
  await clearMountState(store, record.id);
  return { id: record.id, dir: state.dir, kind: 'copy', folded };
}

/** `berth container unmount ID`: unmounts, or folds the copy's changes into the writable layer and empties it. */
export async function unmountContainer(text: string, opts: UnmountContainerOptions = {}): Promise<UnmountContainerResult> {
  if (text === '') throw new BerthError('BERTH_USAGE', 'a container ID or name is required', {});
  return writeLockedRoot(opts, async (store) => {
    const record = await findContainer(store, text);
    const layers = await containerLayers(store, record);
    return undoMount(store, record, layers, opts.discard === true, opts);
  });
}

export interface RemoveContainerOptions extends ContainerWriteOptions {
  /** Remove a mounted (unmounting it; a copy's changes are dropped) or running-marked container. */
  readonly force?: boolean;
}

export interface RemoveContainerResult {
  readonly id: string;
  readonly name: string | undefined;
  /** The mount undone first (with force). */
  readonly unmounted?: MountKind;
}

/** `docker rm [-f] ID`, offline: the container's directories, mount record and layers go; its image stays. */
export async function removeContainer(text: string, opts: RemoveContainerOptions = {}): Promise<RemoveContainerResult> {
  if (text === '') throw new BerthError('BERTH_USAGE', 'a container ID or name is required', {});
  return writeLockedRoot(opts, async (store) => {
    const record = await findContainer(store, text);
    const state = await readMountState(store, record.id);
    if (state !== undefined && opts.force !== true) {
      throw new BerthError('BERTH_USAGE', `container ${label(record)} is mounted at ${state.dir} (${state.kind}); unmount it first (berth container unmount ${label(record)}) or remove it with --force`, { subject: record.id });
    }
    if (record.running === true && opts.force !== true) {
      throw new BerthError('BERTH_USAGE', `container ${label(record)} is running (config.v2.json says so); stop it first or remove it with --force`, { subject: record.id });
    }
    let unmounted: MountKind | undefined;
    if (state !== undefined) {
      if (state.kind === 'copy') await emptyDir(state.dir).catch(() => undefined);
      else await unmount(state.dir);
      unmounted = state.kind;
    }
    await removeContainerFiles(store, record, opts.fsync !== undefined ? { fsync: opts.fsync } : {});
    return { id: record.id, name: record.name, ...(unmounted !== undefined ? { unmounted } : {}) };
  });
}
