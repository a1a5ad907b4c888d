/**
 * Rebuilding a layer tar on a worker thread. tar/assemble does everything on the thread that
 * runs it: gunzip and parse the tar-split lines, open and read every file synchronously,
 * CRC-64 each one. On the main thread that is most of a `berth save`, and the main thread also
 * has to hash and write the result; here the worker gunzips, parses, opens and reads, and the
 * main thread runs the CRC-64 checks (deferred, before it uses a piece) besides hashing and
 * writing, which splits the work about evenly over two cores. The worker hands over each
 * ~1 MiB piece without copying (its ArrayBuffer is transferred) and runs at most WINDOW bytes
 * ahead of the reader. Errors come back as the same BerthError (code, message, subject, want, got).
 */
import { createReadStream } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { BerthError, isBerthError } from '../../core/errors.js';
import { revived, sendable, type SentError } from './worker-error.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import { assembleTarSplit, CrcChecker, DeferredChecks, type CheckBatch } from '../../tar/assemble.js';
import { layerFdOpener } from './overlay2.js';

export interface LayerJob {
  /** The tar-split file (absolute) and its name for messages. */
  readonly tarSplit: string;
  readonly source: string;
  /** The layer's files (absolute). */
  readonly files: string;
  /** Names the rebuild in file errors. */
  readonly what: string;
}

/** How far the worker may run ahead of the reader. */
const WINDOW = 2 << 20;


type FromWorker =
  | { readonly t: 'data'; readonly b: ArrayBuffer; readonly o: number; readonly n: number; readonly c: CheckBatch }
  | { readonly t: 'end' }
  | { readonly t: 'error'; readonly e: SentError };


/** The worker side: rebuild, post pieces while the window allows. */
async function runWorker(job: LayerJob): Promise<void> {
  const port = parentPort!;
  let credit = WINDOW;
  let wake: (() => void) | undefined;
  port.on('message', (m: { n: number }) => {
    credit += m.n;
    wake?.();
  });
  try {
    const src = createReadStream(job.tarSplit, { highWaterMark: 256 << 10 });
    const checks = new DeferredChecks();
    for await (const piece of assembleTarSplit(src, layerFdOpener(job.files), { source: job.source, what: job.what, deferredChecks: checks })) {
      const c = checks.take();
      while (credit <= 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      credit -= piece.length;
      // assemble's pieces own their buffers, except small ones that may sit in Node's shared pool
      const own = piece.buffer.byteLength > Buffer.poolSize && piece.buffer instanceof ArrayBuffer;
      const view = own ? piece : piece.slice();
      const b = view.buffer as ArrayBuffer;
      port.postMessage({ t: 'data', b, o: view.byteOffset, n: view.length, c } satisfies FromWorker, [b]);
    }
    port.postMessage({ t: 'end' } satisfies FromWorker);
  } catch (err) {
    port.postMessage({ t: 'error', e: sendable(err) } satisfies FromWorker);
  }
  // the reader terminates the worker once it has the last message
}

if (!isMainThread && (workerData as { berthLayerWorker?: LayerJob } | null)?.berthLayerWorker !== undefined) {
  void runWorker((workerData as { berthLayerWorker: LayerJob }).berthLayerWorker);
}

/** Read through a call, so a check made earlier does not narrow it for the compiler. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/**
 * The rebuilt layer tar of `job`, made on a worker thread (same bytes and errors as
 * assembleTarSplit on this thread). Stopping early or an abort ends the worker.
 */
export async function* assembleInWorker(job: LayerJob, opts: IoOptions = {}): ByteStream {
  if (opts.signal?.aborted === true) throw new BerthError('BERTH_ABORTED', `${job.what}: aborted`, { cause: opts.signal.reason });
  const worker = new Worker(new URL(import.meta.url), { workerData: { berthLayerWorker: job } });
  const queue: FromWorker[] = [];
  const checker = new CrcChecker(job.what);
  let failure: BerthError | undefined;
  let wake: (() => void) | undefined;
  const push = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  worker.on('message', (m: FromWorker) => {
    queue.push(m);
    push();
  });
  worker.on('error', (err) => {
    failure ??= isBerthError(err) ? err : new BerthError('BERTH_IO', `${job.what}: the worker thread failed: ${(err as Error).message}`, { cause: err });
    push();
  });
  worker.on('exit', () => {
    failure ??= new BerthError('BERTH_IO', `${job.what}: the worker thread ended early`);
    push();
  });
  const onAbort = (): void => {
    failure ??= new BerthError('BERTH_ABORTED', `${job.what}: aborted`, { cause: opts.signal?.reason });
    void worker.terminate();
    push();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      // an abort wins over pieces already queued
      if (isAborted(opts.signal)) throw failure ?? new BerthError('BERTH_ABORTED', `${job.what}: aborted`, { cause: opts.signal?.reason });
      const m = queue.shift();
      if (m === undefined) {
        if (failure !== undefined) throw failure;
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      if (m.t === 'end') return;
      if (m.t === 'error') {
        const e = m.e;
        throw revived(e);
      }
      const piece = new Uint8Array(m.b, m.o, m.n);
      checker.check(piece, m.c);
      yield piece;
      worker.postMessage({ n: m.n });
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await worker.terminate();
  }
}
