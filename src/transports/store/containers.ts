/**
 * Containers of a Docker data root, read offline (docs/formats.md 10.4–10.6). Read-only.
 *
 *   image/<driver>/layerdb/mounts/<id>/mount-id   driver dir of the writable layer
 *   image/<driver>/layerdb/mounts/<id>/init-id    `<mount-id>-init`: /.dockerenv, /etc/hosts, … placeholders
 *   image/<driver>/layerdb/mounts/<id>/parent     chainID of the image's top layer
 *   containers/<id>/config.v2.json                name, image, created, state
 *   overlay2/<mount-id>/diff                      upper dir: whiteouts are char 0/0, replaced
 *                                                 directories carry trusted.overlay.opaque=y
 *   overlay2/<mount-id>/lower                     l/<link>:…, the init layer first, base last
 *   vfs/dir/<mount-id>, vfs/dir/<init-id>         full copies (the change is their difference)
 *
 * Node cannot read extended attributes, and `trusted.*` ones are visible to root only: one
 * python3 child process (else getfattr) reads them for every path of the layer directories
 * scanned, once.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { isDigest, type Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import { scanTree, walkTree, type FsNode, type ScanOptions } from '../../layer/generate.js';
import type { DataRoot } from './data-root.js';

const HEX64 = /^[a-f0-9]{64}$/;

export interface ContainerRecord {
  /** 64 hex. */
  readonly id: string;
  /** Without the leading `/` dockerd stores. */
  readonly name?: string;
  /** The image as the user named it (`Config.Image`). */
  readonly image?: string;
  readonly imageId?: Digest;
  readonly created?: string;
  readonly running?: boolean;
  /** Exit code of a stopped container. */
  readonly exitCode?: number;
  readonly command?: string;
  readonly mountId?: string;
  readonly initId?: string;
  /** chainID of the image's top layer. */
  readonly parent?: Digest;
  /** What is missing or broken, one phrase each. */
  readonly problems: readonly string[];
}

interface ConfigV2 {
  ID?: string;
  Name?: string;
  Created?: string;
  Image?: string;
  Path?: string;
  Args?: string[];
  Config?: { Image?: string };
  State?: { Running?: boolean; ExitCode?: number };
}

async function readText(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').then((s) => s.trim(), () => undefined);
}

