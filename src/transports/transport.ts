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
  /**
   * Integrity problems found while reading the entry point that readers tolerate but `verify`
   * must fail on (e.g. a legacy config whose content no longer hashes to its file name).
   */
  readonly problems?: readonly string[];
}

export type SourceFormat = 'oci-layout' | 'docker-archive' | 'docker-archive-oci' | 'docker-store' | 'registry';

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
  /**
   * The OCI 1.1 referrers of a manifest or index (manifests naming it as `subject`), as the place
   * lists them (a registry's referrers API or `<alg>-<hex>` fallback tag). Sources without it are
   * searched by the copy engine in their entry point.
   */
  referrers?(subject: Digest, opts?: IoOptions): Promise<readonly Descriptor[]>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The write side

/** What a destination can hold; the copy engine negotiates with this, never with a transport name. */
export interface DestinationCapabilities {
  /** Whether an image index / manifest list can be stored as a root (docker-archive: no). */
  readonly acceptsIndex: boolean;
  /** Manifest and index media types it stores, or 'any'. */
  readonly manifestTypes: readonly string[] | 'any';
  /** 'preserve': layers are stored as they come; otherwise every layer is (re)compressed to this. */
  readonly layerCompression: 'preserve' | 'none' | 'gzip' | 'zstd';
  /** Whether foreign / non-distributable layers may be stored without their bytes. */
  readonly acceptsForeignLayers: boolean;
  /** Whether attestation manifests (and other non-image entries) can be stored. */
  readonly acceptsAttestations: boolean;
  /** Whether several puts may run at once. */
  readonly parallelPuts: boolean;
  /** Whether one commit may name several roots (several images in one archive). */
  readonly multipleRoots: boolean;
  /**
   * Whether the referrers of copied images (manifests naming one as `subject`) are copied with
   * them and kept findable there (a registry: its referrers API, else the fallback tag). Default false.
   */
  readonly referrers?: boolean;
}

export interface DestinationOptions extends IoOptions {
  /** Replace an existing archive file, or an existing name in a layout (default false: BERTH_EXISTS). */
  readonly overwrite?: boolean;
  /** docker-archive only: 'docker25' (default: an OCI layout with manifest.json) or 'legacy'. */
  readonly archiveLayout?: 'docker25' | 'legacy';
  /** Skip fsync (tests). Default true. */
  readonly fsync?: boolean;
}

/** A root to name at commit: a manifest or index already put, and the names it gets. */
export interface NamedRoot {
  readonly descriptor: Descriptor;
  /** Names as the user gave them (`app:1`, `docker.io/library/app:1`, `latest`); may be empty. */
  readonly names: readonly string[];
}

/**
 * Where images are written. Call order: put / putComputed / putManifest for children before their
 * parents, then commit once, then close. Nothing is visible at the destination before commit; close
 * without commit rolls back (temp files removed, the destination exactly as it was).
 */
export interface ImageDestination {
  readonly reference: ImageReference;
  readonly capabilities: DestinationCapabilities;
  /** Whether the blob is already there (written earlier in this copy, or present before). */
  has(desc: Descriptor, opts?: IoOptions): Promise<boolean>;
  /**
   * Stores a blob whose descriptor is known. The stream is verified against `desc` (size and
   * digest) before the blob becomes part of the destination; a mismatch is an error. Idempotent.
   */
  put(desc: Descriptor, data: AsyncIterable<Uint8Array>, opts?: IoOptions): Promise<void>;
  /**
   * Stores a blob whose digest is not known beforehand (recompressed output): digest and size are
   * computed as it streams and returned as a descriptor with `mediaType`.
   */
  putComputed(mediaType: string, data: AsyncIterable<Uint8Array>, opts?: IoOptions): Promise<Descriptor>;
  /** Stores a manifest or index; its blobs / children must have been put already. Verified. */
  putManifest(desc: Descriptor, bytes: Uint8Array, opts?: IoOptions): Promise<void>;
  /**
   * Told of each manifest or index of the copy that names a `subject` (put now or already there),
   * with the descriptor a referrers list gives it (`artifactType`, `annotations`). A destination
   * that keeps referrers lists itself (the `<alg>-<hex>` fallback tag) updates them at commit.
   */
  addReferrer?(subject: Digest, referrer: Descriptor): void;
  /** Makes the roots visible under their names, atomically. Only once. */
  commit(roots: readonly NamedRoot[], opts?: IoOptions): Promise<void>;
  /** Releases everything; without a commit, removes what was written. Idempotent. */
  close(): Promise<void>;
}

/** A reference that can also be written to. */
export interface WritableReference extends ImageReference {
  openDestination(opts?: DestinationOptions): Promise<ImageDestination>;
}

export function isWritableReference(ref: ImageReference): ref is WritableReference {
  return typeof (ref as Partial<WritableReference>).openDestination === 'function';
}
