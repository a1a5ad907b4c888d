/**
 * Image platforms: parse, format, normalise and match (formats.md section 7). Pure: no I/O, and
 * no knowledge of the host (see platformFromNode for mapping Node's names).
 *
 * Canonical internal form (containerd's `platforms.Normalize`, which Docker uses):
 * - os and architecture lower-case; `macos` → `darwin`;
 * - `amd64` (from `x86_64`, `x86-64`): variant `v1` is dropped (no variant means v1);
 * - `arm64` (from `aarch64`): variant `8`/`v8`/`v8.0` is dropped (no variant means v8);
 * - `arm`: the variant is always present, default `v7` (`armhf` → arm/v7, `armel` → arm/v6);
 * - `386` (from `i386`): no variant.
 */
import { BerthError, type ErrorCode } from './errors.js';
import { JsonFields, childPath } from './json.js';
import type { Descriptor } from './descriptor.js';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
  /** JSON `os.version` (Windows build, e.g. `10.0.17763.1879`). */
  readonly osVersion?: string;
  /** JSON `os.features` (e.g. `win32k`). */
  readonly osFeatures?: readonly string[];
}

const COMPONENT = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses `os/architecture[/variant]`, with an optional Windows version as `os(version)`, e.g.
 * `linux/arm64/v8` or `windows(10.0.17763)/amd64`. Returns the normalised platform (so
 * `linux/aarch64` gives `{os: 'linux', architecture: 'arm64'}`). Throws BERTH_INVALID_PLATFORM.
 */
export function parsePlatform(text: string): Platform {
  const bad = (detail: string): never => {
    throw new BerthError('BERTH_INVALID_PLATFORM', `parsing platform ${JSON.stringify(text)}: ${detail}`, { subject: text, got: text });
  };
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3) {
    bad(`want os/architecture[/variant], e.g. linux/arm64/v8 (got ${parts.length} component${parts.length === 1 ? '' : 's'})`);
  }
  let os = parts[0]!;
  let osVersion: string | undefined;
  const paren = /^([^()]*)\(([^()]*)\)$/.exec(os);
  if (paren !== null) {
    os = paren[1]!;
    osVersion = paren[2]!;
    if (!/^[0-9A-Za-z.]+$/.test(osVersion)) bad(`os version ${JSON.stringify(osVersion)} must be digits, letters and dots`);
  }
  const names = ['os', 'architecture', 'variant'];
  [os, ...parts.slice(1)].forEach((part, i) => {
    if (part === '') bad(`${names[i]} is empty`);
    if (!COMPONENT.test(part)) bad(`${names[i]} ${JSON.stringify(part)} has characters outside [A-Za-z0-9_.-]`);
  });
  const variant = parts[2];
  return normalizePlatform({
    os, architecture: parts[1]!,
    ...(variant === undefined ? {} : { variant }),
    ...(osVersion === undefined ? {} : { osVersion }),
  });
}

/** `os/architecture[/variant]`, with `os(version)` when osVersion is set; the inverse of parsePlatform. */
export function formatPlatform(p: Platform): string {
  const os = p.osVersion === undefined || p.osVersion === '' ? p.os : `${p.os}(${p.osVersion})`;
  return p.variant === undefined || p.variant === '' ? `${os}/${p.architecture}` : `${os}/${p.architecture}/${p.variant}`;
}

/** The canonical form described at the top of this file; osVersion and osFeatures are kept. */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let arch = p.architecture.toLowerCase();
  let variant = p.variant === undefined || p.variant === '' ? undefined : p.variant.toLowerCase();
  switch (arch) {
    case 'i386':
    case '386':
      arch = '386';
      variant = undefined;
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1' || variant === '1') variant = undefined;
      else if (variant !== undefined && /^[2-9]$/.test(variant)) variant = `v${variant}`;
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0' || variant === '8.0') variant = undefined;
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
    default:
      break;
  }
  return {
    os, architecture: arch,
    ...(variant === undefined ? {} : { variant }),
    ...(p.osVersion === undefined || p.osVersion === '' ? {} : { osVersion: p.osVersion }),
    ...(p.osFeatures === undefined ? {} : { osFeatures: p.osFeatures }),
  };
}

/**
 * The architecture/variant pairs a machine of platform `want` runs, best first (formats.md 7.3):
 * amd64/vN → vN…v1, 386; arm64/v8.x → v8.x…v8, arm/v8…v5; arm64/v9.x → v9.x…v9, v8.(x+5)…v8,
 * arm/v8…v5; arm/vN → vN…v5. Other architectures match only themselves. Input is normalised.
 */
