/**
 * Reading an OCI image layout (image-spec v1.1 image-layout.md), from a directory or a tar:
 * `oci-layout`, `index.json`, `blobs/<alg>/<encoded>`. Shared by oci:, oci-archive: and the
 * Docker 25+ archive, which is an OCI layout too.
 */
import type { Descriptor } from '../../core/descriptor.js';
import { descriptorData } from '../../core/descriptor.js';
import { digestAlgorithm, digestHex, isDigest, type Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import { parseJsonBytes } from '../../core/json.js';
import { ANNOTATION_CONTAINERD_IMAGE_NAME, ANNOTATION_REF_NAME } from '../../core/media-types.js';
import { parseImageIndex } from '../../core/manifest.js';
import { fromBytes, type ByteStream, type IoOptions } from '../../io/stream.js';
import type { EntryPoint, ImageReference, ImageSource, RootEntry, StoredBlob } from '../transport.js';
import type { PlaceFiles } from './files.js';
import { selectRoot } from './roots.js';
import { limits } from '../../io/limits.js';

export function blobPath(digest: Digest): string {
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

/** Whether the files look like an OCI layout (an `oci-layout` file at the top). */
export async function isOciLayout(files: PlaceFiles): Promise<boolean> {
  return (await files.stat('oci-layout'))?.type === 'file';
}

/** Names an index.json entry carries: the full containerd name first, then ref.name. */
export function rootNames(desc: Descriptor): string[] {
  const names: string[] = [];
  const full = desc.annotations?.[ANNOTATION_CONTAINERD_IMAGE_NAME];
  const ref = desc.annotations?.[ANNOTATION_REF_NAME];
  if (full !== undefined && full !== '') names.push(full);
  if (ref !== undefined && ref !== '' && !names.includes(ref)) names.push(ref);
  return names;
}

export class LayoutSource implements ImageSource {
  private entry: EntryPoint | undefined;

  constructor(
    readonly reference: ImageReference,
    private readonly files: PlaceFiles,
  ) {}

  get where(): string {
    return this.reference.toString();
  }

  async entryPoint(): Promise<EntryPoint> {
    if (this.entry !== undefined) return this.entry;
    const notes: string[] = [];
    const layoutStat = await this.files.stat('oci-layout');
    if (layoutStat === undefined) {
      throw new BerthError('BERTH_INVALID_LAYOUT', `${this.files.location}: not an OCI image layout (no oci-layout file)`, { subject: this.files.location });
    }
    const layoutBytes = await this.files.readBytes('oci-layout', 64 * 1024);
    const header = parseJsonBytes(layoutBytes, 'oci-layout', 64 * 1024);
    const version = typeof header === 'object' && header !== null ? (header as Record<string, unknown>)['imageLayoutVersion'] : undefined;
    if (typeof version !== 'string') {
      throw new BerthError('BERTH_INVALID_LAYOUT', `oci-layout in ${this.files.location}: imageLayoutVersion is missing or not a string`, { path: 'imageLayoutVersion' });
    }
    if (!version.startsWith('1.')) {
      throw new BerthError('BERTH_UNSUPPORTED', `oci-layout in ${this.files.location}: imageLayoutVersion "${version}" is not supported (berth reads 1.x)`, { path: 'imageLayoutVersion' });
    }
    if ((await this.files.stat('index.json')) === undefined) {
      throw new BerthError('BERTH_INVALID_LAYOUT', `${this.files.location}: OCI layout has no index.json`, { subject: 'index.json' });
    }
    const raw = await this.files.readBytes('index.json', limits().maxManifestBytes);
    let index;
    try {
      index = parseImageIndex(raw, { what: 'index.json' });
    } catch (err) {
      throw withContext(err, `reading ${this.files.location}: index.json`);
    }
    const roots: RootEntry[] = index.manifests.map((descriptor, position) => ({
      descriptor, names: rootNames(descriptor), position, synthesized: false,
    }));
    if (index.manifests.length === 0) notes.push('index.json lists no manifests');
    this.entry = { file: 'index.json', raw, format: 'oci-layout', roots, notes };
    return this.entry;
  }

  async root(): Promise<RootEntry> {
    const ep = await this.entryPoint();
    return selectRoot(ep.roots, this.reference.selector, this.where);
  }

  async open(desc: Descriptor, opts: IoOptions = {}): Promise<ByteStream> {
    const inline = descriptorData(desc);
    if (inline !== undefined) return fromBytes(inline);
    const name = blobPath(desc.digest);
    const st = await this.files.stat(name);
    if (st === undefined) {
      throw new BerthError('BERTH_NOT_FOUND', `${this.where}: blob ${desc.digest} is missing (no ${name})`, { subject: desc.digest });
    }
    return this.files.open(name, opts);
  }

  async has(desc: Descriptor): Promise<boolean> {
    if (descriptorData(desc) !== undefined) return true;
    return (await this.files.stat(blobPath(desc.digest)))?.type === 'file';
  }

  async listBlobs(): Promise<readonly StoredBlob[]> {
    const out: StoredBlob[] = [];
    for (const alg of ['sha256', 'sha512']) {
      for (const name of await this.files.list(`blobs/${alg}`)) {
        const digest = `${alg}:${name}`;
        const location = `blobs/${alg}/${name}`;
        const st = await this.files.stat(location);
        if (isDigest(digest) && st !== undefined) out.push({ digest, size: st.size, location });
      }
    }
    return out;
  }

  locate(digest: Digest): string {
    return blobPath(digest);
  }

  async close(): Promise<void> {
    await this.files.close();
  }
}
