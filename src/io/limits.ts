/**
 * The resource limits berth applies to untrusted input, in one place: their defaults, the values
 * in force for this process, and `configureLimits` to change them (the CLI's global
 * `--max-manifest-bytes`, `--max-config-bytes`, `--max-entries`, `--max-bytes`, `--max-path` and
 * `--max-ratio` call it before any command runs). Every limit, when hit, is one BERTH_LIMIT or
 * BERTH_TOO_LARGE line naming the object and the limit.
 *
 * src/core stays pure: its parsers keep their own exported default (MAX_MANIFEST_BYTES) and a
 * module-level cap that `configureLimits` sets (setJsonSizeCaps); no I/O either way.
 */
import { BerthError } from '../core/errors.js';
import { MAX_MANIFEST_BYTES, MAX_CONFIG_BYTES, setJsonSizeCaps } from '../core/json.js';

export interface Limits {
  /** One manifest or index (and index.json, manifest.json): 4 MiB, the distribution-spec limit. */
  readonly maxManifestBytes: number;
  /** One image config: 8 MiB. */
  readonly maxConfigBytes: number;
  /** Tar members over all layers of one unpack or load: 4 000 000. */
  readonly maxEntries: number;
  /** Tar members of one stream read on its own (readTar, a docker-archive's outer tar): 1 000 000. */
  readonly maxStreamEntries: number;
  /** Uncompressed layer tar bytes over all layers of one unpack or load: 64 GiB. */
  readonly maxBytes: number;
  /** Bytes of one tar member's name or link target: 4096 (the kernel's PATH_MAX). */
  readonly maxPathBytes: number;
  /**
   * Decompressed bytes per compressed byte of one stream: off by default (Infinity), since real
   * layers can hold long runs of zeros (gzip reaches ~1032:1 on them, zstd far more) and the byte
   * caps already stop bombs. When set, a stream is refused once its output exceeds
   * maxRatio × input + DECOMPRESSION_SLACK_BYTES.
   */
  readonly maxRatio: number;
}

/** Output a stream may always produce beyond the ratio (so tiny inputs are never refused). */
export const DECOMPRESSION_SLACK_BYTES = 1024 * 1024;

export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxManifestBytes: MAX_MANIFEST_BYTES,
  maxConfigBytes: MAX_CONFIG_BYTES,
  maxEntries: 4_000_000,
  maxStreamEntries: 1_000_000,
  maxBytes: 64 * 1024 ** 3,
  maxPathBytes: 4096,
  maxRatio: Number.POSITIVE_INFINITY,
});

let current: Limits = DEFAULT_LIMITS;

/** The limits in force. */
export function limits(): Limits {
  return current;
}

/**
 * Changes some limits for this process (the others keep their current value). Each value must be
 * a positive safe integer (maxRatio: a positive finite number); anything else is BERTH_USAGE.
 */
export function configureLimits(partial: Partial<Limits>): Limits {
  const next: Record<string, number> = { ...current };
  for (const [key, value] of Object.entries(partial) as Array<[keyof Limits, number | undefined]>) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LIMITS)) throw new BerthError('BERTH_USAGE', `configuring limits: unknown limit ${JSON.stringify(key)}`, { got: key });
    const ok = key === 'maxRatio' ? Number.isFinite(value) && value > 0 : Number.isSafeInteger(value) && value > 0;
    if (!ok) throw new BerthError('BERTH_USAGE', `configuring limits: ${key} must be a positive ${key === 'maxRatio' ? 'number' : 'whole number'}, got ${String(value)}`, { subject: key, got: value });
    next[key] = value;
  }
  current = Object.freeze(next as unknown as Limits);
  setJsonSizeCaps({ manifest: current.maxManifestBytes, config: current.maxConfigBytes });
  return current;
}

/** Back to DEFAULT_LIMITS (a CLI run starts here). */
export function resetLimits(): Limits {
  current = DEFAULT_LIMITS;
  setJsonSizeCaps({ manifest: current.maxManifestBytes, config: current.maxConfigBytes });
  return current;
}

/** `"aaaa…zzzz"` (JSON-quoted) when a name is longer than `max` characters: errors stay one short line. */
export function shortName(name: string, max = 120): string {
  if (name.length <= max) return JSON.stringify(name);
  const half = Math.floor((max - 1) / 2);
  return `${JSON.stringify(name.slice(0, half)).slice(0, -1)}…${JSON.stringify(name.slice(-half)).slice(1)}`;
}
