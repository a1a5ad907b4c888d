/**
 * Everything a data root holds, listed for fsck, gc and rmi: images and the layers they use,
 * every layerdb entry, container mounts, driver directories, overlay2 `l/` links and temp
 * leftovers. Reads only.
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { chainIds, configDiffIds, parseImageConfig } from '../../core/config.js';
import { isDigest, type Digest } from '../../core/digest.js';
import { TEMP_PREFIX } from '../../io/atomic-file.js';
import type { DataRoot } from './data-root.js';
import { readConfig } from './imagedb.js';
import { readLayerEntry, type LayerEntry } from './layerdb.js';
import { tempOwner } from './writer.js';

export interface InventoryImage {
  readonly id: Digest;
  /** The chainIDs its layers need (base first); empty when its config cannot be read. */
  readonly chains: readonly Digest[];
  readonly diffIds: readonly Digest[];
  /** Why the config is unusable, when it is. */
  readonly problem?: string;
  readonly parent?: Digest;
}

export interface InventoryMount {
  readonly id: string;
  readonly mountId?: string;
  readonly initId?: string;
  readonly parent?: Digest;
}

export interface TempLeftover {
  /** Relative to the root. */
  readonly rel: string;
  /** The pid that made it, when its name says; undefined for dockerd's own temp dirs. */
  readonly pid: number | undefined;
}

export interface Inventory {
  readonly images: readonly InventoryImage[];
  /** Every layerdb entry, by chainID. */
  readonly layers: ReadonlyMap<string, LayerEntry>;
  readonly mounts: readonly InventoryMount[];
  /** Containers and the image each uses (containers/<id>/config.v2.json "Image"). */
  readonly containers: ReadonlyArray<{ readonly id: string; readonly image: Digest | undefined; readonly name: string | undefined }>;
  /** Directory names in overlay2/ (without l) or vfs/dir/. */
  readonly driverDirs: readonly string[];
  /** overlay2/l/ entries: name → link target ('' when not a symlink). */
  readonly links: ReadonlyMap<string, string>;
  readonly temps: readonly TempLeftover[];
}

