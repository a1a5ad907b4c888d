/**
 * Applying one layer tar into a graph-driver directory as dockerd does (formats.md 10.5, 10.11),
 * in one pass that also records tar-split (section 11) and hashes the diff_id:
 *
 *   tar chunks ─ sha256 (diff_id) ─ SplitFeed (one parse: entries, and tar-split.json.gz lines) ─ apply entries
 *
 * Each chunk is parsed synchronously; file bodies are written straight from it, and only entries
 * on the general path (something already at the path, an unknown parent, devices) wait on a
 * promise. overlay2's `size` is counted as entries are made (hard links once), not measured by
 * a walk afterwards, unless the layer replaced something it made.
 *
 * overlay2 ('overlay' mode, an empty `diff/` per layer): a whiteout `d/.wh.x` becomes a character
 * device 0/0 at `d/x` owned as the tar header says, an opaque marker `d/.wh..wh..opq` becomes the
 * xattr `trusted.overlay.opaque=y` on `d`; nothing of the lower layers is touched.
 * vfs ('naive' mode, a full copy of the parent): whiteouts delete from the copy, an opaque
 * marker deletes every child this layer did not write.
 *
 * Confinement is extract.ts's: names cleaned (absolute and `..` refused), every path resolved
 * inside the directory with lstat (safe-path.ts), entries never followed, files created with
 * O_EXCL|O_NOFOLLOW, hard links only to something inside. Without root, ownership, device nodes,
 * whiteout devices and trusted.* xattrs cannot be made: they are then kept in tar-split only
 * (the layer still rebuilds byte-exact) and counted in `unprivileged`.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync,
  readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeSync,
} from 'node:fs';
import { promisify } from 'node:util';
import { createDigester, type Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import { limits as configuredLimits } from '../../io/limits.js';
import { recycleChunk } from '../../io/file-stream.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import { DEFAULT_MAX_UNPACKED_BYTES, DEFAULT_MAX_UNPACKED_ENTRIES } from '../../layer/extract.js';
import { cleanEntryName, parentOf, resolveInRoot, type ProbeResult } from '../../layer/safe-path.js';
import { fastCleanName } from '../../layer/union.js';
import { classifyEntry, WHITEOUT_PREFIX, type EntryRole } from '../../layer/whiteout.js';
import type { TarHeader } from '../../tar/header.js';
import { SplitFeed, TarSplitLines } from '../../tar/split.js';
import { SplitThread } from './split-worker.js';
import { TarSplitWriter } from './tar-split-writer.js';
import { setXattrs, xattrTool, type XattrWrite } from './xattr.js';

const run = promisify(execFile);

export type ApplyMode = 'overlay' | 'naive';

/** Caps on what one load applies (all its new layers together), against decompression bombs. */
export interface LoadLimits {
  /** Uncompressed layer tar bytes. */
  readonly maxBytes?: number;
  /** Tar members. */
  readonly maxEntries?: number;
}

/** The same defaults as `berth unpack`: 64 GiB and 4 000 000 entries. */
export const DEFAULT_LOAD_LIMITS = { maxBytes: DEFAULT_MAX_UNPACKED_BYTES, maxEntries: DEFAULT_MAX_UNPACKED_ENTRIES } as const;

let loadLimits: LoadLimits = {};

/** Limits for loads that do not give their own (unset fields: the configured limits, io/limits.ts; DEFAULT_LOAD_LIMITS unless changed). */
export function setStoreLoadLimits(l: LoadLimits): void {
  loadLimits = { ...l };
}

/** Running totals of one load, over every layer it applies; BERTH_LIMIT past a cap. */
export class LoadBudget {
  bytes = 0;
  entries = 0;
  readonly maxBytes: number;
  readonly maxEntries: number;

  constructor(limits: LoadLimits = loadLimits) {
    this.maxBytes = limits.maxBytes ?? configuredLimits().maxBytes;
    this.maxEntries = limits.maxEntries ?? configuredLimits().maxEntries;
  }

