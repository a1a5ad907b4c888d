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
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { BerthError } from '../../core/errors.js';
import { revived, sendable, type SentError } from './worker-error.js';
import { SplitFeed, TarSplitLines } from '../../tar/split.js';
import { TarSplitWriter } from './tar-split-writer.js';

export interface SplitJob {
  /** Where tar-split.json.gz goes (created; must not exist). */
  readonly file: string;
  /** The limits of the applying side's parse (limits() of this process, not of the worker). */
  readonly maxEntries: number;
  readonly maxPathBytes: number;
}

/** A job's ring: how far the worker may lag behind that layer's applier before it waits. */
const RING = 8 << 20;
/** A piece of a chunk is copied once this much of the ring is free (fewer, larger messages when the worker lags). */
const MIN_PIECE = 1 << 20;


type ToWorker =
  | { readonly t: 'start'; readonly id: number; readonly job: SplitJob; readonly ring: SharedArrayBuffer }
  | { readonly t: 'data'; readonly id: number; readonly o: number; readonly n: number }
  | { readonly t: 'end'; readonly id: number }
  | { readonly t: 'abort'; readonly id: number };
/** `closed`: the job's file is closed and the worker forgot the job (after done, error or abort). */
type FromWorker =
  | { readonly t: 'ack'; readonly id: number; readonly n: number }
  | { readonly t: 'done'; readonly id: number }
  | { readonly t: 'error'; readonly id: number; readonly e: SentError }
  | { readonly t: 'closed'; readonly id: number };


/** One layer's recording on the worker: feed each chunk, gzip the lines into the file, acknowledge once zlib keeps up. */
class WorkerJob {
  private readonly writer: TarSplitWriter;
  private readonly feed: SplitFeed;
  private readonly queue: ToWorker[] = [];
  private busy = false;
  private over = false;

  constructor(private readonly id: number, job: SplitJob, private readonly ring: SharedArrayBuffer, private readonly forget: () => void) {
    this.writer = new TarSplitWriter(job.file);
    const lines = new TarSplitLines();
    this.feed = new SplitFeed({ entry: () => undefined, data: () => undefined, end: () => undefined }, {
      lines, onLines: (b) => this.writer.write(b, () => lines.release(b)), maxEntries: job.maxEntries, maxPathBytes: job.maxPathBytes,
    });
  }

  take(m: ToWorker): void {
    if (this.over) return;
    if (m.t === 'abort') {
      this.over = true;
      void this.close();
      return;
    }
    this.queue.push(m);
    if (!this.busy) void this.step();
  }

  private async step(): Promise<void> {
    const port = parentPort!;
    this.busy = true;
    try {
      for (let m = this.queue.shift(); m !== undefined && !this.over; m = this.queue.shift()) {
        if (m.t === 'end') {
          this.feed.finish();
          await this.writer.end();
          if (this.over) return; // aborted meanwhile: close() answers
          this.over = true;
          this.forget();
          port.postMessage({ t: 'done', id: this.id } satisfies FromWorker);
          return;
        }
        if (m.t !== 'data') continue;
        // the feed keeps no view of its input past the call (what it keeps, it copies)
        const chunk = new Uint8Array(this.ring, m.o, m.n);
        void this.feed.feed(chunk); // no sink handler returns a promise
        await this.writer.drained();
        port.postMessage({ t: 'ack', id: this.id, n: chunk.length } satisfies FromWorker);
      }
    } catch (err) {
      if (this.over) return;
      this.over = true;
      // the file is closed before the main side learns of the error (it then removes it)
      await this.close(sendable(err));
    } finally {
      this.busy = false;
    }
  }

  /** Destroys the streams, waits for the file to be closed, forgets the job and says so. */
  private async close(e?: SentError): Promise<void> {
    await this.writer.destroy();
    this.forget();
    const port = parentPort!;
    if (e !== undefined) port.postMessage({ t: 'error', id: this.id, e } satisfies FromWorker);
    port.postMessage({ t: 'closed', id: this.id } satisfies FromWorker);
  }
}

function runWorker(): void {
  const jobs = new Map<number, WorkerJob>();
  parentPort!.on('message', (m: ToWorker) => {
    if (m.t === 'start') jobs.set(m.id, new WorkerJob(m.id, m.job, m.ring, () => jobs.delete(m.id)));
    else jobs.get(m.id)?.take(m);
  });
}

if (!isMainThread && (workerData as { berthSplitWorker?: true } | null)?.berthSplitWorker === true) runWorker();

/**
 * One worker thread that records the tar-split of every layer of a load (started on the first,
 * ~50 ms of CPU and tens of MB each, so not one per layer); layers applied at the same time are
 * jobs of their own, each with its ring. It holds the process open only while a job runs;
 * close() ends it.
 */
