/**
 * Reading images from a Docker data root. The store holds no manifest, so one is synthesised per
 * image exactly as for a docker-archive (and as containers/image does for `docker-daemon:`):
 * Docker schema 2, compact JSON in Go field order, config = the imagedb file (its digest is the
 * image ID), one layer per diff_id with the size of the tar tar-split rebuilds. Same store, same
 * bytes: the manifest digest is deterministic and equals the one berth gives the `docker save`
 * archive of the same image. Layers are served uncompressed, rebuilt byte-exact from tar-split
 * and the driver's files.
 */
import type { Descriptor } from '../../core/descriptor.js';
import { digestHex, digestOf, shortDigest, type Digest } from '../../core/digest.js';
import { BerthError } from '../../core/errors.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST } from '../../core/media-types.js';
import { fromBytes, type ByteStream, type IoOptions } from '../../io/stream.js';
import type { EntryPoint, ImageSource, RootEntry, SourceFormat } from '../transport.js';
import { DataRoot, isStoredImage, type StoredImage } from './data-root.js';
import { configFile } from './imagedb.js';
import type { LayerEntry } from './layerdb.js';
import type { StoreReference } from './reference.js';

const STORE_FORMAT: SourceFormat = 'docker-store';

type Blob =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array; readonly location: string }
  | { readonly kind: 'layer'; readonly entry: LayerEntry; readonly location: string }
  | { readonly kind: 'absent'; readonly location: string };

export interface StoreRootEntry extends RootEntry {
  readonly image: StoredImage;
}

/** The manifest berth synthesises for a stored image (same shape and field order as for docker-archive). */
export function synthesizeStoreManifest(config: Descriptor, layers: readonly Descriptor[]): Uint8Array {
  const desc = (d: Descriptor) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest });
  return new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: desc(config), layers: layers.map(desc) }));
}

export class StoreSource implements ImageSource {
  private readonly blobs = new Map<string, Blob>();
  private readonly roots = new Map<string, Promise<StoreRootEntry>>();
  private entry: Promise<EntryPoint> | undefined;

  constructor(
    readonly reference: StoreReference,
    readonly store: DataRoot,
  ) {}

  private get where(): string {
    return this.reference.toString();
  }

  entryPoint(opts: IoOptions = {}): Promise<EntryPoint> {
    this.entry ??= this.loadEntryPoint(opts);
    return this.entry;
  }

  private async loadEntryPoint(opts: IoOptions): Promise<EntryPoint> {
    const repos = await this.store.repositories();
    const ids = await this.store.imageIds();
    const roots: RootEntry[] = [];
    const notes: string[] = [];
    for (const id of ids) {
      const image = await this.store.image(id);
      if (!isStoredImage(image)) {
        notes.push(image.problem);
        continue;
      }
      const root = await this.rootFor(image, opts);
      roots.push(root);
      for (const p of image.problems) notes.push(`image ${shortDigest(id)}${image.tags.length > 0 ? ` (${image.tags.join(', ')})` : ''}: ${p}`);
    }
    for (const r of repos.refs) {
      if (!ids.includes(r.id)) notes.push(`${this.store.imageRel}/repositories.json: ${r.reference} → ${shortDigest(r.id)}, an image that is not in the store (dockerd keeps such names but cannot resolve them)`);
    }
    return { file: `${this.store.imageRel}/repositories.json`, raw: repos.raw, format: STORE_FORMAT, roots, notes };
  }

  /** The root for one image: builds (once) its synthesised manifest and registers its blobs. */
  rootFor(image: StoredImage, opts: IoOptions = {}): Promise<StoreRootEntry> {
    let p = this.roots.get(image.id);
    if (p === undefined) {
      p = this.buildRoot(image, opts);
      this.roots.set(image.id, p);
    }
    return p;
  }

