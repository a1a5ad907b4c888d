/**
 * in-toto Statements as BuildKit stores them in attestation manifests (formats.md §12.3).
 *
 * Accepted: Statement v0.1 and v1 (`_type`), a DSSE envelope around one (unwrapped, signatures
 * not checked), and a bare predicate without a statement around it (BuildKit's `.dockerbuild`
 * history records store the SLSA predicate alone); its predicate type comes from the layer's
 * `in-toto.io/predicate-type` annotation, else it is guessed from the document's shape.
 *
 * Errors: bad JSON text (syntax, not UTF-8) and bad shapes are BERTH_INVALID_JSON, a malformed
 * subject digest is BERTH_INVALID_DIGEST, an unknown `_type` is BERTH_UNSUPPORTED, input over
 * the size cap is BERTH_TOO_LARGE. Shape errors start with the field path (`subject[0].digest`).
 */
import { digestProblem } from '../core/digest.js';
import { BerthError, fieldPath } from '../core/errors.js';
import { invalid, isObject, optString, typeName, type JsonObject, type ShapeContext } from './json.js';

export const STATEMENT_TYPE_V01 = 'https://in-toto.io/Statement/v0.1';
export const STATEMENT_TYPE_V1 = 'https://in-toto.io/Statement/v1';
/** Layer annotation BuildKit sets to the statement's predicate type. */
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';
/** DSSE envelope payload type for an in-toto statement. */
export const DSSE_IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** BuildKit caps attestations at 40 MiB; berth refuses anything over 64 MiB. */
export const MAX_STATEMENT_BYTES = 64 * 1024 * 1024;

// Local copies of the predicate types used to recognise a bare predicate (see attestation.ts).
const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';
const SLSA_V1 = 'https://slsa.dev/provenance/v1';
const SPDX = 'https://spdx.dev/Document';
const CYCLONEDX = 'https://cyclonedx.org/bom';

export interface StatementSubject {
  /** `name` as written; '' when a v1 ResourceDescriptor has none. */
  readonly name: string;
  /** v1 ResourceDescriptor `uri`, when present. */
  readonly uri?: string;
  /** Algorithm → hex, e.g. `{ sha256: "cf7d…" }`; empty when the subject has no digest. */
  readonly digests: Readonly<Record<string, string>>;
}

export interface Statement {
  /** `_type`; '' for a bare predicate. */
  readonly type: string;
  readonly predicateType: string;
  /** May be empty: BuildKit's in-toto v0.1 provenance leaves `subject` as `[]`. */
  readonly subjects: readonly StatementSubject[];
  /** The predicate JSON value (for a bare predicate: the whole document); undefined if absent (v1 only). */
  readonly predicate: unknown;
  /** True when the bytes held a predicate with no statement around it. */
  readonly bare: boolean;
  /** Set when the statement was the payload of a DSSE envelope. */
  readonly envelope?: 'dsse';
  /** Size in bytes of the input, as given. */
  readonly size: number;
  /** The description passed to decodeStatement, reused in later error messages. */
  readonly what: string;
}

export interface DecodeStatementOptions {
  /** Annotations of the layer descriptor the bytes came from (`in-toto.io/predicate-type`). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Size cap in bytes; default and maximum MAX_STATEMENT_BYTES. */
  readonly maxBytes?: number;
}

/**
 * Decodes one attestation blob. `what` names it in messages, e.g. `layer sha256:2641…`.
 */
