/**
 * Secure extraction of a stack of layers into a directory, applied one after the other with the
 * union rules of formats.md 8.5 (whiteouts and opaque markers hide lower content only).
 *
 * Nothing outside the directory is ever created, changed or followed:
 * - names are cleaned; absolute names and `..` components are refused (BERTH_UNSAFE_PATH);
 * - every path is resolved component by component with lstat (safe-path.ts): a symlink met on
 *   the way is followed only as if the directory were `/` (an absolute target restarts at the
 *   directory, `..` stops there), so a write through `evil -> /` lands inside the directory;
 * - the entry itself is never followed: whatever is at its path is removed first (rm does not
 *   follow symlinks) and files are created with O_EXCL|O_NOFOLLOW;
 * - hard links must name something inside the directory (resolved the same way) that is not a
 *   directory; a link to a symlink links the symlink itself (Linux link(2));
 * - metadata is set on file descriptors (files) or with l* calls (symlinks, devices); directory
 *   modes and times are applied at the end, after checking again that no component of the
 *   path has become a symlink.
 * Running as root, ownership, setuid/setgid bits, device nodes and FIFOs are applied; otherwise
 * ownership is skipped, setuid/setgid are cleared, and devices and FIFOs are skipped with one
 * warning. Extended attributes (PAX SCHILY.xattr.*) are set at the end by one setfattr/python3
 * child, only where every parent is still a real directory; without root only user.* ones.
 * Limits on total uncompressed bytes and entries stop decompression bombs (BERTH_LIMIT), and
 * each layer's diff_id, when given, is checked as it streams (BERTH_DIGEST_MISMATCH).
 *
 * Speed: each layer's tar is parsed chunk by chunk (tar-feed.ts) and file bodies are written
 * straight from the decompressed chunks; per-entry file-system calls are synchronous (a
 * thread-pool round trip costs far more than the call itself on a small file); a file is created
 * with its final mode when the umask allows and is not chowned to the owner it already has, so a
 * typical file costs open, write, futimes, close; and directories this extractor created or checked are
 * remembered as safe, so an entry whose parent is known costs no lstat of its ancestors: it is
 * created directly with O_EXCL (mkdir, symlink), and only when something is already at its path
 * does the general code (lstat, remove, create) run. Removing a directory forgets every safe
 * directory, so nothing is ever trusted past a change this extractor made.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readlinkSync, symlinkSync,
  unlinkSync, writeSync,
} from 'node:fs';
import { chmod, lchown, lstat, lutimes, mkdir, readdir, realpath, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Digest } from '../core/digest.js';
import { BerthError, withContext } from '../core/errors.js';
import type { ByteStream, IoOptions, Opener } from '../io/stream.js';
import { DEFAULT_LIMITS, limits } from '../io/limits.js';
import { verifyStream } from '../io/verify.js';
import { setXattrs, xattrTool, type XattrWrite } from '../io/xattr.js';
import type { TarHeader } from '../tar/header.js';
import { cleanEntryName, parentOf, resolveInRoot, type PathProbe, type ProbeResult } from './safe-path.js';
import { fastCleanName } from './union.js';
import { TarFeed } from './tar-feed.js';
import { classifyEntry, WHITEOUT_PREFIX, type EntryRole } from './whiteout.js';

const run = promisify(execFile);

const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Default caps: 64 GiB of uncompressed layer bytes and 4 000 000 entries over all layers (limits() has those in force). */
export const DEFAULT_MAX_UNPACKED_BYTES = DEFAULT_LIMITS.maxBytes;
export const DEFAULT_MAX_UNPACKED_ENTRIES = DEFAULT_LIMITS.maxEntries;

export interface ExtractLimits {
  /** Total bytes of the uncompressed layer tars (all layers together). */
  readonly maxBytes?: number;
  /** Total tar members (all layers together). */
  readonly maxEntries?: number;
}

export interface ExtractLayer {
  /** Opens the layer's UNCOMPRESSED tar. */
  readonly open: Opener;
  /** When given, the uncompressed bytes must hash to it (the config's diff_id). */
  readonly diffId?: Digest;
  /** Names the layer in errors, e.g. `layer 2 sha256:ab12…`. */
  readonly what?: string;
}

