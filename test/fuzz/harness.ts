/**
 * The fuzz harness: what a fuzz case must do (end in a result or in a BerthError with a known
 * code, within a deadline), the byte and JSON mutators the targets share, and heap checks.
 *
 * A target is a fast-check arbitrary plus an async `run`. The short tests (test/fuzz/*.test.ts)
 * run every target with fixed seeds inside `npm test`; the long runner (run.ts) runs random seeds
 * for a number of minutes. A failure is reproduced from its target name, seed and path alone.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { ERROR_CODES, isBerthError } from '../../src/core/errors.js';

/** What went wrong in one case (thrown out of the property so fast-check reports and shrinks it). */
export class FuzzFailure extends Error {
  constructor(readonly kind: 'foreign-error' | 'timeout' | 'bad-code' | 'property', message: string, readonly original?: unknown) {
    super(message, original === undefined ? undefined : { cause: original });
    this.name = 'FuzzFailure';
    if (original instanceof Error && original.stack !== undefined) this.stack = `${this.name}: ${message}\n--- original stack ---\n${original.stack}`;
  }
}

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** Undefined when `err` is an acceptable failure (a BerthError with a known code), else why not. */
export function unacceptable(err: unknown): FuzzFailure | undefined {
  if (err instanceof FuzzFailure) return err;
  if (isBerthError(err)) {
    if (typeof err.code === 'string' && KNOWN_CODES.has(err.code)) return undefined;
    return new FuzzFailure('bad-code', `BerthError with unknown code ${JSON.stringify(err.code)}: ${err.message}`, err);
  }
  const name = err instanceof Error ? `${err.constructor.name}` : typeof err;
  const msg = err instanceof Error ? err.message : String(err);
  return new FuzzFailure('foreign-error', `${name} escaped instead of a BerthError: ${msg}`, err);
}

/** Rejects with a FuzzFailure('timeout') when `work` has not settled after `ms`. */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FuzzFailure('timeout', `${what}: no result after ${ms} ms (a hang?)`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs one operation of a case: resolves when it returned or threw an acceptable BerthError;
 * throws a FuzzFailure for anything else, or when it is still running after `ms`.
 */
export async function expectClean<T>(what: string, fn: () => T | Promise<T>, ms = DEFAULT_DEADLINE_MS): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  let work: Promise<T>;
  try {
    work = Promise.resolve(fn());
  } catch (err) {
    work = Promise.reject(err);
  }
  const op = what.split(' ')[0]!;
  try {
    const value = await withDeadline(work, ms, what);
    countOutcome(op, 'ok');
    return { ok: true, value };
  } catch (err) {
    const bad = unacceptable(err);
    if (bad !== undefined) {
      countOutcome(op, bad.kind);
      if (bad.kind === 'timeout') throw bad;
      throw new FuzzFailure(bad.kind, `${what}: ${bad.message}`, bad.original ?? err);
    }
    countOutcome(op, (err as { code: string }).code);
    return { ok: false, error: err };
  }
}

/** How operations ended, `op → outcome → count` (`ok` or the error code): shows how deep the cases reach. */
export const outcomes = new Map<string, Map<string, number>>();

function countOutcome(op: string, outcome: string): void {
  let m = outcomes.get(op);
  if (m === undefined) outcomes.set(op, (m = new Map()));
  m.set(outcome, (m.get(outcome) ?? 0) + 1);
}

/** The outcome table as plain data (for posting between threads). */
export function outcomeSnapshot(): Record<string, Record<string, number>> {
  return Object.fromEntries([...outcomes].map(([op, m]) => [op, Object.fromEntries(m)]));
}

/** Deadline per operation: generous, since CI machines are slow and a real hang never ends. */
export const DEFAULT_DEADLINE_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Byte mutations. Positions are arbitrary naturals taken modulo the input length, so the same
// mutation list applies to any input and shrinks well.

export type ByteMutation =
  | { readonly op: 'flip'; readonly at: number; readonly bit: number }
  | { readonly op: 'set'; readonly at: number; readonly value: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly op: 'delete'; readonly at: number; readonly length: number }
  | { readonly op: 'duplicate'; readonly at: number; readonly length: number }
  | { readonly op: 'ascii'; readonly at: number; readonly text: string };

