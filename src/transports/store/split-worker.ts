/**
 * Recording a layer's tar-split on a worker thread while the main thread applies the layer.
 * Recording is a second, independent consumer of the same tar bytes: parse, CRC-64 of every
 * file, the JSON lines, gzip and the file write. On the thread that also makes every file it is
 * a sixth of a load's CPU; here it runs on the other core. The chunks are copied into a shared
 * ring buffer (a memcpy into memory already mapped, no allocation or transfer per chunk), the
 * worker is told where each piece is and acknowledges it once parsed; the applier waits only
 * when the worker is a whole ring behind. The worker parses with the same SplitFeed (same
 * lines, checks and errors: duplicate paths are refused here, as the applying side does not
 * check them). Errors come back as the same BerthError.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createGzip } from 'node:zlib';
import { BerthError, toBerthError, type ErrorCode } from '../../core/errors.js';
import { SplitFeed, TarSplitLines } from '../../tar/split.js';

export interface SplitJob {
  /** The ring the chunks are copied into (set by SplitRecorder). */
  readonly ring?: SharedArrayBuffer;
  /** Where tar-split.json.gz goes (created; must not exist). */
  readonly file: string;
  /** The limits of the applying side's parse (limits() of this process, not of the worker). */
  readonly maxEntries: number;
  readonly maxPathBytes: number;
}

/** The ring's size: how far the worker may lag before the applier waits. */
const RING = 8 << 20;
/** A piece of a chunk is copied once this much of the ring is free (fewer, larger messages when the worker lags). */
const MIN_PIECE = 1 << 20;

interface SentError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly subject?: string;
  readonly want?: unknown;
  readonly got?: unknown;
}

type ToWorker = { readonly t: 'data'; readonly o: number; readonly n: number } | { readonly t: 'end' };
type FromWorker = { readonly t: 'ack'; readonly n: number } | { readonly t: 'done' } | { readonly t: 'error'; readonly e: SentError };

function sendable(err: unknown): SentError {
  const e = toBerthError(err);
  const plain = (v: unknown): unknown => (v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : String(v));
  return {
    code: e.code, message: e.message,
    ...(e.subject !== undefined ? { subject: e.subject } : {}),
    ...(e.want !== undefined ? { want: plain(e.want) } : {}),
    ...(e.got !== undefined ? { got: plain(e.got) } : {}),
  };
}

/** The worker side: feed each chunk, gzip the lines into the file, acknowledge once zlib keeps up. */
function runWorker(job: SplitJob): void {
  const port = parentPort!;
  const ring = job.ring!;
  // Level 1: the JSON is mostly base64 of headers; any level reads back the same.
  const gz = createGzip({ level: 1 });
  const out = createWriteStream(job.file, { flags: 'wx', mode: 0o644 });
  gz.pipe(out);
  const finished = new Promise<void>((resolve, reject) => {
    out.on('finish', () => resolve());
    out.on('error', reject);
    gz.on('error', reject);
  });
  finished.catch(() => undefined);
  const lines = new TarSplitLines();
  const feed = new SplitFeed({ entry: () => undefined, data: () => undefined, end: () => undefined }, {
    lines, onLines: (b) => void gz.write(b, () => lines.release(b)), maxEntries: job.maxEntries, maxPathBytes: job.maxPathBytes,
  });
  const queue: ToWorker[] = [];
  let busy = false;
  let failed = false;
  const step = async (): Promise<void> => {
    busy = true;
    try {
      for (let m = queue.shift(); m !== undefined && !failed; m = queue.shift()) {
        if (m.t === 'end') {
          feed.finish();
          gz.end();
          await finished;
          port.postMessage({ t: 'done' } satisfies FromWorker);
          return;
        }
        // the feed keeps no view of its input past the call (what it keeps, it copies)
        const chunk = new Uint8Array(ring, m.o, m.n);
        void feed.feed(chunk); // no sink handler returns a promise
        if (gz.writableNeedDrain) await Promise.race([once(gz, 'drain'), finished]);
        port.postMessage({ t: 'ack', n: chunk.length } satisfies FromWorker);
      }
    } catch (err) {
      failed = true;
      gz.destroy();
      out.destroy();
      port.postMessage({ t: 'error', e: sendable(err) } satisfies FromWorker);
    } finally {
      busy = false;
    }
  };
  port.on('message', (m: ToWorker) => {
    queue.push(m);
    if (!busy) void step();
  });
}

if (!isMainThread && (workerData as { berthSplitWorker?: SplitJob } | null)?.berthSplitWorker !== undefined) {
  runWorker((workerData as { berthSplitWorker: SplitJob }).berthSplitWorker);
}

/** The main side: hands the worker copies of the chunks, and learns how it went. */
export class SplitRecorder {
  private readonly worker: Worker;
  private readonly ring: Uint8Array;
  /** Bytes copied into the ring, and acknowledged by the worker (both only grow). */
  private written = 0;
  private acked = 0;
  private failure: BerthError | undefined;
  private done = false;
  private wake: (() => void) | undefined;

  constructor(job: SplitJob, private readonly what: string) {
    const ring = new SharedArrayBuffer(RING);
    this.ring = new Uint8Array(ring);
    this.worker = new Worker(new URL(import.meta.url), { workerData: { berthSplitWorker: { ...job, ring } } });
    this.worker.on('message', (m: FromWorker) => {
      if (m.t === 'ack') this.acked += m.n;
      else if (m.t === 'done') this.done = true;
      else this.failure ??= new BerthError(m.e.code, m.e.message, { ...(m.e.subject !== undefined ? { subject: m.e.subject } : {}), want: m.e.want, got: m.e.got });
      this.poke();
    });
    this.worker.on('error', (err) => {
      this.failure ??= new BerthError('BERTH_IO', `${this.what}: the tar-split worker thread failed: ${(err as Error).message}`, { cause: err });
      this.poke();
    });
    this.worker.on('exit', () => {
      if (!this.done) this.failure ??= new BerthError('BERTH_IO', `${this.what}: the tar-split worker thread ended early`);
      this.poke();
    });
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private wait(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  /**
   * Copies `chunk` into the ring for the worker: synchronous while there is room, else a promise
   * that settles once all of it is in. Throws (rejects) with what the worker found wrong so far.
   */
  push(chunk: Uint8Array): Promise<void> | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.failure !== undefined) throw this.failure;
      const free = RING - (this.written - this.acked);
      if (free < Math.min(chunk.length - at, MIN_PIECE)) {
        const rest = chunk.subarray(at);
        return this.wait().then(() => this.push(rest));
      }
      const pos = this.written % RING;
      const n = Math.min(chunk.length - at, free, RING - pos);
      this.ring.set(chunk.subarray(at, at + n), pos);
      this.worker.postMessage({ t: 'data', o: pos, n } satisfies ToWorker);
      this.written += n;
      at += n;
    }
    if (this.failure !== undefined) throw this.failure;
    return undefined;
  }

  /** The end of the tar: resolves once the tar-split file is written (rejects with the worker's error). */
  async end(): Promise<void> {
    if (this.failure === undefined) this.worker.postMessage({ t: 'end' } satisfies ToWorker);
    while (!this.done && this.failure === undefined) await this.wait();
    await this.worker.terminate();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Stops the worker (after a failure here); what it wrote is the caller's to remove. */
  async destroy(): Promise<void> {
    this.failure ??= new BerthError('BERTH_ABORTED', `${this.what}: stopped`);
    await this.worker.terminate();
  }
}
