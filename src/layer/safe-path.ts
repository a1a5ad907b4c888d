/**
 * Entry names and confinement (formats.md 8.1). Layer member names are cleaned to a canonical
 * relative form (`a/b`, the root is ''), and names that are absolute or hold a `..` component
 * are refused. Paths inside an extraction root (or an in-memory tree) are resolved component
 * by component WITHOUT ever leaving the root: every symlink met on the way is read and its
 * target resolved relative to the root (an absolute target restarts at the root, `..` at the
 * root stays at the root), as umoci's and filepath-securejoin's secure join do.
 *
 * This file does no I/O itself: resolution asks a PathProbe (extract.ts passes one backed by
 * lstat/readlink, union.ts one backed by its tree), so the same code confines both.
 */
import { BerthError } from '../core/errors.js';

/** Symlinks followed while resolving one path before giving up (Linux's MAXSYMLINKS). */
export const MAX_SYMLINK_HOPS = 40;

/**
 * The canonical relative name of a layer member: `./` prefix, trailing `/`, empty and `.`
 * components dropped. Throws BERTH_UNSAFE_PATH for absolute names, `..` components and NUL
 * bytes. The root itself (`.`, `./`, and `/` as kaniko writes it) is ''.
 */
export function cleanEntryName(name: string, what = 'layer entry'): string {
  if (name.includes('\0')) {
    throw new BerthError('BERTH_UNSAFE_PATH', `${what} ${JSON.stringify(name)}: name holds a NUL byte`, { subject: name });
  }
  // The root written as "/" (kaniko does) is the root; any other absolute name is refused.
  if (name.startsWith('/') && /[^/.]/.test(name)) {
    throw new BerthError('BERTH_UNSAFE_PATH', `${what} ${JSON.stringify(name)}: absolute names are refused (want a name relative to the layer root)`, { subject: name });
  }
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      throw new BerthError('BERTH_UNSAFE_PATH', `${what} ${JSON.stringify(name)}: ".." components are refused (they could climb out of the root)`, { subject: name });
    }
    parts.push(part);
  }
  return parts.join('/');
}

/** Parent of a clean name ('' for top-level names and the root). */
export function parentOf(clean: string): string {
  const slash = clean.lastIndexOf('/');
  return slash < 0 ? '' : clean.slice(0, slash);
}

/** Last component of a clean name. */
export function baseOf(clean: string): string {
  return clean.slice(clean.lastIndexOf('/') + 1);
}

export function joinClean(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** What a probe tells about one path: nothing (absent), a symlink with its target, or something else. */
export type ProbeResult = { readonly kind: 'absent' } | { readonly kind: 'symlink'; readonly target: string } | { readonly kind: 'directory' } | { readonly kind: 'other' };

/** Looks at one root-relative clean path without following its last component. */
export type PathProbe = (clean: string) => Promise<ProbeResult> | ProbeResult;

export interface ResolveOptions {
  /** Follow a symlink in the last component too (reading a file), or not (creating or replacing the entry itself). Default false. */
  readonly followFinal?: boolean;
  /** Names the path in errors. */
  readonly what?: string;
  /**
   * Called when a component before the last is absent or not a directory. It may make a real
   * directory there (extraction creates missing parents); resolution then goes on into it. Without
   * it, an absent parent gives `missingParent` and a non-directory parent is BERTH_INVALID_LAYER.
   */
  readonly repair?: (clean: string, found: ProbeResult) => Promise<void> | void;
}

export interface Resolved {
  /** The resolved root-relative clean path (every component before the last a real directory or absent). */
  readonly path: string;
  /** What the probe said about the last component (the root is a directory). */
  readonly last: ProbeResult;
  /** True when a component before the last one is absent (so nothing exists at `path`). */
  readonly missingParent: boolean;
}

/**
 * Resolves `clean` (a name relative to the root) inside the root, following symlinks but never
 * leaving the root: the result always names something inside it. Throws BERTH_LIMIT after
 * MAX_SYMLINK_HOPS symlinks (a cycle).
 */
export async function resolveInRoot(clean: string, probe: PathProbe, opts: ResolveOptions = {}): Promise<Resolved> {
  const what = opts.what ?? JSON.stringify(clean);
  const stack: string[] = [];
  // Remaining components, reversed: the next one is at the end.
  const pending = splitComponents(clean).reverse();
  let hops = 0;
  // Depth (stack length) of the first absent component, while it is on the stack.
  let absentAt: number | undefined;
  let last: ProbeResult = { kind: 'directory' };
  while (pending.length > 0) {
    const c = pending.pop()!;
    if (c === '..') {
      stack.pop();
      if (absentAt !== undefined && stack.length < absentAt) absentAt = undefined;
      last = { kind: 'directory' };
      continue;
    }
    const isLast = pending.length === 0;
    stack.push(c);
    if (absentAt !== undefined) {
      last = { kind: 'absent' };
      continue;
    }
    const here = stack.join('/');
    let r = await probe(here);
    if (r.kind === 'symlink' && (!isLast || opts.followFinal === true)) {
      if (++hops > MAX_SYMLINK_HOPS) {
        throw new BerthError('BERTH_LIMIT', `resolving ${what}: too many levels of symbolic links (more than ${MAX_SYMLINK_HOPS}, a cycle?)`, { subject: clean, want: MAX_SYMLINK_HOPS });
      }
      stack.pop();
      if (r.target.startsWith('/')) {
        stack.length = 0;
        absentAt = undefined;
      }
      for (const t of splitComponents(r.target).reverse()) pending.push(t);
      last = { kind: 'directory' };
      continue;
    }
    if (!isLast && (r.kind === 'absent' || r.kind === 'other')) {
      if (opts.repair !== undefined) {
        await opts.repair(here, r);
        r = { kind: 'directory' };
      } else if (r.kind === 'other') {
        throw new BerthError('BERTH_INVALID_LAYER', `resolving ${what}: ${JSON.stringify(here)} is not a directory`, { subject: clean });
      } else {
        absentAt = stack.length;
      }
    }
    last = r;
  }
  return { path: stack.join('/'), last: absentAt !== undefined ? { kind: 'absent' } : last, missingParent: absentAt !== undefined };
}

/** Components of a name or a symlink target with empty and `.` parts dropped (`..` kept). */
function splitComponents(p: string): string[] {
  return p.split('/').filter((s) => s !== '' && s !== '.');
}