  addBytes(n: number, what: string): void {
    this.bytes += n;
    if (this.bytes > this.maxBytes) {
      throw new BerthError('BERTH_LIMIT', `${what}: more than ${this.maxBytes} uncompressed bytes in all layers of this load (the load limit)`, {
        subject: what, want: this.maxBytes, got: this.bytes,
      });
    }
  }

  addEntry(what: string): void {
    if (++this.entries > this.maxEntries) {
      throw new BerthError('BERTH_LIMIT', `${what}: more than ${this.maxEntries} entries in all layers of this load (the load limit)`, {
        subject: what, want: this.maxEntries, got: this.entries,
      });
    }
  }
}

export interface ApplyLayerOptions extends IoOptions {
  readonly mode: ApplyMode;
  /** Where tar-split.json.gz goes (created; must not exist). */
  readonly tarSplitFile: string;
  /** The diff_id the tar must hash to (BERTH_DIGEST_MISMATCH otherwise). */
  readonly diffId?: Digest;
  /**
   * The tar is a stream that fails on its last read unless its bytes hash to this digest (a
   * verified uncompressed blob): it is then not hashed again, and this is the result's diffId.
   */
  readonly verifiedDigest?: Digest;
  /** Names the layer in errors. */
  readonly what: string;
  /** Act as root (default: whether the process is root). */
  readonly privileged?: boolean;
  /** Shared by the layers of one load (default: a budget for this layer alone, with the set limits). */
  readonly budget?: LoadBudget;
  /**
   * Record tar-split on a worker thread (split-worker.ts) while this thread applies: worth it
   * for a layer of more than a few MiB (a worker costs a few tens of milliseconds to start).
   * A SplitThread shared by the layers of a load, or `true` for a thread of this layer's own.
   */
  readonly recordInWorker?: SplitThread | true;
}

export interface ApplyLayerResult {
  readonly diffId: Digest;
  /** The layerdb `size`: overlay2's rule (lstat sizes in diff/, hard links once) or vfs's (tar header sizes). */
  readonly size: number;
  readonly tarBytes: number;
  readonly entries: number;
  /** What could not be materialised without root (kept in tar-split only). */
  readonly unprivileged: UnprivilegedCounts;
}

/** Counts of what an unprivileged apply could not put on disk. */
export interface UnprivilegedCounts {
  whiteouts: number;
  opaque: number;
  devices: number;
  owners: number;
  xattrs: number;
  /** Files and directories whose owner lacked read/write(/search) in the header's mode. */
  modes: number;
}

export function emptyUnprivileged(): UnprivilegedCounts {
  return { whiteouts: 0, opaque: 0, devices: 0, owners: 0, xattrs: 0, modes: 0 };
}

/** `3 whiteouts, the owners of 10 entries`; empty when nothing was skipped. */
export function describeUnprivileged(s: UnprivilegedCounts): string[] {
  const out: string[] = [];
  const n = (k: number, one: string, many: string) => `${k} ${k === 1 ? one : many}`;
  if (s.whiteouts > 0) out.push(`${n(s.whiteouts, 'whiteout', 'whiteouts')} (overlay2 stores them as 0/0 device nodes)`);
  if (s.opaque > 0) out.push(`${n(s.opaque, 'opaque directory', 'opaque directories')} (xattr trusted.overlay.opaque)`);
  if (s.devices > 0) out.push(n(s.devices, 'device node or FIFO', 'device nodes or FIFOs'));
  if (s.owners > 0) out.push(`the owners of ${n(s.owners, 'entry', 'entries')}`);
  if (s.xattrs > 0) out.push(`the extended attributes of ${n(s.xattrs, 'entry', 'entries')}`);
  if (s.modes > 0) out.push(`the exact permissions of ${n(s.modes, 'entry', 'entries')} (their owner keeps read and write, so the store can read and remove them)`);
  return out;
}