export interface ExtractOptions extends IoOptions {
  /** Allow a directory that is not empty. */
  readonly force?: boolean;
  readonly limits?: ExtractLimits;
  /** Act as root: ownership, setuid/setgid, devices and FIFOs. Default: whether the process runs as root. */
  readonly privileged?: boolean;
  /** Called once per warning (the warnings are also returned). */
  readonly onWarning?: (message: string) => void;
}

export interface ExtractResult {
  readonly layers: number;
  readonly entries: number;
  /** Uncompressed tar bytes read. */
  readonly bytes: number;
  readonly warnings: readonly string[];
}

interface DirMeta {
  mode: number;
  uid: number | undefined;
  gid: number | undefined;
  mtime: number | undefined;
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Unpacks `layers` in order into `dir` (created when missing). */
export async function extractLayers(layers: readonly ExtractLayer[], dir: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  await mkdir(dir, { recursive: true }).catch((err: unknown) => {
    throw withContext(err, `unpacking into ${dir}`);
  });
  const root = await realpath(dir);
  const st = await lstat(root);
  if (!st.isDirectory()) throw new BerthError('BERTH_EXISTS', `unpacking into ${dir}: not a directory`, { subject: dir });
  if (opts.force !== true && (await readdir(root)).length > 0) {
    throw new BerthError('BERTH_EXISTS', `unpacking into ${dir}: directory is not empty (use force to unpack over its contents)`, { subject: dir });
  }
  // A new file's group is the parent's when the parent is setgid (or the mount says grpid); an
  // empty, non-setgid root of our group guarantees every directory below is ours (0700, our group).
  const plainParents = (st.mode & 0o2000) === 0 && st.gid === process.getegid?.() && (await readdir(root)).length === 0;
  const x = new Extractor(root, opts, plainParents);
  try {
    for (const [i, layer] of layers.entries()) await x.applyLayer(layer, layer.what ?? `layer ${i}`);
    await x.finish();
  } catch (err) {
    throw withContext(err, `unpacking into ${dir}`);
  }
  return { layers: layers.length, entries: x.entries, bytes: x.bytes, warnings: x.warnings };
}

class Extractor {
  entries = 0;
  bytes = 0;
  readonly warnings: string[] = [];
  private readonly privileged: boolean;
  private readonly maxBytes: number;
  private readonly maxEntries: number;
  private readonly dirs = new Map<string, DirMeta>();
  /** Paths created or replaced by the current layer, and their ancestors. */
  private touched = new Set<string>();
  /**
   * Until the layer's first whiteout, touched paths are only logged (an array push, no hashing):
   * most layers have no whiteout, and the set is built from the log when one comes.
   */
  private touchedLog: string[] | undefined = [];
  private skippedDevices = 0;
  private skippedXattrs = 0;
  private readonly pendingXattrs = new Map<string, Readonly<Record<string, Uint8Array>>>();
  private clearedSpecial = 0;
  /** The regular file whose body is being written (-1: none, the data is skipped). */
  private out = -1;
  private outHeader: TarHeader | undefined;

  /** Owner a new file or symlink gets by itself, when certain (-1 otherwise): fchown to it is skipped. */
  private readonly ownUid: number;
  private readonly ownGid: number;
  /** The process umask: a new file opened with a mode none of whose bits it clears needs no fchmod. */
  private readonly umask: number;

  constructor(private readonly root: string, private readonly opts: ExtractOptions, plainParents: boolean) {
    this.privileged = opts.privileged ?? process.getuid?.() === 0;
    this.ownUid = plainParents ? process.geteuid?.() ?? -1 : -1;
    this.ownGid = plainParents ? process.getegid?.() ?? -1 : -1;
    // umask() with no argument reads it (set and restored in one call); a process-wide constant here.
    this.umask = process.umask();
    this.maxBytes = opts.limits?.maxBytes ?? limits().maxBytes;
    this.maxEntries = opts.limits?.maxEntries ?? limits().maxEntries;
  }