/** Text that parsers of numbers, octal fields and lengths find interesting. */
export const INTERESTING_TEXT = [
  '0', '-1', '9', '77777777777', '777777777777', '99999999999999999999', '1e400', '-0', 'NaN', ' ', '\0', '\n',
  '4294967296', '9007199254740993', '18446744073709551615', '0x10', '1.5', '"', '{', '[', '}', ']', 'null', '\u00ff', '\ud800',
];

export const byteMutationArb: fc.Arbitrary<ByteMutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0, 0x20, 0x30, 0x37, 0x38, 0x7f, 0x80, 0xff) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 600 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 1100 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('ascii' as const), at: fc.nat(), text: fc.constantFrom(...INTERESTING_TEXT) }) },
);

export const byteMutationsArb = fc.array(byteMutationArb, { minLength: 1, maxLength: 6 });

export function applyByteMutations(input: Uint8Array, muts: readonly ByteMutation[]): Uint8Array {
  let b: Uint8Array = new Uint8Array(input);
  for (const m of muts) b = applyByteMutation(b, m);
  return b;
}

function applyByteMutation(b: Uint8Array, m: ByteMutation): Uint8Array {
  const n = b.length;
  switch (m.op) {
    case 'flip':
      if (n > 0) b[m.at % n]! ^= 1 << m.bit;
      return b;
    case 'set':
      if (n > 0) b[m.at % n] = m.value;
      return b;
    case 'truncate':
      return b.subarray(0, n === 0 ? 0 : m.at % n);
    case 'insert': {
      const at = m.at % (n + 1);
      return concat(b.subarray(0, at), m.bytes, b.subarray(at));
    }
    case 'delete': {
      if (n === 0) return b;
      const at = m.at % n;
      return concat(b.subarray(0, at), b.subarray(Math.min(n, at + m.length)));
    }
    case 'duplicate': {
      if (n === 0) return b;
      const at = m.at % n;
      const piece = b.subarray(at, Math.min(n, at + m.length));
      return concat(b.subarray(0, at), piece, piece, b.subarray(at + piece.length));
    }
    case 'ascii': {
      if (n === 0) return b;
      const text = Buffer.from(m.text, 'utf8');
      const at = m.at % n;
      b.set(text.subarray(0, n - at), at);
      return b;
    }
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JSON-aware mutations: parse the document, pick a node by number (modulo the node count), and
// replace it with a value JSON parsers of container formats find interesting, delete it, or
// change its type. The result is re-serialised, so it stays valid JSON and reaches the
// validators behind the JSON parser.

export type JsonMutation =
  | { readonly op: 'replace'; readonly pick: number; readonly value: unknown }
  | { readonly op: 'delete'; readonly pick: number }
  | { readonly op: 'wrap'; readonly pick: number; readonly asArray: boolean }
  | { readonly op: 'swap'; readonly pick: number; readonly other: number };

/** Values that break naive validators: wrong types, huge or negative numbers, odd strings. */
export const nastyJsonValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null, true, false, 0, -1, 1.5, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, '', ' ', '\u0000', '../../etc/passwd', '/abs',
    'sha256:', 'sha256:' + 'a'.repeat(64), 'sha256:' + 'A'.repeat(64), 'sha512:' + 'b'.repeat(128), 'sha256:' + '0'.repeat(63), 'md5:abc',
    'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws',
    'application/vnd.oci.image.config.v1+json', 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd',
    'application/vnd.in-toto+json', 'layers', 'linux', 'amd64', 'arm', 'v7', '2006-01-02T15:04:05Z', 'not-a-date', 'e30=', '====',
    [], {}, [null], [[]], { mediaType: null }, { digest: 1, size: 'x' }, ['sha256:' + 'c'.repeat(64)],
    // objects whose keys shadow Object.prototype: String(), template literals and `in` checks trip on them
    { toString: 1 }, { valueOf: 'x', toString: null }, JSON.parse('{"__proto__":{"digest":"x"}}') as unknown, { constructor: 1 }, { hasOwnProperty: 1 }, { length: 3 },
  ),
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double(),
);

