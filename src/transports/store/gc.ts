/**
 * `berth store gc`: removes what no image or container needs: temp leftovers of dead writers
 * (and dockerd's `layerdb/tmp/write-set-*`), layers no image or container uses (children before
 * parents, each removed the way rmi removes it), driver directories no layer or container names,
 * and overlay2 `l/` links that lead nowhere. The caller holds the writer lock.
 */
import { readFile, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Digest } from '../../core/digest.js';
import type { DataRoot } from './data-root.js';
import { exists, referencedChains, referencedDriverDirs, takeInventory, type Inventory } from './inventory.js';
import { failpoint } from './safety.js';
import { StoreWriter } from './writer.js';

export type GcKind = 'temp' | 'layer' | 'driver-dir' | 'link';

export interface GcRemoval {
  readonly kind: GcKind;
  /** Relative to the root. */
  readonly path: string;
  /** For layers: the chainID. */
  readonly chainId?: Digest;
}

export interface GcOptions {
  /** List what would go, remove nothing. */
  readonly dryRun?: boolean;
  readonly fsync?: boolean;
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Unreferenced layers, deepest first (a child always before its parent). */
export function unreferencedLayers(inv: Inventory): Digest[] {
  const used = referencedChains(inv);
  const depth = (c: Digest): number => {
    let d = 0;
    let p = inv.layers.get(c)?.parent;
    const seen = new Set<string>();
    while (p !== undefined && !seen.has(p)) {
      seen.add(p);
      d++;
      p = inv.layers.get(p)?.parent;
    }
    return d;
  };
  return [...inv.layers.keys()].filter((c) => !used.has(c)).map((c) => c as Digest).sort((a, b) => depth(b) - depth(a) || a.localeCompare(b));
}

/** overlay2 `l/` links that do not lead to `../<dir>/diff` of a directory whose `link` file holds their name. */
export async function deadLinks(store: DataRoot, inv: Inventory): Promise<string[]> {
  if (store.driver !== 'overlay2') return [];
  const out: string[] = [];
  for (const [name, target] of inv.links) {
    const dir = /^\.\.\/([^/]+)\/diff$/.exec(target)?.[1];
    const link = dir === undefined ? undefined : await readFile(path.join(store.root, 'overlay2', dir, 'link'), 'utf8').then((s) => s.trim(), () => undefined);
    if (dir === undefined || link !== name || !(await exists(path.join(store.root, 'overlay2', dir, 'diff')))) out.push(name);
  }
  return out;
}

export async function collectGarbage(store: DataRoot, opts: GcOptions = {}): Promise<GcRemoval[]> {
  const removed: GcRemoval[] = [];
  const writer = new StoreWriter(store, { ...(opts.fsync !== undefined ? { fsync: opts.fsync } : {}) });
  let inv = await takeInventory(store);
  for (const t of inv.temps) {
    if (t.pid !== undefined && pidAlive(t.pid)) continue;
    removed.push({ kind: 'temp', path: t.rel });
    if (!opts.dryRun) await rm(path.join(store.root, t.rel), { recursive: true, force: true, maxRetries: 3 });
  }
  for (const chain of unreferencedLayers(inv)) {
    removed.push({ kind: 'layer', path: `${store.imageRel}/layerdb/sha256/${chain.slice(7)}`, chainId: chain });
    if (!opts.dryRun) {
      await writer.removeLayer(chain);
      failpoint('gc-layer-removed');
    }
  }
  if (!opts.dryRun) inv = await takeInventory(store);
  const named = referencedDriverDirs(inv);
  const driverParent = store.driver === 'overlay2' ? 'overlay2' : 'vfs/dir';
  for (const dir of inv.driverDirs) {
    if (named.has(dir)) continue;
    removed.push({ kind: 'driver-dir', path: `${driverParent}/${dir}` });
    if (!opts.dryRun) await writer.removeDriverDir(dir);
  }
  if (!opts.dryRun) inv = await takeInventory(store);
  for (const name of await deadLinks(store, inv)) {
    if (removed.some((r) => r.kind === 'link' && r.path === `overlay2/l/${name}`)) continue;
    removed.push({ kind: 'link', path: `overlay2/l/${name}` });
    if (!opts.dryRun) await unlink(path.join(store.root, 'overlay2/l', name)).catch(() => undefined);
  }
  return removed;
}