  private host(rel: string): string {
    // rel is always clean (no empty, `.` or `..` components), so joining is concatenation.
    if (rel === '') return this.root;
    return this.root === '/' ? `/${rel}` : `${this.root}/${rel}`;
  }

  private readonly probe: PathProbe = (rel: string): ProbeResult => {
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

  /**
   * Directories (root-relative, resolved) that are real directories all the way down from the
   * root: made or lstat-checked by this extractor, with nothing removed since.
   */
  private readonly safeDirs = new Set<string>();

  private isSafeDir(rel: string): boolean {
    return rel === '' || this.safeDirs.has(rel);
  }

  /** Removes whatever is at `rel` (rm does not follow symlinks); a directory there makes every safe directory suspect. */
  private async remove(rel: string, kind: ProbeResult['kind']): Promise<void> {
    this.forgetXattrs(rel);
    if (kind === 'directory') this.safeDirs.clear();
    else this.safeDirs.delete(rel);
    await rm(this.host(rel), { recursive: true, force: true });
  }

  /** Makes a missing or non-directory parent a real directory (dockerd creates parents 0755). */
  private readonly repair = async (rel: string, found: ProbeResult): Promise<void> => {
    if (found.kind !== 'absent') await this.remove(rel, found.kind);
    await mkdir(this.host(rel), 0o755);
    this.dirs.set(rel, { mode: 0o755, uid: undefined, gid: undefined, mtime: undefined });
    this.touch(rel);
  };

  private touch(rel: string): void {
    if (this.touchedLog !== undefined) {
      this.touchedLog.push(rel);
      return;
    }
    let p = rel;
    while (p !== '' && !this.touched.has(p)) {
      this.touched.add(p);
      p = parentOf(p);
    }
  }

  async applyLayer(layer: ExtractLayer, what: string): Promise<void> {
    this.touched = new Set();
    this.touchedLog = [];
    let stream: ByteStream = this.limitBytes(await layer.open(this.opts), what);
    if (layer.diffId !== undefined) stream = verifyStream(stream, { digest: layer.diffId, what: `${what} (uncompressed, against its diff_id)` });
    const signal = this.opts.signal;
    // The entry errors are named after, kept as is: the label is built only for an error.
    let index = 0;
    let name = '';
    const wrap = (err: unknown): never => {
      throw withContext(err, `${what} entry ${index} ${JSON.stringify(name)}`);
    };
    // Entries are applied as the chunks are parsed: file bodies are written straight from the
    // decompressed chunks, and only entries that need the general path wait on a promise.
    const feed = new TarFeed({
      entry: (h, i) => {
        if (++this.entries > this.maxEntries) {
          throw new BerthError('BERTH_LIMIT', `${what}: more than ${this.maxEntries} entries in all layers (the unpack limit; raise it to go on)`, {
            subject: what, want: this.maxEntries, got: this.entries,
          });
        }
        index = i;
        name = h.name;
        try {
          return this.applyEntry(h)?.catch(wrap);
        } catch (err) {
          return wrap(err);
        }
      },
      data: (bytes) => {
        if (this.out < 0) return;
        try {
          let at = 0;
          while (at < bytes.length) at += writeSync(this.out, bytes, at, bytes.length - at);
        } catch (err) {
          wrap(err);
        }
      },
      end: () => {
        if (this.out < 0) return;
        try {
          this.closeFile();
        } catch (err) {
          wrap(err);
        }
      },
    });
    try {
      for await (const chunk of stream) {
        if (signal?.aborted === true) throw new BerthError('BERTH_ABORTED', 'reading tar: aborted', { cause: signal.reason });
        const wait = feed.feed(chunk);
        if (wait !== undefined) await wait;
      }
      feed.finish();
    } finally {
      if (this.out >= 0) {
        closeSync(this.out);
        this.out = -1;
      }
    }
  }

  private async *limitBytes(src: ByteStream, what: string): ByteStream {
    for await (const chunk of src) {
      this.bytes += chunk.length;
      if (this.bytes > this.maxBytes) {
        throw new BerthError('BERTH_LIMIT', `${what}: more than ${this.maxBytes} uncompressed bytes in all layers (the unpack limit; raise it to go on)`, {
          subject: what, want: this.maxBytes, got: this.bytes,
        });
      }
      yield chunk;
    }
  }

  /**
   * Applies one entry: undefined when done synchronously, else a promise (the general path). A
   * regular file is left open in `out` for the body; closeFile() finishes it.
   */
  private applyEntry(h: TarHeader): Promise<void> | undefined {
    if (h.type === 'g') return undefined;
    const clean = fastCleanName(h.name) ?? cleanEntryName(h.name);
    const role = clean.includes(WHITEOUT_PREFIX) ? classifyEntry(clean) : undefined;
    if (role?.kind === 'meta') return undefined;
    if (role !== undefined && role.kind !== 'normal') return this.applyWhiteout(role);
    if (clean === '') return undefined; // the directory itself is the user's: its metadata is left alone
    if (!['file', 'directory', 'symlink', 'link', 'char', 'block', 'fifo'].includes(h.type)) {
      throw new BerthError('BERTH_UNSUPPORTED', `entry type ${JSON.stringify(h.typeflag)} is not supported in a layer`, { got: h.typeflag });
    }
    // Fast path: the parent is a known real directory and nothing is at the entry's path yet.
    if (h.type !== 'link' && this.isSafeDir(parentOf(clean)) && this.createNew(clean, h)) return undefined;
    return this.applyGeneral(clean, h);
  }

  private async applyWhiteout(role: Exclude<EntryRole, { kind: 'normal' | 'meta' }>): Promise<void> {
    if (this.touchedLog !== undefined) {
      const log = this.touchedLog;
      this.touchedLog = undefined;
      for (const rel of log) this.touch(rel);
    }
    if (role.kind === 'opaque') {
      const r = await resolveInRoot(role.dir, this.probe, { followFinal: true, repair: this.repair });
      if (r.last.kind !== 'directory') await this.repair(r.path, r.last);
      this.touch(r.path);
      await this.hideChildren(r.path);
      return;
    }
    if (role.kind === 'whiteout') {
      const d = await resolveInRoot(role.dir, this.probe, { followFinal: true });
      if (d.missingParent || d.last.kind !== 'directory') return;
      const target = d.path === '' ? role.name : `${d.path}/${role.name}`;
      const t = this.probe(target) as ProbeResult;
      if (t.kind !== 'absent') await this.hide(target, t);
    }
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
        if (r.last.kind !== 'absent') await this.remove(rel, r.last.kind);
        mkdirSync(host, 0o700);
      }
      this.safeDirs.add(rel);
      this.dirs.set(rel, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
      this.noteXattrs(h);
      return;
    }
    let linkTarget: string | undefined;
    if (h.type === 'link') {
      const t = await resolveInRoot(cleanEntryName(h.linkname, 'hard link target'), this.probe, { followFinal: false });
      if (t.missingParent || t.last.kind === 'absent') {
        throw new BerthError('BERTH_INVALID_LAYER', `hard link target ${JSON.stringify(h.linkname)} does not exist`, { subject: h.linkname });
      }
      if (t.last.kind === 'directory') throw new BerthError('BERTH_INVALID_LAYER', `hard link target ${JSON.stringify(h.linkname)} is a directory`, { subject: h.linkname });
      linkTarget = this.host(t.path);
      if (t.path === rel) return; // a link to itself: already there
    }
    if (r.last.kind === 'directory') {
      await this.remove(rel, 'directory');
      this.dirs.delete(rel);
    } else if (r.last.kind !== 'absent') {
      this.safeDirs.delete(rel);
      unlinkSync(host);
    }
    switch (h.type) {
      case 'file':
        this.openFile(openSync(host, NEW_FILE, this.createMode(h)), h);
        break;
      case 'link':
        linkSync(linkTarget!, host);
        break;
      case 'symlink':
        symlinkSync(h.linkname, host);
        this.symlinkMeta(host, h);
        break;
      default:
        await this.makeNode(host, h);
    }
  }

