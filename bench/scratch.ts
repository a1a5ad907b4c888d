/**
 * Output directories for the cases that write. On this machine's journal-less ext4, a file
 * created within minutes of a mass delete scans past every recently freed inode
 * (bench-baseline.md, surprise 1: tar -x 5.7 s → 109 s), so on a disk the previous output is
 * renamed into a trash directory and deleted only when the harness exits. On tmpfs there is no
 * such effect and memory is the limit, so there it is deleted right away.
 */
import { mkdir, readdir, rename, rm, statfs } from 'node:fs/promises';
import path from 'node:path';

const TMPFS_MAGIC = 0x01021994;

export class Scratch {
  private counter = 0;

  private constructor(
    readonly dir: string,
    readonly tmpfs: boolean,
  ) {}

  static async create(dir: string): Promise<Scratch> {
    await mkdir(dir, { recursive: true });
    const fs = await statfs(dir);
    return new Scratch(dir, fs.type === TMPFS_MAGIC);
  }

  private get trash(): string {
    return path.join(this.dir, 'trash');
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  /** Clears `p` (file or directory) for the next run; with `mkdir`, leaves an empty directory there. */
  async fresh(p: string, opts: { mkdir?: boolean } = {}): Promise<void> {
    if (this.tmpfs) {
      await rm(p, { recursive: true, force: true });
    } else {
      await mkdir(this.trash, { recursive: true });
      await rename(p, path.join(this.trash, `${process.hrtime.bigint()}-${this.counter++}`)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    if (opts.mkdir === true) await mkdir(p, { recursive: true });
    else await mkdir(path.dirname(p), { recursive: true });
  }

  /**
   * After a case, on tmpfs: deletes what its last run wrote. Outputs left in RAM add up over a
   * full run (bigfile copies, unpacks and exports: ~20 GiB) until the page cache holding the
   * datasets is evicted and later cases read them from disk. On a disk, kept for exit.
   */
  async afterCase(): Promise<void> {
    if (!this.tmpfs) return;
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(entries.map((e) => rm(path.join(this.dir, e), { recursive: true, force: true })));
  }

  /** Deletes everything the runs wrote; called once at exit. */
  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