export const jsonMutationArb: fc.Arbitrary<JsonMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('replace' as const), pick: fc.nat(), value: nastyJsonValueArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('wrap' as const), pick: fc.nat(), asArray: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('swap' as const), pick: fc.nat(), other: fc.nat() }) },
);

export const jsonMutationsArb = fc.array(jsonMutationArb, { minLength: 1, maxLength: 4 });

interface Slot {
  readonly parent: Record<string, unknown> | unknown[] | undefined;
  readonly key: string | number;
  readonly value: unknown;
}

function slots(root: unknown): Slot[] {
  const out: Slot[] = [{ parent: undefined, key: '', value: root }];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        out.push({ parent: v, key: i, value: item });
        walk(item);
      });
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, item] of Object.entries(v)) {
        out.push({ parent: v as Record<string, unknown>, key: k, value: item });
        walk(item);
      }
    }
  };
  walk(root);
  return out;
}

function put(root: unknown, s: Slot, value: unknown): unknown {
  if (s.parent === undefined) return value;
  (s.parent as Record<string | number, unknown>)[s.key] = value;
  return root;
}

/** Applies JSON mutations to a document; returns undefined when the bytes are not JSON. */
export function applyJsonMutations(bytes: Uint8Array, muts: readonly JsonMutation[]): Uint8Array | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return undefined;
  }
  for (const m of muts) {
    const all = slots(doc);
    const s = all[m.pick % all.length]!;
    switch (m.op) {
      case 'replace':
        doc = put(doc, s, structuredClone(m.value));
        break;
      case 'delete':
        if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
        else if (s.parent !== undefined) delete (s.parent as Record<string, unknown>)[s.key as string];
        else doc = null;
        break;
      case 'wrap':
        doc = put(doc, s, m.asArray ? [s.value] : { value: s.value });
        break;
      case 'swap': {
        const o = all[m.other % all.length]!;
        if (o.parent === undefined || s.parent === undefined) break;
        const a = s.value;
        (s.parent as Record<string | number, unknown>)[s.key] = structuredClone(o.value);
        (o.parent as Record<string | number, unknown>)[o.key] = structuredClone(a);
        break;
      }
    }
  }
  return new TextEncoder().encode(JSON.stringify(doc));
}

/** Either kind of mutation, for inputs that may or may not be JSON. */
export type AnyMutation = { readonly kind: 'bytes'; readonly muts: readonly ByteMutation[] } | { readonly kind: 'json'; readonly muts: readonly JsonMutation[] };

export const anyMutationArb: fc.Arbitrary<AnyMutation> = fc.oneof(
  fc.record({ kind: fc.constant('bytes' as const), muts: byteMutationsArb }),
  fc.record({ kind: fc.constant('json' as const), muts: jsonMutationsArb }),
);

export function applyAnyMutation(bytes: Uint8Array, m: AnyMutation): Uint8Array {
  if (m.kind === 'bytes') return applyByteMutations(bytes, m.muts);
  return applyJsonMutations(bytes, m.muts) ?? applyByteMutations(bytes, [{ op: 'flip', at: m.muts.length * 7919, bit: 3 }]);
}

// ---------------------------------------------------------------------------------------------
// Heap.

let collector: (() => void) | undefined;

/** A function that forces a full collection: `gc` when exposed, else one made by enabling the flag at run time. */
function forceGc(): (() => void) | undefined {
  if (collector !== undefined) return collector;
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return (collector = g);
  try {
    v8.setFlagsFromString('--expose-gc');
    const made = vm.runInNewContext('gc') as unknown;
    if (typeof made === 'function') collector = made as () => void;
  } catch {
    collector = undefined;
  }
  return collector;
}

/** Heap in use after a full collection (when one can be forced, which is the usual case). */
export function heapUsed(): number {
  forceGc()?.();
  return process.memoryUsage().heapUsed;
}

/** Heap limit for one fuzz process: a batch may not leave more than this in use. */
export const HEAP_LIMIT_BYTES = 768 * 1024 * 1024;

/** Bytes shown in messages: short hex of at most `max` bytes. */
export function showBytes(b: Uint8Array, max = 64): string {
  const hex = Buffer.from(b.subarray(0, max)).toString('hex');
  return `${b.length} bytes ${hex}${b.length > max ? '…' : ''}`;
}