interface DirMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Applies one uncompressed layer tar into `dir` (an existing directory). Each chunk is handed
 * back to the file read it came from (recycleChunk) once applied: the stages `tar` passed
 * through must not read a chunk after yielding it (none of the store's do).
 */
export async function applyLayer(tar: ByteStream, dir: string, opts: ApplyLayerOptions): Promise<ApplyLayerResult> {
  const a = new LayerApplier(dir, opts);
  const digester = opts.verifiedDigest === undefined ? createDigester('sha256') : undefined;
  const budget = opts.budget ?? new LoadBudget();
  const signal = opts.signal;
  let tarBytes = 0;
  const maxEntries = configuredLimits().maxStreamEntries;
  const maxPathBytes = configuredLimits().maxPathBytes;
  const own = opts.recordInWorker === true ? new SplitThread() : undefined;
  const thread = own ?? (opts.recordInWorker === true ? undefined : opts.recordInWorker);
  const recorder = thread?.start({ file: opts.tarSplitFile, maxEntries, maxPathBytes }, opts.what);
  const ts = recorder === undefined ? new TarSplitWriter(opts.tarSplitFile) : undefined;
  // The entry errors are named after, kept as is: the label is built only for an error.
  let index = 0;
  let name = '';
  const wrap = (err: unknown): never => {
    throw withContext(err, `${opts.what} entry ${index} ${JSON.stringify(name)}`);
  };
  const lines = new TarSplitLines();
  // Entries are applied as each chunk is parsed: bodies are written straight from the chunks, and
  // only entries on the general path (lstat walk, removal, device nodes) wait on a promise.
  const feed = new SplitFeed({
    entry: (h, i) => {
      budget.addEntry(opts.what);
      index = i;
      name = h.name;
      try {
        return a.applyEntry(h)?.catch(wrap);
      } catch (err) {
        return wrap(err);
      }
    },
    data: (bytes) => {
      try {
        a.write(bytes);
      } catch (err) {
        wrap(err);
      }
    },
    end: () => {
      try {
        a.endFile();
      } catch (err) {
        wrap(err);
      }
    },
  }, { ...(ts !== undefined ? { lines, onLines: (b: Buffer) => ts.write(b, () => lines.release(b)) } : {}), maxEntries, maxPathBytes });
  try {
    try {
      for await (const chunk of tar) {
        if (signal?.aborted === true) throw new BerthError('BERTH_ABORTED', 'reading tar: aborted', { cause: signal.reason });
        budget.addBytes(chunk.length, opts.what);
        tarBytes += chunk.length;
        digester?.update(chunk);
        const room = recorder?.push(chunk);
        if (room !== undefined) await room;
        const wait = feed.feed(chunk);
        if (wait !== undefined) await wait;
        if (ts !== undefined) await ts.drained();
        // all of it is on disk or copied (file bodies by writeSync, headers and lines copied, the
        // ring copied): a file read may reuse its memory
        recycleChunk(chunk);
      }
      feed.finish();
    } finally {
      a.closeOpenFile();
    }
    // (A self-verifying stream proves its digest on its last read, which the loop above made.)
    const got = digester === undefined ? opts.verifiedDigest! : digester.digest();
    if (opts.diffId !== undefined && got !== opts.diffId) {
      throw new BerthError('BERTH_DIGEST_MISMATCH', `${opts.what}: the uncompressed layer hashes to ${got}, but the config's diff_id is ${opts.diffId}`, {
        subject: opts.what, want: opts.diffId, got,
      });
    }
    await (recorder ?? ts!).end();
    await a.finish();
    return { diffId: got, size: opts.mode === 'overlay' ? a.overlaySize() : a.headerBytes, tarBytes, entries: a.entries, unprivileged: a.unprivilegedSummary() };
  } catch (err) {
    void ts?.destroy();
    await recorder?.destroy();
    throw err;
  } finally {
    await own?.close();
  }
}

/** overlay2's `size`: lstat sizes of every non-directory under `dir`, each hard-linked inode once. */
export function overlaySize(dir: string): number {
  // synchronous calls: a thread-pool round trip per file cost more than the lstat itself
  let total = 0;
  const seen = new Set<string>();
  const walk = (d: string): void => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = `${d}/${ent.name}`;
      if (ent.isDirectory()) {
        walk(p);
        continue;
      }
      const st = lstatSync(p);
      if (st.isDirectory()) {
        walk(p);
        continue;
      }
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += st.size;
    }
  };
  walk(dir);
  return total;
}

