/**
 * One error base for all of berth. Every thrown error is a BerthError with a stable code;
 * callers branch on `code`, never on message text. Messages are lowercase, no trailing period,
 * shaped "what failed, on what: detail (want …, got …)".
 */

export const ERROR_CODES = [
  'BERTH_USAGE', // bad command-line use (exit 2)
  'BERTH_INVALID_DIGEST',
  'BERTH_DIGEST_MISMATCH',
  'BERTH_SIZE_MISMATCH',
  'BERTH_INVALID_JSON',
  'BERTH_INVALID_MANIFEST',
  'BERTH_INVALID_INDEX',
  'BERTH_INVALID_CONFIG',
  'BERTH_INVALID_DESCRIPTOR',
  'BERTH_INVALID_PLATFORM',
  'BERTH_INVALID_REFERENCE',
  'BERTH_INVALID_LAYOUT',
  'BERTH_INVALID_ARCHIVE',
  'BERTH_INVALID_TAR',
  'BERTH_INVALID_LAYER',
  'BERTH_UNSAFE_PATH',
  'BERTH_UNKNOWN_MEDIA_TYPE',
  'BERTH_UNSUPPORTED',
  'BERTH_NOT_FOUND',
  'BERTH_AMBIGUOUS',
  'BERTH_NO_MATCHING_PLATFORM',
  'BERTH_TOO_LARGE',
  'BERTH_LIMIT',
  'BERTH_COMPRESSION',
  'BERTH_EXISTS',
  'BERTH_IO',
  'BERTH_VERIFY_FAILED',
  'BERTH_AUTH', // a registry refused the credentials, or asked for some (401/403)
  'BERTH_ABORTED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const BRAND = Symbol.for('berth.error');

export interface BerthErrorOptions {
  /** JSON-path-like location of the bad field, e.g. `manifests[2].digest`. */
  readonly path?: string;
  /** The object the error is about (a blob digest, a file name, a reference). */
  readonly subject?: string;
  readonly want?: unknown;
  readonly got?: unknown;
  readonly cause?: unknown;
}

export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly path: string | undefined;
  readonly subject: string | undefined;
  readonly want: unknown;
  readonly got: unknown;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, opts: BerthErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BerthError';
    this.code = code;
    this.path = opts.path;
    this.subject = opts.subject;
    this.want = opts.want;
    this.got = opts.got;
  }
}

/** True when `err` is a BerthError (from any copy of berth), optionally with the given code. */
export function isBerthError(err: unknown, code?: ErrorCode): err is BerthError {
  if (typeof err !== 'object' || err === null || !(BRAND in err)) return false;
  return code === undefined || (err as BerthError).code === code;
}

/**
 * Adds one phrase of context in front of an error, keeping its code (wrap once per layer).
 * A non-Berth error becomes BERTH_IO (file system and network failures) with its message kept.
 */
export function withContext(err: unknown, phrase: string): BerthError {
  if (isBerthError(err)) {
    return new BerthError(err.code, `${phrase}: ${err.message}`, {
      path: err.path, subject: err.subject, want: err.want, got: err.got, cause: err,
    });
  }
  return new BerthError(ioCode(err), `${phrase}: ${describeForeignError(err)}`, { cause: err });
}

/** Converts anything thrown into a BerthError, keeping BerthErrors as they are. */
export function toBerthError(err: unknown): BerthError {
  if (isBerthError(err)) return err;
  return new BerthError(ioCode(err), describeForeignError(err), { cause: err });
}

function ioCode(err: unknown): ErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'BERTH_NOT_FOUND';
  if (code === 'ABORT_ERR') return 'BERTH_ABORTED';
  return 'BERTH_IO';
}

/** Node's system errors say "ENOENT: no such file or directory, open 'x'"; keep that, lowercase first word. */
function describeForeignError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Builds the JSON-path text for a field: fieldPath('manifests', 2, 'digest') → `manifests[2].digest`. */
export function fieldPath(...parts: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of parts) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (part === '') continue;
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}
