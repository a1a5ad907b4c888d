/**
 * The copy verb by reference, as the CLI and the explorer use it: parse what the user typed, open
 * the source(s) and the destination, run the copy engine, name and commit the roots, and always
 * close both sides (an uncommitted destination rolls back).
 */
import { BerthError } from './core/errors.js';
import { formatReference, parseDockerReference } from './core/reference.js';
import { copyImage, type CopyOptions, type CopyResult } from './copy/copy.js';
import { parseImageName } from './transports/all.js';
import { isWritableReference, type DestinationOptions, type ImageReference, type NamedRoot, type WritableReference } from './transports/transport.js';

export interface CopyReferenceOptions extends CopyOptions {
  /** Names at the destination (ref.name / RepoTags); default: the destination's `:NAME`, else the source's names. */
  readonly names?: readonly string[];
  /** Replace an existing archive, or an existing name in a layout. */
  readonly overwrite?: boolean;
  /** docker-archive only: 'docker25' (default) or 'legacy'. */
  readonly archiveLayout?: 'docker25' | 'legacy';
  /** Skip fsync (tests). Default true. */
  readonly fsync?: boolean;
}

export interface CopyReferenceResult {
  readonly destination: string;
  readonly images: ReadonlyArray<CopyResult & { readonly sourceReference: string; readonly names: readonly string[] }>;
  readonly copied: number;
  readonly skipped: number;
  readonly bytes: number;
}

/** Parses a destination: it must name a transport that can be written (`oci:`, `oci-archive:`, `docker-archive:`). */
export async function parseDestinationName(text: string): Promise<WritableReference> {
  let ref: ImageReference;
  try {
    ref = await parseImageName(text);
  } catch (err) {
    if ((err as { code?: string }).code === 'BERTH_NOT_FOUND') {
      throw new BerthError('BERTH_INVALID_REFERENCE', `${text}: a destination needs a transport prefix (oci:DIR[:NAME], oci-archive:FILE[:NAME], docker-archive:FILE[:NAME:TAG])`, { subject: text, cause: err });
    }
    throw err;
  }
  if (!isWritableReference(ref)) {
    throw new BerthError('BERTH_INVALID_REFERENCE', `${text}: berth cannot write there; say which format with a prefix (oci:, oci-archive:, docker-archive:)`, { subject: text });
  }
  if (ref.selector !== undefined && destinationName(ref) === undefined) {
    throw new BerthError('BERTH_INVALID_REFERENCE', `${text}: a destination takes a name (:NAME), not a position or digest`, { subject: text });
  }
  return ref;
}

/**
 * The name a destination reference gives (`oci:DIR:NAME`, `docker-archive:F:NAME:TAG`). A selector
 * read as a digest whose algorithm berth does not know (`app:1` parses as algorithm "app") is a name.
 */
export function destinationName(ref: ImageReference): string | undefined {
  const sel = ref.selector;
  if (sel === undefined) return undefined;
  if (sel.kind === 'name') return sel.name;
  if (sel.kind === 'digest' && !/^(?:sha256|sha512|blake3):/.test(sel.digest)) return sel.digest;
  return undefined;
}

/** Source names to carry over: full names, and a bare tag only when nothing fuller is there. */
export function carriedNames(names: readonly string[]): string[] {
  const full = names.filter((n) => n.includes(':') || n.includes('/'));
  const candidates = full.length > 0 ? full : names;
  // `docker.io/library/app:1` and `app:1` are one name: keep the shorter spelling.
  const groups = new Map<string, string>();
  for (const name of candidates) {
    let key = name;
    try {
      key = formatReference(parseDockerReference(name));
    } catch {
      // not a Docker reference: its own group
    }
    const have = groups.get(key);
    if (have === undefined || name.length < have.length) groups.set(key, name);
  }
  return [...groups.values()];
}

/** Copies one image (`sources` of one) or several into one destination, committed together. */
export async function copyReferences(sources: readonly string[], destination: string, opts: CopyReferenceOptions = {}): Promise<CopyReferenceResult> {
  if (sources.length === 0) throw new BerthError('BERTH_USAGE', 'copy: at least one source is required', {});
  const dstRef = await parseDestinationName(destination);
  const srcRefs = [];
  for (const s of sources) srcRefs.push(await parseImageName(s));
  if (sources.length > 1 && ((opts.names?.length ?? 0) > 0 || dstRef.selector !== undefined)) {
    throw new BerthError('BERTH_USAGE', 'copy: names (--name or DEST:NAME) apply to a single source; several sources keep their own names', {});
  }
  const dstOpts: DestinationOptions = {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.overwrite !== undefined ? { overwrite: opts.overwrite } : {}),
    ...(opts.archiveLayout !== undefined ? { archiveLayout: opts.archiveLayout } : {}),
    ...(opts.fsync !== undefined ? { fsync: opts.fsync } : {}),
  };
  const dst = await dstRef.openDestination(dstOpts);
  try {
    if (sources.length > 1 && !dst.capabilities.multipleRoots) {
      throw new BerthError('BERTH_UNSUPPORTED', `${dstRef.toString()}: holds one image; copy one source at a time`, { subject: destination });
    }
    const images: Array<CopyResult & { sourceReference: string; names: readonly string[] }> = [];
    for (const ref of srcRefs) {
      const src = await ref.openSource(opts);
      try {
        const result = await copyImage(src, dst, opts);
        const given = opts.names !== undefined && opts.names.length > 0 ? opts.names
          : destinationName(dstRef) !== undefined ? [destinationName(dstRef)!]
          : carriedNames(result.source.names);
        images.push({ ...result, sourceReference: ref.toString(), names: given });
      } finally {
        await src.close();
      }
    }
    const roots: NamedRoot[] = images.map((i) => ({ descriptor: i.root, names: i.names }));
    await dst.commit(roots, opts);
    return {
      destination: dstRef.toString(),
      images,
      copied: images.reduce((n, i) => n + i.copied, 0),
      skipped: images.reduce((n, i) => n + i.skipped, 0),
      bytes: images.reduce((n, i) => n + i.bytes, 0),
    };
  } finally {
    await dst.close();
  }
}

/** Copies one image from `source` to `destination`. */
export function copyReference(source: string, destination: string, opts: CopyReferenceOptions = {}): Promise<CopyReferenceResult> {
  return copyReferences([source], destination, opts);
}