const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Makes nodes from groups of five arguments: type (p, c or b), octal mode, path, major, minor. */
const NODES_SCRIPT = 'while [ $# -gt 0 ]; do if [ "$1" = p ]; then mkfifo -m "$2" -- "$3" || exit 1; else mknod -m "$2" -- "$3" "$1" "$4" "$5" || exit 1; fi; shift 5; done';

const LAYER_TYPES = new Set(['file', 'directory', 'symlink', 'link', 'char', 'block', 'fifo']);

/**
 * Speed, as in layer/extract.ts: per-entry calls are synchronous (a thread-pool round trip costs
 * more than the call on a small file), and directories this applier made or lstat-checked are
 * remembered as safe, so an entry whose parent is known is created directly with O_EXCL and
 * only an existing path takes the general route (lstat each component, remove, create).
 * Removing a directory forgets every safe directory: nothing is trusted past a change made here.
 */
class LayerApplier {
  entries = 0;
  /** Sum of the tar headers' sizes (vfs's `size`). */
  headerBytes = 0;
  private readonly privileged: boolean;
  private readonly uid = process.getuid?.();
  private readonly gid = process.getgid?.();
  private readonly dirs = new Map<string, DirMeta>();
  private readonly touched = new Set<string>();
  /** Root-relative directories that are real directories all the way down (made or checked here). */
  private readonly safeDirs = new Set<string>();
  private readonly xattrs: XattrWrite[] = [];
  private readonly whiteouts: Array<{ rel: string; uid: number; gid: number }> = [];
  /** Device nodes and FIFOs to make (by one shell per batch, not a process each), with their entries. */
  private nodes: Array<{ rel: string; h: TarHeader }> = [];
  private readonly skipped = emptyUnprivileged();
  /**
   * New entries are owned by this process's effective uid and gid as created: overlay mode (every
   * directory under the root is made here 0700/0755, none setgid before finish) under a root that
   * is not setgid (mkdir would pass the bit and the root's group on). chown is then skipped when
   * the header names those ids (most layers: 0/0 loaded as root).
   */
  private readonly createdAsSelf: boolean;
  private readonly euid = process.geteuid?.();
  private readonly egid = process.getegid?.();
  /** The process umask: a file created with a mode none of whose bits it clears needs no fchmod. */
  private readonly umask: number;
  /** The file whose body is being written (-1: none), its header and the mode it was created with. */
  private out = -1;
  private outHeader: TarHeader | undefined;
  private outMode = 0;
  /**
   * overlay2's `size` as the entries are made: the sum of the sizes of the non-directories this
   * layer put into its empty directory, each when created (a hard link adds none: its target is
   * one of them). Removing or replacing anything makes it unknown (counting false): the
   * directory is then measured.
   */
  private counting: boolean;
  private sized = 0;

  constructor(private readonly root: string, private readonly opts: ApplyLayerOptions) {
    this.privileged = opts.privileged ?? process.getuid?.() === 0;
    this.createdAsSelf = opts.mode === 'overlay' && (lstatSync(root).mode & 0o2000) === 0;
    // umask() with no argument reads it (set and restored in one call); a process-wide constant here.
    this.umask = process.umask();
    // Counting starts from an empty directory (overlay2's diff/ is new); anything else is measured.
    this.counting = opts.mode === 'overlay' && readdirSync(root).length === 0;
  }

  /** overlay2's `size` of the directory: counted while applying, or measured when that was lost. */
  overlaySize(): number {
    return this.counting ? this.sized : overlaySize(this.root);
  }

  /** A new non-directory (a new inode) of `size` bytes. */
  private sizedNew(size: number): void {
    this.sized += size;
  }

  /** True when chown of a new entry to uid:gid would change nothing. */
  private ownedAsCreated(uid: number, gid: number): boolean {
    return this.createdAsSelf && uid === this.euid && gid === this.egid;
  }

  private host(rel: string): string {
    // rel is always clean (no empty, `.` or `..` components), so joining is concatenation.
    if (rel === '') return this.root;
    return this.root === '/' ? `/${rel}` : `${this.root}/${rel}`;
  }