  /**
   * Creates a file, directory or symlink at `clean` (whose parent is a safe directory) when
   * nothing is there: O_EXCL semantics, so an existing path fails with EEXIST and false is
   * returned (nothing changed; the general code then looks at what is there).
   */
  private createNew(clean: string, h: TarHeader): boolean {
    const host = this.host(clean);
    let fd = -1;
    try {
      if (h.type === 'file') fd = openSync(host, NEW_FILE, this.createMode(h));
      else if (h.type === 'directory') mkdirSync(host, 0o700);
      else if (h.type === 'symlink') symlinkSync(h.linkname, host);
      else return false;
    } catch (err) {
      if ((err as { code?: string } | null)?.code === 'EEXIST') return false;
      throw err;
    }
    this.touch(clean);
    if (h.type === 'file') {
      this.openFile(fd, h);
    } else if (h.type === 'directory') {
      this.safeDirs.add(clean);
      this.dirs.set(clean, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
      this.noteXattrs(h);
    } else {
      this.symlinkMeta(host, h);
    }
    return true;
  }

  /** Whether a file or symlink this extractor just made needs chown to get the entry's owner. */
  private needsChown(h: TarHeader): boolean {
    return this.privileged && (h.uid !== this.ownUid || h.gid !== this.ownGid);
  }

  /**
   * The mode to create a file with: its final permission bits when the umask clears none of them
   * (then writeFile skips fchmod); special bits only by fchmod after fchown (chown clears them).
   */
  private createMode(h: TarHeader): number {
    const want = h.mode & 0o7777;
    return (want & ~0o777) === 0 && (want & this.umask) === 0 ? want : 0o600;
  }

  private symlinkMeta(host: string, h: TarHeader): void {
    if (this.needsChown(h)) lchownSync(host, h.uid, h.gid);
    lutimesSync(host, h.mtime, h.mtime);
    this.noteXattrs(h);
  }

  /** Takes a new file's descriptor: the body is written into it as it streams, then closeFile(). */
  private openFile(fd: number, h: TarHeader): void {
    this.out = fd;
    this.outHeader = h;
  }

  /** Owner, mode and times of the file being written, on its descriptor; closes it. */
  private closeFile(): void {
    const fd = this.out;
    const h = this.outHeader!;
    this.out = -1;
    try {
      if (this.needsChown(h)) fchownSync(fd, h.uid, h.gid);
      const mode = this.fileMode(h.mode);
      if (mode !== this.createMode(h)) fchmodSync(fd, mode);
      futimesSync(fd, h.mtime, h.mtime);
    } finally {
      closeSync(fd);
    }
    this.noteXattrs(h);
  }

  private fileMode(mode: number): number {
    if (this.privileged || (mode & 0o6000) === 0) return mode & 0o7777;
    this.clearedSpecial++;
    return mode & 0o1777;
  }

  private async makeNode(host: string, h: TarHeader): Promise<void> {
    if (!this.privileged) {
      this.skippedDevices++;
      return;
    }
    const mode = (h.mode & 0o7777).toString(8).padStart(4, '0');
    if (h.type === 'fifo') await run('mkfifo', ['-m', mode, '--', host]);
    else await run('mknod', ['-m', mode, '--', host, h.type === 'char' ? 'c' : 'b', String(h.devmajor), String(h.devminor)]);
    const s = await lstat(host);
    if (s.isSymbolicLink() || s.isDirectory()) throw new BerthError('BERTH_IO', `creating ${h.type} node: something else appeared at its path`);
    await lchown(host, h.uid, h.gid);
    await chmod(host, h.mode & 0o7777);
    await lutimes(host, h.mtime, h.mtime);
    this.noteXattrs(h);
  }

  /**
   * Remembers the entry's extended attributes, applied in finish() by one child process (Node.js
   * cannot set xattrs); a later entry at the same path replaces them.
   */
  private noteXattrs(h: TarHeader): void {
    let has = false;
    for (const k in h.xattrs) {
      if (Object.hasOwn(h.xattrs, k)) {
        has = true;
        break;
      }
    }
    if (!has && this.pendingXattrs.size === 0) return;
    const rel = cleanEntryName(h.name);
    if (has) this.pendingXattrs.set(rel, h.xattrs);
    else this.pendingXattrs.delete(rel);
  }

  private forgetXattrs(rel: string): void {
    if (this.pendingXattrs.size === 0) return;
    for (const key of [...this.pendingXattrs.keys()]) {
      if (key === rel || rel === '' || key.startsWith(`${rel}/`)) this.pendingXattrs.delete(key);
    }
  }

  /** Sets the remembered xattrs, only on entries whose parents are all real directories still. */
  private async applyXattrs(isRealDir: (rel: string) => boolean): Promise<void> {
    const writes: XattrWrite[] = [];
    for (const [rel, xattrs] of this.pendingXattrs) {
      if (!isRealDir(parentOf(rel)) || (this.probe(rel) as ProbeResult).kind === 'absent') continue;
      for (const name in xattrs) {
        if (!Object.hasOwn(xattrs, name)) continue;
        // without root only the user namespace can be written
        if (!this.privileged && !name.startsWith('user.')) this.skippedXattrs++;
        else writes.push({ path: rel, name, value: xattrs[name]! });
      }
    }
    if (writes.length === 0) return;
    if (xattrTool() === undefined) {
      this.skippedXattrs += writes.length;
      return;
    }
    try {
      await setXattrs(this.root, writes);
    } catch (err) {
      this.warn(`could not apply ${writes.length} extended attributes: ${(err as Error).message}`);
    }
  }

  /** Hides lower content at `rel`: removes it unless this layer made it; then only its lower children. */
  private async hide(rel: string, found: ProbeResult): Promise<void> {
    if (!this.touched.has(rel)) {
      await this.remove(rel, found.kind);
      return;
    }
    if (found.kind === 'directory') await this.hideChildren(rel);
  }

  private async hideChildren(rel: string): Promise<void> {
    for (const name of await readdir(this.host(rel))) {
      const child = rel === '' ? name : `${rel}/${name}`;
      await this.hide(child, this.probe(child) as ProbeResult);
    }
  }

  /** Directory modes, owners and times, deepest last-set first, each path checked to be all real directories. */
  async finish(): Promise<void> {
    const real = new Map<string, boolean>();
    const isRealDir = (rel: string): boolean => {
      if (rel === '') return true;
      const known = real.get(rel);
      if (known !== undefined) return known;
      let ok = isRealDir(parentOf(rel));
      if (ok) ok = (this.probe(rel) as ProbeResult).kind === 'directory';
      real.set(rel, ok);
      return ok;
    };
    await this.applyXattrs(isRealDir);
    const paths = [...this.dirs.keys()].sort((a, b) => b.length - a.length);
    // Synchronous calls: a thread-pool round trip per directory costs more than the call.
    for (const rel of paths) {
      if (!isRealDir(rel)) continue;
      const m = this.dirs.get(rel)!;
      const host = this.host(rel);
      // With a plain root every directory is one this extractor made, owned by ownUid:ownGid.
      if (this.privileged && m.uid !== undefined && m.gid !== undefined && (m.uid !== this.ownUid || m.gid !== this.ownGid)) lchownSync(host, m.uid, m.gid);
      chmodSync(host, this.privileged ? m.mode & 0o7777 : m.mode & 0o1777);
      if (m.mtime !== undefined) lutimesSync(host, m.mtime, m.mtime);
    }
    if (this.skippedDevices > 0) this.warn(`skipped ${this.skippedDevices} device nodes and FIFOs (creating them needs root)`);
    if (this.clearedSpecial > 0) this.warn(`cleared setuid/setgid bits on ${this.clearedSpecial} files (not running as root)`);
    if (this.skippedXattrs > 0) this.warn(`did not apply ${this.skippedXattrs} extended attributes (outside the user namespace they need root; all need setfattr or python3)`);
  }

  private warn(message: string): void {
    this.warnings.push(message);
    this.opts.onWarning?.(message);
  }
}
