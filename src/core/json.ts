/**
 * Strict JSON decoding for manifests, indexes and configs, plus the small typed accessors the
 * spec parsers share. Pure: no I/O.
 *
 * Conventions of the accessors: an optional field that is `null` counts as absent (Go encoders
 * write `null` for nil slices and maps); every error names the JSON path of the bad field first,
 * e.g. `layers[2].size: must be a non-negative safe integer, got -1`.
 */
import { BerthError, fieldPath, type ErrorCode } from './errors.js';

/** Default cap for one manifest, index or config blob: 4 MiB (the distribution-spec limit). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Default cap for one image config: 8 MiB. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/**
 * The caps the parsers use when the caller gives none. A module-level setting (no I/O) that
 * io/limits.ts configureLimits keeps in step with the configured limits.
 */
let caps = { manifest: MAX_MANIFEST_BYTES, config: MAX_CONFIG_BYTES };

export function setJsonSizeCaps(c: { readonly manifest?: number; readonly config?: number }): void {
  caps = { manifest: c.manifest ?? caps.manifest, config: c.config ?? caps.config };
}

export function jsonSizeCaps(): { readonly manifest: number; readonly config: number } {
  return caps;
}

export type JsonObject = { readonly [key: string]: unknown };

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes UTF-8 JSON bytes into a plain value. Throws BERTH_TOO_LARGE when `bytes` is longer than
 * `maxBytes`, BERTH_INVALID_JSON (one line, naming `what`, with line and column) on bad UTF-8 or
 * bad JSON. A byte-order mark is rejected like any other stray byte.
 */
export function parseJsonBytes(bytes: Uint8Array, what: string, maxBytes = caps.manifest): unknown {
  if (bytes.length > maxBytes) {
    throw new BerthError('BERTH_TOO_LARGE', `parsing ${what}: ${bytes.length} bytes is over the limit (want at most ${maxBytes}, got ${bytes.length})`, {
      subject: what, want: maxBytes, got: bytes.length,
    });
  }
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch (err) {
    const at = firstInvalidUtf8(bytes);
    const { line, column } = lineColumnOfByte(bytes, at);
    throw new BerthError('BERTH_INVALID_JSON', `parsing ${what}: invalid UTF-8 at line ${line}, column ${column} (byte ${at})`, {
      subject: what, cause: err,
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const found = findJsonSyntaxError(text);
    const at = found?.at ?? text.length;
    const detail = found?.detail ?? 'not valid JSON';
    const { line, column } = lineColumnOfChar(text, at);
    throw new BerthError('BERTH_INVALID_JSON', `parsing ${what}: invalid JSON at line ${line}, column ${column}: ${detail}`, {
      subject: what, cause: err,
    });
  }
}

/** Encodes a value as compact JSON bytes (UTF-8, no trailing newline). */
export function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/**
 * Appends keys or indexes to a path already built (fieldPath treats each string as one key, so it
 * would quote a built path): childPath('layers[0]', 'digest') → `layers[0].digest`.
 */
export function childPath(base: string, ...parts: ReadonlyArray<string | number>): string {
  const tail = fieldPath(...parts);
  if (base === '') return tail;
  if (tail === '') return base;
  return tail.startsWith('[') ? `${base}${tail}` : `${base}.${tail}`;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON type name of a value, for messages: `null`, `array`, `object`, `string`, `number`, `boolean`. */
export function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * A field reader bound to one error code and a subject (the object being parsed). Each method
 * takes the JSON object, the key and the path of the object, and throws `code` naming the field.
 */
export class JsonFields {
  constructor(readonly code: ErrorCode, readonly subject?: string) {}

  fail(path: string, detail: string, extra: { want?: unknown; got?: unknown; cause?: unknown } = {}): never {
    const where = path === '' ? (this.subject ?? 'document') : path;
    throw new BerthError(this.code, `${where}: ${detail}`, {
      path, ...(this.subject === undefined ? {} : { subject: this.subject }), ...extra,
    });
  }

  object(value: unknown, path: string): JsonObject {
    if (!isJsonObject(value)) this.fail(path, `must be a JSON object, got ${jsonTypeOf(value)}`);
    return value;
  }

  /** A required field: throws "missing" when the key is absent or null. */
  required(obj: JsonObject, key: string, path: string): unknown {
    const v = obj[key];
    if (v === undefined || v === null) this.fail(childPath(path, key), v === null ? 'must not be null' : 'missing');
    return v;
  }

  string(obj: JsonObject, key: string, path: string): string {
    const v = this.required(obj, key, path);
    if (typeof v !== 'string') this.fail(childPath(path, key), `must be a string, got ${jsonTypeOf(v)}`);
    return v;
  }

  optionalString(obj: JsonObject, key: string, path: string): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(childPath(path, key), `must be a string, got ${jsonTypeOf(v)}`);
    return v;
  }

  optionalBoolean(obj: JsonObject, key: string, path: string): boolean | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail(childPath(path, key), `must be a boolean, got ${jsonTypeOf(v)}`);
    return v;
  }

  optionalNumber(obj: JsonObject, key: string, path: string): number | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number') this.fail(childPath(path, key), `must be a number, got ${jsonTypeOf(v)}`);
    return v;
  }

  optionalStringArray(obj: JsonObject, key: string, path: string): readonly string[] | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    const p = childPath(path, key);
    if (!Array.isArray(v)) this.fail(p, `must be an array of strings, got ${jsonTypeOf(v)}`);
    v.forEach((item: unknown, i) => {
      if (typeof item !== 'string') this.fail(childPath(p, i), `must be a string, got ${jsonTypeOf(item)}`);
    });
    return v as string[];
  }

  /** An optional map of string to string (annotations, labels). */
  optionalStringMap(obj: JsonObject, key: string, path: string): Readonly<Record<string, string>> | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    const p = childPath(path, key);
    if (!isJsonObject(v)) this.fail(p, `must be an object of strings, got ${jsonTypeOf(v)}`);
    for (const [k, item] of Object.entries(v)) {
      if (typeof item !== 'string') this.fail(childPath(p, k), `must be a string, got ${jsonTypeOf(item)}`);
    }
    return v as Record<string, string>;
  }

  /** An optional object whose values must be objects (ExposedPorts, Volumes: `{"80/tcp": {}}`). */
  optionalObjectMap(obj: JsonObject, key: string, path: string): Readonly<Record<string, JsonObject>> | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    const p = childPath(path, key);
    if (!isJsonObject(v)) this.fail(p, `must be an object, got ${jsonTypeOf(v)}`);
    for (const [k, item] of Object.entries(v)) {
      if (!isJsonObject(item)) this.fail(childPath(p, k), `must be an object, got ${jsonTypeOf(item)}`);
    }
    return v as Record<string, JsonObject>;
  }

  /** An optional array; `null` reads as absent. Returns the items for the caller to check. */
  optionalArray(obj: JsonObject, key: string, path: string): readonly unknown[] | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) this.fail(childPath(path, key), `must be an array, got ${jsonTypeOf(v)}`);
    return v as unknown[];
  }
}

