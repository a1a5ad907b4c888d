/**
 * The image config (formats.md section 6): OCI `application/vnd.oci.image.config.v1+json` and
 * Docker `application/vnd.docker.container.image.v1+json`, plus chain IDs (8.6). Pure: node:crypto
 * only.
 *
 * ImageConfig is a typed view of the JSON object itself, with the JSON key names (`diff_ids`,
 * `created_by`, `os.version`, `Env`): parseImageConfig validates and returns the parsed object, so
 * unknown keys (Docker's `container_config`, `docker_version`, …) stay in it. Any optional field may
 * be `null`, which means absent.
 */
import { digestOf, digestProblem, type Digest } from './digest.js';
import { fieldPath } from './errors.js';
import { JsonFields, childPath, isJsonObject, jsonSizeCaps, jsonTypeOf, parseJsonBytes, type JsonObject } from './json.js';
import type { Platform } from './platform.js';

export interface HealthConfig {
  readonly Test?: readonly string[] | null;
  /** Durations are nanoseconds. */
  readonly Interval?: number | null;
  readonly Timeout?: number | null;
  readonly StartPeriod?: number | null;
  readonly StartInterval?: number | null;
  readonly Retries?: number | null;
  readonly [key: string]: unknown;
}

/** Execution defaults (`config` key). Docker serialises more keys (Hostname, Tty, …): see the index signature. */
export interface ContainerConfig {
  readonly User?: string | null;
  /** Keys are `port/proto`, values `{}`. */
  readonly ExposedPorts?: Readonly<Record<string, JsonObject>> | null;
  /** `NAME=value` strings. */
  readonly Env?: readonly string[] | null;
  readonly Entrypoint?: readonly string[] | null;
  readonly Cmd?: readonly string[] | null;
  /** Keys are paths, values `{}`. */
  readonly Volumes?: Readonly<Record<string, JsonObject>> | null;
  readonly WorkingDir?: string | null;
  readonly Labels?: Readonly<Record<string, string>> | null;
  readonly StopSignal?: string | null;
  readonly ArgsEscaped?: boolean | null;
  readonly Healthcheck?: HealthConfig | null;
  readonly Memory?: number | null;
  readonly MemorySwap?: number | null;
  readonly CpuShares?: number | null;
  readonly Shell?: readonly string[] | null;
  readonly OnBuild?: readonly string[] | null;
  readonly [key: string]: unknown;
}

export interface RootFs {
  /** Always `layers`. */
  readonly type: 'layers';
  /** Uncompressed layer digests, base first. Missing or `null` when the image has no layers. */
  readonly diff_ids?: readonly Digest[] | null;
  readonly [key: string]: unknown;
}

export interface HistoryEntry {
  readonly created?: string | null;
  readonly created_by?: string | null;
  readonly author?: string | null;
  readonly comment?: string | null;
  /** True when the step made no layer; such entries have no diff_id. */
  readonly empty_layer?: boolean | null;
  readonly [key: string]: unknown;
}

export interface ImageConfig {
  readonly created?: string | null;
  readonly author?: string | null;
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string | null;
  readonly 'os.version'?: string | null;
  readonly 'os.features'?: readonly string[] | null;
  readonly config?: ContainerConfig | null;
  readonly rootfs: RootFs;
  readonly history?: readonly HistoryEntry[] | null;
  readonly [key: string]: unknown;
}

export interface ParseConfigOptions {
  /** Names the config in JSON errors and as the error subject, e.g. `config sha256:ab12…`. */
  readonly what: string;
  /** Size cap; default the configured config cap (MAX_CONFIG_BYTES unless set). */
  readonly maxBytes?: number;
}

/** RFC 3339 date-time as Go's time.Time accepts it (Docker writes nanoseconds and `Z`). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Parses and validates config bytes. Throws BERTH_INVALID_JSON / BERTH_TOO_LARGE (json.ts) or
 * BERTH_INVALID_CONFIG with a message that begins with the bad field's path, e.g.
 * `rootfs.diff_ids[3]: "sha256:xyz" is not a valid digest (…)`. Checks: architecture and os are
 * strings; rootfs.type is `layers`; each diff_id is a digest; created values are RFC 3339; known
 * `config` keys have their JSON types; history entries are objects and no more of them are
 * non-empty than there are diff_ids (dockerd refuses such configs).
 */
