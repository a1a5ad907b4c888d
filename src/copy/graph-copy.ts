/**
 * Executing a plan: a depth-first walk that writes children before parents (blobs, then
 * manifests, then indexes), each blob once however often it is referenced, at most `concurrency`
 * blobs streaming at a time. The first failure aborts the rest, and the walk returns only after
 * every started write has stopped, so the destination can roll back safely.
 */
import type { Descriptor } from '../core/descriptor.js';
import { digestOf, shortDigest, type Digest } from '../core/digest.js';
import { BerthError, withContext } from '../core/errors.js';
import { configDiffIds, parseImageConfig } from '../core/config.js';
import { classifyMediaType } from '../core/media-types.js';
import { fetchBytes, type BlobSource } from '../content/store.js';
import type { ImageDestination } from '../transports/transport.js';
import { copyBlob, type BlobJob, type BlobOutcome } from './blob-pipeline.js';
import type { CopyEventListener } from './events.js';
import { configMediaType, indexBytes, layerMediaType, manifestBytes, type IndexPlan, type ManifestPlan, type PlanNode } from './plan.js';
import { limits } from '../io/limits.js';
import { Limiter } from '../io/limiter.js';

/** Image configs over this size are refused before reading. */

export interface GraphCopyOptions {
  readonly concurrency: number;
  readonly signal?: AbortSignal;
  readonly onEvent?: CopyEventListener;
}

export interface GraphCopyResult {
  readonly root: Descriptor;
  readonly copied: number;
  readonly skipped: number;
  readonly bytes: number;
}

export class GraphCopier {
  private readonly blobs = new Map<string, Promise<BlobOutcome>>();
  private readonly nodes = new Map<string, Promise<Descriptor>>();
  /** Source digest → written digest, for manifests whose bytes changed (attestation subjects follow). */
  private readonly renamed = new Map<string, string>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly limiter: Limiter;
  private readonly abort = new AbortController();
  private copied = 0;
  private skipped = 0;
  private bytes = 0;

  constructor(private readonly src: BlobSource, private readonly dst: ImageDestination, private readonly opts: GraphCopyOptions) {
    this.limiter = new Limiter(dst.capabilities.parallelPuts ? Math.max(1, opts.concurrency) : 1);
    if (opts.signal !== undefined) {
      if (opts.signal.aborted) this.abort.abort(opts.signal.reason);
      else opts.signal.addEventListener('abort', () => this.abort.abort(opts.signal!.reason), { once: true });
    }
  }

