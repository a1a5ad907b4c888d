/** Errors across a worker thread boundary: a BerthError as plain cloneable fields, and back. */
import { BerthError, toBerthError, type ErrorCode } from '../../core/errors.js';

export interface SentError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly subject?: string;
  readonly path?: string;
  readonly want?: unknown;
  readonly got?: unknown;
}

/** The fields of `err` (as a BerthError) that postMessage can clone; other want/got values become strings. */
export function sendable(err: unknown): SentError {
  const e = toBerthError(err);
  const plain = (v: unknown): unknown => (v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : String(v));
  return {
    code: e.code, message: e.message,
    ...(e.subject !== undefined ? { subject: e.subject } : {}),
    ...(e.path !== undefined ? { path: e.path } : {}),
    ...(e.want !== undefined ? { want: plain(e.want) } : {}),
    ...(e.got !== undefined ? { got: plain(e.got) } : {}),
  };
}

/** The BerthError a worker sent. */
export function revived(e: SentError): BerthError {
  return new BerthError(e.code, e.message, {
    ...(e.subject !== undefined ? { subject: e.subject } : {}), ...(e.path !== undefined ? { path: e.path } : {}), want: e.want, got: e.got,
  });
}
