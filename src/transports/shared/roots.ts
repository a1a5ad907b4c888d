/**
 * Choosing one root of an entry point from what the user typed (`:NAME`, `:@N`, `@sha256:…`),
 * with errors that list what is there.
 */
import { shortDigest } from '../../core/digest.js';
import { classifyMediaType } from '../../core/media-types.js';
import { BerthError } from '../../core/errors.js';
import type { ImageSelector, RootEntry } from '../transport.js';

/** Strips docker.io/library/ and docker.io/ so `docker.io/library/bb:3` compares equal to `bb:3`. */
export function familiarName(name: string): string {
  if (name.startsWith('docker.io/library/')) return name.slice('docker.io/library/'.length);
  if (name.startsWith('docker.io/')) return name.slice('docker.io/'.length);
  return name;
}

function nameMatches(have: string, want: string): boolean {
  if (have === want) return true;
  const h = familiarName(have);
  const w = familiarName(want);
  if (h === w) return true;
  // `app` means `app:latest`, as docker reads it
  return !w.includes(':') && h === `${w}:latest`;
}

export function describeRoots(roots: readonly RootEntry[]): string {
  if (roots.length === 0) return 'it lists no images';
  return roots
    .map((r) => `@${r.position}${r.names.length > 0 ? ` (${r.names.join(', ')})` : ''} ${shortDigest(r.descriptor.digest)}`)
    .join('; ');
}

/** The root a selector names; without one, the single root (or an error listing them). */
export function selectRoot(roots: readonly RootEntry[], selector: ImageSelector | undefined, where: string): RootEntry {
  if (selector === undefined) {
    // entries of media types that are not manifests or indexes are never the image meant
    const images = roots.filter((r) => ['index', 'manifest'].includes(classifyMediaType(r.descriptor.mediaType).kind));
    if (images.length > 0 && images.length < roots.length) return selectRoot(images, selector, where);
    if (roots.length === 1) return roots[0]!;
    if (roots.length === 0) throw new BerthError('BERTH_NOT_FOUND', `${where}: no image in it (${describeRoots(roots)})`, { subject: where });
    const distinct = new Set(roots.map((r) => r.descriptor.digest));
    if (distinct.size === 1) return roots[0]!;
    throw new BerthError('BERTH_AMBIGUOUS', `${where}: holds ${roots.length} images, say which one with :NAME or :@N (${describeRoots(roots)})`, { subject: where });
  }
  let found: RootEntry[];
  let said: string;
  switch (selector.kind) {
    case 'position':
      said = `@${selector.position}`;
      found = roots.filter((r) => r.position === selector.position);
      break;
    case 'digest':
      said = selector.digest;
      found = roots.filter((r) => r.descriptor.digest === selector.digest);
      break;
    case 'name':
      said = `"${selector.name}"`;
      found = roots.filter((r) => r.names.some((n) => nameMatches(n, selector.name)));
      break;
  }
  if (found.length === 0) {
    throw new BerthError('BERTH_NOT_FOUND', `${where}: no image ${said} (${describeRoots(roots)})`, { subject: where });
  }
  if (new Set(found.map((r) => r.descriptor.digest)).size > 1) {
    throw new BerthError('BERTH_AMBIGUOUS', `${where}: ${said} names ${found.length} different images (${describeRoots(found)})`, { subject: where });
  }
  return found[0]!;
}
