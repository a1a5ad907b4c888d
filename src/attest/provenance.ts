/**
 * SLSA provenance (v0.2 and v1, formats.md §12.4) reduced to the facts people ask about:
 * who built it, from what source, with which frontend and build args, from which materials, when.
 *
 * Absent fields are tolerated (BuildKit `mode=min` leaves many out); a field of the wrong JSON
 * type is BERTH_INVALID_JSON naming its path, e.g. `predicate.materials[1].uri`.
 */
import { BerthError, fieldPath } from '../core/errors.js';
import {
  compareText,
  invalid,
  isObject,
  optArray,
  optBoolean,
  optObject,
  optString,
  optStringMap,
  typeName,
  type JsonObject,
  type ShapeContext,
} from './json.js';
import type { Statement } from './statement.js';

export const PREDICATE_SLSA_PROVENANCE_V02 = 'https://slsa.dev/provenance/v0.2';
export const PREDICATE_SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** Key of BuildKit's extra metadata inside a v0.2 predicate's `metadata`. */
export const BUILDKIT_METADATA_KEY = 'https://mobyproject.org/buildkit@v1#metadata';

export interface ProvenanceMaterial {
  readonly uri: string;
  readonly digest?: Readonly<Record<string, string>>;
}

export interface ProvenanceSource {
  /** configSource uri, else the BuildKit vcs `source` (a git remote). */
  readonly uri: string;
  /** BuildKit vcs `revision`, else the configSource's sha1/gitCommit digest. */
  readonly revision?: string;
  readonly digest?: Readonly<Record<string, string>>;
}

export interface ProvenanceSummary {
  readonly slsaVersion: '0.2' | '1';
  /** '' when the builder left it empty (BuildKit does for local builds). */
  readonly builderId: string;
  readonly buildType: string;
  /** e.g. `dockerfile.v0`, `gateway.v0`. */
  readonly frontend?: string;
  /** `build-arg:NAME` frontend args, without the prefix, sorted by name. */
  readonly buildArgs: Readonly<Record<string, string>>;
  /** `label:NAME` frontend args, without the prefix, sorted by name. */
  readonly labels: Readonly<Record<string, string>>;
  /** The other frontend args (`source`, `cmdline`, `target`, `filename`, …), sorted by name. */
  readonly frontendAttrs: Readonly<Record<string, string>>;
  readonly source?: ProvenanceSource;
  /** The Dockerfile (v0.2 configSource.entryPoint, v1 configSource.path). */
  readonly entryPoint?: string;
  /** Names of the local directories sent to the build (`context`, `dockerfile`). */
  readonly locals: readonly string[];
  readonly materials: readonly ProvenanceMaterial[];
  /** Platform of the builder (v0.2 invocation.environment.platform, v1 internalParameters.builderPlatform). */
  readonly builderPlatform?: string;
  readonly startedOn?: string;
  readonly finishedOn?: string;
  readonly reproducible?: boolean;
  readonly invocationId?: string;
  /** v0.2 metadata.completeness, v1 runDetails.metadata.buildkit_completeness. */
  readonly completeness?: Readonly<Record<string, boolean>>;
}

export function isProvenancePredicateType(predicateType: string): boolean {
  return predicateType === PREDICATE_SLSA_PROVENANCE_V02 || predicateType === PREDICATE_SLSA_PROVENANCE_V1;
}

export function summarizeProvenance(statement: Statement): ProvenanceSummary {
  const ctx: ShapeContext = { what: statement.what, code: 'BERTH_INVALID_JSON' };
  const at = statement.bare ? [] : ['predicate'];
  const predicate = statement.predicate;
  if (statement.predicateType !== PREDICATE_SLSA_PROVENANCE_V02 && statement.predicateType !== PREDICATE_SLSA_PROVENANCE_V1) {
    throw new BerthError(
      'BERTH_UNSUPPORTED',
      `summarize provenance ${statement.what}: predicate type ${JSON.stringify(statement.predicateType)} is not slsa provenance (want ${PREDICATE_SLSA_PROVENANCE_V02} or ${PREDICATE_SLSA_PROVENANCE_V1})`,
      { subject: statement.what, got: statement.predicateType },
    );
  }
  if (!isObject(predicate)) throw invalid(ctx, fieldPath(...at) || 'predicate', `must be an object, got ${typeName(predicate)}`);
  return statement.predicateType === PREDICATE_SLSA_PROVENANCE_V02
    ? summarizeV02(predicate, ctx, at)
    : summarizeV1(predicate, ctx, at);
}