async function readContainer(store: DataRoot, id: string): Promise<ContainerRecord> {
  const problems: string[] = [];
  const mounts = path.join(store.imageDir, 'layerdb/mounts', id);
  const [mountId, initId, parent] = await Promise.all(['mount-id', 'init-id', 'parent'].map((f) => readText(path.join(mounts, f))));
  if (mountId === undefined) problems.push(`no ${store.imageRel}/layerdb/mounts/${id}/mount-id`);
  let cfg: ConfigV2 | undefined;
  const cfgFile = path.join(store.root, 'containers', id, 'config.v2.json');
  const raw = await readFile(cfgFile, 'utf8').catch(() => undefined);
  if (raw !== undefined) {
    try {
      cfg = JSON.parse(raw) as ConfigV2;
    } catch {
      problems.push(`containers/${id}/config.v2.json is not valid JSON`);
    }
  }
  const command = cfg?.Path !== undefined ? [cfg.Path, ...(cfg.Args ?? [])].join(' ') : undefined;
  return {
    id,
    ...(typeof cfg?.Name === 'string' && cfg.Name !== '' ? { name: cfg.Name.replace(/^\//, '') } : {}),
    ...(typeof cfg?.Config?.Image === 'string' ? { image: cfg.Config.Image } : {}),
    ...(isDigest(cfg?.Image) ? { imageId: cfg.Image } : {}),
    ...(typeof cfg?.Created === 'string' ? { created: cfg.Created } : {}),
    ...(typeof cfg?.State?.Running === 'boolean' ? { running: cfg.State.Running } : {}),
    ...(typeof cfg?.State?.ExitCode === 'number' ? { exitCode: cfg.State.ExitCode } : {}),
    ...(command !== undefined ? { command } : {}),
    ...(mountId !== undefined ? { mountId } : {}),
    ...(initId !== undefined ? { initId } : {}),
    ...(parent !== undefined && isDigest(parent) ? { parent } : {}),
    problems,
  };
}

/** Every container the root records (a layerdb mount or a containers/ dir), sorted by creation then ID. */
export async function listContainerRecords(store: DataRoot): Promise<ContainerRecord[]> {
  const ids = new Set<string>();
  for (const dir of [path.join(store.imageDir, 'layerdb/mounts'), path.join(store.root, 'containers')]) {
    for (const n of await readdir(dir).catch(() => [] as string[])) if (HEX64.test(n)) ids.add(n);
  }
  const out = await Promise.all([...ids].map((id) => readContainer(store, id)));
  return out.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? '') || a.id.localeCompare(b.id));
}

/** The container `text` names: a full ID, a unique ID prefix, or a name (`c1` or `/c1`), as docker resolves them. */
export async function findContainer(store: DataRoot, text: string): Promise<ContainerRecord> {
  const all = await listContainerRecords(store);
  const exact = all.find((c) => c.id === text) ?? all.find((c) => c.name !== undefined && c.name === text.replace(/^\//, ''));
  if (exact !== undefined) return exact;
  const prefix = /^[a-f0-9]+$/.test(text) ? all.filter((c) => c.id.startsWith(text)) : [];
  if (prefix.length === 1) return prefix[0]!;
  if (prefix.length > 1) {
    throw new BerthError('BERTH_AMBIGUOUS', `store ${store.root}: container ID prefix ${text} matches ${prefix.length} containers (${prefix.map((c) => c.id.slice(0, 12)).join(', ')})`, { subject: text });
  }
  throw new BerthError('BERTH_NOT_FOUND', `no such container ${JSON.stringify(text)} in store ${store.root} (${all.length === 0 ? 'it has none' : `it has ${all.length}: ${all.slice(0, 5).map((c) => c.name ?? c.id.slice(0, 12)).join(', ')}${all.length > 5 ? ', …' : ''}`})`, { subject: text });
}

/** Where a container's layers lie on disk (absolute paths). */
export interface ContainerLayers {
  readonly driver: 'overlay2' | 'vfs';
  /** overlay2: the upper dir; vfs: the full copy. */
  readonly rw: string;
  /** The init layer: overlay2 its diff dir, vfs its full copy. */
  readonly init: string;
  /** overlay2 only: the lower dirs, nearest first (init layer, then the image's layers, base last). */
  readonly lowers: readonly string[];
}

export async function containerLayers(store: DataRoot, rec: ContainerRecord): Promise<ContainerLayers> {
  if (rec.mountId === undefined || !/^[a-f0-9]{64}$/.test(rec.mountId)) {
    throw new BerthError('BERTH_NOT_FOUND', `container ${rec.id.slice(0, 12)}: ${rec.mountId === undefined ? 'no layerdb mount record' : `mount-id ${JSON.stringify(rec.mountId)} is not 64 hex`} (${store.imageRel}/layerdb/mounts/${rec.id})`, { subject: rec.id });
  }
  const initId = rec.initId ?? `${rec.mountId}-init`;
  if (!/^[a-f0-9]{64}-init$/.test(initId)) throw new BerthError('BERTH_INVALID_LAYER', `container ${rec.id.slice(0, 12)}: init-id ${JSON.stringify(initId)} is not <mount-id>-init`, { subject: rec.id });
  const mustBeDir = async (dir: string): Promise<void> => {
    const st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw withContext(err, `reading ${dir}`);
    });
    if (st?.isDirectory() !== true) throw new BerthError('BERTH_NOT_FOUND', `container ${rec.id.slice(0, 12)}: ${path.relative(store.root, dir)} is missing`, { subject: rec.id });
  };
  if (store.driver === 'vfs') {
    const rw = path.join(store.root, 'vfs/dir', rec.mountId);
    const init = path.join(store.root, 'vfs/dir', initId);
    await Promise.all([mustBeDir(rw), mustBeDir(init)]);
    return { driver: 'vfs', rw, init, lowers: [] };
  }
  const base = path.join(store.root, 'overlay2');
  const rw = path.join(base, rec.mountId, 'diff');
  const init = path.join(base, initId, 'diff');
  await Promise.all([mustBeDir(rw), mustBeDir(init)]);
  const lowerText = await readText(path.join(base, rec.mountId, 'lower'));
  if (lowerText === undefined || lowerText === '') throw new BerthError('BERTH_NOT_FOUND', `container ${rec.id.slice(0, 12)}: overlay2/${rec.mountId}/lower is missing`, { subject: rec.id });
  const lowers: string[] = [];
  for (const l of lowerText.split(':')) {
    if (!/^l\/[A-Z0-9]+$/.test(l)) throw new BerthError('BERTH_INVALID_LAYER', `container ${rec.id.slice(0, 12)}: overlay2/${rec.mountId}/lower names ${JSON.stringify(l)} (want l/<link>)`, { subject: rec.id });
    const target = await readlink(path.join(base, l)).catch(() => undefined);
    if (target === undefined) throw new BerthError('BERTH_NOT_FOUND', `container ${rec.id.slice(0, 12)}: overlay2/${l} is missing (dockerd fails too: "error creating overlay mount")`, { subject: rec.id });
    const dir = path.resolve(base, 'l', target);
    if (!dir.startsWith(`${base}/`)) throw new BerthError('BERTH_UNSAFE_PATH', `overlay2/${l} points outside overlay2/ (${target})`, { subject: l });
    lowers.push(dir);
  }
  return { driver: 'overlay2', rw, init, lowers };
}

// ---------------------------------------------------------------------------------------------
// Extended attributes

/** The xattrs berth cares about: overlay markers and file capabilities. */
const XATTR_NAMES = [
  'trusted.overlay.opaque', 'user.overlay.opaque', 'trusted.overlay.redirect', 'user.overlay.redirect',
  'trusted.overlay.metacopy', 'user.overlay.metacopy', 'security.capability',
] as const;

const PY_SCRIPT = `
import os, sys
paths = sys.stdin.buffer.read().split(b'\\0')
names = [n.encode() for n in sys.argv[1:]]
out = sys.stdout.buffer
for i, p in enumerate(paths):
    if not p:
        continue
    for n in names:
        try:
            v = os.getxattr(p, n, follow_symlinks=False)
        except OSError:
            continue
        out.write(b'%d %s %s\\n' % (i, n, v.hex().encode()))
`;

function runChild(file: string, args: readonly string[], input: Buffer): Promise<{ code: number | null; stdout: Buffer; stderr: string; missing: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let missing = false;
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') missing = true;
    });
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), missing }));
    child.stdin.end(input);
  });
}

