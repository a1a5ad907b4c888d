/**
 * Applying one layer tar into a graph-driver directory as dockerd does (formats.md 10.5, 10.11),
 * in one pass that also records tar-split (section 11) and hashes the diff_id:
 *
 *   tar bytes ─ sha256 (diff_id) ─ disassembleTar (tar-split.json.gz) ─ readTar ─ apply entries
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
import { once } from 'node:events';
import { constants, createWriteStream } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, rm, symlink, unlink } from 'node:fs/promises';
import nodePath from 'node:path';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { createDigester, type Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import { limits as configuredLimits } from '../../io/limits.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import { DEFAULT_MAX_UNPACKED_BYTES, DEFAULT_MAX_UNPACKED_ENTRIES } from '../../layer/extract.js';
import { cleanEntryName, parentOf, resolveInRoot, type PathProbe, type ProbeResult } from '../../layer/safe-path.js';
import { classifyEntry } from '../../layer/whiteout.js';
import type { TarHeader } from '../../tar/header.js';
import { readTar, type TarEntry } from '../../tar/reader.js';
import { disassembleTar, encodeTarSplitRecord, type TarSplitRecord } from '../../tar/split.js';
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
  /** Names the layer in errors. */
  readonly what: string;
  /** Act as root (default: whether the process is root). */
  readonly privileged?: boolean;
  /** Shared by the layers of one load (default: a budget for this layer alone, with the set limits). */
  readonly budget?: LoadBudget;
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

/** Writes tar-split records as gzip'd JSON lines to a new file, with backpressure. */
class TarSplitWriter {
  private readonly gz = createGzip();
  private readonly out;
  private readonly finished: Promise<void>;
  private batch = '';

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

  async add(r: TarSplitRecord): Promise<void> {
    this.batch += `${encodeTarSplitRecord(r)}\n`;
    if (this.batch.length >= 1 << 16) await this.flush();
  }

  private async flush(): Promise<void> {
    const text = this.batch;
    this.batch = '';
    if (text !== '' && !this.gz.write(text)) await Promise.race([once(this.gz, 'drain'), this.finished]);
  }

  async end(): Promise<void> {
    await this.flush();
    this.gz.end();
    await this.finished;
  }

  destroy(): void {
    this.gz.destroy();
    this.out.destroy();
  }
}

/** Applies one uncompressed layer tar into `dir` (an existing directory). */
export async function applyLayer(tar: ByteStream, dir: string, opts: ApplyLayerOptions): Promise<ApplyLayerResult> {
  const a = new LayerApplier(dir, opts);
  const digester = createDigester('sha256');
  const budget = opts.budget ?? new LoadBudget();
  async function* hashed(): ByteStream {
    for await (const chunk of tar) {
      budget.addBytes(chunk.length, opts.what);
      digester.update(chunk);
      yield chunk;
    }
  }
  const ts = new TarSplitWriter(opts.tarSplitFile);
  try {
    const passthrough = disassembleTar(hashed(), { onRecord: (r) => ts.add(r), ...(opts.signal ? { signal: opts.signal } : {}) });
    for await (const entry of readTar(passthrough, { maxEntries: Number.MAX_SAFE_INTEGER, ...(opts.signal ? { signal: opts.signal } : {}) })) {
      budget.addEntry(opts.what);
      try {
        await a.apply(entry);
      } catch (err) {
        throw withContext(err, `${opts.what} entry ${entry.index} ${JSON.stringify(entry.header.name)}`);
      }
    }
    const got = digester.digest();
    if (opts.diffId !== undefined && got !== opts.diffId) {
      throw new BerthError('BERTH_DIGEST_MISMATCH', `${opts.what}: the uncompressed layer hashes to ${got}, but the config's diff_id is ${opts.diffId}`, {
        subject: opts.what, want: opts.diffId, got,
      });
    }
    await ts.end();
    await a.finish();
    return { diffId: got, size: opts.mode === 'overlay' ? await overlaySize(dir) : a.headerBytes, tarBytes: digester.bytes, entries: a.entries, unprivileged: a.unprivilegedSummary() };
  } catch (err) {
    ts.destroy();
    throw err;
  }
}