async function list(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

const HEX64 = /^[a-f0-9]{64}$/;

export async function takeInventory(store: DataRoot): Promise<Inventory> {
  const img = store.imageDir;
  const images: InventoryImage[] = [];
  for (const id of await store.imageIds()) {
    const parentText = await readFile(path.join(img, 'imagedb/metadata/sha256', id.slice(7), 'parent'), 'utf8').then((s) => s.trim(), () => undefined);
    const parent = parentText !== undefined && isDigest(parentText) ? parentText : undefined;
    try {
      const { bytes, digest } = await readConfig(img, id);
      const config = parseImageConfig(bytes, { what: `config ${id}` });
      const diffIds = configDiffIds(config);
      images.push({
        id, chains: chainIds(diffIds), diffIds, ...(parent ? { parent } : {}),
        ...(digest !== id ? { problem: `${store.imageRel}/imagedb/content/sha256/${id.slice(7)} hashes to ${digest} (dockerd drops this image)` } : {}),
      });
    } catch (err) {
      images.push({ id, chains: [], diffIds: [], problem: (err as Error).message, ...(parent ? { parent } : {}) });
    }
  }
  const layers = new Map<string, LayerEntry>();
  for (const hex of await list(path.join(img, 'layerdb/sha256'))) {
    if (!HEX64.test(hex)) continue;
    const e = await readLayerEntry(img, `sha256:${hex}` as Digest);
    if (e !== undefined) layers.set(e.chainId, e);
  }
  const mounts: InventoryMount[] = [];
  for (const id of await list(path.join(img, 'layerdb/mounts'))) {
    const read = (n: string) => readFile(path.join(img, 'layerdb/mounts', id, n), 'utf8').then((s) => s.trim(), () => undefined);
    const [mountId, initId, parent] = await Promise.all([read('mount-id'), read('init-id'), read('parent')]);
    mounts.push({ id, ...(mountId ? { mountId } : {}), ...(initId ? { initId } : {}), ...(parent !== undefined && isDigest(parent) ? { parent } : {}) });
  }
  const containers: Array<{ id: string; image: Digest | undefined; name: string | undefined }> = [];
  for (const id of await list(path.join(store.root, 'containers'))) {
    const text = await readFile(path.join(store.root, 'containers', id, 'config.v2.json'), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    try {
      const v = JSON.parse(text) as { Image?: unknown; Name?: unknown };
      containers.push({ id, image: isDigest(v.Image) ? v.Image : undefined, name: typeof v.Name === 'string' ? v.Name.replace(/^\//, '') : undefined });
    } catch {
      containers.push({ id, image: undefined, name: undefined });
    }
  }
  const driverParent = store.driver === 'overlay2' ? 'overlay2' : 'vfs/dir';
  const driverDirs = (await list(path.join(store.root, driverParent))).filter((n) => n !== 'l' && !n.startsWith(TEMP_PREFIX) && n !== 'backingFsBlockDev');
  const links = new Map<string, string>();
  if (store.driver === 'overlay2') {
    for (const name of await list(path.join(store.root, 'overlay2/l'))) {
      links.set(name, await readlink(path.join(store.root, 'overlay2/l', name)).catch(() => ''));
    }
  }
  const temps: TempLeftover[] = [];
  const tempDirs = [
    '', 'image', store.imageRel, `${store.imageRel}/imagedb/content/sha256`, `${store.imageRel}/layerdb/tmp`, `${store.imageRel}/layerdb/sha256`,
    `${store.imageRel}/distribution/diffid-by-digest/sha256`, driverParent,
  ];
  for (const rel of tempDirs) {
    for (const name of await list(path.join(store.root, rel))) {
      const isOurs = name.startsWith(TEMP_PREFIX) || name.startsWith('.berth.lock.stale-');
      const isDockerds = rel === `${store.imageRel}/layerdb/tmp` && name.startsWith('write-set-');
      if (isOurs || isDockerds) temps.push({ rel: rel === '' ? name : `${rel}/${name}`, pid: isOurs ? tempOwner(name) : undefined });
    }
  }
  for (const id of await list(path.join(img, 'imagedb/metadata/sha256'))) {
    for (const name of await list(path.join(img, 'imagedb/metadata/sha256', id))) {
      if (name.startsWith(TEMP_PREFIX)) temps.push({ rel: `${store.imageRel}/imagedb/metadata/sha256/${id}/${name}`, pid: tempOwner(name) });
    }
  }
  return { images, layers, mounts, containers, driverDirs, links, temps };
}

/** Chains some image or container needs, with all their ancestors (by the layerdb `parent` files). */
export function referencedChains(inv: Inventory, except: ReadonlySet<string> = new Set()): Set<string> {
  const out = new Set<string>();
  const addWithParents = (chain: Digest | undefined) => {
    let c = chain;
    while (c !== undefined && !out.has(c)) {
      out.add(c);
      c = inv.layers.get(c)?.parent;
    }
  };
  for (const image of inv.images) {
    if (except.has(image.id)) continue;
    for (const c of image.chains) addWithParents(c);
  }
  for (const m of inv.mounts) addWithParents(m.parent);
  return out;
}

/** Driver directories some layerdb entry or container mount names. */
export function referencedDriverDirs(inv: Inventory): Set<string> {
  const out = new Set<string>();
  for (const e of inv.layers.values()) if (e.cacheId !== undefined) out.add(e.cacheId);
  for (const m of inv.mounts) {
    if (m.mountId) out.add(m.mountId);
    if (m.initId) out.add(m.initId);
  }
  return out;
}

/** Whether something exists at `file` (no symlink followed). */
export async function exists(file: string): Promise<boolean> {
  return (await lstat(file).catch(() => undefined)) !== undefined;
}