export class SplitThread {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, SplitRecorder>();
  private nextId = 1;
  /** Rings of finished jobs, for the next (the worker no longer reads them). */
  private readonly rings: SharedArrayBuffer[] = [];
  private closed = false;

  /** Starts recording one layer's tar-split into `job.file`. */
  start(job: SplitJob, what: string): SplitRecorder {
    if (this.closed) throw new BerthError('BERTH_USAGE', `${what}: the tar-split worker thread is closed`, { subject: what });
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    const ring = this.rings.pop() ?? new SharedArrayBuffer(RING);
    const rec = new SplitRecorder(this, worker, id, ring, what);
    this.jobs.set(id, rec);
    worker.ref();
    worker.postMessage({ t: 'start', id, job, ring } satisfies ToWorker);
    return rec;
  }

  /** Whether a worker thread is running (tests). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  private spawn(): Worker {
    const worker = new Worker(new URL(import.meta.url), { workerData: { berthSplitWorker: true } });
    this.worker = worker;
    worker.on('message', (m: FromWorker) => this.jobs.get(m.id)?.hear(m));
    const lost = (why: string, cause?: unknown): void => {
      if (this.worker === worker) this.worker = undefined; // the next job starts another
      for (const rec of [...this.jobs.values()]) if (rec.worker === worker) rec.lost(why, cause);
    };
    worker.on('error', (err) => lost(`the tar-split worker thread failed: ${(err as Error).message}`, err));
    worker.on('exit', () => lost('the tar-split worker thread ended early'));
    return worker;
  }

  /** A job is over (its file closed, or its worker gone): its ring may serve the next. */
  finished(id: number, ring: SharedArrayBuffer, reusable: boolean): void {
    this.jobs.delete(id);
    if (reusable && this.rings.length < 2) this.rings.push(ring);
    if (this.jobs.size === 0) this.worker?.unref();
  }

  /** Ends the worker thread; jobs still running fail. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    this.rings.length = 0;
    if (w !== undefined) await w.terminate();
  }
}

/** One layer's recording, seen from the applier: hands the worker copies of the chunks, and learns how it went. */
export class SplitRecorder {
  private readonly view: Uint8Array;
  /** Bytes copied into the ring, and acknowledged by the worker (both only grow). */
  private written = 0;
  private acked = 0;
  private failure: BerthError | undefined;
  private done = false;
  /** The worker closed the job's file and forgot it (or is gone). */
  private over = false;
  private wake: (() => void) | undefined;

  constructor(private readonly thread: SplitThread, readonly worker: Worker, private readonly id: number, private readonly ring: SharedArrayBuffer, private readonly what: string) {
    this.view = new Uint8Array(ring);
  }

  /** A message from the worker about this job. */
  hear(m: FromWorker): void {
    if (m.t === 'ack') this.acked += m.n;
    else if (m.t === 'done') this.end1(true);
    else if (m.t === 'closed') this.end1(false);
    else this.failure ??= revived(m.e);
    this.poke();
  }

  /** The worker thread failed or ended: this job cannot finish. */
  lost(why: string, cause?: unknown): void {
    this.failure ??= new BerthError('BERTH_IO', `${this.what}: ${why}`, cause === undefined ? {} : { cause });
    if (!this.over) {
      this.over = true;
      this.thread.finished(this.id, this.ring, false);
    }
    this.poke();
  }

  private end1(done: boolean): void {
    if (done) this.done = true;
    if (this.over) return;
    this.over = true;
    this.thread.finished(this.id, this.ring, true);
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
      this.view.set(chunk.subarray(at, at + n), pos);
      this.worker.postMessage({ t: 'data', id: this.id, o: pos, n } satisfies ToWorker);
      this.written += n;
      at += n;
    }
    if (this.failure !== undefined) throw this.failure;
    return undefined;
  }

  /** The end of the tar: resolves once the tar-split file is written (rejects with the worker's error). */
  async end(): Promise<void> {
    if (this.failure === undefined && !this.over) this.worker.postMessage({ t: 'end', id: this.id } satisfies ToWorker);
    while (!this.done && !this.over) await this.wait();
    if (this.failure !== undefined) throw this.failure;
    if (!this.done) throw new BerthError('BERTH_IO', `${this.what}: the tar-split worker thread ended early`);
  }

  /** Stops this job (after a failure here) and waits until the worker closed its file: what it wrote is the caller's to remove. */
  async destroy(): Promise<void> {
    this.failure ??= new BerthError('BERTH_ABORTED', `${this.what}: stopped`);
    if (!this.over) this.worker.postMessage({ t: 'abort', id: this.id } satisfies ToWorker);
    while (!this.over) await this.wait();
  }
}
