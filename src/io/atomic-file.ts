/**
 * Crash-safe file writes and a directory lock. A reader sees either the old file or the complete
 * new one, never a prefix: data goes to a temp file in the same directory (same file system),
 * is fsynced, then renamed over the target, and the directory is fsynced so the rename survives.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdtemp, open, readdir, readFile, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, withContext } from '../core/errors.js';
import type { ByteStream } from './stream.js';

/** Temp names start with this prefix (ignored by .gitignore; safe to delete when no berth runs). */
export const TEMP_PREFIX = '.berth-tmp-';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644, before the umask). */
  readonly mode?: number;
  /** Skip fsync (tests, throwaway caches). Default true: data is on disk before the rename. */
  readonly fsync?: boolean;
}

function tempName(target: string): string {
  const base = path.basename(target).slice(0, 80);
  return path.join(path.dirname(target), `${TEMP_PREFIX}${base}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * Removes the temp files and directories an earlier, killed writer left beside `target`: the
 * `.berth-tmp-<name>-<pid>-…` siblings (as tempName and makeTempSibling make them) whose pid is
 * no longer alive. A live writer's temps (same or other pid) are never touched. Best effort:
 * errors are ignored. Note that a writer in another pid namespace looks dead from here.
 */
export async function removeStaleTemps(target: string): Promise<string[]> {
  const dir = path.dirname(path.resolve(target));
  const base = path.basename(path.resolve(target)).slice(0, 80);
  const head = `${TEMP_PREFIX}${base}-`;
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(head)) continue;
    const m = /^(\d+)-(?:[0-9a-f]{12}|[A-Za-z0-9]{6})$/.exec(name.slice(head.length));
    if (m === null || isAlive(Number(m[1]))) continue;
    await rm(path.join(dir, name), { recursive: true, force: true, maxRetries: 3 }).then(() => removed.push(name), () => undefined);
  }
  return removed;
}

/** Writes `data` to `file` atomically (temp in the same directory, fsync, rename). */
export async function writeFileAtomic(file: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): Promise<void> {
  await writeAtomic(file, opts, async (fh) => {
    await fh.writeFile(data);
    return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  });
}

/**
 * Writes a stream to `file` atomically and returns the byte count. Chunks are written one at a
 * time, so memory stays flat; if the stream fails, the target is left untouched.
 */
export async function writeStreamAtomic(file: string, src: ByteStream, opts: AtomicWriteOptions = {}): Promise<number> {
  return writeAtomic(file, opts, async (fh) => {
    let n = 0;
    for await (const chunk of src) {
      let at = 0;
      while (at < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, at, chunk.length - at);
        at += bytesWritten;
      }
      n += chunk.length;
    }
    return n;
  });
}

async function writeAtomic(file: string, opts: AtomicWriteOptions, fill: (fh: FileHandle) => Promise<number>): Promise<number> {
  await removeStaleTemps(file);
  const tmp = tempName(file);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx', opts.mode ?? 0o644);
    const n = await fill(fh);
    if (opts.fsync !== false) await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, file);
    if (opts.fsync !== false) await fsyncDir(path.dirname(file));
    return n;
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw withContext(err, `writing ${file}`);
  }
}

/** Fsyncs a directory so a rename or create in it is durable (a no-op where unsupported). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Creates an empty directory beside `target` (same parent, so a later rename over `target` is
 * atomic) and returns its path. The caller fills it, then renames it into place or removes it.
 * Its name carries this pid, so the next writer of `target` removes it if this process is killed.
 */
export async function makeTempSibling(target: string): Promise<string> {
  const base = path.basename(path.resolve(target)).slice(0, 80);
  try {
    await removeStaleTemps(target);
    return await mkdtemp(path.join(path.dirname(path.resolve(target)), `${TEMP_PREFIX}${base}-${process.pid}-`));
  } catch (err) {
    throw withContext(err, `creating a temp directory beside ${target}`);
  }
}

/** Name of the lock file withLock creates inside the locked directory. */
export const LOCK_FILE = '.berth.lock';

export interface LockOptions {
  /** How long to wait for another holder before failing (default 30 s). */
  readonly timeoutMs?: number;
  /** Poll interval while waiting (default 50 ms). */
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
}

/** Locks held by this process, removed on a synchronous process exit too. */
const held = new Map<string, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [file, token] of held) {
      try {
        if (readFileSync(file, 'utf8') === token) unlinkSync(file);
      } catch {
        // Already gone, or not ours any more.
      }
    }
  });
}

/**
 * Runs `fn` while holding an exclusive lock on `dir`: a lock file created with O_EXCL holding this
 * process's pid. A lock whose pid is no longer alive is stale and taken over. The lock is released
 * when `fn` settles, and on process exit; a crash leaves a stale lock the next caller takes over.
 * Not re-entrant: nesting withLock on the same directory in one process waits until timeout.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
  const file = path.join(dir, LOCK_FILE);
  const token = `${process.pid}\n${randomBytes(8).toString('hex')}\n`;
  await acquire(file, token, opts);
  held.set(file, token);
  installExitHook();
  try {
    return await fn();
  } finally {
    held.delete(file);
    await release(file, token);
  }
}

async function acquire(file: string, token: string, opts: LockOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const pollMs = opts.pollMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (opts.signal?.aborted) {
      throw new BerthError('BERTH_ABORTED', `locking ${path.dirname(file)}: aborted`, { subject: file, cause: opts.signal.reason });
    }
    if (await tryCreate(file, token)) return;
    const holder = await readHolder(file);
    if (holder !== undefined && holder.pid !== undefined && !isAlive(holder.pid)) {
      await takeOverStale(file, holder.text);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new BerthError('BERTH_IO', `locking ${path.dirname(file)}: held by pid ${holder?.pid ?? 'unknown'} (waited ${timeoutMs} ms)`, {
        subject: file, got: holder?.pid,
      });
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Creates the lock with its content already in it: the token is written to a temp file that is
 * then hard-linked to the lock's name (link fails with EEXIST when the lock exists). A writer
 * killed at any point so leaves either no lock or a complete one naming its pid, never an empty
 * lock that no one could prove stale.
 */
async function tryCreate(file: string, token: string): Promise<boolean> {
  const temp = path.join(path.dirname(file), `${TEMP_PREFIX}${process.pid}-lock-${randomBytes(6).toString('hex')}`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(temp, 'wx', 0o644);
    await fh.writeFile(token);
    await fh.sync();
  } catch (err) {
    await fh?.close();
    await unlink(temp).catch(() => undefined);
    throw withContext(err, `locking ${path.dirname(file)}`);
  }
  await fh.close();
  try {
    await link(temp, file);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'EEXIST') return false;
    throw withContext(err, `locking ${path.dirname(file)}`);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function readHolder(file: string): Promise<{ pid: number | undefined; text: string } | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw withContext(err, `locking ${path.dirname(file)}`);
  }
  const m = /^(\d+)\n/.exec(text);
  // A lock file still being written (empty) has no pid yet: treat it as held.
  return { pid: m ? Number(m[1]) : undefined, text };
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/**
 * Removes a stale lock without racing another taker: the lock is renamed away (only one renamer
 * wins) and the renamed file checked; if it turns out to be a fresh lock someone else just took,
 * it is put back with link() (which fails rather than overwrite a newer lock).
 */
async function takeOverStale(file: string, staleText: string): Promise<void> {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(file, aside);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return;
    throw withContext(err, `taking over a stale lock in ${path.dirname(file)}`);
  }
  try {
    const moved = await readFile(aside, 'utf8');
    if (moved !== staleText) await link(aside, file).catch(() => undefined);
  } finally {
    await rm(aside, { force: true });
  }
}

async function release(file: string, token: string): Promise<void> {
  try {
    if ((await readFile(file, 'utf8')) === token) await unlink(file);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw withContext(err, `unlocking ${path.dirname(file)}`);
  }
}
