/**
 * The write primitives of a data root, in the order dockerd's loader uses them (formats.md 10.11,
 * 10.12), each made crash-safe by staging and rename:
 *
 * - a layer is PREPARED out of sight: its files in `overlay2/.berth-tmp-…/` (or `vfs/dir/…`),
 *   its layerdb files (`diff`, `size`, `cache-id`, `parent`, `tar-split.json.gz`) in
 *   `layerdb/tmp/.berth-tmp-…/`; then PUBLISHED: the driver directory renamed to its cache-id, the
 *   `l/` link made, the parent marked `committed`, and last the layerdb directory renamed to
 *   `layerdb/sha256/<chainID>` — the one step that makes the layer exist;
 * - an image config goes to `imagedb/content/sha256/<id>` by temp file + rename (0600);
 * - repositories.json is rewritten by temp file + rename (0600).
 *
 * A crash leaves at most temp directories and unreferenced layers or driver directories, which
 * `berth store gc` removes; never a layerdb entry without its files, nor a name without its image.
 * Every function here expects the caller to hold the writer lock (safety.ts).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { digestHex, isDigest, type Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import { familiarName, parseDockerReference } from '../../core/reference.js';
import { fsyncDir, TEMP_PREFIX, writeFileAtomic } from '../../io/atomic-file.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import { applyLayer, type LoadBudget, type UnprivilegedCounts } from './apply.js';
import type { DataRoot } from './data-root.js';
import { configFile } from './imagedb.js';
import { layerDir } from './layerdb.js';
import { failpoint } from './safety.js';
import type { SplitThread } from './split-worker.js';

const run = promisify(execFile);

/** One entry of distribution/v2metadata-by-diffid (dockerd's metadata.V2Metadata, field order kept). */
export interface V2Metadata {
  readonly Digest: string;
  readonly SourceRepository: string;
  readonly HMAC?: string;
}

/** dockerd keeps the newest 50 sources per layer. */
const MAX_V2_METADATA = 50;

/** A new cache-id: 64 random hex (dockerd's stringid.GenerateRandomID). */
export function newCacheId(): string {
  return randomBytes(32).toString('hex');
}

/** A new overlay2 short link name: 26 characters of base32 (dockerd's generateID(16) in base32). */
export function newLinkId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(26);
  let out = '';
  for (const b of bytes) out += alphabet[b & 31];
  return out;
}

/** A temp name that says which process made it (gc removes those of dead processes only). */
export function tempName(label: string): string {
  return `${TEMP_PREFIX}${process.pid}-${label}-${randomBytes(6).toString('hex')}`;
}

