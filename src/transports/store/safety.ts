/**
 * Who may write a data root, and when. Three rules (issue 6):
 *
 * - one writer at a time: every write holds the directory lock of src/io/atomic-file.ts on the
 *   root (`<root>/.berth.lock`, a pid file; a crashed holder's lock is taken over);
 * - never under a live dockerd: dockerd caches the store in memory and would not see (or would
 *   overwrite) what berth writes. A root is live when a process holds a lock on one of dockerd's
 *   bolt databases in it (/proc/locks), when a running `dockerd` names it as its data root
 *   (/proc/PID/cmdline), or, for /var/lib/docker, when /var/run/docker.pid holds a live pid or
 *   /var/run/docker.sock accepts a connection;
 * - roots berth did not create are read-only unless the caller allows writing: berth marks the
 *   roots it creates with `.berth-root` (a file dockerd never looks at).
 */
import { connect } from 'node:net';
import { chmod, mkdir, readdir, readFile, readlink, realpath, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../../core/errors.js';
import { withLock } from '../../io/atomic-file.js';
import type { StoreDriver } from './overlay2.js';

/** The marker berth writes into the roots it creates. */
export const ROOT_MARKER = '.berth-root';

/** How long a writer waits for another writer (a load can take minutes). */
export const STORE_LOCK_TIMEOUT_MS = 10 * 60_000;

/** Files dockerd keeps open with an exclusive flock while it runs (bolt databases). */
const DOCKERD_LOCKED_FILES = [
  'network/files/local-kv.db',
  'volumes/metadata.db',
  'containerd/daemon/io.containerd.metadata.v1.bolt/meta.db',
  'buildkit/cache.db',
  'buildkit/metadata_v2.db',
  'buildkit/snapshots.db',
  'buildkit/containerdmeta.db',
];

export interface LiveDaemon {
  readonly pid: number | undefined;
  /** How it was found, for the message. */
  readonly evidence: string;
}

function major(dev: bigint): bigint {
  return ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
}

function minor(dev: bigint): bigint {
  return (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
}

/** A process holding a POSIX or flock lock on one of dockerd's databases in `root`. */
async function lockedDatabase(root: string): Promise<LiveDaemon | undefined> {
  const locks = await readFile('/proc/locks', 'utf8').catch(() => undefined);
  if (locks === undefined) return undefined;
  for (const rel of DOCKERD_LOCKED_FILES) {
    const st = await stat(path.join(root, rel), { bigint: true }).catch(() => undefined);
    if (st === undefined) continue;
    const key = `${major(st.dev).toString(16).padStart(2, '0')}:${minor(st.dev).toString(16).padStart(2, '0')}:${st.ino}`;
    for (const line of locks.split('\n')) {
      const f = line.trim().split(/\s+/);
      // `1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF` (a blocked waiter has "->" in field 2)
      const at = f[1] === '->' ? 1 : 0;
      if (f[5 + at] === key) return { pid: Number(f[4 + at]), evidence: `it holds a lock on ${rel}` };
    }
  }
  return undefined;
}

/** A running process called dockerd whose command line names `root` (or the default root). */
async function dockerdProcess(root: string): Promise<LiveDaemon | undefined> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  for (const pid of pids) {
    const cmd = await readFile(`/proc/${pid}/cmdline`).catch(() => undefined);
    if (cmd === undefined || cmd.length === 0) continue;
    const argv = cmd.toString('utf8').split('\0').filter((a) => a !== '');
    if (path.basename(argv[0] ?? '') !== 'dockerd') continue;
    let dataRoot = '/var/lib/docker';
    for (let i = 1; i < argv.length; i++) {
      const a = argv[i]!;
      const m = /^(?:--data-root|--graph|-g)(?:=(.*))?$/.exec(a);
      if (m) dataRoot = m[1] ?? argv[++i] ?? dataRoot;
    }
    if (!path.isAbsolute(dataRoot)) {
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '/');
      dataRoot = path.resolve(cwd, dataRoot);
    }
    const real = await realpath(dataRoot).catch(() => dataRoot);
    if (real === root) return { pid: Number(pid), evidence: `its command line names ${dataRoot} as --data-root` };
  }
  return undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

function socketAccepts(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** The system daemon's pid file and socket, for the default root. */
async function systemDaemon(root: string): Promise<LiveDaemon | undefined> {
  const def = await realpath('/var/lib/docker').catch(() => undefined);
  if (def === undefined || def !== root) return undefined;
  const pidText = await readFile('/var/run/docker.pid', 'utf8').catch(() => undefined);
  const pid = pidText === undefined ? NaN : Number(pidText.trim());
  if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) return { pid, evidence: '/var/run/docker.pid holds its live pid' };
  if (await socketAccepts('/var/run/docker.sock')) return { pid: undefined, evidence: '/var/run/docker.sock accepts connections' };
  return undefined;
}

/** The dockerd using `root` right now, if any. */
export async function liveDaemon(root: string): Promise<LiveDaemon | undefined> {
  const real = await realpath(root).catch(() => undefined);
  if (real === undefined) return undefined;
  return (await lockedDatabase(real)) ?? (await dockerdProcess(real)) ?? (await systemDaemon(real));
}

export interface WriteAccessOptions {
  /** Write to a root berth did not create (dockerd's own, or copied). Default false. */
  readonly allowWrite?: boolean;
}

export type RootState = 'absent' | 'empty' | 'berth' | 'foreign';

/** Whether `root` is missing, an empty directory, a root berth created, or someone else's. */
export async function rootState(root: string): Promise<RootState> {
  const st = await stat(root).catch(() => undefined);
  if (st === undefined) return 'absent';
  if (!st.isDirectory()) throw new BerthError('BERTH_EXISTS', `store ${root}: not a directory`, { subject: root });
  const names = (await readdir(root)).filter((n) => n !== '.berth.lock');
  if (names.length === 0) return 'empty';
  return names.includes(ROOT_MARKER) ? 'berth' : 'foreign';
}

/**
 * Throws unless berth may write `root` now: not used by a live dockerd (BERTH_IO), and created
 * by berth or explicitly allowed (BERTH_USAGE). A missing or empty root may be written (it is
 * created).
 */
export async function assertWritable(root: string, opts: WriteAccessOptions = {}): Promise<RootState> {
  const state = await rootState(root);
  if (state === 'foreign' && opts.allowWrite !== true) {
    throw new BerthError('BERTH_USAGE', `store ${root}: berth did not create this data root (no ${ROOT_MARKER}), so it is read-only; pass --allow-write to change it (stop its dockerd first)`, {
      subject: root,
    });
  }
  if (state !== 'absent') {
    const live = await liveDaemon(root);
    if (live !== undefined) {
      throw new BerthError('BERTH_IO', `store ${root}: a running dockerd${live.pid !== undefined ? ` (pid ${live.pid})` : ''} uses this data root (${live.evidence}); berth only reads it — stop dockerd to write`, {
        subject: root, got: live.pid,
      });
    }
  }
  return state;
}

/** The directories of an empty data root for `driver`, with dockerd's modes (formats.md 10.1). */
export async function createRoot(root: string, driver: StoreDriver): Promise<void> {
  const img = path.join(root, 'image', driver);
  const dirs: Array<[string, number]> = [
    [root, 0o710],
    [path.join(root, 'image'), 0o700],
    [img, 0o700],
    [path.join(img, 'imagedb'), 0o700],
    [path.join(img, 'imagedb/content'), 0o700],
    [path.join(img, 'imagedb/content/sha256'), 0o700],
    [path.join(img, 'imagedb/metadata'), 0o700],
    [path.join(img, 'imagedb/metadata/sha256'), 0o700],
    [path.join(img, 'layerdb'), 0o700],
    [path.join(img, 'layerdb/sha256'), 0o755],
    [path.join(img, 'layerdb/tmp'), 0o755],
    ...(driver === 'overlay2'
      ? [[path.join(root, 'overlay2'), 0o710], [path.join(root, 'overlay2/l'), 0o700]] as Array<[string, number]>
      : [[path.join(root, 'vfs'), 0o710], [path.join(root, 'vfs/dir'), 0o710]] as Array<[string, number]>),
  ];
  for (const [dir, mode] of dirs) {
    await mkdir(dir, { recursive: true });
    await chmod(dir, mode);
  }
  const repos = path.join(img, 'repositories.json');
  if ((await stat(repos).catch(() => undefined)) === undefined) await writeFile(repos, '{"Repositories":{}}', { mode: 0o600 });
  await writeFile(path.join(root, ROOT_MARKER), `${JSON.stringify({ createdBy: 'berth', driver, created: new Date().toISOString() })}\n`, { mode: 0o644 });
}

export interface StoreLock {
  /** Releases the lock (idempotent). */
  release(): Promise<void>;
}

/**
 * Takes the writer lock of `root` and keeps it until release(): the same lock withLock takes,
 * held across several calls (a destination holds it from open to close).
 */
export async function acquireStoreLock(root: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<StoreLock> {
  let unlock!: () => void;
  const held = new Promise<void>((r) => (unlock = r));
  let acquired!: () => void;
  const got = new Promise<void>((r) => (acquired = r));
  const done = withLock(root, async () => {
    acquired();
    await held;
  }, { timeoutMs: opts.timeoutMs ?? STORE_LOCK_TIMEOUT_MS, ...(opts.signal ? { signal: opts.signal } : {}) });
  await Promise.race([got, done]);
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      unlock();
      await done;
    },
  };
}

/** Runs `fn` holding the writer lock of `root`. */
export async function withStoreLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  return withLock(root, fn, { timeoutMs: STORE_LOCK_TIMEOUT_MS });
}

/**
 * Test failpoints: `BERTH_FAILPOINT=name` makes the process kill itself with SIGKILL when it
 * reaches the point of that name (the crash tests use it to stop a write at exact steps).
 */
export function failpoint(name: string): void {
  if (process.env.BERTH_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}
