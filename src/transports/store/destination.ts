/**
 * Writing images into a data root (`store:[ROOT]NAME`, `berth load`), as `docker load` fills it
 * (formats.md 10.11, 10.12), through the copy engine's destination contract:
 *
 * - open: refuses roots a live dockerd uses and roots berth did not create (unless allowed),
 *   creates a new root, and takes the writer lock for the whole write;
 * - put: blobs are verified and staged under `layerdb/tmp/` (configs and layers as they come,
 *   compressed or not); a layer the store already has (same diff_id, known directly or through
 *   distribution/diffid-by-digest) and a config already in imagedb are reported present and not
 *   copied at all;
 * - commit: every image is planned first (manifest, config, diff_ids, chainIDs, names); then each
 *   layer not in the store by chainID is applied out of sight (files + tar-split + diff_id check);
 *   only when all of them succeeded are they published base first, then the configs, then the
 *   names in repositories.json. Bad input therefore leaves the store unchanged;
 * - close: removes the staging area and releases the lock.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { chainIds, configDiffIds, parseImageConfig } from '../../core/config.js';
import type { Descriptor } from '../../core/descriptor.js';
import { isDigest, shortDigest, type Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import { parseImageManifest } from '../../core/manifest.js';
import { classifyMediaType, DOCKER_MANIFEST, OCI_MANIFEST } from '../../core/media-types.js';
import { TEMP_PREFIX } from '../../io/atomic-file.js';
import { decompress, detectCompression } from '../../io/codec.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import { BlobDirectory } from '../shared/layout-writer.js';
import type { DestinationCapabilities, DestinationOptions, ImageDestination, ImageReference, NamedRoot } from '../transport.js';
import { describeUnprivileged, emptyUnprivileged, LoadBudget } from './apply.js';
import { DataRoot } from './data-root.js';
import { configFile, readConfig } from './imagedb.js';
import { layerDir, readLayerEntry, type LayerEntry } from './layerdb.js';
import type { StoreDriver } from './overlay2.js';
import { acquireStoreLock, assertWritable, createRoot, failpoint, type StoreLock } from './safety.js';
import { repositoryKeys, rfc3339Nano, StoreWriter, type ParentInfo, type PreparedLayer, type StagedLayer } from './writer.js';
import { verificationOf } from '../../io/verified-stream.js';
import { verifyStream } from '../../io/verify.js';
import { limits } from '../../io/limits.js';
import { SplitThread } from './split-worker.js';

/** Layer blobs from this size on are recorded as tar-split on a worker thread while applied (apply.ts). */
const RECORD_IN_WORKER_BYTES = 4 << 20;

export const STORE_CAPABILITIES: DestinationCapabilities = {
  acceptsIndex: false,
  manifestTypes: [OCI_MANIFEST, DOCKER_MANIFEST],
  layerCompression: 'preserve',
  acceptsForeignLayers: false,
  acceptsAttestations: false,
  parallelPuts: true,
  multipleRoots: true,
};

export interface StoreWriteOptions {
  /** Write to a root berth did not create. */
  readonly allowWrite?: boolean;
  /** Storage driver of a root created now (default overlay2). */
  readonly driver?: StoreDriver;
}

export interface StoreDestinationOptions extends DestinationOptions, StoreWriteOptions {}

/** One image as commit wrote it. */
export interface LoadedImage {
  readonly id: Digest;
  /** Familiar names now pointing at it (`app:1`). */
  readonly names: readonly string[];
  /** Names that pointed at another image before (that image keeps existing, maybe untagged). */
  readonly moved: ReadonlyArray<{ readonly name: string; readonly from: Digest }>;
  readonly layers: number;
  /** Layers written now (the others were in the store already). */
  readonly newLayers: number;
}

type LayerSource =
  | { readonly kind: 'blob'; readonly desc: Descriptor }
  | { readonly kind: 'staged'; readonly desc: Descriptor; readonly layer: StagedLayer }
  | { readonly kind: 'store'; readonly entry: LayerEntry };

