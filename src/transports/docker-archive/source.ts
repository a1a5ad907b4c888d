/**
 * Reading a docker-archive (`docker save` output, legacy and Docker 25+ layouts, and the
 * variants skopeo, ggcr/kaniko and Jib write). The archive holds no image manifest, so one is
 * synthesised per manifest.json entry, byte for byte the way containers/image does it (so the
 * manifest digest agrees with `skopeo inspect docker-archive:`): Docker schema 2, layers named by
 * their diff_id with their uncompressed size; compressed layer files are served decompressed.
 */
import type { Descriptor } from '../../core/descriptor.js';
import { digestHex, digestOf, type Digest } from '../../core/digest.js';
import { BerthError, fieldPath, withContext } from '../../core/errors.js';
import { configDiffIds, parseImageConfig } from '../../core/config.js';
import { parseImageIndex, parseManifestOrIndex, type ImageManifest } from '../../core/manifest.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST } from '../../core/media-types.js';
import { verifyBytes } from '../../io/verify.js';
import { decompress, sniffCompression, SNIFF_BYTES, type Compression } from '../../io/codec.js';
import { drain, fromBytes, type ByteStream, type IoOptions } from '../../io/stream.js';
import type { EntryPoint, ImageReference, ImageSource, RootEntry } from '../transport.js';
import { cleanName, type PlaceFiles } from '../shared/files.js';
import { blobPath } from '../shared/layout.js';
import { selectRoot } from '../shared/roots.js';
import { parseManifestJson } from './manifest-json.js';
import { DEFAULT_LIMITS, limits } from '../../io/limits.js';

/** Image configs larger than this are refused (Docker's own configs are a few KiB). */
export const MAX_CONFIG_BYTES = DEFAULT_LIMITS.maxConfigBytes;

type BlobLocation =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array; readonly name: string }
  | { readonly kind: 'file'; readonly name: string; readonly compression: Compression }
  | { readonly kind: 'absent'; readonly name: string };

/** Why the place is not a docker-archive, or undefined when it has a manifest.json. */
export async function dockerArchiveProblem(files: PlaceFiles): Promise<string | undefined> {
  if ((await files.stat('manifest.json'))?.type === 'file') return undefined;
  if ((await files.stat('repositories')) !== undefined) {
    return 'has only the pre-Docker-1.10 `repositories` file and no manifest.json (not supported)';
  }
  if ((await files.stat('oci-layout')) !== undefined) return 'is an OCI layout without manifest.json (read it as oci-archive:)';
  return 'is not an image archive (no manifest.json, index.json or oci-layout in it)';
}

export class DockerArchiveSource implements ImageSource {
  private state: { entry: EntryPoint; blobs: Map<string, BlobLocation> } | undefined;

  constructor(
    readonly reference: ImageReference,
    private readonly files: PlaceFiles,
  ) {}

  private get where(): string {
    return this.reference.toString();
  }

  async entryPoint(opts: IoOptions = {}): Promise<EntryPoint> {
    return (await this.load(opts)).entry;
  }

