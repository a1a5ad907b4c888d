/**
 * A Docker data root (what lives in /var/lib/docker) read offline, following the recommended
 * algorithm of docs/formats.md 10.13: driver from `image/<driver>/` + the driver directory, tags
 * from repositories.json, configs from imagedb (checked against their IDs), layers by chainID from
 * layerdb, layer bytes rebuilt from tar-split + the driver's files. Read-only: a root whose dockerd
 * is running can be read (dockerd never rewrites a config or layer in place).
 */
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { chainIds, configDiffIds, parseImageConfig, type ImageConfig } from '../../core/config.js';
import { digestHex, isDigest, shortDigest, type Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import { assembleTarSplit, tarSplitSize } from '../../tar/assemble.js';
import type { TarSplitRecord } from '../../tar/split.js';
import { configFile, listImageIds, readConfig, readImageMetadata, type ImageMetadata } from './imagedb.js';
import { readLayerEntry, readLayerTarSplit, tarSplitFile, type LayerEntry } from './layerdb.js';
import { assembleInWorker } from './layer-worker.js';
import { filesDir, layerFdOpener, OTHER_DRIVERS, STORE_DRIVERS, type StoreDriver } from './overlay2.js';
import { lookupReference, parseRepositories, referencesOf, type Repositories } from './repositories.js';

/**
 * Layers whose tar is at least this big are rebuilt on a worker thread (layer-worker.ts), so
 * the reading and checking run beside the hashing and writing; below it starting the worker
 * (~30 ms) costs more than it saves.
 */
const WORKER_MIN_BYTES = 16 << 20;

/** One image of the store, with its layers looked up (not read). */
export interface StoredImage {
  readonly id: Digest;
  readonly configBytes: Uint8Array;
  readonly config: ImageConfig;
  readonly diffIds: readonly Digest[];
  readonly chainIds: readonly Digest[];
  /** Per diffID, its layerdb entry (undefined when missing). */
  readonly layers: ReadonlyArray<LayerEntry | undefined>;
  readonly tags: readonly string[];
  readonly digests: readonly string[];
  readonly metadata: ImageMetadata;
  /** Why dockerd would not use this image (missing or broken layers), one phrase each. */
  readonly problems: readonly string[];
}

/** An image dockerd would drop at start-up because its config does not hash to its ID. */
export interface RejectedImage {
  readonly id: Digest;
  readonly problem: string;
}

export interface OpenDataRootOptions {
  /** Pick this driver when the root has several (default: the only one, else the one with images). */
  readonly driver?: StoreDriver;
}

export class DataRoot {
  private repos: Promise<Repositories> | undefined;
  private ids: Promise<Digest[]> | undefined;
  private readonly images = new Map<string, Promise<StoredImage | RejectedImage>>();
  private readonly layers = new Map<string, Promise<LayerEntry | undefined>>();
  private readonly sizes = new Map<string, Promise<number>>();
  /** The sizes measured so far, by chain ID (read synchronously when a layer is opened). */
  private readonly knownSizes = new Map<string, number>();

  private constructor(
    /** The data root as given (absolute). */
    readonly root: string,
    readonly driver: StoreDriver,
  ) {}

  /** `image/<driver>`, relative to the root. */
  get imageRel(): string {
    return `image/${this.driver}`;
  }

  get imageDir(): string {
    return path.join(this.root, this.imageRel);
  }

  /**
   * Opens a data root: finds the driver (`image/overlay2` + `overlay2/`, or `image/vfs` + `vfs/`).
   * BERTH_NOT_FOUND when `root` is not a data root, BERTH_UNSUPPORTED for other drivers,
   * BERTH_AMBIGUOUS when both have images and no driver was chosen.
   */
  static async open(root: string, opts: OpenDataRootOptions = {}): Promise<DataRoot> {
    const abs = path.resolve(root);
    const isDir = async (p: string) => (await stat(path.join(abs, p)).catch(() => undefined))?.isDirectory() === true;
    if (!(await isDir('.'))) throw new BerthError('BERTH_NOT_FOUND', `store ${root}: no such directory`, { subject: root });
    const found: StoreDriver[] = [];
    for (const d of STORE_DRIVERS) if ((await isDir(`image/${d}`)) && (await isDir(d))) found.push(d);
    if (opts.driver !== undefined) {
      if (!found.includes(opts.driver)) {
        throw new BerthError('BERTH_NOT_FOUND', `store ${root}: no ${opts.driver} images (want image/${opts.driver}/ and ${opts.driver}/)`, { subject: root });
      }
      return new DataRoot(abs, opts.driver);
    }
    if (found.length === 1) return new DataRoot(abs, found[0]!);
    if (found.length > 1) {
      const withImages: StoreDriver[] = [];
      for (const d of found) if ((await listImageIds(path.join(abs, 'image', d))).length > 0) withImages.push(d);
      if (withImages.length === 1) return new DataRoot(abs, withImages[0]!);
      throw new BerthError('BERTH_AMBIGUOUS', `store ${root}: has images for several storage drivers (${found.join(', ')}); dockerd uses only the one it runs with`, { subject: root });
    }
    const other: string[] = [];
    for (const d of OTHER_DRIVERS) if (await isDir(`image/${d}`)) other.push(d);
    const nonEmpty: string[] = [];
    for (const d of other) if ((await listImageIds(path.join(abs, 'image', d))).length > 0) nonEmpty.push(d);
    if (nonEmpty.length > 0) {
      throw new BerthError('BERTH_UNSUPPORTED', `store ${root}: storage driver ${nonEmpty.join(', ')} is not supported (berth reads ${STORE_DRIVERS.join(' and ')})`, { subject: root });
    }
    throw new BerthError('BERTH_NOT_FOUND', `store ${root}: not a Docker data root (no image/overlay2/ with overlay2/, nor image/vfs/ with vfs/)`, { subject: root });
  }

  /** A path relative to the root, for messages (`image/overlay2/layerdb/sha256/…`). */
  display(rel: string): string {
    return rel;
  }

  repositories(): Promise<Repositories> {
    this.repos ??= (async () => {
      const file = path.join(this.imageDir, 'repositories.json');
      const raw = await readFile(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw withContext(err, `reading ${this.imageRel}/repositories.json`);
      });
      if (raw === undefined) return { raw: new Uint8Array(0), refs: [] };
      return parseRepositories(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), `${this.imageRel}/repositories.json`);
    })();
    return this.repos;
  }

  /** Every image ID with a config file, sorted. */
  imageIds(): Promise<Digest[]> {
    this.ids ??= listImageIds(this.imageDir);
    return this.ids;
  }

  /**
   * The image ID `text` names, as dockerd resolves it: a full ID (`sha256:…` or 64 hex), a
   * reference from repositories.json (`app`, `app:1`, `docker.io/library/app:1`, `app@sha256:…`),
   * else a unique ID prefix. `@ID` / `@PREFIX` means an ID only. Undefined when nothing matches;
   * BERTH_AMBIGUOUS for a prefix of several IDs.
   */
  async resolve(text: string): Promise<Digest | undefined> {
    const ids = await this.imageIds();
    const idOnly = text.startsWith('@');
    const t = idOnly ? text.slice(1) : text;
    const full = /^(?:sha256:)?([a-f0-9]{64})$/.exec(t);
    if (full) {
      const id = `sha256:${full[1]}` as Digest;
      return ids.includes(id) ? id : undefined;
    }
    if (!idOnly) {
      const ref = lookupReference(await this.repositories(), t);
      if (ref !== undefined) return ids.includes(ref.id) ? ref.id : undefined;
    }
    const prefix = /^(?:sha256:)?([a-f0-9]+)$/.exec(t)?.[1];
    if (prefix === undefined) return undefined;
    const matches = ids.filter((id) => digestHex(id).startsWith(prefix));
    if (matches.length > 1) {
      throw new BerthError('BERTH_AMBIGUOUS', `store ${this.root}: ID prefix ${prefix} matches ${matches.length} images (${matches.map((m) => shortDigest(m)).join(', ')})`, { subject: text });
    }
    return matches[0];
  }

  /** The layerdb entry of a chainID (cached). */
  layer(chainId: Digest): Promise<LayerEntry | undefined> {
    let p = this.layers.get(chainId);
    if (p === undefined) {
      p = readLayerEntry(this.imageDir, chainId);
      this.layers.set(chainId, p);
    }
    return p;
  }

  /** Reads, checks and describes image `id`; a config that does not hash to `id` gives a RejectedImage. */
  image(id: Digest): Promise<StoredImage | RejectedImage> {
    let p = this.images.get(id);
    if (p === undefined) {
      p = this.loadImage(id);
      this.images.set(id, p);
    }
    return p;
  }

  private async loadImage(id: Digest): Promise<StoredImage | RejectedImage> {
    const { bytes, digest } = await readConfig(this.imageDir, id);
    const where = `${this.imageRel}/${configFile(id)}`;
    if (digest !== id) return { id, problem: `${where}: content hashes to ${digest} (dockerd drops this image: "failed to verify")` };
    let config: ImageConfig;
    try {
      config = parseImageConfig(bytes, { what: `config ${where}` });
    } catch (err) {
      return { id, problem: withContext(err, `image ${shortDigest(id)}`).message };
    }
    const diffIds = configDiffIds(config);
    const chains = chainIds(diffIds);
    const layers = await Promise.all(chains.map((c) => this.layer(c)));
    const problems: string[] = [];
    layers.forEach((l, i) => {
      const rel = `${this.imageRel}/layerdb/sha256/${digestHex(chains[i]!)}`;
      if (l === undefined) {
        problems.push(`layer ${i} (diff_id ${shortDigest(diffIds[i]!)}): no ${rel}`);
        return;
      }
      for (const p of l.problems) problems.push(`layer ${i}: ${rel}: ${p}`);
      if (l.diffId !== undefined && l.diffId !== diffIds[i]) problems.push(`layer ${i}: ${rel}/diff says ${l.diffId}, the config says ${diffIds[i]}`);
      const wantParent = i === 0 ? undefined : chains[i - 1];
      if (l.parent !== wantParent) problems.push(`layer ${i}: ${rel}/parent is ${l.parent ?? 'absent'}, want ${wantParent ?? 'absent'}`);
      if (!l.hasTarSplit) problems.push(`layer ${i}: ${rel} has no tar-split.json.gz (its tar cannot be rebuilt; docker save fails too)`);
    });
    // An unreadable repositories.json is reported where names are needed (images, resolve, fsck's
    // names check); here it only means the image's names are unknown.
    const [repos, metadata] = await Promise.all([
      this.repositories().catch((): Repositories => ({ raw: new Uint8Array(0), refs: [] })),
      readImageMetadata(this.imageDir, id),
    ]);
    const { tags, digests } = referencesOf(repos, id);
    return { id, configBytes: bytes, config, diffIds, chainIds: chains, layers, tags, digests, metadata, problems };
  }

  /** Path of layer `entry`'s files relative to the root, or undefined without a cache-id. */
  filesOf(entry: LayerEntry): string | undefined {
    return entry.cacheId === undefined ? undefined : filesDir(this.driver, entry.cacheId);
  }

  /** tar-split records of a layer. */
  tarSplit(chainId: Digest, opts: IoOptions = {}): AsyncGenerator<TarSplitRecord> {
    return readLayerTarSplit(this.imageDir, chainId, `${this.imageRel}/${tarSplitFile(chainId)}`, opts);
  }

  /** The tar-split file of a layer, read in large pieces, and its name for messages. */
  private tarSplitInput(chainId: Digest): { src: ByteStream; source: string } {
    const rel = `${this.imageRel}/${tarSplitFile(chainId)}`;
    return { src: createReadStream(path.join(this.root, rel), { highWaterMark: 256 << 10 }), source: rel };
  }

  /**
   * Size of the layer tar that tar-split rebuilds (cached): the records are read and checked,
   * payloads are measured, not kept, and no file is opened.
   */
  tarSize(chainId: Digest, opts: IoOptions = {}): Promise<number> {
    let p = this.sizes.get(chainId);
    if (p === undefined) {
      const { src, source } = this.tarSplitInput(chainId);
      p = tarSplitSize(src, { ...opts, source });
      this.sizes.set(chainId, p);
      p.then((n) => this.knownSizes.set(chainId, n), () => this.sizes.delete(chainId));
    }
    return p;
  }

  /**
   * The exact layer tar: tar-split replayed against the driver's files. A file whose content
   * changed is BERTH_DIGEST_MISMATCH naming the layer and the file; the caller verifies the
   * stream's sha256 against the diffID (openVerified).
   */
  openLayer(entry: LayerEntry, opts: IoOptions = {}): ByteStream {
    const files = this.filesOf(entry);
    if (files === undefined || !entry.hasTarSplit) {
      throw new BerthError('BERTH_NOT_FOUND', `layer ${entry.diffId ?? entry.chainId} (${this.imageRel}/${entry.dir}): ${files === undefined ? 'no cache-id' : 'no tar-split.json.gz'}, its tar cannot be rebuilt`, {
        subject: entry.diffId ?? entry.chainId,
      });
    }
    const what = `rebuilding layer ${entry.diffId ?? entry.chainId} from ${this.imageRel}/${entry.dir}/tar-split.json.gz and ${files}`;
    const size = this.knownSizes.get(entry.chainId);
    if (size !== undefined && size >= WORKER_MIN_BYTES) {
      const rel = `${this.imageRel}/${tarSplitFile(entry.chainId)}`;
      return assembleInWorker({ tarSplit: path.join(this.root, rel), source: rel, files: path.join(this.root, files), what }, opts);
    }
    const { src, source } = this.tarSplitInput(entry.chainId);
    return assembleTarSplit(src, layerFdOpener(path.join(this.root, files)), { ...opts, source, what });
  }

  /** The overlay2/vfs directories no layerdb entry names (not needed for reading; shown by trace). */
  async driverDirs(): Promise<string[]> {
    const dir = this.driver === 'overlay2' ? path.join(this.root, 'overlay2') : path.join(this.root, 'vfs/dir');
    return (await readdir(dir).catch(() => [] as string[])).filter((n) => n !== 'l').sort();
  }
}

export function isStoredImage(x: StoredImage | RejectedImage): x is StoredImage {
  return 'config' in x;
}

/** `sha256:…` → the 12-hex form docker prints. */
export function shortId(id: Digest): string {
  return digestHex(id).slice(0, 12);
}

export function isImageId(text: string): text is Digest {
  return isDigest(text) && text.startsWith('sha256:');
}
