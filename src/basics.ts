/**
 * The part of the public API that loads no transport: errors, digests, platforms and limits.
 * src/index.ts exports the same names; the CLI imports this file so `berth --help` stays cheap.
 */
export { BerthError, isBerthError, toBerthError, type ErrorCode } from './core/errors.js';
export { parseDigest, shortDigest, type Digest } from './core/digest.js';
export { parsePlatform, formatPlatform, type Platform } from './core/platform.js';
export { configureLimits, resetLimits, limits, DEFAULT_LIMITS, type Limits } from './io/limits.js';