export function parseImageConfig(bytes: Uint8Array, opts: ParseConfigOptions): ImageConfig {
  const { what } = opts;
  const f: JsonFields = new JsonFields('BERTH_INVALID_CONFIG', what);
  const obj = f.object(parseJsonBytes(bytes, what, opts.maxBytes ?? jsonSizeCaps().config), '');

  const created = f.optionalString(obj, 'created', '');
  if (created !== undefined) checkTime(f, created, 'created');
  f.optionalString(obj, 'author', '');
  f.string(obj, 'architecture', '');
  f.string(obj, 'os', '');
  f.optionalString(obj, 'variant', '');
  f.optionalString(obj, 'os.version', '');
  f.optionalStringArray(obj, 'os.features', '');

  if (obj.config !== undefined && obj.config !== null) {
    const c = f.object(obj.config, 'config');
    for (const key of ['User', 'WorkingDir', 'StopSignal']) f.optionalString(c, key, 'config');
    for (const key of ['Env', 'Entrypoint', 'Cmd', 'Shell', 'OnBuild']) f.optionalStringArray(c, key, 'config');
    for (const key of ['ExposedPorts', 'Volumes']) f.optionalObjectMap(c, key, 'config');
    for (const key of ['Memory', 'MemorySwap', 'CpuShares']) f.optionalNumber(c, key, 'config');
    f.optionalStringMap(c, 'Labels', 'config');
    f.optionalBoolean(c, 'ArgsEscaped', 'config');
    if (c.Healthcheck !== undefined && c.Healthcheck !== null) {
      const h = f.object(c.Healthcheck, 'config.Healthcheck');
      f.optionalStringArray(h, 'Test', 'config.Healthcheck');
      for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries']) f.optionalNumber(h, key, 'config.Healthcheck');
    }
  }

  if (obj.rootfs === undefined || obj.rootfs === null) f.fail('rootfs', obj.rootfs === null ? 'must not be null (want {"type":"layers","diff_ids":[…]})' : 'missing (want {"type":"layers","diff_ids":[…]})');
  const rootfs = f.object(obj.rootfs, 'rootfs');
  const type = f.string(rootfs, 'type', 'rootfs');
  if (type !== 'layers') f.fail('rootfs.type', `${JSON.stringify(type)} is not supported (want "layers", got ${JSON.stringify(type)})`, { want: 'layers', got: type });
  const diffIds = f.optionalArray(rootfs, 'diff_ids', 'rootfs') ?? [];
  diffIds.forEach((d, i) => {
    const problem = digestProblem(d);
    if (problem !== undefined) {
      const shown = typeof d === 'string' ? JSON.stringify(d.length > 80 ? `${d.slice(0, 80)}…` : d) : jsonTypeOf(d);
      f.fail(fieldPath('rootfs', 'diff_ids', i), `${shown} is not a valid digest (${problem})`, { got: d });
    }
  });

  const history = f.optionalArray(obj, 'history', '') ?? [];
  let nonEmpty = 0;
  history.forEach((h, i) => {
    const p = fieldPath('history', i);
    const e = f.object(h, p);
    const t = f.optionalString(e, 'created', p);
    if (t !== undefined) checkTime(f, t, childPath(p, 'created'));
    for (const key of ['created_by', 'author', 'comment']) f.optionalString(e, key, p);
    if (f.optionalBoolean(e, 'empty_layer', p) !== true) nonEmpty++;
  });
  if (nonEmpty > diffIds.length) {
    f.fail('history', `too many non-empty layers: ${nonEmpty} entries lack empty_layer but rootfs.diff_ids has ${diffIds.length} (want at most ${diffIds.length}, got ${nonEmpty})`, {
      want: diffIds.length, got: nonEmpty,
    });
  }
  return obj as ImageConfig;
}

function checkTime(f: JsonFields, value: string, path: string): void {
  if (!RFC3339.test(value)) f.fail(path, `${JSON.stringify(value)} is not an RFC 3339 date-time`, { got: value });
}

/** The diff_ids of a parsed config (empty when missing or null). */
export function configDiffIds(config: ImageConfig): readonly Digest[] {
  return config.rootfs.diff_ids ?? [];
}

/** The platform a config declares (architecture, os, variant, os.version, os.features), as written. */
export function configPlatform(config: ImageConfig): Platform {
  const variant = config.variant ?? undefined;
  const osVersion = config['os.version'] ?? undefined;
  const osFeatures = config['os.features'] ?? undefined;
  return {
    os: config.os, architecture: config.architecture,
    ...(variant === undefined || variant === '' ? {} : { variant }),
    ...(osVersion === undefined || osVersion === '' ? {} : { osVersion }),
    ...(osFeatures === undefined ? {} : { osFeatures }),
  };
}

/**
 * Chain IDs, one per layer prefix (formats.md 8.6): chain(0) = diffId(0);
 * chain(n) = sha256(chain(n-1) + " " + diffId(n)), over the ASCII text of both full digests.
 */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : digestOf(`${prev} ${d}`));
  }
  return out;
}

/** One row of an image's history: a history entry, a layer, or both when they pair up. */
export interface LayerHistory {
  /** Index in `history`, or undefined for a layer that no history entry describes. */
  readonly historyIndex: number | undefined;
  readonly entry: HistoryEntry | undefined;
  /** Index in rootfs.diff_ids, or undefined for an empty_layer entry. */
  readonly layerIndex: number | undefined;
  readonly diffId: Digest | undefined;
}

/**
 * Pairs history with layers (formats.md 6.2): entries without `empty_layer: true` take the
 * diff_ids one by one, in order. Every history entry gives one row, in order; layers left over
 * (history shorter than diff_ids, or absent) follow as rows without an entry.
 */
export function historyForLayers(config: ImageConfig): LayerHistory[] {
  const diffIds = configDiffIds(config);
  const rows: LayerHistory[] = [];
  let layer = 0;
  (config.history ?? []).forEach((entry, i) => {
    const empty = isJsonObject(entry) && entry.empty_layer === true;
    if (empty || layer >= diffIds.length) {
      rows.push({ historyIndex: i, entry, layerIndex: undefined, diffId: undefined });
    } else {
      rows.push({ historyIndex: i, entry, layerIndex: layer, diffId: diffIds[layer] });
      layer++;
    }
  });
  for (; layer < diffIds.length; layer++) {
    rows.push({ historyIndex: undefined, entry: undefined, layerIndex: layer, diffId: diffIds[layer] });
  }
  return rows;
}