  private readonly probe = (rel: string): ProbeResult => {
    const p = this.host(rel);
    try {
      const s = lstatSync(p);
      if (s.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(p) };
      return s.isDirectory() ? { kind: 'directory' } : { kind: 'other' };
    } catch (err) {
      if (isMissing(err)) return { kind: 'absent' };
      throw err;
    }
  };

  private isSafeDir(rel: string): boolean {
    return rel === '' || this.safeDirs.has(rel);
  }

  /** Removes whatever is at `rel` (rm does not follow symlinks); a directory makes every safe directory suspect. */
  private remove(rel: string, kind: ProbeResult['kind']): void {
    this.counting = false;
    if (kind === 'directory') this.safeDirs.clear();
    else this.safeDirs.delete(rel);
    rmSync(this.host(rel), { recursive: true, force: true });
  }

  /** A missing (or non-directory) parent becomes a directory 0755, as dockerd's MkdirAll makes it. */
  private readonly repair = (rel: string, found: ProbeResult): void => {
    if (found.kind !== 'absent') this.remove(rel, found.kind);
    mkdirSync(this.host(rel), 0o755);
    this.touch(rel);
  };

  private touch(rel: string): void {
    // only naive mode's whiteouts ask what this layer wrote (overlay2 never deletes lower content)
    if (this.opts.mode !== 'naive') return;
    let p = rel;
    while (p !== '' && !this.touched.has(p)) {
      this.touched.add(p);
      p = parentOf(p);
    }
  }

  unprivilegedSummary(): UnprivilegedCounts {
    return { ...this.skipped };
  }

  /**
   * Applies one entry: undefined when done synchronously, else a promise (the general path). A
   * regular file is left open for its body (write, then endFile).
   */
  applyEntry(h: TarHeader): Promise<void> | undefined {
    this.entries++;
    if (h.type === 'g') return undefined;
    if (h.type === 'file') this.headerBytes += h.size;
    const clean = fastCleanName(h.name) ?? cleanEntryName(h.name);
    const role = clean.includes(WHITEOUT_PREFIX) ? classifyEntry(clean) : undefined;
    if (role?.kind === 'meta') return undefined;
    if (role?.kind === 'opaque' || role?.kind === 'whiteout') return this.applyWhiteout(role, h);
    if (clean === '') return undefined; // the layer directory itself keeps the driver's metadata
    if (!LAYER_TYPES.has(h.type)) {
      throw new BerthError('BERTH_UNSUPPORTED', `entry type ${JSON.stringify(h.typeflag)} is not supported in a layer`, { got: h.typeflag });
    }
    // Fast path: the parent is a known real directory and nothing is at the entry's path yet.
    if (h.type !== 'link' && this.isSafeDir(parentOf(clean)) && this.createNew(clean, h)) return undefined;
    return this.applyGeneral(clean, h);
  }

  private async applyWhiteout(role: Extract<EntryRole, { kind: 'opaque' | 'whiteout' }>, h: TarHeader): Promise<void> {
    if (role.kind === 'opaque') {
      const r = await resolveInRoot(role.dir, this.probe, { followFinal: true, repair: this.repair });
      if (r.last.kind !== 'directory') this.repair(r.path, r.last);
      this.touch(r.path);
      if (this.opts.mode === 'naive') {
        this.hideChildren(r.path);
      } else if (this.privileged) {
        this.xattrs.push({ path: r.path === '' ? '.' : r.path, name: 'trusted.overlay.opaque', value: new Uint8Array([0x79]) });
      } else {
        this.skipped.opaque++;
      }
      return;
    }
    const d = await resolveInRoot(role.dir, this.probe, { followFinal: true, ...(this.opts.mode === 'overlay' ? { repair: this.repair } : {}) });
    if (this.opts.mode === 'overlay') {
      if (d.last.kind !== 'directory') this.repair(d.path, d.last);
      this.touch(d.path);
      if (this.privileged) this.whiteouts.push({ rel: d.path === '' ? role.name : `${d.path}/${role.name}`, uid: h.uid, gid: h.gid });
      else this.skipped.whiteouts++;
      return;
    }
    if (d.missingParent || d.last.kind !== 'directory') return;
    const target = d.path === '' ? role.name : `${d.path}/${role.name}`;
    const t = this.probe(target);
    if (t.kind !== 'absent') this.hide(target, t);
  }

