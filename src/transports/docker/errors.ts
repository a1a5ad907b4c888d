/**
 * Registry answers as berth errors: the distribution error JSON (`{"errors":[{code,message,
 * detail}]}`) folded into one line that names the operation, the repository and the digest, with
 * the HTTP status mapped to an error code. URLs are redacted before they reach any message.
 */
import { BerthError, isBerthError, type ErrorCode } from '../../core/errors.js';

export interface RegistryErrorEntry {
  readonly code: string;
  readonly message: string;
  readonly detail?: unknown;
}

/** Parses the registry's error body; undefined when it is not the distribution error JSON. */
export function parseErrorBody(body: Uint8Array | string): RegistryErrorEntry[] | undefined {
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const errors = (json as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return undefined;
  const out: RegistryErrorEntry[] = [];
  for (const e of errors) {
    if (typeof e !== 'object' || e === null) continue;
    const { code, message, detail } = e as { code?: unknown; message?: unknown; detail?: unknown };
    out.push({
      code: typeof code === 'string' ? code : 'UNKNOWN',
      message: typeof message === 'string' ? message : '',
      ...(detail === undefined ? {} : { detail }),
    });
  }
  return out;
}

/** HTTP status → berth error code (callers branch on the code, never on the text). */
export function codeForStatus(status: number, entries: readonly RegistryErrorEntry[] = []): ErrorCode {
  const codes = new Set(entries.map((e) => e.code));
  if (status === 404 || codes.has('MANIFEST_UNKNOWN') || codes.has('BLOB_UNKNOWN') || codes.has('NAME_UNKNOWN')) return 'BERTH_NOT_FOUND';
  if (status === 401 || status === 403 || codes.has('UNAUTHORIZED') || codes.has('DENIED')) return 'BERTH_AUTH';
  if (status === 405 || codes.has('UNSUPPORTED')) return 'BERTH_UNSUPPORTED';
  if (status === 429 || codes.has('TOOMANYREQUESTS')) return 'BERTH_IO';
  if (status === 400 && (codes.has('MANIFEST_INVALID') || codes.has('DIGEST_INVALID') || codes.has('SIZE_INVALID'))) return 'BERTH_INVALID_MANIFEST';
  return 'BERTH_IO';
}

/** True for an error built from a 401 or 403 answer. */
export function isAuthFailure(err: unknown): boolean {
  if (isBerthError(err, 'BERTH_AUTH')) return true;
  const got = (err as { got?: unknown } | null)?.got;
  return got === 401 || got === 403;
}

/** One line: `registry answered 401 UNAUTHORIZED: authentication required`. */
export function describeAnswer(status: number, body: Uint8Array | string | undefined, statusText?: string): string {
  const entries = body === undefined ? undefined : parseErrorBody(body);
  if (entries !== undefined && entries.length > 0) {
    const parts = entries.map((e) => `${e.code}${e.message === '' ? '' : `: ${e.message}`}${describeDetail(e.detail)}`);
    return `registry answered ${status} ${parts.join('; ')}`;
  }
  const oauth = body === undefined ? undefined : parseOAuthError(body);
  if (oauth !== undefined) return `registry answered ${status} ${oauth}`;
  const text = body === undefined ? '' : (typeof body === 'string' ? body : Buffer.from(body).toString('utf8')).replace(/\s+/g, ' ').trim();
  const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return `registry answered ${status}${statusText ? ` ${statusText}` : ''}${shown === '' ? '' : `: ${shown}`}`;
}

/** An OAuth2 error answer (RFC 6749 §5.2: `{"error":"invalid_grant","error_description":"…"}`) as one phrase. */
function parseOAuthError(body: Uint8Array | string): string | undefined {
  try {
    const json = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8')) as { error?: unknown; error_description?: unknown };
    if (typeof json.error !== 'string' || json.error === '') return undefined;
    const desc = typeof json.error_description === 'string' && json.error_description !== '' ? `: ${json.error_description.slice(0, 200)}` : '';
    return `${json.error}${desc}`;
  } catch {
    return undefined;
  }
}

function describeDetail(detail: unknown): string {
  if (detail === undefined || detail === null) return '';
  if (typeof detail === 'string') return detail === '' ? '' : ` (${detail.slice(0, 200)})`;
  if (Array.isArray(detail)) {
    // auth errors carry the access that was missing: [{Type, Name, Action}]
    const access = detail
      .map((d) => (typeof d === 'object' && d !== null ? [(d as Record<string, unknown>).Type, (d as Record<string, unknown>).Name, (d as Record<string, unknown>).Action].filter((x) => typeof x === 'string').join(':') : ''))
      .filter((s) => s !== '');
    return access.length > 0 ? ` for ${access.join(', ')}` : '';
  }
  if (typeof detail === 'object') {
    const pairs = Object.entries(detail as Record<string, unknown>)
      .filter(([, v]) => typeof v === 'string' || typeof v === 'number')
      .map(([k, v]) => `${k.toLowerCase()} ${String(v)}`);
    return pairs.length > 0 ? ` (${pairs.join(', ')})` : '';
  }
  return '';
}

/** The error for a registry answer that is not what the operation wanted. */
export function registryError(operation: string, status: number, body: Uint8Array | string | undefined, opts: { statusText?: string; subject?: string; hint?: string } = {}): BerthError {
  const entries = body === undefined ? [] : parseErrorBody(body) ?? [];
  const code = codeForStatus(status, entries);
  return new BerthError(code, `${operation}: ${describeAnswer(status, body, opts.statusText)}${opts.hint ? ` (${opts.hint})` : ''}`, {
    ...(opts.subject === undefined ? {} : { subject: opts.subject }),
    got: status,
  });
}

const SECRET_PARAM = /(?:token|secret|password|passwd|signature|sig|credential|key|auth|code|session)/i;

/**
 * A URL safe to print: no user:password, and query parameters that look like secrets (tokens,
 * S3/GCS/Azure signatures) replaced by `REDACTED`.
 */
export function redactUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(url.toString());
  } catch {
    return '(unprintable URL)';
  }
  if (u.username !== '' || u.password !== '') {
    u.username = '';
    u.password = '';
  }
  for (const key of [...u.searchParams.keys()]) {
    if (SECRET_PARAM.test(key) || /^x-amz-/i.test(key) || /^x-goog-/i.test(key)) u.searchParams.set(key, 'REDACTED');
  }
  return u.toString();
}

/** Removes anything shaped like a credential from free text (error messages of lower layers). */
export function redactText(text: string): string {
  return text
    .replace(/\b(https?:\/\/)[^/\s:@]+:[^/\s@]+@/gi, '$1')
    .replace(/\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]+/g, '$1 REDACTED')
    .replace(/https?:\/\/[^\s"']+/g, (m) => redactUrl(m));
}
