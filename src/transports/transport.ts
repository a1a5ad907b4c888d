/**
 * The contracts every place images live implements. A transport parses the text after its
 * prefix into an ImageReference; the reference opens an ImageSource. Read commands, verify and
 * the copy engine work only through these interfaces, never through a concrete transport.
 */
import type { Descriptor } from '../core/descriptor.js';
import type { Digest } from '../core/digest.js';
import type { BlobSource } from '../content/store.js';
import type { IoOptions } from '../io/stream.js';

export interface Transport {
  /** The user's prefix: `oci`, `oci-archive`, `docker-archive`. */
  readonly name: string;
  /** Parses the text after `name:`; throws BERTH_INVALID_REFERENCE. */
  parseReference(rest: string): ImageReference;
}

/** Which image of a place a reference means. */
export type ImageSelector =
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'position'; readonly position: number }
  | { readonly kind: 'digest'; readonly digest: Digest };

export interface ImageReference {
  readonly transport: Transport;
  /** File or directory the reference points at. */
  readonly path: string;
  readonly selector: ImageSelector | undefined;
  /** `name:rest`; parsing it again gives an equivalent reference. */
  toString(): string;
  /** Opens the place for reading; the caller must close the source. */
  openSource(opts?: IoOptions): Promise<ImageSource>;
}

/** The file a format starts from, with what it lists (its "roots"). */
export interface EntryPoint {
  /** `index.json` or `manifest.json`. */
  readonly file: string;
  /** Its exact bytes. */
  readonly raw: Uint8Array;
  readonly format: SourceFormat;
  readonly roots: readonly RootEntry[];
  /** Things worth telling the user about the entry point itself (quirks tolerated). */
  readonly notes: readonly string[];
}

export type SourceFormat = 'oci-layout' | 'docker-archive' | 'docker-archive-oci';

export interface RootEntry {
  /** Descriptor of the manifest or index this entry names. */
  readonly descriptor: Descriptor;
  /** Names the entry carries: `ref.name` / `io.containerd.image.name` / RepoTags. */
  readonly names: readonly string[];
  /** Position in the entry point, for `:@N`. */
  readonly position: number;
  /** True when berth built the manifest (docker-archive has none). */
  readonly synthesized: boolean;
}

export interface StoredBlob {
  readonly digest: Digest;
  readonly size: number;
  /** Where it lies inside the place, e.g. `blobs/sha256/ab…`. */
  readonly location: string;
}

export interface ImageSource extends BlobSource {
  readonly reference: ImageReference;
  /** The entry point, read once and kept. */
  entryPoint(opts?: IoOptions): Promise<EntryPoint>;
  /**
   * The root the reference selects (by name, position or digest); without a selector the single
   * root, or BERTH_AMBIGUOUS listing what is there.
   */
  root(opts?: IoOptions): Promise<RootEntry>;
  /** Every blob the place stores (for dangling/unreferenced checks), when it can list them. */
  listBlobs?(opts?: IoOptions): Promise<readonly StoredBlob[]>;
  /** Where a blob lies in the place, for messages (`blobs/sha256/…`, `abc/layer.tar`). */
  locate?(digest: Digest): string | undefined;
  close(): Promise<void>;
}