  /** An entry whose parent is not known safe or whose path is taken: resolve, remove what is there, create. */
  private async applyGeneral(clean: string, h: TarHeader): Promise<void> {
    const r = await resolveInRoot(clean, this.probe, { followFinal: false, repair: this.repair });
    const rel = r.path;
    const host = this.host(rel);
    this.safeDirs.add(parentOf(rel)); // every component before the last is a real directory now
    this.touch(rel);
    if (h.type === 'directory') {
      if (r.last.kind !== 'directory') {
        if (r.last.kind !== 'absent') this.remove(rel, r.last.kind);
        mkdirSync(host, 0o700);
      }
      this.safeDirs.add(rel);
      this.dirs.set(rel, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
      this.queueXattrs(rel, h);
      return;
    }
    let linkTarget: string | undefined;
    if (h.type === 'link') {
      if (this.nodes.length > 0) await this.makeNodes(); // the target may be one of them
      const t = await resolveInRoot(cleanEntryName(h.linkname, 'hard link target'), this.probe, { followFinal: false });
      if (t.missingParent || t.last.kind === 'absent') {
        throw new BerthError('BERTH_INVALID_LAYER', `hard link target ${JSON.stringify(h.linkname)} is not in this layer`, { subject: h.linkname });
      }
      if (t.last.kind === 'directory') throw new BerthError('BERTH_INVALID_LAYER', `hard link target ${JSON.stringify(h.linkname)} is a directory`, { subject: h.linkname });
      linkTarget = this.host(t.path);
      if (t.path === rel) return;
    }
    if (r.last.kind === 'directory') {
      this.remove(rel, 'directory');
      this.dirs.delete(rel);
    } else if (r.last.kind !== 'absent') {
      this.counting = false;
      this.safeDirs.delete(rel);
      unlinkSync(host);
    }
    switch (h.type) {
      case 'file':
        this.openFile(host, h);
        this.queueXattrs(rel, h);
        break;
      case 'link':
        linkSync(linkTarget!, host);
        break;
      case 'symlink':
        symlinkSync(h.linkname, host);
        this.sizedNew(Buffer.byteLength(h.linkname));
        this.symlinkMeta(host, h);
        this.queueXattrs(rel, h);
        break;
      default:
        if (!this.privileged) {
          this.skipped.devices++;
          return;
        }
        this.nodes.push({ rel, h });
        this.queueXattrs(rel, h);
    }
  }

  /**
   * Creates a file, directory or symlink at `clean` (whose parent is a safe directory) when
   * nothing is there: O_EXCL semantics, so an existing path fails with EEXIST and false is
   * returned with nothing changed (the general route then looks at what is there).
   */
  private createNew(clean: string, h: TarHeader): boolean {
    const host = this.host(clean);
    let fd = -1;
    const mode = h.type === 'file' ? this.createMode(h) : 0;
    try {
      if (h.type === 'file') fd = openSync(host, NEW_FILE, mode);
      else if (h.type === 'directory') mkdirSync(host, 0o700);
      else if (h.type === 'symlink') symlinkSync(h.linkname, host);
      else return false;
    } catch (err) {
      if ((err as { code?: string } | null)?.code === 'EEXIST') return false;
      throw err;
    }
    this.touch(clean);
    if (h.type === 'file') {
      this.takeFile(fd, mode, h);
    } else if (h.type === 'directory') {
      this.safeDirs.add(clean);
      this.dirs.set(clean, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
    } else {
      this.sizedNew(Buffer.byteLength(h.linkname));
      this.symlinkMeta(host, h);
    }
    this.queueXattrs(clean, h);
    return true;
  }

  private symlinkMeta(host: string, h: TarHeader): void {
    if (this.privileged) {
      if (!this.ownedAsCreated(h.uid, h.gid)) lchownSync(host, h.uid, h.gid);
    } else if (h.uid !== this.uid || h.gid !== this.gid) this.skipped.owners++;
    lutimesSync(host, h.mtime, h.mtime);
  }

  /**
   * The mode to create a file with: its final permission bits when the umask clears none of them
   * and they are what diskMode keeps (then endFile skips fchmod); special bits only by fchmod
   * after fchown (chown clears them).
   */
  private createMode(h: TarHeader): number {
    const want = h.mode & 0o7777;
    return (want & ~0o777) === 0 && (want & this.umask) === 0 && (this.privileged || (want & 0o600) === 0o600) ? want : 0o600;
  }

  private openFile(host: string, h: TarHeader): void {
    const mode = this.createMode(h);
    this.takeFile(openSync(host, NEW_FILE, mode), mode, h);
  }

  /** Takes a new file's descriptor: its body is written as it streams (write), then endFile. */
  private takeFile(fd: number, mode: number, h: TarHeader): void {
    this.out = fd;
    this.outHeader = h;
    this.outMode = mode;
    this.sizedNew(h.size);
  }

  /** The next bytes of the open file's body (nothing is open for entries that are not new files). */
  write(bytes: Uint8Array): void {
    const fd = this.out;
    if (fd < 0) return;
    let at = 0;
    while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
  }

  /** Owner, mode and times of the file written, on its descriptor; closes it. */
  endFile(): void {
    const fd = this.out;
    if (fd < 0) return;
    const h = this.outHeader!;
    this.out = -1;
    try {
      if (this.privileged) {
        if (!this.ownedAsCreated(h.uid, h.gid)) fchownSync(fd, h.uid, h.gid);
      } else if (h.uid !== this.uid || h.gid !== this.gid) this.skipped.owners++;
      const mode = this.diskMode(h.mode, 0o600);
      if (mode !== this.outMode) fchmodSync(fd, mode);
      futimesSync(fd, h.mtime, h.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Closes a file left open by a failure. */
  closeOpenFile(): void {
    if (this.out < 0) return;
    const fd = this.out;
    this.out = -1;
    closeSync(fd);
  }

  /**
   * Makes the pending device nodes and FIFOs, then owner, mode and times. A node whose path a
   * later entry took (or whose directory is no longer a real one all the way down) is not made:
   * made at its entry, it would have been replaced.
   */
  private async makeNodes(): Promise<void> {
    const todo = this.nodes.filter((n) => this.realDir(parentOf(n.rel)) && this.probe(n.rel).kind === 'absent');
    this.nodes = [];
    for (let i = 0; i < todo.length; i += 200) {
      const args: string[] = [];
      for (const { rel, h } of todo.slice(i, i + 200)) {
        args.push(h.type === 'fifo' ? 'p' : h.type === 'char' ? 'c' : 'b', (h.mode & 0o7777).toString(8).padStart(4, '0'), this.host(rel), String(h.devmajor), String(h.devminor));
      }
      await run('/bin/sh', ['-c', NODES_SCRIPT, 'sh', ...args]);
    }
    for (const { rel, h } of todo) {
      const host = this.host(rel);
      const st = lstatSync(host);
      if (st.isSymbolicLink() || st.isDirectory()) throw new BerthError('BERTH_IO', `creating ${h.type} node ${rel}: something else appeared at its path`);
      lchownSync(host, h.uid, h.gid);
      chmodSync(host, h.mode & 0o7777);
      lutimesSync(host, h.mtime, h.mtime);
    }
  }

  private queueXattrs(rel: string, h: TarHeader): void {
    let any = false;
    for (const k in h.xattrs) {
      if (Object.hasOwn(h.xattrs, k)) {
        any = true;
        break;
      }
    }
    if (!any) return;
    const names = Object.keys(h.xattrs);
    // Without root only user.* attributes can be set.
    const settable = this.privileged ? names : names.filter((n) => n.startsWith('user.'));
    if (settable.length < names.length) this.skipped.xattrs++;
    for (const n of settable) this.xattrs.push({ path: rel, name: n, value: h.xattrs[n]! });
  }

  /** naive mode: removes lower content at `rel` (what this layer wrote stays). */
  private hide(rel: string, found: ProbeResult): void {
    if (!this.touched.has(rel)) {
      this.remove(rel, found.kind);
      return;
    }
    if (found.kind === 'directory') this.hideChildren(rel);
  }

  private hideChildren(rel: string): void {
    for (const name of readdirSync(this.host(rel))) {
      const child = rel === '' ? name : `${rel}/${name}`;
      this.hide(child, this.probe(child));
    }
  }

  /** True when every component of `rel` but the last is a real directory and the last exists. */
  private realPath(rel: string): boolean {
    const parts = rel === '' || rel === '.' ? [] : rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      const k = this.probe(parts.slice(0, i + 1).join('/')).kind;
      if (k === 'absent') return false;
      if (i < parts.length - 1 && k !== 'directory') return false;
    }
    return true;
  }

  /** True when every component of `rel` is a real directory (no symlink anywhere). */
  private realDir(rel: string): boolean {
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      if (this.probe(parts.slice(0, i + 1).join('/')).kind !== 'directory') return false;
    }
    return true;
  }

  /** Whiteout devices, xattrs, then directory metadata (deepest first, after their children changed). */
  async finish(): Promise<void> {
    if (this.nodes.length > 0) await this.makeNodes();
    if (this.whiteouts.length > 0) {
      const todo: Array<{ rel: string; uid: number; gid: number }> = [];
      for (const w of this.whiteouts) {
        // Its directory must still be a real one all the way down: a later entry of this layer may
        // have replaced it (or an ancestor) with a symlink, and rm/mknod would follow that out.
        if (!this.realDir(parentOf(w.rel))) continue;
        const found = this.probe(w.rel);
        if (found.kind !== 'absent') {
          this.counting = false;
          rmSync(this.host(w.rel), { recursive: true, force: true });
        }
        todo.push(w);
      }
      // One shell for a whole batch of mknod calls.
      for (let i = 0; i < todo.length; i += 200) {
        const batch = todo.slice(i, i + 200);
        await run('/bin/sh', ['-c', 'for f; do mknod -m 000 -- "$f" c 0 0 || exit 1; done', 'sh', ...batch.map((w) => this.host(w.rel))]);
      }
      for (const w of todo) {
        const st = lstatSync(this.host(w.rel));
        if (!st.isCharacterDevice()) throw new BerthError('BERTH_IO', `whiteout ${w.rel}: something else appeared at its path`);
        lchownSync(this.host(w.rel), w.uid, w.gid);
      }
    }
    if (this.xattrs.length > 0) {
      const ok: XattrWrite[] = [];
      for (const x of this.xattrs) if (this.realPath(String(x.path))) ok.push(x);
      if (xattrTool() === undefined) this.skipped.xattrs += ok.length;
      else await setXattrs(this.root, ok);
    }
    const real = new Map<string, boolean>();
    const isRealDir = (rel: string): boolean => {
      if (rel === '') return true;
      const known = real.get(rel);
      if (known !== undefined) return known;
      let ok = isRealDir(parentOf(rel));
      if (ok) ok = this.probe(rel).kind === 'directory';
      real.set(rel, ok);
      return ok;
    };
    const paths = [...this.dirs.keys()].sort((a, b) => b.length - a.length);
    for (const rel of paths) {
      if (!isRealDir(rel)) continue;
      const m = this.dirs.get(rel)!;
      const host = this.host(rel);
      if (this.privileged) {
        if (!this.ownedAsCreated(m.uid, m.gid)) lchownSync(host, m.uid, m.gid);
      } else if (m.uid !== this.uid || m.gid !== this.gid) this.skipped.owners++;
      chmodSync(host, this.diskMode(m.mode, 0o700));
      lutimesSync(host, m.mtime, m.mtime);
    }
  }

  /**
   * The mode put on disk: the header's, except that without root the owner keeps `need`
   * (read/write, and search for directories). Otherwise a layer with a 000 or 0555 directory
   * could not be copied (vfs), measured, read back (fsck, save) or removed (rmi, gc, a failed
   * load's staging) by the user who loaded it. The header's mode stays in tar-split.
   */
  private diskMode(mode: number, need: number): number {
    const m = mode & 0o7777;
    if (this.privileged || (m & need) === need) return m;
    this.skipped.modes++;
    return m | need;
  }
}