// ---------------------------------------------------------------------------------------------
// Error location. JSON.parse messages differ between V8 versions and often omit the position, so
// on failure a small RFC 8259 scanner finds the first bad character itself.

interface SyntaxProblem {
  readonly at: number;
  readonly detail: string;
}

/** Where `text` stops being valid JSON (RFC 8259), or undefined when it is valid. */
export function findJsonSyntaxError(text: string): SyntaxProblem | undefined {
  let i = 0;
  const n = text.length;
  class Stop {
    constructor(readonly p: SyntaxProblem) {}
  }
  const fail = (detail?: string): never => {
    throw new Stop({ at: i, detail: detail ?? (i >= n ? 'unexpected end of input' : `unexpected ${describeChar(text, i)}`) });
  };
  const ws = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const literal = (word: string): void => {
    for (const ch of word) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const string = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail(`unescaped control ${describeChar(text, i)} in string`);
      if (c === 0x5c) {
        i++;
        const e = text[i];
        if (e === 'u') {
          for (let k = 1; k <= 4; k++) {
            if (!/[0-9a-fA-F]/.test(text[i + k] ?? '')) {
              i += k;
              fail('bad \\u escape in string');
            }
          }
          i += 5;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i++;
        } else {
          fail('bad escape in string');
        }
        continue;
      }
      i++;
    }
  };
  const number = (): void => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else if (/[1-9]/.test(text[i] ?? '')) while (/[0-9]/.test(text[i] ?? '')) i++;
    else fail();
    if (text[i] === '.') {
      i++;
      if (!/[0-9]/.test(text[i] ?? '')) fail();
      while (/[0-9]/.test(text[i] ?? '')) i++;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (!/[0-9]/.test(text[i] ?? '')) fail();
      while (/[0-9]/.test(text[i] ?? '')) i++;
    }
  };
  const value = (depth: number): void => {
    // Deeper recursion overflows the stack (a RangeError) before 10 000 levels: stop well before.
    if (depth > 1_000) fail('nesting too deep (more than 1000 levels)');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(i >= n ? undefined : `expected a property name, got ${describeChar(text, i)}`);
        string();
        ws();
        if (text[i] !== ':') fail(i >= n ? undefined : `expected ":", got ${describeChar(text, i)}`);
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(i >= n ? undefined : `expected "," or "}", got ${describeChar(text, i)}`);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(i >= n ? undefined : `expected "," or "]", got ${describeChar(text, i)}`);
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    fail();
  };
  try {
    value(0);
    ws();
    if (i < n) fail(`unexpected ${describeChar(text, i)} after the end of the value`);
    return undefined;
  } catch (err) {
    if (err instanceof Stop) return err.p;
    throw err;
  }
}

function describeChar(text: string, i: number): string {
  const cp = text.codePointAt(i) ?? 0;
  if (cp < 0x20 || cp === 0x7f || cp === 0xfeff) return `character U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return JSON.stringify(String.fromCodePoint(cp));
}

/** 1-based line and column (in UTF-16 code units, as editors count) of character `at`. */
function lineColumnOfChar(text: string, at: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < at && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: at - start + 1 };
}

/** 1-based line and column (in bytes) of byte `at`. */
function lineColumnOfByte(bytes: Uint8Array, at: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < at && i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: at - start + 1 };
}

/** Offset of the first byte that breaks UTF-8 (overlongs, surrogates and > U+10FFFF included). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (c >= 0xc2 && c <= 0xdf) [need, min, cp] = [1, 0x80, c & 0x1f];
    else if (c >= 0xe0 && c <= 0xef) [need, min, cp] = [2, 0x800, c & 0x0f];
    else if (c >= 0xf0 && c <= 0xf4) [need, min, cp] = [3, 0x10000, c & 0x07];
    else return i;
    for (let k = 1; k <= need; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return b.length;
}