/** overlay2's `size`: lstat sizes of every non-directory under `dir`, each hard-linked inode once. */
export async function overlaySize(dir: string): Promise<number> {
  let total = 0;
  const seen = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    for (const name of await readdir(d)) {
      const p = nodePath.join(d, name);
      const st = await lstat(p);
      if (st.isDirectory()) {
        await walk(p);
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
  await walk(dir);
  return total;
}

class LayerApplier {
  entries = 0;
  /** Sum of the tar headers' sizes (vfs's `size`). */
  headerBytes = 0;
  private readonly privileged: boolean;
  private readonly dirs = new Map<string, DirMeta>();
  private readonly touched = new Set<string>();
  private readonly xattrs: XattrWrite[] = [];
  private readonly whiteouts: Array<{ rel: string; uid: number; gid: number }> = [];
  private readonly skipped = emptyUnprivileged();

  constructor(private readonly root: string, private readonly opts: ApplyLayerOptions) {
    this.privileged = opts.privileged ?? process.getuid?.() === 0;
  }

  private host(rel: string): string {
    return rel === '' ? this.root : nodePath.join(this.root, rel);
  }

  private readonly probe: PathProbe = async (rel: string): Promise<ProbeResult> => {
    const p = this.host(rel);
    try {
      const s = await lstat(p);
      if (s.isSymbolicLink()) return { kind: 'symlink', target: await readlink(p) };
      return s.isDirectory() ? { kind: 'directory' } : { kind: 'other' };
    } catch (err) {
      if (isMissing(err)) return { kind: 'absent' };
      throw err;
    }
  };

  /** A missing (or non-directory) parent becomes a directory 0755, as dockerd's MkdirAll makes it. */
  private readonly repair = async (rel: string, found: ProbeResult): Promise<void> => {
    if (found.kind !== 'absent') await rm(this.host(rel), { recursive: true, force: true });
    await mkdir(this.host(rel), 0o755);
    this.touch(rel);
  };

  private touch(rel: string): void {
    let p = rel;
    while (p !== '' && !this.touched.has(p)) {
      this.touched.add(p);
      p = parentOf(p);
    }
  }

  unprivilegedSummary(): UnprivilegedCounts {
    return { ...this.skipped };
  }

  async apply(entry: TarEntry): Promise<void> {
    this.entries++;
    const h = entry.header;
    if (h.type === 'g') return;
    if (h.type === 'file') this.headerBytes += h.size;
    const clean = cleanEntryName(h.name);
    const role = classifyEntry(clean);
    if (role.kind === 'meta') return;
    if (role.kind === 'opaque') {
      const r = await resolveInRoot(role.dir, this.probe, { followFinal: true, repair: this.repair });
      if (r.last.kind !== 'directory') await this.repair(r.path, r.last);
      this.touch(r.path);
      if (this.opts.mode === 'naive') {
        await this.hideChildren(r.path);
      } else if (this.privileged) {
        this.xattrs.push({ path: r.path === '' ? '.' : r.path, name: 'trusted.overlay.opaque', value: new Uint8Array([0x79]) });
      } else {
        this.skipped.opaque++;
      }
      return;
    }
    if (role.kind === 'whiteout') {
      const d = await resolveInRoot(role.dir, this.probe, { followFinal: true, ...(this.opts.mode === 'overlay' ? { repair: this.repair } : {}) });
      if (this.opts.mode === 'overlay') {
        if (d.last.kind !== 'directory') await this.repair(d.path, d.last);
        this.touch(d.path);
        if (this.privileged) this.whiteouts.push({ rel: d.path === '' ? role.name : `${d.path}/${role.name}`, uid: h.uid, gid: h.gid });
        else this.skipped.whiteouts++;
        return;
      }
      if (d.missingParent || d.last.kind !== 'directory') return;
      const target = d.path === '' ? role.name : `${d.path}/${role.name}`;
      const t = await this.probe(target);
      if (t.kind !== 'absent') await this.hide(target, t);
      return;
    }
    if (clean === '') return; // the layer directory itself keeps the driver's metadata
    if (!['file', 'directory', 'symlink', 'link', 'char', 'block', 'fifo'].includes(h.type)) {
      throw new BerthError('BERTH_UNSUPPORTED', `entry type ${JSON.stringify(h.typeflag)} is not supported in a layer`, { got: h.typeflag });
    }
    const r = await resolveInRoot(clean, this.probe, { followFinal: false, repair: this.repair });
    const rel = r.path;
    const host = this.host(rel);
    this.touch(rel);
    if (h.type === 'directory') {
      if (r.last.kind !== 'directory') {
        if (r.last.kind !== 'absent') await rm(host, { recursive: true, force: true });
        await mkdir(host, 0o700);
      }
      this.dirs.set(rel, { mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime });
      this.queueXattrs(rel, h);
      return;
    }
    let linkTarget: string | undefined;
    if (h.type === 'link') {
      const t = await resolveInRoot(cleanEntryName(h.linkname, 'hard link target'), this.probe, { followFinal: false });
      if (t.missingParent || t.last.kind === 'absent') {
        throw new BerthError('BERTH_INVALID_LAYER', `hard link target ${JSON.stringify(h.linkname)} is not in this layer`, { subject: h.linkname });
      }
      if (t.last.kind === 'directory') throw new BerthError('BERTH_INVALID_LAYER', `hard link target ${JSON.stringify(h.linkname)} is a directory`, { subject: h.linkname });
      linkTarget = this.host(t.path);
      if (t.path === rel) return;
    }
    if (r.last.kind === 'directory') {
      await rm(host, { recursive: true, force: true });
      this.dirs.delete(rel);
    } else if (r.last.kind !== 'absent') {
      await unlink(host);
    }
    switch (h.type) {
      case 'file':
        await this.writeFile(host, h, entry.body());
        this.queueXattrs(rel, h);
        break;
      case 'link':
        await link(linkTarget!, host);
        break;
      case 'symlink':
        await symlink(h.linkname, host);
        await this.own(host, h);
        await lutimes(host, h.mtime, h.mtime);
        this.queueXattrs(rel, h);
        break;
      default:
        if (!this.privileged) {
          this.skipped.devices++;
          return;
        }
        await this.makeNode(host, h);
        this.queueXattrs(rel, h);
    }
  }

  private async own(host: string, h: TarHeader): Promise<void> {
    if (this.privileged) await lchown(host, h.uid, h.gid);
    else if (h.uid !== process.getuid?.() || h.gid !== process.getgid?.()) this.skipped.owners++;
  }

  private async writeFile(host: string, h: TarHeader, body: ByteStream): Promise<void> {
    const fh = await open(host, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of body) {
        let at = 0;
        while (at < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, at, chunk.length - at);
          at += bytesWritten;
        }
      }
      if (this.privileged) await fh.chown(h.uid, h.gid);
      else if (h.uid !== process.getuid?.() || h.gid !== process.getgid?.()) this.skipped.owners++;
      await fh.chmod(this.diskMode(h.mode, 0o600));
      await fh.utimes(h.mtime, h.mtime);
    } finally {
      await fh.close();
    }
  }

  private async makeNode(host: string, h: TarHeader): Promise<void> {
    const mode = (h.mode & 0o7777).toString(8).padStart(4, '0');
    if (h.type === 'fifo') await run('mkfifo', ['-m', mode, '--', host]);
    else await run('mknod', ['-m', mode, '--', host, h.type === 'char' ? 'c' : 'b', String(h.devmajor), String(h.devminor)]);
    const s = await lstat(host);
    if (s.isSymbolicLink() || s.isDirectory()) throw new BerthError('BERTH_IO', `creating ${h.type} node: something else appeared at its path`);
    await lchown(host, h.uid, h.gid);
    await chmod(host, h.mode & 0o7777);
    await lutimes(host, h.mtime, h.mtime);
  }

  private queueXattrs(rel: string, h: TarHeader): void {
    const names = Object.keys(h.xattrs);
    if (names.length === 0) return;
    // Without root only user.* attributes can be set.
    const settable = this.privileged ? names : names.filter((n) => n.startsWith('user.'));
    if (settable.length < names.length) this.skipped.xattrs++;
    for (const n of settable) this.xattrs.push({ path: rel, name: n, value: h.xattrs[n]! });
  }

  /** naive mode: removes lower content at `rel` (what this layer wrote stays). */
  private async hide(rel: string, found: ProbeResult): Promise<void> {
    if (!this.touched.has(rel)) {
      await rm(this.host(rel), { recursive: true, force: true });
      return;
    }
    if (found.kind === 'directory') await this.hideChildren(rel);
  }

  private async hideChildren(rel: string): Promise<void> {
    for (const name of await readdir(this.host(rel))) {
      const child = rel === '' ? name : `${rel}/${name}`;
      await this.hide(child, await this.probe(child));
    }
  }

  /** True when every component of `rel` but the last is a real directory and the last exists. */
  private async realPath(rel: string): Promise<boolean> {
    const parts = rel === '' || rel === '.' ? [] : rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      const k = (await this.probe(parts.slice(0, i + 1).join('/'))).kind;
      if (k === 'absent') return false;
      if (i < parts.length - 1 && k !== 'directory') return false;
    }
    return true;
  }

  /** True when every component of `rel` is a real directory (no symlink anywhere). */
  private async realDir(rel: string): Promise<boolean> {
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      if ((await this.probe(parts.slice(0, i + 1).join('/'))).kind !== 'directory') return false;
    }
    return true;
  }

  /** Whiteout devices, xattrs, then directory metadata (deepest first, after their children changed). */
  async finish(): Promise<void> {
    if (this.whiteouts.length > 0) {
      const todo: Array<{ rel: string; uid: number; gid: number }> = [];
      for (const w of this.whiteouts) {
        // Its directory must still be a real one all the way down: a later entry of this layer may
        // have replaced it (or an ancestor) with a symlink, and rm/mknod would follow that out.
        if (!(await this.realDir(parentOf(w.rel)))) continue;
        const found = await this.probe(w.rel);
        if (found.kind !== 'absent') await rm(this.host(w.rel), { recursive: true, force: true });
        todo.push(w);
      }
      // One shell for a whole batch of mknod calls.
      for (let i = 0; i < todo.length; i += 200) {
        const batch = todo.slice(i, i + 200);
        await run('/bin/sh', ['-c', 'for f; do mknod -m 000 -- "$f" c 0 0 || exit 1; done', 'sh', ...batch.map((w) => this.host(w.rel))]);
      }
      for (const w of todo) {
        const st = await lstat(this.host(w.rel));
        if (!st.isCharacterDevice()) throw new BerthError('BERTH_IO', `whiteout ${w.rel}: something else appeared at its path`);
        await lchown(this.host(w.rel), w.uid, w.gid);
      }
    }
    if (this.xattrs.length > 0) {
      const ok: XattrWrite[] = [];
      for (const x of this.xattrs) if (await this.realPath(String(x.path))) ok.push(x);
      if (xattrTool() === undefined) this.skipped.xattrs += ok.length;
      else await setXattrs(this.root, ok);
    }
    const real = new Map<string, boolean>();
    const isRealDir = async (rel: string): Promise<boolean> => {
      if (rel === '') return true;
      const known = real.get(rel);
      if (known !== undefined) return known;
      let ok = await isRealDir(parentOf(rel));
      if (ok) ok = (await this.probe(rel)).kind === 'directory';
      real.set(rel, ok);
      return ok;
    };
    const paths = [...this.dirs.keys()].sort((a, b) => b.length - a.length);
    for (const rel of paths) {
      if (!(await isRealDir(rel))) continue;
      const m = this.dirs.get(rel)!;
      const host = this.host(rel);
      if (this.privileged) await lchown(host, m.uid, m.gid);
      else if (m.uid !== process.getuid?.() || m.gid !== process.getgid?.()) this.skipped.owners++;
      await chmod(host, this.diskMode(m.mode, 0o700));
      await lutimes(host, m.mtime, m.mtime);
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