function summarizeV02(p: JsonObject, ctx: ShapeContext, at: string[]): ProvenanceSummary {
  const builder = optObject(p, 'builder', ctx, at);
  const invocation = optObject(p, 'invocation', ctx, at) ?? {};
  const atInv = [...at, 'invocation'];
  const configSource = optObject(invocation, 'configSource', ctx, atInv) ?? {};
  const parameters = optObject(invocation, 'parameters', ctx, atInv) ?? {};
  const environment = optObject(invocation, 'environment', ctx, atInv) ?? {};
  const metadata = optObject(p, 'metadata', ctx, at) ?? {};
  const atMeta = [...at, 'metadata'];
  const buildkit = optObject(metadata, BUILDKIT_METADATA_KEY, ctx, atMeta) ?? {};
  const vcs = optObject(buildkit, 'vcs', ctx, [...atMeta, BUILDKIT_METADATA_KEY]) ?? {};
  const atVcs = [...atMeta, BUILDKIT_METADATA_KEY, 'vcs'];
  const atParams = [...atInv, 'parameters'];

  const source = makeSource(
    optString(configSource, 'uri', ctx, [...atInv, 'configSource']),
    optStringMap(configSource, 'digest', ctx, [...atInv, 'configSource']),
    optString(vcs, 'source', ctx, atVcs),
    optString(vcs, 'revision', ctx, atVcs),
  );
  const args = splitArgs(optStringMap(parameters, 'args', ctx, atParams));
  const completeness = booleanMap(metadata, 'completeness', ctx, atMeta);

  return {
    slsaVersion: '0.2',
    builderId: builder === undefined ? '' : (optString(builder, 'id', ctx, [...at, 'builder']) ?? ''),
    buildType: optString(p, 'buildType', ctx, at) ?? '',
    ...defined('frontend', optString(parameters, 'frontend', ctx, atParams)),
    ...args,
    ...(source === undefined ? {} : { source }),
    ...defined('entryPoint', optString(configSource, 'entryPoint', ctx, [...atInv, 'configSource'])),
    locals: localNames(parameters, ctx, atParams),
    materials: materials(p, 'materials', ctx, at),
    ...defined('builderPlatform', optString(environment, 'platform', ctx, [...atInv, 'environment'])),
    ...defined('startedOn', optString(metadata, 'buildStartedOn', ctx, atMeta)),
    ...defined('finishedOn', optString(metadata, 'buildFinishedOn', ctx, atMeta)),
    ...defined('reproducible', optBoolean(metadata, 'reproducible', ctx, atMeta)),
    // BuildKit writes buildInvocationID; the SLSA v0.2 spec spells it buildInvocationId.
    ...defined('invocationId', optString(metadata, 'buildInvocationID', ctx, atMeta) ?? optString(metadata, 'buildInvocationId', ctx, atMeta)),
    ...(completeness === undefined ? {} : { completeness }),
  };
}

function summarizeV1(p: JsonObject, ctx: ShapeContext, at: string[]): ProvenanceSummary {
  const atDef = [...at, 'buildDefinition'];
  const atRun = [...at, 'runDetails'];
  const def = optObject(p, 'buildDefinition', ctx, at) ?? {};
  const run = optObject(p, 'runDetails', ctx, at) ?? {};
  const external = optObject(def, 'externalParameters', ctx, atDef) ?? {};
  const atExt = [...atDef, 'externalParameters'];
  const internal = optObject(def, 'internalParameters', ctx, atDef) ?? {};
  const configSource = optObject(external, 'configSource', ctx, atExt) ?? {};
  const atConfig = [...atExt, 'configSource'];
  const request = optObject(external, 'request', ctx, atExt) ?? {};
  const atReq = [...atExt, 'request'];
  const builder = optObject(run, 'builder', ctx, atRun) ?? {};
  const metadata = optObject(run, 'metadata', ctx, atRun) ?? {};
  const atMeta = [...atRun, 'metadata'];
  const buildkit = optObject(metadata, 'buildkit_metadata', ctx, atMeta) ?? {};
  const vcs = optObject(buildkit, 'vcs', ctx, [...atMeta, 'buildkit_metadata']) ?? {};
  const atVcs = [...atMeta, 'buildkit_metadata', 'vcs'];

  const source = makeSource(
    optString(configSource, 'uri', ctx, atConfig),
    optStringMap(configSource, 'digest', ctx, atConfig),
    optString(vcs, 'source', ctx, atVcs),
    optString(vcs, 'revision', ctx, atVcs),
  );
  const completeness = booleanMap(metadata, 'buildkit_completeness', ctx, atMeta);

  return {
    slsaVersion: '1',
    builderId: optString(builder, 'id', ctx, [...atRun, 'builder']) ?? '',
    buildType: optString(def, 'buildType', ctx, atDef) ?? '',
    ...defined('frontend', optString(request, 'frontend', ctx, atReq)),
    ...splitArgs(optStringMap(request, 'args', ctx, atReq)),
    ...(source === undefined ? {} : { source }),
    ...defined('entryPoint', optString(configSource, 'path', ctx, atConfig)),
    locals: localNames(request, ctx, atReq),
    materials: materials(def, 'resolvedDependencies', ctx, atDef),
    ...defined('builderPlatform', optString(internal, 'builderPlatform', ctx, [...atDef, 'internalParameters'])),
    ...defined('startedOn', optString(metadata, 'startedOn', ctx, atMeta)),
    ...defined('finishedOn', optString(metadata, 'finishedOn', ctx, atMeta)),
    ...defined('reproducible', optBoolean(metadata, 'buildkit_reproducible', ctx, atMeta)),
    // BuildKit writes invocationID; the SLSA v1 spec spells it invocationId.
    ...defined('invocationId', optString(metadata, 'invocationID', ctx, atMeta) ?? optString(metadata, 'invocationId', ctx, atMeta)),
    ...(completeness === undefined ? {} : { completeness }),
  };
}