interface ImagePlan {
  readonly id: Digest;
  readonly configBytes: Uint8Array;
  readonly diffIds: readonly Digest[];
  readonly chains: readonly Digest[];
  readonly sources: readonly LayerSource[];
  readonly keys: ReadonlyArray<{ repository: string; reference: string; name: string }>;
  /** The manifest's layer digests (what a registry serves), in order. */
  readonly layerDigests: readonly Digest[];
  /** Set when the image was pulled from a registry (recordPull). */
  readonly pulled: PullRecord | undefined;
}

/** Where a pulled image came from: what docker pull records besides the tag. */
export interface PullRecord {
  /** Full repository name, `docker.io/library/x` or `localhost:5000/app` (v2metadata's SourceRepository). */
  readonly repository: string;
  /** The digest the tag resolved to (an index's when the tag names one, as docker records it). */
  readonly digest: Digest;
}

export class StoreDestination implements ImageDestination {
  readonly capabilities = STORE_CAPABILITIES;
  private readonly manifests = new Map<string, Uint8Array>();
  private readonly pulls = new Map<string, PullRecord>();
  private diffIndex: Promise<Map<string, LayerEntry>> | undefined;
  private committed = false;
  private closed = false;
  /** overlay2: layer blobs applied as they arrived, by blob digest (see putLayer). */
  private readonly staged = new Map<string, { readonly size: number; readonly layer: StagedLayer }>();
  /** Everything staged, adopted or not: close removes what was not published. */
  private readonly stagedAll: StagedLayer[] = [];
  /** Shared by every layer of this load. */
  private readonly budget = new LoadBudget();
  /** Records the tar-split of this load's large layers: one worker thread, started by the first. */
  private readonly splitThread = new SplitThread();
  /** What commit wrote, in root order. */
  loaded: LoadedImage[] = [];
  /** Things to tell the user once (e.g. what could not be materialised without root). */
  readonly notes: string[] = [];

  private constructor(
    readonly reference: ImageReference,
    private readonly store: DataRoot,
    private readonly writer: StoreWriter,
    private readonly blobs: BlobDirectory,
    private readonly staging: string,
    private readonly lock: StoreLock,
  ) {}

  get where(): string {
    return this.reference.toString();
  }

