/**
 * The copy engine's entry point: from an open ImageSource to an open ImageDestination, through
 * interfaces only (any place that reads can be copied to any place that writes: layouts,
 * archives, and later the local store and registries). Plans first (selection, formats,
 * refusals), then copies the graph; committing and naming are the caller's, so several images
 * can go into one destination.
 */
import type { Descriptor } from '../core/descriptor.js';
import { shortDigest } from '../core/digest.js';
import { BerthError, isBerthError } from '../core/errors.js';
import type { Platform } from '../core/platform.js';
import { COMPRESSIONS, type Compression } from '../io/codec.js';
import type { IoOptions } from '../io/stream.js';
import type { ImageDestination, ImageSource, RootEntry } from '../transports/transport.js';
import type { CopyEventListener } from './events.js';
import { GraphCopier } from './graph-copy.js';
import { planCopy, type ManifestFamily } from './plan.js';
import { copyReferrers } from './referrers.js';

export interface CopyOptions extends IoOptions {
  /** Which images of an index: 'all' (default) or the best match for each platform listed. */
  readonly platforms?: 'all' | readonly Platform[];
  /** Layer compression: 'preserve' (default) keeps layers byte for byte. */
  readonly compression?: 'preserve' | Compression;
  /** Manifest format: 'oci' or 'docker' (schema 2 / manifest list); default unchanged where possible. */
  readonly format?: ManifestFamily;
  /** Attestation manifests whose subject is copied: 'keep' (default) or 'drop'. */
  readonly attestations?: 'keep' | 'drop';
  /**
   * OCI 1.1 referrers of the copied manifests (signatures, SBOMs… naming one as `subject`):
   * 'keep' (default) copies them too when the destination keeps referrers; 'drop' leaves them.
   */
  readonly referrers?: 'keep' | 'drop';
  /** Blobs streaming at once (default 3). */
  readonly concurrency?: number;
  readonly onEvent?: CopyEventListener;
}

export const DEFAULT_COPY_OPTIONS = {
  platforms: 'all',
  compression: 'preserve',
  attestations: 'keep',
  referrers: 'keep',
  concurrency: 3,
} as const;

export interface CopyResult {
  /** The root as written (same as the source's when nothing had to change). */
  readonly root: Descriptor;
  /** The root at the source. */
  readonly source: RootEntry;
  readonly copied: number;
  readonly skipped: number;
  /** Source bytes read for copied blobs. */
  readonly bytes: number;
  /** Referrers copied with the image (their blobs are in the counts above). */
  readonly referrers: number;
  readonly notes: readonly string[];
}

/**
 * Copies the root the source's reference selects into `dst` (not committed). Throws
 * BERTH_UNSUPPORTED for what the destination or format cannot express, BERTH_USAGE for
 * contradictory options, and the source's or destination's errors wrapped with what was being
 * copied.
 */
export async function copyImage(src: ImageSource, dst: ImageDestination, opts: CopyOptions = {}): Promise<CopyResult> {
  const compression = opts.compression ?? DEFAULT_COPY_OPTIONS.compression;
  if (compression !== 'preserve' && !COMPRESSIONS.includes(compression)) {
    throw new BerthError('BERTH_USAGE', `compression "${String(compression)}" is not one of ${COMPRESSIONS.join(', ')}`, { got: compression });
  }
  const caps = dst.capabilities;
  if (caps.layerCompression !== 'preserve' && compression !== 'preserve' && compression !== caps.layerCompression) {
    throw new BerthError('BERTH_USAGE', `${dst.reference.toString()}: stores layers ${caps.layerCompression === 'none' ? 'uncompressed' : `as ${caps.layerCompression}`}, so --compression ${compression} cannot apply`, {
      want: caps.layerCompression, got: compression,
    });
  }
  const concurrency = opts.concurrency ?? DEFAULT_COPY_OPTIONS.concurrency;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new BerthError('BERTH_USAGE', `concurrency must be a positive integer, got ${concurrency}`, { got: concurrency });
  }
  const notes: string[] = [];
  const where = src.reference.toString();
  const root = await src.root(opts);
  const onNote = (message: string): void => {
    notes.push(message);
    opts.onEvent?.({ type: 'note', message });
  };
  const planOpts = {
    ...(opts.signal ? { signal: opts.signal } : {}),
    platforms: opts.platforms ?? DEFAULT_COPY_OPTIONS.platforms,
    attestations: opts.attestations ?? DEFAULT_COPY_OPTIONS.attestations,
    format: opts.format,
    compression,
    where,
    onNote,
  };
  const plan = await planCopy(src, root, caps, planOpts);
  const copier = new GraphCopier(src, dst, {
    concurrency,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
  });
  const main = await copier.run(plan);
  let referrers = 0;
  if (caps.referrers === true && (opts.referrers ?? DEFAULT_COPY_OPTIONS.referrers) === 'keep') {
    const io = opts.signal ? { signal: opts.signal } : {};
    referrers = await copyReferrers(src, await copier.written(), {
      copy: async (found) => {
        // a referrer is a root of its own: every platform, nothing filtered out
        const entry: RootEntry = { descriptor: found.desc, names: [], position: 0, synthesized: false };
        let p;
        try {
          p = await planCopy(src, entry, caps, { ...planOpts, platforms: 'all', where: `referrer ${shortDigest(found.desc.digest)}` });
        } catch (err) {
          // what the destination or format cannot express, or what the source lists but lacks, is left out
          if (isBerthError(err, 'BERTH_UNSUPPORTED') || isBerthError(err, 'BERTH_NOT_FOUND')) return (err as Error).message;
          throw err;
        }
        await copier.run(p);
        return copier.written();
      },
      note: onNote,
    }, io);
  }
  const totals = copier.totals();
  return { root: main.root, copied: totals.copied, skipped: totals.skipped, bytes: totals.bytes, referrers, source: root, notes };
}