export function compatiblePlatforms(want: Platform): Platform[] {
  const p = normalizePlatform(want);
  const base = { os: p.os, ...(p.osVersion === undefined ? {} : { osVersion: p.osVersion }) };
  const out: Platform[] = [];
  const add = (architecture: string, variant?: string): void => {
    out.push({ ...base, architecture, ...(variant === undefined ? {} : { variant }) });
  };
  const armChain = (from: number): void => {
    for (let v = from; v >= 5; v--) add('arm', `v${v}`);
  };
  const amd = p.architecture === 'amd64' ? /^v([1-9])$/.exec(p.variant ?? 'v1') : null;
  const a64 = p.architecture === 'arm64' ? /^v(8|9)(?:\.(\d+))?$/.exec(p.variant ?? 'v8') : null;
  const a32 = p.architecture === 'arm' ? /^v([5-8])$/.exec(p.variant ?? 'v7') : null;
  if (amd !== null) {
    for (let v = Number(amd[1]); v >= 1; v--) add('amd64', v === 1 ? undefined : `v${v}`);
    add('386');
  } else if (a64 !== null) {
    const major = Number(a64[1]);
    const minor = a64[2] === undefined ? 0 : Number(a64[2]);
    const v8 = (m: number): string | undefined => (m === 0 ? undefined : `v8.${m}`);
    if (major === 9) {
      for (let m = minor; m >= 0; m--) add('arm64', m === 0 ? 'v9' : `v9.${m}`);
      for (let m = minor + 5; m >= 0; m--) add('arm64', v8(m));
    } else {
      for (let m = minor; m >= 0; m--) add('arm64', v8(m));
    }
    armChain(8);
  } else if (a32 !== null) {
    armChain(Number(a32[1]));
  } else {
    add(p.architecture, p.variant);
  }
  return out;
}

/**
 * The preference rank of `have` for a machine of platform `want` (0 = exact, higher = less
 * preferred), or undefined when `have` does not run there. Both sides are normalised. On Windows,
 * when both carry an os.version, the build (first three numbers) must be equal.
 */
export function platformRank(want: Platform, have: Platform): number | undefined {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os) return undefined;
  if (w.os === 'windows' && w.osVersion !== undefined && h.osVersion !== undefined) {
    if (windowsBuild(w.osVersion) !== windowsBuild(h.osVersion)) return undefined;
  }
  const rank = compatiblePlatforms(w).findIndex((c) => c.architecture === h.architecture && c.variant === h.variant);
  return rank < 0 ? undefined : rank;
}

/** True when an image of platform `have` runs on a machine of platform `want` (7.3). */
export function platformMatches(want: Platform, have: Platform): boolean {
  return platformRank(want, have) !== undefined;
}

/**
 * The best index entry for `want`: the lowest platformRank, the first among equals. Entries with
 * no `platform`, with `unknown` os or architecture (BuildKit attestations), or whose media type
 * is not a manifest, index or schema 1 manifest are never chosen. Undefined when nothing matches.
 */
export function selectPlatform(entries: readonly Descriptor[], want: Platform): Descriptor | undefined {
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const entry of entries) {
    const p = entry.platform;
    if (p === undefined || p.os === 'unknown' || p.architecture === 'unknown') continue;
    if (!SELECTABLE.test(entry.mediaType)) continue;
    const rank = platformRank(want, p);
    if (rank !== undefined && rank < bestRank) {
      best = entry;
      bestRank = rank;
    }
  }
  return best;
}

// Manifest, index and schema 1 media types (kept local: media-types.ts classifies, this only filters).
const SELECTABLE = /^application\/vnd\.(?:oci\.image\.(?:manifest|index)\.v1\+json|docker\.distribution\.manifest\.(?:v2|list\.v2|v1)\+(?:json|prettyjws))$/;

function windowsBuild(v: string): string {
  return v.split('.').slice(0, 3).join('.');
}

const NODE_OS: Readonly<Record<string, string>> = { win32: 'windows', sunos: 'solaris' };
const NODE_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', ppc: 'ppc', s390x: 's390x', s390: 's390',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle', mips64el: 'mips64le',
};

/**
 * Maps Node's `process.platform` / `process.arch` names to an OCI platform (normalised): `x64` →
 * amd64, `ia32` → 386, `win32` → windows, `ppc64` → ppc64le (Node's only 64-bit Power build on
 * Linux is little-endian; on AIX it stays ppc64). `armVersion` is Node's
 * `process.config.variables.arm_version` (e.g. `'7'`), default v7.
 */
export function platformFromNode(platform: string, arch: string, armVersion?: string): Platform {
  const os = NODE_OS[platform] ?? platform;
  let architecture = NODE_ARCH[arch] ?? arch;
  if (arch === 'ppc64' && platform === 'aix') architecture = 'ppc64';
  const variant = architecture === 'arm' && armVersion !== undefined && armVersion !== '' ? armVersion : undefined;
  return normalizePlatform({ os, architecture, ...(variant === undefined ? {} : { variant }) });
}

/**
 * Reads the JSON `platform` object of a descriptor (keys `architecture`, `os`, `os.version`,
 * `os.features`, `variant`; others such as the reserved `features` are ignored). Values are kept
 * as written, not normalised. Throws `code` naming the field path.
 */
export function platformFromJson(value: unknown, path: string, code: ErrorCode = 'BERTH_INVALID_PLATFORM', subject?: string): Platform {
  const f: JsonFields = new JsonFields(code, subject);
  const obj = f.object(value, path);
  const os = f.string(obj, 'os', path);
  const architecture = f.string(obj, 'architecture', path);
  const variant = f.optionalString(obj, 'variant', path);
  const osVersion = f.optionalString(obj, 'os.version', path);
  const osFeatures = f.optionalStringArray(obj, 'os.features', path);
  if (os === '') f.fail(childPath(path, 'os'), 'must not be empty');
  if (architecture === '') f.fail(childPath(path, 'architecture'), 'must not be empty');
  return {
    os, architecture,
    ...(variant === undefined ? {} : { variant }),
    ...(osVersion === undefined ? {} : { osVersion }),
    ...(osFeatures === undefined ? {} : { osFeatures }),
  };
}