  private async load(opts: IoOptions): Promise<{ entry: EntryPoint; blobs: Map<string, BlobLocation> }> {
    if (this.state !== undefined) return this.state;
    const problem = await dockerArchiveProblem(this.files);
    if (problem !== undefined) {
      throw new BerthError(problem.includes('not supported') ? 'BERTH_UNSUPPORTED' : 'BERTH_INVALID_ARCHIVE', `${this.files.location}: ${problem}`, { subject: this.files.location });
    }
    const raw = await this.files.readBytes('manifest.json', 16 * 1024 * 1024);
    const entries = parseManifestJson(raw);
    const blobs = new Map<string, BlobLocation>();
    const roots: RootEntry[] = [];
    const notes: string[] = [];
    const problems: string[] = [];
    const stored = await this.storedManifests();
    for (const [i, item] of entries.entries()) {
      const at = (...p: Array<string | number>) => `manifest.json${fieldPath(i, ...p)}`;
      const configName = cleanName(item.config, at('Config'));
      if ((await this.files.stat(configName)) === undefined) {
        throw new BerthError('BERTH_INVALID_ARCHIVE', `${at('Config')}: "${item.config}" is not in the archive`, { path: fieldPath(i, 'Config') });
      }
      const configBytes = await this.files.readBytes(configName, limits().maxConfigBytes);
      const configDigest = digestOf(configBytes);
      const named = /(?:^|\/)(?:sha256:)?([a-f0-9]{64})(?:\.json)?$/.exec(configName)?.[1];
      if (named !== undefined && named !== digestHex(configDigest)) {
        problems.push(`${at('Config')}: config file name says sha256:${named} but its content hashes to ${configDigest} (changed after it was written; docker would load it under the new ID)`);
      }
      let config;
      try {
        config = parseImageConfig(configBytes, { what: `config ${item.config}` });
      } catch (err) {
        throw withContext(err, `reading ${this.where}`);
      }
      const diffIds = configDiffIds(config);
      if (diffIds.length !== item.layers.length) {
        throw new BerthError('BERTH_INVALID_ARCHIVE', `${at('Layers')}: lists ${item.layers.length} layers but config ${item.config} has ${diffIds.length} rootfs.diff_ids`, {
          path: fieldPath(i, 'Layers'), want: diffIds.length, got: item.layers.length,
        });
      }
      blobs.set(configDigest, { kind: 'bytes', bytes: configBytes, name: configName });
      const real = stored.get(configDigest);
      if (real !== undefined && real.manifest.layers.length === diffIds.length) {
        // Docker 25+ and containerd archives carry the image manifest itself: use it, so the
        // image has one digest whichever way it is read
        blobs.set(real.descriptor.digest, { kind: 'bytes', bytes: real.bytes, name: blobPath(real.descriptor.digest) });
        for (const layer of real.manifest.layers) blobs.set(layer.digest, { kind: 'file', name: blobPath(layer.digest), compression: 'none' });
        roots.push({ descriptor: real.descriptor, names: item.repoTags, position: i, synthesized: false });
        continue;
      }
      const layers: Descriptor[] = [];
      for (const [j, layerPath] of item.layers.entries()) {
        const diffId = diffIds[j]!;
        const name = cleanName(layerPath, at('Layers', j));
        const foreign = item.layerSources.get(diffId);
        const st = await this.files.stat(name);
        if (foreign !== undefined && st === undefined) {
          // A foreign layer left out of the archive: its descriptor says where to fetch it.
          layers.push(foreign);
          blobs.set(foreign.digest, { kind: 'absent', name });
          notes.push(`${at('Layers', j)}: foreign layer ${foreign.digest} is not in the archive (its descriptor names urls to fetch it from)`);
          continue;
        }
        if (st === undefined) {
          notes.push(`${at('Layers', j)}: "${layerPath}" is missing from the archive`);
          layers.push({ mediaType: DOCKER_LAYER_GZIP, size: 0, digest: diffId });
          blobs.set(diffId, { kind: 'absent', name });
          continue;
        }
        const sniffed = sniffCompression(await this.files.readHead(name, SNIFF_BYTES));
        if (sniffed !== 'none' && sniffed !== 'gzip' && sniffed !== 'zstd') {
          throw new BerthError('BERTH_UNSUPPORTED', `${at('Layers', j)}: layer "${layerPath}" is ${sniffed}-compressed, which berth does not read`, { path: fieldPath(i, 'Layers', j) });
        }
        let size = st.size;
        if (sniffed !== 'none') {
          // The synthesised manifest names the uncompressed layer; its size needs one pass.
          size = await drain(decompress(await this.files.open(name, opts), sniffed, { what: `layer ${layerPath}` }));
        }
        layers.push({ mediaType: DOCKER_LAYER_GZIP, size, digest: diffId });
        blobs.set(diffId, { kind: 'file', name, compression: sniffed });
      }
      const manifestBytes = synthesizeManifest({ mediaType: DOCKER_CONFIG, size: configBytes.length, digest: configDigest }, layers);
      const descriptor: Descriptor = { mediaType: DOCKER_MANIFEST, size: manifestBytes.length, digest: digestOf(manifestBytes) };
      blobs.set(descriptor.digest, { kind: 'bytes', bytes: manifestBytes, name: `manifest.json[${i}] (synthesised)` });
      roots.push({ descriptor, names: item.repoTags, position: i, synthesized: true });
    }
    if (entries.length === 0) notes.push('manifest.json lists no images');
    this.state = { entry: { file: 'manifest.json', raw, format: (await this.files.stat('oci-layout')) ? 'docker-archive-oci' : 'docker-archive', roots, notes, problems }, blobs };
    return this.state;
  }

