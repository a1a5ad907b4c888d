/**
 * Whiteout rules (formats.md 8.2): `dir/.wh.<name>` deletes `dir/<name>` from the layers below,
 * `dir/.wh..wh..opq` makes `dir` opaque (hides every lower child), and any other `.wh..wh.*`
 * name is AUFS metadata that appliers skip (with everything under it, e.g. `.wh..wh.plnk/…`).
 * Markers are never materialised.
 */
import { BerthError } from '../core/errors.js';
import { baseOf, joinClean, parentOf } from './safe-path.js';

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

export type EntryRole =
  /** An ordinary member. */
  | { readonly kind: 'normal' }
  /** `dir/.wh..wh..opq`: hide the lower children of `dir`. */
  | { readonly kind: 'opaque'; readonly dir: string }
  /** `dir/.wh.name`: delete `target` (= dir/name) from the lower layers. */
  | { readonly kind: 'whiteout'; readonly dir: string; readonly name: string; readonly target: string }
  /** AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`, …) or something inside it: skipped. */
  | { readonly kind: 'meta' };

/**
 * The role of a member from its clean name. A whiteout that names `.`, `..` or nothing
 * (`.wh.`, `.wh..`, `.wh...`) would climb out of its directory: BERTH_UNSAFE_PATH.
 */
export function classifyEntry(clean: string): EntryRole {
  if (clean === '') return { kind: 'normal' };
  const base = baseOf(clean);
  const dir = parentOf(clean);
  // Anything inside an AUFS metadata directory is metadata too.
  if (dir !== '' && dir.split('/').some((c) => c.startsWith(WHITEOUT_META_PREFIX))) return { kind: 'meta' };
  if (base === OPAQUE_MARKER) return { kind: 'opaque', dir };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' };
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: 'normal' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..') {
    throw new BerthError('BERTH_UNSAFE_PATH', `whiteout ${JSON.stringify(clean)}: it names ${name === '' ? 'nothing' : JSON.stringify(name)}, which is not a child of its directory`, { subject: clean });
  }
  return { kind: 'whiteout', dir, name, target: joinClean(dir, name) };
}

/** The marker name that deletes `clean` (`a/b` → `a/.wh.b`). */
export function whiteoutFor(clean: string): string {
  return joinClean(parentOf(clean), WHITEOUT_PREFIX + baseOf(clean));
}

/** The opaque marker of directory `dir` (`a` → `a/.wh..wh..opq`). */
export function opaqueMarkerFor(dir: string): string {
  return joinClean(dir, OPAQUE_MARKER);
}