export function decodeStatement(bytes: Uint8Array, what: string, opts: DecodeStatementOptions = {}): Statement {
  const limit = Math.min(opts.maxBytes ?? MAX_STATEMENT_BYTES, MAX_STATEMENT_BYTES);
  if (bytes.length > limit) {
    throw new BerthError(
      'BERTH_TOO_LARGE',
      `read in-toto statement ${what}: ${bytes.length} bytes is over the limit of ${limit} bytes`,
      { subject: what, want: limit, got: bytes.length },
    );
  }
  const ctx: ShapeContext = { what, code: 'BERTH_INVALID_JSON' };
  const doc = parseJson(bytes, what);
  if (!isObject(doc)) throw invalid(ctx, '', `statement must be a JSON object, got ${typeName(doc)}`);

  if (typeof doc['payloadType'] === 'string' && 'payload' in doc && !('_type' in doc)) {
    return decodeEnvelope(doc, ctx, bytes.length, opts);
  }

  if (!('_type' in doc)) {
    if ('predicateType' in doc || 'subject' in doc) throw invalid(ctx, '_type', 'missing');
    const annotated = opts.annotations?.[PREDICATE_TYPE_ANNOTATION];
    const predicateType = annotated !== undefined && annotated !== '' ? annotated : guessPredicateType(doc);
    if (predicateType === undefined || predicateType === '') {
      throw invalid(ctx, '_type', 'missing, and the document is not a recognised bare predicate (no in-toto.io/predicate-type annotation)');
    }
    return { type: '', predicateType, subjects: [], predicate: doc, bare: true, size: bytes.length, what };
  }

  const type = doc['_type'];
  if (typeof type !== 'string') throw invalid(ctx, '_type', `must be a string, got ${typeName(type)}`);
  if (type !== STATEMENT_TYPE_V01 && type !== STATEMENT_TYPE_V1) {
    throw invalid(
      ctx,
      '_type',
      `unsupported statement type ${JSON.stringify(type)} (want ${STATEMENT_TYPE_V01} or ${STATEMENT_TYPE_V1})`,
      'BERTH_UNSUPPORTED',
    );
  }
  const v1 = type === STATEMENT_TYPE_V1;

  const predicateType = optString(doc, 'predicateType', ctx, []);
  if (predicateType === undefined || predicateType === '') throw invalid(ctx, 'predicateType', 'missing or empty');

  const rawSubjects = doc['subject'];
  if (rawSubjects === undefined || rawSubjects === null) throw invalid(ctx, 'subject', 'missing (an empty list is allowed)');
  if (!Array.isArray(rawSubjects)) throw invalid(ctx, 'subject', `must be an array, got ${typeName(rawSubjects)}`);
  const subjects = rawSubjects.map((s, i) => decodeSubject(s, i, v1, ctx));

  const predicate = doc['predicate'];
  if (predicate === undefined || predicate === null) {
    if (!v1) throw invalid(ctx, 'predicate', 'missing');
  } else if (!isObject(predicate)) {
    throw invalid(ctx, 'predicate', `must be an object, got ${typeName(predicate)}`);
  }

  return {
    type,
    predicateType,
    subjects,
    predicate: predicate ?? undefined,
    bare: false,
    size: bytes.length,
    what,
  };
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new BerthError('BERTH_INVALID_JSON', `read in-toto statement ${what}: not valid UTF-8`, { subject: what, cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new BerthError('BERTH_INVALID_JSON', `read in-toto statement ${what}: invalid json: ${lowerFirst(detail)}`, {
      subject: what,
      cause: err,
    });
  }
}

function decodeEnvelope(doc: JsonObject, ctx: ShapeContext, size: number, opts: DecodeStatementOptions): Statement {
  const payloadType = doc['payloadType'];
  if (payloadType !== DSSE_IN_TOTO_PAYLOAD_TYPE) {
    throw invalid(ctx, 'payloadType', `unsupported dsse payload type ${JSON.stringify(payloadType)} (want ${DSSE_IN_TOTO_PAYLOAD_TYPE})`, 'BERTH_UNSUPPORTED');
  }
  const payload = doc['payload'];
  if (typeof payload !== 'string') throw invalid(ctx, 'payload', `must be a string, got ${typeName(payload)}`);
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) throw invalid(ctx, 'payload', 'not valid base64');
  const inner = decodeStatement(Buffer.from(payload, 'base64'), `${ctx.what} (dsse payload)`, opts);
  if (inner.bare || inner.envelope !== undefined) throw invalid(ctx, 'payload', 'does not hold an in-toto statement');
  return { ...inner, envelope: 'dsse', size, what: ctx.what };
}

function decodeSubject(raw: unknown, index: number, v1: boolean, ctx: ShapeContext): StatementSubject {
  const at = ['subject', index];
  if (!isObject(raw)) throw invalid(ctx, fieldPath(...at), `must be an object, got ${typeName(raw)}`);
  const name = optString(raw, 'name', ctx, at);
  const uri = optString(raw, 'uri', ctx, at);
  if (!v1 && name === undefined) throw invalid(ctx, fieldPath(...at, 'name'), 'missing');

  const digestValue = raw['digest'];
  const digests: Record<string, string> = {};
  if (digestValue !== undefined && digestValue !== null) {
    if (!isObject(digestValue)) throw invalid(ctx, fieldPath(...at, 'digest'), `must be an object, got ${typeName(digestValue)}`);
    for (const [alg, hex] of Object.entries(digestValue)) {
      const path = fieldPath(...at, 'digest', alg);
      if (typeof hex !== 'string') throw invalid(ctx, path, `must be a string, got ${typeName(hex)}`);
      const problem = subjectDigestProblem(alg, hex);
      if (problem !== undefined) throw invalid(ctx, path, `${JSON.stringify(hex)} is not a valid ${alg} digest (${problem})`, 'BERTH_INVALID_DIGEST');
      digests[alg] = hex;
    }
  }
  if (!v1 && digestValue === undefined) throw invalid(ctx, fieldPath(...at, 'digest'), 'missing');
  if (v1 && uri === undefined && Object.keys(digests).length === 0 && raw['content'] === undefined) {
    throw invalid(ctx, fieldPath(...at), 'needs at least one of uri, digest or content');
  }
  return { name: name ?? '', ...(uri === undefined ? {} : { uri }), digests };
}

const HEX_ONLY: Readonly<Record<string, number>> = { sha1: 40, sha224: 56, sha384: 96, sha512_256: 64, gitCommit: 40 };

/** Registered algorithms are held to their hex length; others (dirHash, …) only to non-empty. */
function subjectDigestProblem(alg: string, hex: string): string | undefined {
  if (hex === '') return 'empty';
  if (alg === 'sha256' || alg === 'sha512') {
    const problem = digestProblem(`${alg}:${hex}`);
    return problem?.replace('encoded part', 'hex');
  }
  const want = HEX_ONLY[alg];
  if (want !== undefined) {
    if (!/^[a-f0-9]*$/.test(hex)) return `hex must be lowercase [a-f0-9] for ${alg}`;
    if (hex.length !== want) return `hex must be ${want} characters, got ${hex.length}`;
  }
  return undefined;
}

/** Recognises the predicates BuildKit writes when no annotation says what they are. */
function guessPredicateType(doc: JsonObject): string | undefined {
  if (isObject(doc['buildDefinition']) && isObject(doc['runDetails'])) return SLSA_V1;
  if (typeof doc['buildType'] === 'string' && (isObject(doc['builder']) || isObject(doc['invocation']))) return SLSA_V02;
  if (typeof doc['spdxVersion'] === 'string') return SPDX;
  if (doc['bomFormat'] === 'CycloneDX') return CYCLONEDX;
  return undefined;
}

function lowerFirst(text: string): string {
  return text.length > 0 ? text.charAt(0).toLowerCase() + text.slice(1) : text;
}