/** The pid a berth temp name was made by, if it says. */
export function tempOwner(name: string): number | undefined {
  if (!name.startsWith(TEMP_PREFIX)) return undefined;
  const m = /^(\d+)-/.exec(name.slice(TEMP_PREFIX.length)) ?? /-(\d+)-[0-9a-f]{12}$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** A layer whose files and layerdb entry are staged, not yet visible. */
export interface PreparedLayer {
  readonly chainId: Digest;
  readonly diffId: Digest;
  readonly parent: Digest | undefined;
  readonly cacheId: string;
  /** overlay2 only: the short link name. */
  readonly link: string | undefined;
  /** overlay2: `lower` contents ('' for a base layer). */
  readonly lower: string;
  /** The staged driver directory (absolute); after publish, the real one. */
  dir: string;
  /** The staged layerdb directory (absolute). */
  readonly entryDir: string;
  readonly size: number;
  readonly unprivileged: UnprivilegedCounts;
  published: boolean;
}

/** overlay2: a layer's files and layerdb entry staged before its place in a chain is known. */
export interface StagedLayer {
  /** What the tar hashed to (or was verified as). */
  readonly diffId: Digest;
  readonly cacheId: string;
  readonly link: string;
  /** The staged driver directory (absolute), holding `diff/` and `link`. */
  readonly dir: string;
  /** The staged layerdb directory (absolute). */
  readonly entryDir: string;
  readonly size: number;
  readonly unprivileged: UnprivilegedCounts;
}

/** Where an existing or prepared parent's files are, for vfs copies and overlay2 `lower`. */
export interface ParentInfo {
  readonly chainId: Digest;
  readonly cacheId: string;
  /** overlay2: its link and lower. */
  readonly link?: string;
  readonly lower?: string;
  /** Its files directory (absolute): overlay2 `<dir>/diff`'s parent, vfs the snapshot itself. */
  readonly dir: string;
}

export class StoreWriter {
  constructor(readonly store: DataRoot, private readonly opts: { fsync?: boolean } = {}) {}

  get root(): string {
    return this.store.root;
  }

  get imageDir(): string {
    return this.store.imageDir;
  }

  private get fsync(): boolean {
    return this.opts.fsync !== false;
  }

  /** The driver directory of a published layer. */
  driverPath(cacheId: string): string {
    return this.store.driver === 'overlay2' ? path.join(this.root, 'overlay2', cacheId) : path.join(this.root, 'vfs/dir', cacheId);
  }

  /** What a published layer's children need to know about it. */
  async parentInfo(chainId: Digest): Promise<ParentInfo> {
    const entry = await this.store.layer(chainId);
    if (entry === undefined || entry.cacheId === undefined) {
      throw new BerthError('BERTH_NOT_FOUND', `layer ${chainId}: no usable ${this.store.imageRel}/${layerDir(chainId)}`, { subject: chainId });
    }
    const dir = this.driverPath(entry.cacheId);
    if (this.store.driver === 'vfs') return { chainId, cacheId: entry.cacheId, dir };
    const read = (n: string) => readFile(path.join(dir, n), 'utf8').then((s) => s.trim(), () => undefined);
    const [link, lower] = await Promise.all([read('link'), read('lower')]);
    if (link === undefined) throw new BerthError('BERTH_INVALID_LAYOUT', `layer ${chainId}: overlay2/${entry.cacheId}/link is missing`, { subject: chainId });
    return { chainId, cacheId: entry.cacheId, link, lower: lower ?? '', dir };
  }

  /**
   * Applies `tar` (uncompressed) as the layer `chainId` on top of `parent`, out of sight. The tar
   * must hash to `diffId`. On failure everything staged is removed.
   */
  async prepareLayer(tar: ByteStream, chainId: Digest, diffId: Digest, parent: ParentInfo | undefined, opts: IoOptions & { what: string; budget?: LoadBudget }): Promise<PreparedLayer> {
    if (this.store.driver === 'overlay2') {
      const staged = await this.stageLayer(tar, { ...opts, diffId });
      try {
        return await this.adoptStaged(staged, chainId, diffId, parent, opts.what);
      } catch (err) {
        await this.discardStaged(staged);
        throw err;
      }
    }
    const cacheId = newCacheId();
    const driverParent = path.join(this.root, 'vfs/dir');
    const tmpRoot = path.join(this.imageDir, 'layerdb/tmp');
    await mkdir(tmpRoot, { recursive: true });
    const staged = path.join(driverParent, tempName(cacheId.slice(0, 12)));
    const entryDir = await mkdtemp(path.join(tmpRoot, `${TEMP_PREFIX}${process.pid}-layer-`));
    try {
      if (parent !== undefined) {
        // A full copy of the parent (hard links, xattrs, devices kept), as dockerd's vfs driver makes it.
        await run('cp', ['-a', '--reflink=auto', '--', parent.dir, staged]);
      } else {
        await mkdir(staged, 0o755);
        await chmod(staged, 0o755);
      }
      const res = await applyLayer(tar, staged, {
        mode: 'naive', tarSplitFile: path.join(entryDir, 'tar-split.json.gz'), diffId, what: opts.what,
        ...(opts.budget ? { budget: opts.budget } : {}), ...(opts.signal ? { signal: opts.signal } : {}),
      });
      const w = (name: string, text: string) => writeFile(path.join(entryDir, name), text, { mode: 0o644 });
      await w('diff', diffId);
      await w('size', String(res.size));
      await w('cache-id', cacheId);
      if (parent !== undefined) await w('parent', parent.chainId);
      await chmod(entryDir, 0o700);
      failpoint('layer-prepared');
      return { chainId, diffId, parent: parent?.chainId, cacheId, link: undefined, lower: '', dir: staged, entryDir, size: res.size, unprivileged: res.unprivileged, published: false };
    } catch (err) {
      await rm(staged, { recursive: true, force: true }).catch(() => undefined);
      await rm(entryDir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * overlay2 only: applies `tar` into a new driver directory (`diff/`, `link`) and a layerdb
   * entry (`tar-split.json.gz`, `diff`, `size`, `cache-id`), both out of sight. An overlay2 layer's
   * files do not depend on its parent, so this may run while the blob arrives, before anyone
   * knows which chain it will be part of (adoptStaged). On failure everything staged is removed.
   */
  async stageLayer(tar: ByteStream, opts: IoOptions & { what: string; budget?: LoadBudget; diffId?: Digest; verifiedDigest?: Digest; recordInWorker?: SplitThread | true }): Promise<StagedLayer> {
    if (this.store.driver !== 'overlay2') throw new BerthError('BERTH_USAGE', `staging a layer in ${this.root}: only overlay2 layers can be staged before their parent is known`);
    const cacheId = newCacheId();
    const tmpRoot = path.join(this.imageDir, 'layerdb/tmp');
    await mkdir(tmpRoot, { recursive: true });
    const dir = path.join(this.root, 'overlay2', tempName(cacheId.slice(0, 12)));
    const entryDir = await mkdtemp(path.join(tmpRoot, `${TEMP_PREFIX}${process.pid}-layer-`));
    try {
      await mkdir(dir, 0o710);
      await chmod(dir, 0o710);
      const files = path.join(dir, 'diff');
      await mkdir(files, 0o755);
      await chmod(files, 0o755);
      const link = newLinkId();
      await writeFile(path.join(dir, 'link'), link, { mode: 0o644 });
      const res = await applyLayer(tar, files, {
        mode: 'overlay', tarSplitFile: path.join(entryDir, 'tar-split.json.gz'), what: opts.what,
        ...(opts.diffId ? { diffId: opts.diffId } : {}), ...(opts.verifiedDigest ? { verifiedDigest: opts.verifiedDigest } : {}),
        ...(opts.budget ? { budget: opts.budget } : {}), ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.recordInWorker !== undefined ? { recordInWorker: opts.recordInWorker } : {}),
      });
      const w = (name: string, text: string) => writeFile(path.join(entryDir, name), text, { mode: 0o644 });
      await w('diff', res.diffId);
      await w('size', String(res.size));
      await w('cache-id', cacheId);
      return { diffId: res.diffId, cacheId, link, dir, entryDir, size: res.size, unprivileged: res.unprivileged };
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      await rm(entryDir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A second staged copy of `s` (a layer used at two places in the chain graph needs two
   * driver directories): files copied with cp -a (owners, modes, xattrs, devices, hard links
   * kept), a new cache-id and link. On failure nothing is left.
   */
  async cloneStaged(s: StagedLayer): Promise<StagedLayer> {
    const cacheId = newCacheId();
    const dir = path.join(this.root, 'overlay2', tempName(cacheId.slice(0, 12)));
    const entryDir = await mkdtemp(path.join(this.imageDir, 'layerdb/tmp', `${TEMP_PREFIX}${process.pid}-layer-`));
    try {
      await mkdir(dir, 0o710);
      await chmod(dir, 0o710);
      await run('cp', ['-a', '--reflink=auto', '--', path.join(s.dir, 'diff'), path.join(dir, 'diff')]);
      const link = newLinkId();
      await writeFile(path.join(dir, 'link'), link, { mode: 0o644 });
      await run('cp', ['--', path.join(s.entryDir, 'tar-split.json.gz'), path.join(entryDir, 'tar-split.json.gz')]);
      const w = (name: string, text: string) => writeFile(path.join(entryDir, name), text, { mode: 0o644 });
      await w('diff', s.diffId);
      await w('size', String(s.size));
      await w('cache-id', cacheId);
      return { ...s, cacheId, link, dir, entryDir };
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      await rm(entryDir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Makes a staged layer the prepared layer `chainId` on top of `parent` (still out of sight):
   * its diff_id must be `diffId` (BERTH_DIGEST_MISMATCH otherwise); `lower`, `work` and the
   * layerdb `parent` are written. The caller discards `s` on failure.
   */
  async adoptStaged(s: StagedLayer, chainId: Digest, diffId: Digest, parent: ParentInfo | undefined, what: string): Promise<PreparedLayer> {
    if (s.diffId !== diffId) {
      throw new BerthError('BERTH_DIGEST_MISMATCH', `${what}: the uncompressed layer hashes to ${s.diffId}, but the config's diff_id is ${diffId}`, {
        subject: what, want: diffId, got: s.diffId,
      });
    }
    let lower = '';
    if (parent !== undefined) {
      lower = parent.lower ? `l/${parent.link}:${parent.lower}` : `l/${parent.link}`;
      await writeFile(path.join(s.dir, 'lower'), lower, { mode: 0o644 });
      await mkdir(path.join(s.dir, 'work'), 0o700);
      await writeFile(path.join(s.entryDir, 'parent'), parent.chainId, { mode: 0o644 });
    }
    await chmod(s.entryDir, 0o700);
    failpoint('layer-prepared');
    return { chainId, diffId, parent: parent?.chainId, cacheId: s.cacheId, link: s.link, lower, dir: s.dir, entryDir: s.entryDir, size: s.size, unprivileged: s.unprivileged, published: false };
  }

  /** Removes a staged layer never adopted (or whose adoption failed). */
  async discardStaged(s: StagedLayer): Promise<void> {
    await rm(s.dir, { recursive: true, force: true }).catch(() => undefined);
    await rm(s.entryDir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Removes what prepareLayer staged (a layer never published). */
  async discard(layer: PreparedLayer): Promise<void> {
    if (layer.published) return;
    await rm(layer.dir, { recursive: true, force: true }).catch(() => undefined);
    await rm(layer.entryDir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Makes a prepared layer part of the store (its parent must be published already). */
  async publishLayer(layer: PreparedLayer, parent: ParentInfo | undefined): Promise<void> {
    const target = path.join(this.imageDir, layerDir(layer.chainId));
    if ((await stat(target).catch(() => undefined)) !== undefined) {
      throw new BerthError('BERTH_EXISTS', `publishing layer ${layer.chainId}: ${this.store.imageRel}/${layerDir(layer.chainId)} appeared meanwhile`, { subject: layer.chainId });
    }
    const final = this.driverPath(layer.cacheId);
    await rename(layer.dir, final);
    layer.dir = final;
    failpoint('layer-driver-dir');
    if (this.store.driver === 'overlay2') {
      await mkdir(path.join(this.root, 'overlay2/l'), { recursive: true, mode: 0o700 });
      await symlink(`../${layer.cacheId}/diff`, path.join(this.root, 'overlay2/l', layer.link!));
      if (parent !== undefined) await writeFile(path.join(parent.dir, 'committed'), '', { mode: 0o600 });
    }
    if (this.fsync) await fsyncDir(path.dirname(final));
    await mkdir(path.dirname(target), { recursive: true });
    await rename(layer.entryDir, target);
    if (this.fsync) await fsyncDir(path.dirname(target));
    layer.published = true;
    failpoint('layer-published');
  }

  /** Stores an image config as `imagedb/content/sha256/<id>` (0600). */
  async writeConfig(id: Digest, bytes: Uint8Array): Promise<void> {
    const file = path.join(this.imageDir, configFile(id));
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, bytes, { mode: 0o600, fsync: this.fsync });
  }

  /** `imagedb/metadata/sha256/<id>/<name>` (0600). */
  async writeMetadata(id: Digest, name: 'lastUpdated' | 'parent', text: string): Promise<void> {
    const dir = path.join(this.imageDir, 'imagedb/metadata/sha256', digestHex(id));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(path.join(dir, name), text, { mode: 0o600, fsync: this.fsync });
  }

  /** Records that registry blob `digest` is the compressed form of `diffId` (distribution/diffid-by-digest). */
  async writeDiffIdByDigest(digest: Digest, diffId: Digest): Promise<void> {
    if (!digest.startsWith('sha256:') || digest === diffId) return;
    const dist = path.join(this.imageDir, 'distribution');
    await mkdir(dist, { recursive: true, mode: 0o700 });
    const dir = path.join(dist, 'diffid-by-digest/sha256');
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(path.join(dir, digestHex(digest)), diffId, { mode: 0o644, fsync: this.fsync });
  }

  /**
   * Records that layer `diffId` was pulled as blob `digest` from `repository` (the full name,
   * `docker.io/library/x`), as dockerd's V2MetadataService.Add: the same entry moves to the end,
   * at most 50 kept; then diffid-by-digest for the blob. 0644 files in 0755 directories.
   */
  async addV2Metadata(diffId: Digest, digest: Digest, repository: string): Promise<void> {
    if (!diffId.startsWith('sha256:') || !digest.startsWith('sha256:')) return;
    const dist = path.join(this.imageDir, 'distribution');
    await mkdir(dist, { recursive: true, mode: 0o700 });
    const dir = path.join(dist, 'v2metadata-by-diffid/sha256');
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const file = path.join(dir, digestHex(diffId));
    let old: V2Metadata[] = [];
    try {
      const v = JSON.parse(await readFile(file, 'utf8')) as unknown;
      if (Array.isArray(v)) old = v.filter((m): m is V2Metadata => typeof m === 'object' && m !== null && typeof (m as V2Metadata).Digest === 'string');
    } catch {
      // missing or unreadable: dockerd starts a new list too
    }
    const entry: V2Metadata = { Digest: digest, SourceRepository: repository, HMAC: '' };
    const list = old.filter((m) => !(m.Digest === entry.Digest && m.SourceRepository === entry.SourceRepository && (m.HMAC ?? '') === ''));
    list.push(entry);
    await writeFileAtomic(file, JSON.stringify(list.slice(-MAX_V2_METADATA).map((m) => ({ Digest: m.Digest, SourceRepository: m.SourceRepository, HMAC: m.HMAC ?? '' }))), { mode: 0o644, fsync: this.fsync });
    const byDigest = path.join(dist, 'diffid-by-digest/sha256');
    await mkdir(byDigest, { recursive: true, mode: 0o755 });
    await writeFileAtomic(path.join(byDigest, digestHex(digest)), diffId, { mode: 0o644, fsync: this.fsync });
  }

  /** The diff_id distribution/diffid-by-digest knows for a blob digest. */
  async diffIdByDigest(digest: Digest): Promise<Digest | undefined> {
    if (!digest.startsWith('sha256:')) return undefined;
    const text = await readFile(path.join(this.imageDir, 'distribution/diffid-by-digest/sha256', digestHex(digest)), 'utf8').catch(() => undefined);
    const t = text?.trim();
    return t !== undefined && isDigest(t) ? t : undefined;
  }

  /**
   * Rewrites repositories.json: `edit` gets the parsed `Repositories` object (repo → ref → id) and
   * changes it in place. Written compact with sorted keys (as Go marshals maps), 0600, temp + rename.
   */
  async updateRepositories(edit: (repos: Record<string, Record<string, string>>) => void): Promise<void> {
    const file = path.join(this.imageDir, 'repositories.json');
    const raw = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw withContext(err, `reading ${this.store.imageRel}/repositories.json`);
    });
    let doc: Record<string, unknown> = {};
    if (raw !== undefined && raw.trim() !== '') {
      try {
        const v = JSON.parse(raw) as unknown;
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) doc = v as Record<string, unknown>;
        else throw new Error('not a JSON object');
      } catch (err) {
        throw new BerthError('BERTH_INVALID_LAYOUT', `${this.store.imageRel}/repositories.json: ${(err as Error).message}; fix or remove it first`, { subject: file });
      }
    }
    const repos = (typeof doc.Repositories === 'object' && doc.Repositories !== null ? doc.Repositories : {}) as Record<string, Record<string, string>>;
    edit(repos);
    const sorted: Record<string, Record<string, string>> = {};
    for (const repo of Object.keys(repos).sort()) {
      const refs = repos[repo]!;
      if (Object.keys(refs).length === 0) continue;
      sorted[repo] = Object.fromEntries(Object.keys(refs).sort().map((k) => [k, refs[k]!]));
    }
    await writeFileAtomic(file, JSON.stringify({ ...doc, Repositories: sorted }), { mode: 0o600, fsync: this.fsync });
  }

  /** Removes an image's config and metadata (its names must be gone already). */
  async removeImageRecord(id: Digest): Promise<void> {
    await unlink(path.join(this.imageDir, configFile(id))).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw withContext(err, `removing image ${id}`);
    });
    if (this.fsync) await fsyncDir(path.join(this.imageDir, 'imagedb/content/sha256'));
    failpoint('image-removed');
    await rm(path.join(this.imageDir, 'imagedb/metadata/sha256', digestHex(id)), { recursive: true, force: true });
  }

  /**
   * Removes one layer (its children must be gone): the layerdb entry is renamed away first (the
   * layer stops existing atomically), then its driver directory and `l/` link are removed.
   */
  async removeLayer(chainId: Digest): Promise<void> {
    const entry = await this.store.layer(chainId);
    const src = path.join(this.imageDir, layerDir(chainId));
    const aside = path.join(this.imageDir, 'layerdb/tmp', tempName('rm'));
    await mkdir(path.dirname(aside), { recursive: true });
    try {
      await rename(src, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw withContext(err, `removing layer ${chainId}`);
    }
    if (this.fsync) await fsyncDir(path.dirname(src));
    failpoint('layer-unlinked');
    if (entry?.cacheId !== undefined) await this.removeDriverDir(entry.cacheId);
    await rm(aside, { recursive: true, force: true });
  }

  /** Removes a driver directory and (overlay2) the `l/` link to it. */
  async removeDriverDir(cacheId: string): Promise<void> {
    const dir = this.driverPath(cacheId);
    if (this.store.driver === 'overlay2') {
      const link = await readFile(path.join(dir, 'link'), 'utf8').then((s) => s.trim(), () => undefined);
      if (link !== undefined && /^[A-Z0-9]+$/.test(link)) await unlink(path.join(this.root, 'overlay2/l', link)).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** The familiar `repository` and `reference` keys repositories.json files a name under. */
export function repositoryKeys(name: string): { repository: string; reference: string; kind: 'tag' | 'digest' } {
  const ref = parseDockerReference(name);
  const familiar = familiarName(ref);
  const repository = familiarName({ domain: ref.domain, path: ref.path });
  if (ref.digest !== undefined) return { repository, reference: `${repository}@${ref.digest}`, kind: 'digest' };
  return { repository, reference: familiar, kind: 'tag' };
}

/** RFC 3339 with nanoseconds, trailing zeros trimmed, as dockerd writes lastUpdated. */
export function rfc3339Nano(d: Date = new Date()): string {
  const iso = d.toISOString();
  return iso.replace(/\.(\d+)Z$/, (_m, frac: string) => {
    const f = frac.replace(/0+$/, '');
    return f === '' ? 'Z' : `.${f}Z`;
  });
}

/** Whether `file` exists and can be opened (no symlink). */
export async function fileExists(file: string): Promise<boolean> {
  try {
    const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    await fh.close();
    return true;
  } catch {
    return false;
  }
}

/** The entries of a directory, [] when missing. */
export async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}