  /** Copies the plan; on failure, waits for every started write to stop before rethrowing. */
  async run(root: PlanNode): Promise<GraphCopyResult> {
    try {
      const written = await this.track(this.copyNode(root));
      return { root: written, copied: this.copied, skipped: this.skipped, bytes: this.bytes };
    } catch (err) {
      this.abort.abort(err);
      await this.settle();
      if (this.opts.signal?.aborted) throw new BerthError('BERTH_ABORTED', `copy aborted: ${(err as Error).message ?? String(err)}`, { cause: err });
      throw err;
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    const done = (): void => {
      this.pending.delete(p);
    };
    p.then(done, done);
    return p;
  }

  private async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private checkAborted(): void {
    if (this.abort.signal.aborted) throw new BerthError('BERTH_ABORTED', 'copy aborted', { cause: this.abort.signal.reason });
  }

  private copyNode(node: PlanNode): Promise<Descriptor> {
    const key = `${node.kind}:${node.desc.digest}`;
    let p = this.nodes.get(key);
    if (p === undefined) {
      p = this.track(node.kind === 'index' ? this.copyIndex(node) : node.kind === 'manifest' ? this.copyManifest(node) : this.copyOpaque(node.desc));
      this.nodes.set(key, p);
    }
    return p;
  }

  private blob(job: BlobJob): Promise<BlobOutcome> {
    const key = `${job.desc.digest}|${job.to ?? '-'}|${job.mediaType}`;
    let p = this.blobs.get(key);
    if (p !== undefined) {
      this.opts.onEvent?.({ type: 'blob-skip', desc: job.desc, reason: 'duplicate' });
      return p;
    }
    p = this.track(this.limiter.run(async () => {
      this.checkAborted();
      const out = await copyBlob(this.src, this.dst, job, { signal: this.abort.signal, ...(this.opts.onEvent ? { onEvent: this.opts.onEvent } : {}) });
      if (out.skipped) this.skipped++;
      else this.copied++;
      this.bytes += out.bytes;
      return out;
    }));
    this.blobs.set(key, p);
    return p;
  }

  private async copyOpaque(desc: Descriptor): Promise<Descriptor> {
    const out = await this.blob({ desc, role: 'blob', from: undefined, to: undefined, mediaType: desc.mediaType, label: 'blob' });
    return out.written;
  }

  private async copyManifest(plan: ManifestPlan): Promise<Descriptor> {
    const m = plan.manifest;
    const what = `manifest ${shortDigest(plan.desc.digest)}`;
    try {
      const cfg = m.config;
      const isImageConfig = classifyMediaType(cfg.mediaType).kind === 'config';
      const needDiffIds = plan.layers.some((l) => l.to !== l.from);
      let diffIds: readonly Digest[] | undefined;
      let configOut: Promise<BlobOutcome>;
      if (isImageConfig && needDiffIds && !plan.synthesized) {
        const bytes = await fetchBytes(this.src, cfg, { signal: this.abort.signal, maxBytes: limits().maxConfigBytes, what: `config ${shortDigest(cfg.digest)}` });
        diffIds = configDiffIds(parseImageConfig(bytes, { what: `config ${shortDigest(cfg.digest)}` }));
        if (diffIds.length !== m.layers.length) {
          throw new BerthError('BERTH_INVALID_MANIFEST', `${what}: lists ${m.layers.length} layers but its config has ${diffIds.length} diff_ids`, { subject: plan.desc.digest });
        }
        configOut = this.blob({ desc: cfg, role: 'config', from: undefined, to: undefined, mediaType: configMediaType(cfg.mediaType, plan.family), label: 'config' });
      } else {
        // A synthesised manifest names each layer by its diff_id already.
        if (plan.synthesized) diffIds = m.layers.map((l) => l.digest);
        configOut = this.blob({ desc: cfg, role: 'config', from: undefined, to: undefined, mediaType: configMediaType(cfg.mediaType, plan.family), label: 'config' });
      }
      const n = m.layers.length;
      const layerOut = m.layers.map((l, i) => {
        const { from, to } = plan.layers[i]!;
        return this.blob({
          desc: l,
          role: classifyMediaType(l.mediaType).kind === 'layer' ? 'layer' : 'blob',
          from,
          to,
          mediaType: layerMediaType(l.mediaType, plan.family, from, to),
          ...(diffIds !== undefined && from !== undefined ? { diffId: diffIds[i]! } : {}),
          label: `layer ${i + 1}/${n}`,
        });
      });
      const results = await Promise.all([configOut, ...layerOut]);
      const config = results[0]!.written;
      const layers = results.slice(1).map((r) => r.written);
      const unchanged = !plan.synthesized && plan.family === m.family && sameDescriptor(config, cfg) && layers.every((l, i) => sameDescriptor(l, m.layers[i]!));
      let desc: Descriptor;
      let bytes: Uint8Array;
      if (unchanged) {
        desc = stripEntryFields(plan.desc);
        bytes = plan.raw;
      } else {
        const built = manifestBytes(plan, config, layers);
        bytes = built.bytes;
        desc = { mediaType: built.mediaType, digest: digestOf(bytes), size: bytes.length };
        this.renamed.set(plan.desc.digest, desc.digest);
      }
      await this.putManifest(desc, bytes);
      if (m.subject !== undefined) this.referrer(m.subject.digest, desc, m.artifactType ?? m.config.mediaType, m.annotations);
      this.opts.onEvent?.({ type: 'manifest-done', desc: plan.desc, written: desc });
      return desc;
    } catch (err) {
      throw withContext(err, `copying ${plan.role === 'attestation' ? 'attestation ' : ''}${what}`);
    }
  }

  private async copyIndex(plan: IndexPlan): Promise<Descriptor> {
    const what = `index ${shortDigest(plan.desc.digest)}`;
    try {
      // Images first, then attestations, so attestation entries can follow renamed subjects.
      const images = plan.entries.map((e) => (e.node.kind === 'manifest' && e.node.role === 'attestation' ? undefined : this.copyNode(e.node)));
      await Promise.all(images.filter((p) => p !== undefined));
      const written = await Promise.all(plan.entries.map((e, i) => images[i] ?? this.copyNode(e.node)));
      const unchanged = !plan.filtered && plan.family === plan.index.family && written.every((w, i) => sameDescriptor(w, plan.index.manifests[plan.entries[i]!.position]!));
      let desc: Descriptor;
      let bytes: Uint8Array;
      if (unchanged) {
        desc = stripEntryFields(plan.desc);
        bytes = plan.raw;
      } else {
        const built = indexBytes(plan, written, this.renamed);
        bytes = built.bytes;
        desc = { mediaType: built.mediaType, digest: digestOf(bytes), size: bytes.length };
        this.renamed.set(plan.desc.digest, desc.digest);
      }
      await this.putManifest(desc, bytes);
      if (plan.index.subject !== undefined) this.referrer(plan.index.subject.digest, desc, plan.index.artifactType, plan.index.annotations);
      this.opts.onEvent?.({ type: 'manifest-done', desc: plan.desc, written: desc });
      return desc;
    } catch (err) {
      throw withContext(err, `copying ${what}`);
    }
  }

  /** Tells the destination about a written manifest that names a subject (OCI 1.1 referrer), as a referrers list describes it. */
  private referrer(subject: Digest, desc: Descriptor, artifactType: string | undefined, annotations: Readonly<Record<string, string>> | undefined): void {
    this.dst.addReferrer?.(subject, {
      mediaType: desc.mediaType, digest: desc.digest, size: desc.size,
      ...(artifactType !== undefined ? { artifactType } : {}),
      ...(annotations !== undefined ? { annotations } : {}),
    });
  }

  /** Blobs copied and skipped, and source bytes read, over every run() so far. */
  totals(): { copied: number; skipped: number; bytes: number } {
    return { copied: this.copied, skipped: this.skipped, bytes: this.bytes };
  }

  /** Every manifest and index written so far: source digest → written descriptor (after run() returned). */
  async written(): Promise<Map<string, Descriptor>> {
    const out = new Map<string, Descriptor>();
    for (const [key, p] of this.nodes) {
      if (key.startsWith('blob:')) continue;
      out.set(key.slice(key.indexOf(':') + 1), await p);
    }
    return out;
  }

  private async putManifest(desc: Descriptor, bytes: Uint8Array): Promise<void> {
    this.checkAborted();
    if (await this.dst.has(desc, { signal: this.abort.signal })) return;
    await this.dst.putManifest(desc, bytes, { signal: this.abort.signal });
  }
}

function sameDescriptor(a: Descriptor, b: Descriptor): boolean {
  return a.digest === b.digest && a.size === b.size && a.mediaType === b.mediaType;
}

/** A root or child descriptor without the fields that belong to the entry pointing at it. */
function stripEntryFields(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.artifactType !== undefined ? { artifactType: d.artifactType } : {}) };
}
