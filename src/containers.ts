/**
 * Containers of a Docker data root, offline (issue 10): list them, show what a container changed
 * (`docker diff`), export its merged file system (`docker export`) or only its writable layer as
 * an OCI layer tar. Read-only: nothing here mounts, locks or writes into the root. Reading
 * overlay2 layer directories needs root (the directories are 0710 root, and opaque-directory
 * markers are `trusted.*` xattrs only root can see).
 */
import { mkdtemp, rm } from 'node:fs/promises';
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
import { DataRoot } from './transports/store/data-root.js';
import { appendLayer, configSteps, type MutateResult } from './mutate.js';
import type { StoreDriver } from './transports/store/overlay2.js';
import { defaultStoreRoot } from './transports/store/reference.js';

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