function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function makeSource(
  uri: string | undefined,
  digest: Record<string, string> | undefined,
  vcsSource: string | undefined,
  vcsRevision: string | undefined,
): ProvenanceSource | undefined {
  const hasDigest = digest !== undefined && Object.keys(digest).length > 0;
  const sourceUri = uri ?? vcsSource;
  if (sourceUri === undefined) return undefined;
  const revision = vcsRevision ?? (uri === undefined ? undefined : (digest?.['sha1'] ?? digest?.['gitCommit']));
  return {
    uri: sourceUri,
    ...(revision === undefined ? {} : { revision }),
    ...(hasDigest && uri !== undefined ? { digest } : {}),
  };
}

function splitArgs(args: Record<string, string> | undefined): Pick<ProvenanceSummary, 'buildArgs' | 'labels' | 'frontendAttrs'> {
  const buildArgs: Record<string, string> = {};
  const labels: Record<string, string> = {};
  const frontendAttrs: Record<string, string> = {};
  for (const key of Object.keys(args ?? {}).sort(compareText)) {
    const value = (args ?? {})[key] ?? '';
    if (key.startsWith('build-arg:')) buildArgs[key.slice('build-arg:'.length)] = value;
    else if (key.startsWith('label:')) labels[key.slice('label:'.length)] = value;
    else frontendAttrs[key] = value;
  }
  return { buildArgs, labels, frontendAttrs };
}

function localNames(parameters: JsonObject, ctx: ShapeContext, at: string[]): string[] {
  const locals = optArray(parameters, 'locals', ctx, at) ?? [];
  return locals.map((entry, i) => {
    if (!isObject(entry)) throw invalid(ctx, fieldPath(...at, 'locals', i), `must be an object, got ${typeName(entry)}`);
    return optString(entry, 'name', ctx, [...at, 'locals', i]) ?? '';
  });
}

function materials(obj: JsonObject, key: string, ctx: ShapeContext, at: string[]): ProvenanceMaterial[] {
  const list = optArray(obj, key, ctx, at) ?? [];
  return list.map((entry, i) => {
    const atEntry = [...at, key, i];
    if (!isObject(entry)) throw invalid(ctx, fieldPath(...atEntry), `must be an object, got ${typeName(entry)}`);
    const uri = optString(entry, 'uri', ctx, atEntry) ?? optString(entry, 'name', ctx, atEntry) ?? '';
    const digest = optStringMap(entry, 'digest', ctx, atEntry);
    return digest === undefined ? { uri } : { uri, digest };
  });
}

function booleanMap(obj: JsonObject, key: string, ctx: ShapeContext, at: string[]): Record<string, boolean> | undefined {
  const value = optObject(obj, key, ctx, at);
  if (value === undefined) return undefined;
  const out: Record<string, boolean> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'boolean') throw invalid(ctx, fieldPath(...at, key, k), `must be a boolean, got ${typeName(v)}`);
    out[k] = v;
  }
  return out;
}
