/**
 * `berth store fsck`: checks a data root the way dockerd and `docker save` will use it, and
 * reports each problem as one precise line:
 *
 * - names: repositories.json parses, every name points at an image that exists;
 * - images: the config hashes to its ID and parses, every layer its diff_ids need exists by
 *   chainID with the right `diff` and `parent` (what dockerd checks at start-up);
 * - layers (every layerdb entry): its files are well-formed, its parent exists, its driver
 *   directory exists, overlay2 `link`/`l/`/`lower` agree, and its tar-split replayed against the
 *   driver's files rebuilds a tar whose sha256 is its diff_id (what `docker save` needs);
 * - orphans: layers no image or container uses, driver directories nothing names, `l/` links
 *   that lead nowhere, temp leftovers of dead writers — all of which `berth store gc` removes.
 * Reads only.
 */
import { readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { createDigester, shortDigest } from '../../core/digest.js';
import type { IoOptions } from '../../io/stream.js';
import { isStoredImage, type DataRoot } from './data-root.js';
import { deadLinks, unreferencedLayers } from './gc.js';
import { exists, referencedDriverDirs, takeInventory } from './inventory.js';
import type { LayerEntry } from './layerdb.js';

export type FsckKind = 'names' | 'image' | 'layer' | 'orphan';

export interface FsckProblem {
  readonly kind: FsckKind;
  /** What it is about: a name, an image ID, a chainID, a path. */
  readonly subject: string;
  readonly message: string;
}

export interface FsckResult {
  readonly root: string;
  readonly driver: string;
  readonly images: number;
  readonly layers: number;
  /** Layers whose tar-split was replayed and hashed. */
  readonly layersVerified: number;
  readonly problems: readonly FsckProblem[];
}

export interface FsckOptions extends IoOptions {
  /** Rebuild every layer from tar-split and hash it (default true). */
  readonly content?: boolean;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

export async function checkStore(store: DataRoot, opts: FsckOptions = {}): Promise<FsckResult> {
  const problems: FsckProblem[] = [];
  const add = (kind: FsckKind, subject: string, message: string) => problems.push({ kind, subject, message });
  const rel = store.imageRel;
  const inv = await takeInventory(store);
  const ids = new Set(inv.images.map((i) => i.id as string));

  try {
    const repos = await store.repositories();
    for (const r of repos.refs) {
      if (!ids.has(r.id)) add('names', r.reference, `${rel}/repositories.json: ${r.reference} → ${r.id}: no such image (no ${rel}/imagedb/content/sha256/${r.id.slice(r.id.indexOf(':') + 1)})`);
    }
  } catch (err) {
    add('names', `${rel}/repositories.json`, (err as Error).message);
  }

  for (const image of inv.images) {
    const stored = await store.image(image.id);
    if (!isStoredImage(stored)) {
      add('image', image.id, `image ${shortDigest(image.id)}: ${stored.problem}`);
      continue;
    }
    const label = `image ${shortDigest(image.id)}${stored.tags.length > 0 ? ` (${stored.tags.join(', ')})` : ''}`;
    for (const p of stored.problems) add('image', image.id, `${label}: ${p}`);
  }

  let verified = 0;
  for (const entry of inv.layers.values()) {
    const where = `${rel}/${entry.dir}`;
    const say = (message: string) => add('layer', entry.chainId, `layer ${shortDigest(entry.chainId)} (${where}): ${message}`);
    for (const p of entry.problems) say(p);
    if (entry.parent !== undefined && !inv.layers.has(entry.parent)) say(`parent ${entry.parent} does not exist`);
    if (!entry.hasTarSplit) say('no tar-split.json.gz (its tar cannot be rebuilt; docker save fails too)');
    if (entry.cacheId === undefined) continue;
    const files = store.filesOf(entry)!;
    if (!(await exists(path.join(store.root, files)))) {
      say(`its cache-id names ${files}, which does not exist`);
      continue;
    }
    if (store.driver === 'overlay2') await checkOverlay(store, entry, inv.layers, say);
    if (opts.content !== false && entry.hasTarSplit && entry.diffId !== undefined) {
      const d = createDigester('sha256');
      try {
        for await (const chunk of store.openLayer(entry, opts)) d.update(chunk);
        verified++;
        if (d.digest() !== entry.diffId) say(`tar-split and ${files} rebuild a tar with sha256 ${d.digest()}, not its diff ${entry.diffId}`);
      } catch (err) {
        say((err as Error).message);
      }
    }
  }

  for (const chain of unreferencedLayers(inv)) {
    add('orphan', chain, `${rel}/layerdb/sha256/${chain.slice(7)}: no image or container uses this layer (berth store gc removes it)`);
  }
  const named = referencedDriverDirs(inv);
  const driverParent = store.driver === 'overlay2' ? 'overlay2' : 'vfs/dir';
  for (const dir of inv.driverDirs) {
    if (!named.has(dir)) add('orphan', `${driverParent}/${dir}`, `${driverParent}/${dir}: no layer or container names this directory (berth store gc removes it)`);
  }
  for (const name of await deadLinks(store, inv)) {
    add('orphan', `overlay2/l/${name}`, `overlay2/l/${name}: leads to no layer directory that has this link (berth store gc removes it)`);
  }
  for (const t of inv.temps) {
    if (t.pid !== undefined && pidAlive(t.pid)) continue;
    add('orphan', t.rel, `${t.rel}: left over by an interrupted write (berth store gc removes it)`);
  }
  return { root: store.root, driver: store.driver, images: inv.images.length, layers: inv.layers.size, layersVerified: verified, problems };
}

/** overlay2 bookkeeping of one layer: link, l/<link>, lower (nearest parent first). */
async function checkOverlay(store: DataRoot, entry: LayerEntry, layers: ReadonlyMap<string, LayerEntry>, say: (m: string) => void): Promise<void> {
  const dir = path.join(store.root, 'overlay2', entry.cacheId!);
  const read = (root: string, n: string) => readFile(path.join(root, n), 'utf8').then((s) => s.trim(), () => undefined);
  const link = await read(dir, 'link');
  if (link === undefined) {
    say(`overlay2/${entry.cacheId}/link is missing`);
    return;
  }
  const target = await readlink(path.join(store.root, 'overlay2/l', link)).catch(() => undefined);
  if (target !== `../${entry.cacheId}/diff`) say(`overlay2/l/${link} ${target === undefined ? 'is missing' : `points to ${JSON.stringify(target)}`}, want ../${entry.cacheId}/diff (the name is in overlay2/${entry.cacheId}/link)`);
  const lower = await read(dir, 'lower');
  let want = '';
  if (entry.parent !== undefined) {
    const parent = layers.get(entry.parent);
    if (parent?.cacheId === undefined) return;
    const pdir = path.join(store.root, 'overlay2', parent.cacheId);
    const [plink, plower] = await Promise.all([read(pdir, 'link'), read(pdir, 'lower')]);
    if (plink === undefined) return;
    want = plower ? `l/${plink}:${plower}` : `l/${plink}`;
  }
  if ((lower ?? '') !== want) say(`overlay2/${entry.cacheId}/lower is ${lower === undefined ? 'absent' : JSON.stringify(lower)}, want ${want === '' ? 'absent' : JSON.stringify(want)}`);
}

/** Every problem as the one line the CLI prints. */
export function fsckLines(r: FsckResult): string[] {
  return r.problems.map((p) => `${p.kind}: ${p.message}`);
}