  static async open(reference: ImageReference, opts: StoreDestinationOptions = {}): Promise<StoreDestination> {
    const root = path.resolve(reference.path);
    const allowWrite = opts.allowWrite;
    await assertWritable(root, { allowWrite: allowWrite === true });
    await mkdir(root, { recursive: true });
    const lock = await acquireStoreLock(root, opts.signal ? { signal: opts.signal } : {});
    try {
      // Checked again under the lock: another writer may have created it, or a dockerd started.
      const state = await assertWritable(root, { allowWrite: allowWrite === true });
      if (state === 'absent' || state === 'empty') await createRoot(root, opts.driver ?? 'overlay2');
      const store = await DataRoot.open(root);
      const tmp = path.join(store.imageDir, 'layerdb/tmp');
      await mkdir(tmp, { recursive: true });
      const staging = await mkdtemp(path.join(tmp, `${TEMP_PREFIX}${process.pid}-load-`));
      const writer = new StoreWriter(store, { fsync: opts.fsync !== false });
      const where = reference.toString();
      const self: { dst?: StoreDestination } = {};
      const blobs = new BlobDirectory(staging, { where, fsync: opts.fsync !== false, existing: (d) => self.dst!.present(d) });
      self.dst = new StoreDestination(reference, store, writer, blobs, staging, lock);
      return self.dst;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** diff_id → a healthy layerdb entry with that diff (any chain), read once. */
  private layersByDiffId(): Promise<Map<string, LayerEntry>> {
    this.diffIndex ??= (async () => {
      const out = new Map<string, LayerEntry>();
      const dir = path.join(this.store.imageDir, 'layerdb/sha256');
      for (const hex of (await readdir(dir).catch(() => [] as string[])).sort()) {
        if (!/^[a-f0-9]{64}$/.test(hex)) continue;
        const e = await readLayerEntry(this.store.imageDir, `sha256:${hex}` as Digest);
        if (e === undefined || e.diffId === undefined || e.cacheId === undefined || !e.hasTarSplit || e.problems.length > 0) continue;
        if (!out.has(e.diffId)) out.set(e.diffId, e);
      }
      return out;
    })();
    return this.diffIndex;
  }

  /** The diff_id a layer blob digest stands for, when the store has a layer with it. */
  private async storedDiffId(digest: Digest): Promise<Digest | undefined> {
    const index = await this.layersByDiffId();
    if (index.has(digest)) return digest;
    const viaDist = await this.writer.diffIdByDigest(digest);
    return viaDist !== undefined && index.has(viaDist) ? viaDist : undefined;
  }

  /** Whether the store has `desc` already (an image config in imagedb, a layer by diff_id). */
  private async present(desc: Descriptor): Promise<boolean> {
    const kind = classifyMediaType(desc.mediaType).kind;
    if (kind === 'config') {
      if (!desc.digest.startsWith('sha256:')) return false;
      const st = await stat(path.join(this.store.imageDir, configFile(desc.digest))).catch(() => undefined);
      return st !== undefined && st.size === desc.size;
    }
    if (kind === 'layer') return (await this.storedDiffId(desc.digest)) !== undefined;
    return false;
  }

  async has(desc: Descriptor): Promise<boolean> {
    if (this.manifests.has(desc.digest)) return true;
    if (this.staged.get(desc.digest)?.size === desc.size) return true;
    return this.blobs.has(desc);
  }

  put(desc: Descriptor, data: ByteStream, opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    if (this.store.driver === 'overlay2' && classifyMediaType(desc.mediaType).kind === 'layer') return this.putLayer(desc, data, opts);
    return this.blobs.put(desc, data, opts);
  }

  /**
   * overlay2: applies a layer blob while it arrives (its files do not depend on its parent), into
   * staged directories no one sees; commit adopts it once the config proves its diff_id. Saves
   * writing, fsyncing, reading back and hashing the blob a second time. An uncompressed blob's
   * digest is its diff_id, so the verified stream's check is the diff_id check.
   */
  private async putLayer(desc: Descriptor, data: ByteStream, opts: IoOptions): Promise<void> {
    if (this.staged.get(desc.digest)?.size === desc.size) {
      for await (const _ of data) {
        // already applied: drain (and so verify) the duplicate
      }
      return;
    }
    const v = verificationOf(data);
    const trusted = v !== undefined && v.digest === desc.digest && v.size === desc.size;
    const what = `layer ${shortDigest(desc.digest)}`;
    const verified = trusted ? data : verifyStream(data, { digest: desc.digest, size: desc.size, what: `blob ${desc.digest}` });
    const signal = opts.signal ? { signal: opts.signal } : {};
    const { compression, stream } = await detectCompression(verified, { what });
    const tar = compression === 'none' ? stream : decompress(stream, compression, { what, ...signal });
    const layer = await this.writer.stageLayer(tar, {
      what, budget: this.budget, ...signal, ...(compression === 'none' && desc.digest.startsWith('sha256:') ? { verifiedDigest: desc.digest } : {}),
      // a worker thread records tar-split while this one writes the files, unless starting it costs more
      ...(desc.size >= RECORD_IN_WORKER_BYTES ? { recordInWorker: this.splitThread } : {}),
    }).catch((err: unknown) => {
      throw withContext(err, `loading into ${this.store.root}`);
    });
    this.stagedAll.push(layer);
    if (this.closed || this.staged.has(desc.digest)) {
      await this.writer.discardStaged(layer);
      return;
    }
    this.staged.set(desc.digest, { size: desc.size, layer });
  }

  putComputed(mediaType: string, data: ByteStream, opts: IoOptions = {}): Promise<Descriptor> {
    this.checkOpen();
    return this.blobs.putComputed(mediaType, data, opts);
  }

  async putManifest(desc: Descriptor, bytes: Uint8Array, opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    await this.blobs.putBytes(desc, bytes, opts);
    this.manifests.set(desc.digest, bytes);
  }

  /**
   * Marks the image whose manifest is `manifest` as pulled from a registry: commit then writes
   * the RepoDigest `repo@digest` into repositories.json and distribution/v2metadata-by-diffid and
   * diffid-by-digest for each layer, as docker pull does.
   */
  recordPull(manifest: Digest, from: PullRecord): void {
    this.checkOpen();
    this.pulls.set(manifest, from);
  }

  private checkOpen(): void {
    if (this.closed) throw new BerthError('BERTH_USAGE', `writing to ${this.where}: the destination is closed`, { subject: this.where });
  }

  private async readStagedOrStored(desc: Descriptor): Promise<Uint8Array> {
    const staged = await readFile(this.blobs.filePath(desc.digest)).catch(() => undefined);
    if (staged !== undefined) return new Uint8Array(staged.buffer, staged.byteOffset, staged.byteLength);
    const { bytes, digest } = await readConfig(this.store.imageDir, desc.digest);
    if (digest !== desc.digest) throw new BerthError('BERTH_DIGEST_MISMATCH', `${this.store.imageRel}/${configFile(desc.digest)} hashes to ${digest}`, { subject: desc.digest });
    return bytes;
  }

  /** Everything commit needs to know about one root, checked before anything is written. */
  private async plan(root: NamedRoot): Promise<ImagePlan> {
    const desc = root.descriptor;
    const what = `manifest ${shortDigest(desc.digest)}`;
    if (classifyMediaType(desc.mediaType).kind !== 'manifest') {
      throw new BerthError('BERTH_UNSUPPORTED', `${this.where}: the store holds single-platform images, not ${desc.mediaType} (choose one with --platform)`, { subject: desc.digest });
    }
    const bytes = this.manifests.get(desc.digest);
    if (bytes === undefined) throw new BerthError('BERTH_USAGE', `committing ${this.where}: root ${desc.digest} was never put`, { subject: desc.digest });
    const manifest = parseImageManifest(bytes, { what, mediaType: desc.mediaType });
    const cfg = manifest.config;
    if (classifyMediaType(cfg.mediaType).kind !== 'config') {
      throw new BerthError('BERTH_UNSUPPORTED', `${this.where}: ${what} is not a container image (config ${cfg.mediaType})`, { subject: desc.digest });
    }
    if (!cfg.digest.startsWith('sha256:')) {
      throw new BerthError('BERTH_UNSUPPORTED', `${this.where}: config ${cfg.digest}: dockerd names images by sha256 only`, { subject: cfg.digest });
    }
    if (cfg.size > limits().maxConfigBytes) throw new BerthError('BERTH_TOO_LARGE', `${this.where}: config ${shortDigest(cfg.digest)} is over ${limits().maxConfigBytes} bytes`, { subject: cfg.digest });
    const configBytes = await this.readStagedOrStored(cfg);
    const config = parseImageConfig(configBytes, { what: `config ${shortDigest(cfg.digest)}` });
    const diffIds = configDiffIds(config);
    if (diffIds.length !== manifest.layers.length) {
      throw new BerthError('BERTH_INVALID_MANIFEST', `${this.where}: ${what} lists ${manifest.layers.length} layers but its config has ${diffIds.length} diff_ids`, {
        subject: desc.digest, want: diffIds.length, got: manifest.layers.length,
      });
    }
    const chains = chainIds(diffIds);
    const index = await this.layersByDiffId();
    const sources: LayerSource[] = [];
    for (const [i, l] of manifest.layers.entries()) {
      const st = this.staged.get(l.digest);
      if (st !== undefined) {
        sources.push({ kind: 'staged', desc: l, layer: st.layer });
        continue;
      }
      if (this.blobs.blobs.has(l.digest)) {
        sources.push({ kind: 'blob', desc: l });
        continue;
      }
      const diff = await this.storedDiffId(l.digest);
      const entry = diff === undefined ? undefined : index.get(diff);
      if (entry === undefined) throw new BerthError('BERTH_NOT_FOUND', `${this.where}: layer ${i} (${shortDigest(l.digest)}) of ${what} was never put`, { subject: l.digest });
      if (diff !== diffIds[i]) {
        throw new BerthError('BERTH_DIGEST_MISMATCH', `${this.where}: layer ${i} of ${what} is the store's ${diff}, but the config's diff_id is ${diffIds[i]}`, {
          subject: l.digest, want: diffIds[i], got: diff,
        });
      }
      sources.push({ kind: 'store', entry });
    }
    const keys: Array<{ repository: string; reference: string; name: string }> = [];
    for (const name of root.names) {
      let k;
      try {
        k = repositoryKeys(name);
      } catch (err) {
        throw withContext(err, `${this.where}: naming image ${shortDigest(cfg.digest)}`);
      }
      if (k.kind === 'digest') {
        this.notes.push(`${name}: a digest reference names a registry manifest; the store files tags only, so it was not added`);
        continue;
      }
      if (!keys.some((x) => x.reference === k.reference)) keys.push({ repository: k.repository, reference: k.reference, name });
    }
    return { id: cfg.digest, configBytes, diffIds, chains, sources, keys, layerDigests: manifest.layers.map((l) => l.digest), pulled: this.pulls.get(desc.digest) };
  }

  private openLayerSource(src: LayerSource, what: string, opts: IoOptions): ByteStream {
    const store = this.store;
    const file = src.kind === 'blob' ? this.blobs.filePath(src.desc.digest) : undefined;
    return (async function* (): ByteStream {
      if (src.kind === 'store') {
        yield* store.openLayer(src.entry, opts);
        return;
      }
      const { compression, stream } = await detectCompression(createReadStream(file!, { highWaterMark: 1 << 20 }), { what });
      yield* decompress(stream, compression, { what, ...(opts.signal ? { signal: opts.signal } : {}) });
    })();
  }

  async commit(roots: readonly NamedRoot[], opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    if (this.committed) throw new BerthError('BERTH_USAGE', `committing ${this.where}: already committed`, { subject: this.where });
    const plans: ImagePlan[] = [];
    for (const r of roots) plans.push(await this.plan(r));
    const prepared = new Map<string, PreparedLayer>();
    const unprivileged = emptyUnprivileged();
    const budget = this.budget;
    const adopted = new Set<StagedLayer>();
    const layerExists = async (chain: Digest) => (await stat(path.join(this.store.imageDir, layerDir(chain))).catch(() => undefined)) !== undefined;
    const parentOf = async (chain: Digest | undefined): Promise<ParentInfo | undefined> => {
      if (chain === undefined) return undefined;
      const p = prepared.get(chain);
      if (p !== undefined) return { chainId: p.chainId, cacheId: p.cacheId, ...(p.link !== undefined ? { link: p.link, lower: p.lower } : {}), dir: p.dir };
      return this.writer.parentInfo(chain);
    };
    try {
      // 1. Every new layer, out of sight.
      for (const plan of plans) {
        for (const [i, chain] of plan.chains.entries()) {
          if (prepared.has(chain) || (await layerExists(chain))) continue;
          const what = `layer ${i + 1}/${plan.chains.length} (diff_id ${shortDigest(plan.diffIds[i]!)}) of image ${shortDigest(plan.id)}`;
          const parent = await parentOf(i === 0 ? undefined : plan.chains[i - 1]);
          const src = plan.sources[i]!;
          let layer: PreparedLayer;
          if (src.kind === 'staged') {
            // A blob at two places in the chain graph needs a second driver directory.
            const s = adopted.has(src.layer) ? await this.writer.cloneStaged(src.layer) : src.layer;
            if (s !== src.layer) this.stagedAll.push(s);
            adopted.add(s);
            layer = await this.writer.adoptStaged(s, chain, plan.diffIds[i]!, parent, what).catch((err: unknown) => {
              throw withContext(err, `loading into ${this.store.root}`);
            });
          } else {
            const tar = this.openLayerSource(src, what, opts);
            layer = await this.writer.prepareLayer(tar, chain, plan.diffIds[i]!, parent, { what, budget, ...(opts.signal ? { signal: opts.signal } : {}) })
              .catch((err: unknown) => {
                throw withContext(err, `loading into ${this.store.root}`);
              });
          }
          prepared.set(chain, layer);
          for (const k of Object.keys(unprivileged) as Array<keyof typeof unprivileged>) unprivileged[k] += layer.unprivileged[k];
        }
      }
      failpoint('all-prepared');
      // 2. Publish: layers base first, then configs, then names.
      for (const plan of plans) {
        for (const [i, chain] of plan.chains.entries()) {
          const layer = prepared.get(chain);
          if (layer === undefined || layer.published) continue;
          await this.writer.publishLayer(layer, await parentOf(i === 0 ? undefined : plan.chains[i - 1]));
        }
      }
      for (const plan of plans) {
        await this.writer.writeConfig(plan.id, plan.configBytes);
        failpoint('config-written');
      }
      const repos = await this.store.repositories().catch(() => ({ refs: [] as Array<{ reference: string; id: Digest }> }));
      const loaded: LoadedImage[] = [];
      const tagged = new Set<Digest>();
      await this.writer.updateRepositories((r) => {
        for (const plan of plans) {
          const moved: Array<{ name: string; from: Digest }> = [];
          for (const k of plan.keys) {
            const before = repos.refs.find((x) => x.reference === k.reference)?.id;
            if (before !== undefined && before !== plan.id && isDigest(before)) moved.push({ name: k.reference, from: before });
            (r[k.repository] ??= {})[k.reference] = plan.id;
            tagged.add(plan.id);
          }
          if (plan.pulled !== undefined) {
            // docker pull's addDigestReference: a digest reference already naming another image is kept.
            const k = repositoryKeys(`${plan.pulled.repository}@${plan.pulled.digest}`);
            const refs = (r[k.repository] ??= {});
            refs[k.reference] ??= plan.id;
          }
          const newLayers = plan.chains.filter((c) => prepared.has(c)).length;
          loaded.push({ id: plan.id, names: plan.keys.map((k) => k.reference), moved, layers: plan.chains.length, newLayers });
        }
      });
      failpoint('names-written');
      const now = rfc3339Nano();
      for (const id of tagged) await this.writer.writeMetadata(id, 'lastUpdated', now);
      for (const plan of plans) {
        for (const [i, src] of plan.sources.entries()) {
          if (src.kind !== 'store' && src.desc.digest !== plan.diffIds[i]) await this.writer.writeDiffIdByDigest(src.desc.digest, plan.diffIds[i]!).catch(() => undefined);
        }
      }
      for (const plan of plans) {
        if (plan.pulled === undefined) continue;
        for (const [i, digest] of plan.layerDigests.entries()) await this.writer.addV2Metadata(plan.diffIds[i]!, digest, plan.pulled.repository).catch(() => undefined); // a cache: losing it costs re-downloads only
      }
      this.loaded = loaded;
      const skipped = describeUnprivileged(unprivileged);
      if (skipped.length > 0) {
        this.notes.push(`not running as root: ${skipped.join(', ')} could not be made on disk and are kept in tar-split only (the layers still rebuild byte-exact; containers run by a dockerd on this root would not see them)`);
      }
      this.committed = true;
    } finally {
      if (!this.committed) for (const layer of prepared.values()) await this.writer.discard(layer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.splitThread.close();
      // Published layers were renamed away; what is still at a staged path was never used.
      for (const s of this.stagedAll) await this.writer.discardStaged(s);
      await rm(this.staging, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
    } finally {
      await this.lock.release();
    }
  }
}
