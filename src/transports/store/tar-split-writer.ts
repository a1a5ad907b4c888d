/** tar-split.json.gz written as its lines come: on the applying thread or on the split worker. */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { createGzip } from 'node:zlib';

/** Writes tar-split JSON lines gzip'd to a new file, with backpressure. */
export class TarSplitWriter {
  // Level 1: the JSON is mostly base64 of headers, and at the default level its gzip cost about as
  // much CPU as checksumming the layer's files (the file is ~20% larger; any level reads back the same).
  private readonly gz = createGzip({ level: 1 });
  private readonly out;
  private readonly finished: Promise<void>;

  constructor(file: string) {
    this.out = createWriteStream(file, { flags: 'wx', mode: 0o644 });
    this.gz.pipe(this.out);
    this.finished = new Promise<void>((resolve, reject) => {
      this.out.on('finish', () => resolve());
      this.out.on('error', reject);
      this.gz.on('error', reject);
    });
    this.finished.catch(() => undefined);
  }

  /** Queues a batch of lines; `done` runs once zlib has consumed it (the buffer may then be reused). */
  write(bytes: Uint8Array, done: () => void): void {
    if (bytes.length > 0) this.gz.write(bytes, done);
    else done();
  }

  /** Waits while zlib holds more than its buffer's worth of lines (backpressure between chunks). */
  async drained(): Promise<void> {
    if (this.gz.writableNeedDrain) await Promise.race([once(this.gz, 'drain'), this.finished]);
  }

  async end(): Promise<void> {
    this.gz.end();
    await this.finished;
  }

  /** Drops what is not written yet; resolves once the file is closed (the caller may then remove it). */
  destroy(): Promise<void> {
    const closed = this.out.closed ? Promise.resolve() : once(this.out, 'close').then(() => undefined, () => undefined);
    this.gz.destroy();
    this.out.destroy();
    return closed;
  }
}