  /**
   * Image manifests an OCI layout in the same archive holds (Docker 25+, containerd), keyed by
   * their config digest; empty when there is none. Only present, verified, parseable ones count.
   */
  private async storedManifests(): Promise<Map<string, { descriptor: Descriptor; bytes: Uint8Array; manifest: ImageManifest }>> {
    const out = new Map<string, { descriptor: Descriptor; bytes: Uint8Array; manifest: ImageManifest }>();
    if ((await this.files.stat('oci-layout')) === undefined || (await this.files.stat('index.json')) === undefined) return out;
    let queue: Descriptor[];
    try {
      queue = [...parseImageIndex(await this.files.readBytes('index.json', limits().maxManifestBytes), { what: 'index.json' }).manifests];
    } catch {
      return out; // the docker-archive view does not depend on index.json
    }
    const seen = new Set<string>();
    while (queue.length > 0 && seen.size < 1000) {
      const desc = queue.shift()!;
      if (seen.has(desc.digest) || desc.size > limits().maxManifestBytes) continue;
      seen.add(desc.digest);
      const name = blobPath(desc.digest);
      if ((await this.files.stat(name)) === undefined) continue;
      try {
        const bytes = await this.files.readBytes(name, limits().maxManifestBytes);
        verifyBytes(bytes, { digest: desc.digest, size: desc.size });
        const parsed = parseManifestOrIndex(bytes, { what: name, mediaType: desc.mediaType });
        if (parsed.kind === 'index') queue.push(...parsed.index.manifests);
        else if (!out.has(parsed.manifest.config.digest)) out.set(parsed.manifest.config.digest, { descriptor: desc, bytes, manifest: parsed.manifest });
      } catch {
        continue; // a broken blob is verify's business; this view falls back to synthesising
      }
    }
    return out;
  }

  async root(opts: IoOptions = {}): Promise<RootEntry> {
    const ep = await this.entryPoint(opts);
    return selectRoot(ep.roots, this.reference.selector, this.where);
  }

  async open(desc: Descriptor, opts: IoOptions = {}): Promise<ByteStream> {
    const { blobs } = await this.load(opts);
    const loc = blobs.get(desc.digest);
    if (loc === undefined || loc.kind === 'absent') {
      throw new BerthError('BERTH_NOT_FOUND', `${this.where}: blob ${desc.digest} is not in the archive${loc ? ` (no ${loc.name})` : ''}`, { subject: desc.digest });
    }
    if (loc.kind === 'bytes') return fromBytes(loc.bytes);
    const stream = await this.files.open(loc.name, opts);
    return loc.compression === 'none' ? stream : decompress(stream, loc.compression, { what: `layer ${loc.name}` });
  }

  async has(desc: Descriptor, opts: IoOptions = {}): Promise<boolean> {
    const loc = (await this.load(opts)).blobs.get(desc.digest);
    return loc !== undefined && loc.kind !== 'absent';
  }

  locate(digest: Digest): string | undefined {
    return this.state?.blobs.get(digest)?.name;
  }

  async close(): Promise<void> {
    await this.files.close();
  }
}

/**
 * The manifest containers/image builds for a docker-archive image (compact JSON, Go field order),
 * so that its digest matches `skopeo inspect docker-archive:`.
 */
export function synthesizeManifest(config: Descriptor, layers: readonly Descriptor[]): Uint8Array {
  const desc = (d: Descriptor) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest, ...(d.urls ? { urls: d.urls } : {}) });
  const json = JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: desc(config), layers: layers.map(desc) });
  return new TextEncoder().encode(json);
}