/** `getfattr` prints names with octal escapes for unusual bytes. */
function unescapeGetfattr(s: string): string {
  return Buffer.from(s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), 'latin1').toString('utf8');
}

/**
 * The overlay and capability xattrs of `paths` (not following symlinks), with one child process:
 * python3, else getfattr. BERTH_UNSUPPORTED when neither runs.
 */
export async function readXattrs(paths: readonly string[]): Promise<Map<string, Record<string, Uint8Array>>> {
  const result = new Map<string, Record<string, Uint8Array>>();
  if (paths.length === 0) return result;
  const py = await runChild('python3', ['-c', PY_SCRIPT, ...XATTR_NAMES], Buffer.from(paths.join('\0')));
  if (!py.missing) {
    if (py.code !== 0) throw new BerthError('BERTH_IO', `reading extended attributes with python3 failed: ${py.stderr.trim().split('\n').pop() ?? `exit ${py.code}`}`, {});
    for (const line of py.stdout.toString('latin1').split('\n')) {
      const m = /^(\d+) (\S+) ([0-9a-f]*)$/.exec(line);
      if (m === null) continue;
      const p = paths[Number(m[1])]!;
      const rec = result.get(p) ?? {};
      rec[m[2]!] = new Uint8Array(Buffer.from(m[3]!, 'hex'));
      result.set(p, rec);
    }
    return result;
  }
  // getfattr, in batches (argument lists have a limit).
  const pattern = `^(${XATTR_NAMES.map((n) => n.replace(/\./g, '\\.')).join('|')})$`;
  for (let i = 0; i < paths.length; i += 500) {
    const batch = paths.slice(i, i + 500);
    const r = await runChild('getfattr', ['--absolute-names', '-h', '-d', '-m', pattern, '-e', 'hex', '--', ...batch], Buffer.alloc(0));
    if (r.missing) throw new BerthError('BERTH_UNSUPPORTED', 'reading overlay markers (opaque directories) needs python3 or getfattr (Debian package attr); neither is installed', {});
    let current: string | undefined;
    for (const line of r.stdout.toString('latin1').split('\n')) {
      if (line.startsWith('# file: ')) current = unescapeGetfattr(line.slice('# file: '.length));
      else if (current !== undefined) {
        const m = /^([^=]+)=0x([0-9a-f]*)$/.exec(line);
        if (m === null) continue;
        const rec = result.get(current) ?? {};
        rec[m[1]!] = new Uint8Array(Buffer.from(m[2]!, 'hex'));
        result.set(current, rec);
      }
    }
  }
  return result;
}

function isY(v: Uint8Array | undefined): boolean {
  return v !== undefined && v.length === 1 && v[0] === 0x79;
}

/**
 * Scans an overlay2 layer directory (or a vfs copy) and marks its nodes from their xattrs:
 * opaque and redirected directories, file capabilities. A metacopy-only file (its data in a
 * lower layer) is BERTH_UNSUPPORTED: dockerd does not enable metacopy, berth does not follow it.
 */
export async function scanLayerDir(dir: string, opts: ScanOptions = {}): Promise<FsNode> {
  const root = await scanTree(dir, opts);
  const nodes = new Map<string, FsNode>();
  for (const [, n] of walkTree(root)) if (n.stat.kind !== 'whiteout' && n.stat.kind !== 'symlink') nodes.set(n.source, n);
  const xattrs = await readXattrs([...nodes.keys()]);
  for (const [p, attrs] of xattrs) {
    const n = nodes.get(p);
    if (n === undefined) continue;
    if (n.stat.kind === 'directory') {
      if (isY(attrs['trusted.overlay.opaque']) || isY(attrs['user.overlay.opaque'])) n.opaque = true;
      const redirect = attrs['trusted.overlay.redirect'] ?? attrs['user.overlay.redirect'];
      if (redirect !== undefined) n.redirect = Buffer.from(redirect).toString('utf8');
    }
    if (attrs['trusted.overlay.metacopy'] !== undefined || attrs['user.overlay.metacopy'] !== undefined) {
      throw new BerthError('BERTH_UNSUPPORTED', `${p}: an overlayfs metacopy file (its data lies in a lower layer); berth does not follow metacopy`, { subject: p });
    }
    const cap = attrs['security.capability'];
    if (cap !== undefined) n.xattrs = { 'security.capability': cap };
  }
  return root;
}