  private async buildRoot(image: StoredImage, opts: IoOptions): Promise<StoreRootEntry> {
    const ids = await this.store.imageIds();
    const configLocation = `${this.store.imageRel}/${configFile(image.id)}`;
    this.blobs.set(image.id, { kind: 'bytes', bytes: image.configBytes, location: configLocation });
    const layers: Descriptor[] = [];
    for (const [i, diffId] of image.diffIds.entries()) {
      const entry = image.layers[i];
      const location = `${this.store.imageRel}/layerdb/sha256/${digestHex(image.chainIds[i]!)}`;
      const usable = entry !== undefined && entry.hasTarSplit && entry.cacheId !== undefined && (entry.diffId === undefined || entry.diffId === diffId);
      let size = 0;
      if (usable) {
        size = await this.store.tarSize(entry.chainId, opts);
        const files = this.store.filesOf(entry);
        if (!this.blobs.has(diffId)) this.blobs.set(diffId, { kind: 'layer', entry, location: `${location} + ${files}` });
      } else if (!this.blobs.has(diffId)) {
        this.blobs.set(diffId, { kind: 'absent', location });
      }
      layers.push({ mediaType: DOCKER_LAYER_GZIP, size, digest: diffId });
    }
    const manifest = synthesizeStoreManifest({ mediaType: DOCKER_CONFIG, size: image.configBytes.length, digest: image.id }, layers);
    const descriptor: Descriptor = { mediaType: DOCKER_MANIFEST, size: manifest.length, digest: digestOf(manifest) };
    this.blobs.set(descriptor.digest, { kind: 'bytes', bytes: manifest, location: `manifest of image ${shortDigest(image.id)} (synthesised)` });
    // Names are the tags: a `name@sha256:…` reference names a registry manifest, which this synthesised one is not.
    return { descriptor, names: image.tags, position: ids.indexOf(image.id), synthesized: true, image };
  }

  /** The image the reference names (its ID resolved as dockerd does). */
  async image(opts: IoOptions = {}): Promise<StoredImage> {
    return (await this.root(opts)).image;
  }

  async root(opts: IoOptions = {}): Promise<StoreRootEntry> {
    const name = this.reference.name;
    if (name === undefined) {
      const ep = await this.entryPoint(opts);
      if (ep.roots.length === 1) return ep.roots[0] as StoreRootEntry;
      throw new BerthError(ep.roots.length === 0 ? 'BERTH_NOT_FOUND' : 'BERTH_AMBIGUOUS', `${this.where}: ${ep.roots.length === 0 ? 'the store holds no image' : `holds ${ep.roots.length} images, say which one with store:NAME[:TAG] or store:@ID`}`, {
        subject: this.where,
      });
    }
    const id = await this.store.resolve(name);
    if (id === undefined) {
      const repos = await this.store.repositories();
      const known = repos.refs.filter((r) => r.kind === 'tag').map((r) => r.reference).sort();
      const shown = known.length === 0 ? 'it has no tagged images' : `it has ${known.slice(0, 10).join(', ')}${known.length > 10 ? `, … (${known.length} names)` : ''}`;
      throw new BerthError('BERTH_NOT_FOUND', `${this.where}: no image ${JSON.stringify(name)} in store ${this.store.root} (${shown})`, { subject: name });
    }
    const image = await this.store.image(id);
    if (!isStoredImage(image)) throw new BerthError('BERTH_DIGEST_MISMATCH', `${this.where}: ${image.problem}`, { subject: id });
    return this.rootFor(image, opts);
  }

  async open(desc: Descriptor, opts: IoOptions = {}): Promise<ByteStream> {
    const blob = this.blobs.get(desc.digest);
    if (blob === undefined || blob.kind === 'absent') {
      throw new BerthError('BERTH_NOT_FOUND', `${this.where}: blob ${desc.digest} is not in the store${blob ? ` (${blob.location} is missing or incomplete)` : ''}`, { subject: desc.digest });
    }
    if (blob.kind === 'bytes') return fromBytes(blob.bytes);
    // Already in ~1 MiB pieces (tar/assemble gathers headers and small files), so the hashing
    // and writing downstream run once per piece, not per file.
    return this.store.openLayer(blob.entry, opts);
  }

  async has(desc: Descriptor): Promise<boolean> {
    const blob = this.blobs.get(desc.digest);
    return blob !== undefined && blob.kind !== 'absent';
  }

  locate(digest: Digest): string | undefined {
    return this.blobs.get(digest)?.location;
  }

  async close(): Promise<void> {
    // Nothing is held open between reads.
  }
}
