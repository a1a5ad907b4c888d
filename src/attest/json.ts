/**
 * Small shape checks shared by the attestation decoders (internal: not re-exported).
 * Every failure is a BerthError whose message starts with the path of the bad field and ends
 * with the document it was found in, e.g. `predicate.builder.id: must be a string, got number
 * (in layer sha256:2641…)`.
 */
import { BerthError, fieldPath, type ErrorCode } from '../core/errors.js';

export type JsonObject = Record<string, unknown>;

/** Where a value came from: the document description and the code to throw for bad shapes. */
export interface ShapeContext {
  readonly what: string;
  readonly code: ErrorCode;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `null`, `array`, or the `typeof` name: used in "got …" details. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

export function invalid(ctx: ShapeContext, path: string, detail: string, code: ErrorCode = ctx.code): BerthError {
  const where = path === '' ? '' : `${path}: `;
  return new BerthError(code, `${where}${detail} (in ${ctx.what})`, {
    ...(path === '' ? {} : { path }),
    subject: ctx.what,
  });
}

type PathParts = ReadonlyArray<string | number>;

/** A string field that may be absent (undefined or null); any other type is an error. */
export function optString(obj: JsonObject, key: string, ctx: ShapeContext, at: PathParts): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(ctx, fieldPath(...at, key), `must be a string, got ${typeName(value)}`);
  return value;
}

export function optBoolean(obj: JsonObject, key: string, ctx: ShapeContext, at: PathParts): boolean | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalid(ctx, fieldPath(...at, key), `must be a boolean, got ${typeName(value)}`);
  return value;
}

export function optObject(obj: JsonObject, key: string, ctx: ShapeContext, at: PathParts): JsonObject | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid(ctx, fieldPath(...at, key), `must be an object, got ${typeName(value)}`);
  return value;
}

export function optArray(obj: JsonObject, key: string, ctx: ShapeContext, at: PathParts): readonly unknown[] | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw invalid(ctx, fieldPath(...at, key), `must be an array, got ${typeName(value)}`);
  return value;
}

/** An object whose values must all be strings (digest sets, build args); absent → undefined. */
export function optStringMap(
  obj: JsonObject,
  key: string,
  ctx: ShapeContext,
  at: PathParts,
): Record<string, string> | undefined {
  const value = optObject(obj, key, ctx, at);
  if (value === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalid(ctx, fieldPath(...at, key, k), `must be a string, got ${typeName(v)}`);
    out[k] = v;
  }
  return out;
}

/** Compares by UTF-16 code units, so output order does not depend on the locale. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
