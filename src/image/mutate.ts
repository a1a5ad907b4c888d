/**
 * Editing an image without running it (crane mutate/append, `docker commit --change`): the
 * config changes as steps (one history entry each), the Dockerfile-style `--change`
 * instructions `docker commit` accepts, appending a layer to a config, and the manifest that
 * points at the new config and layers. Pure: JSON in, JSON out; unknown keys are kept, in order.
 */
import type { Descriptor } from '../core/descriptor.js';
import type { Digest } from '../core/digest.js';
import { BerthError } from '../core/errors.js';
import { isJsonObject, type JsonObject } from '../core/json.js';
import type { Platform } from '../core/platform.js';

type Mutable = { [key: string]: unknown };

/** One change to the config's execution defaults; its text is the history entry's created_by. */
export interface ConfigStep {
  /** Dockerfile form, e.g. `ENV APP=1`. */
  readonly text: string;
  apply(config: Mutable, top: Mutable): void;
}

/** Instructions `docker commit --change` accepts (HEALTHCHECK aside), plus STOPSIGNAL. */
export const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'] as const;

/** Splits `a=b c="d e"` into pairs (double and single quotes, backslash escapes). */
export function parseKeyValues(text: string, what: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  const s = text.trim();
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i]!)) i++;
    if (i >= s.length) break;
    let word = '';
    let quote: string | undefined;
    for (; i < s.length; i++) {
      const ch = s[i]!;
      if (quote !== undefined) {
        if (ch === quote) quote = undefined;
        else if (ch === '\\' && quote === '"' && i + 1 < s.length) word += s[++i];
        else word += ch;
      } else if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '\\' && i + 1 < s.length) word += s[++i];
      else if (/\s/.test(ch)) break;
      else word += ch;
    }
    if (quote !== undefined) throw new BerthError('BERTH_USAGE', `${what}: unterminated ${quote} quote in ${JSON.stringify(text)}`, { got: text });
    const eq = word.indexOf('=');
    if (eq <= 0) throw new BerthError('BERTH_USAGE', `${what}: want KEY=VALUE, got ${JSON.stringify(word)}`, { got: word });
    out.push([word.slice(0, eq), word.slice(eq + 1)]);
  }
  return out;
}

/** A command in exec form (JSON array of strings) or shell form (`/bin/sh -c TEXT`); '' clears it. */
export function parseCommand(text: string, what: string): string[] | null {
  const t = text.trim();
  if (t === '') return null;
  if (t.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      v = undefined;
    }
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    throw new BerthError('BERTH_USAGE', `${what}: ${JSON.stringify(t)} starts like a JSON array but is not an array of strings`, { got: t });
  }
  return ['/bin/sh', '-c', t];
}

function normalizePort(p: string, what: string): string {
  const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(p.trim());
  if (m === null || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new BerthError('BERTH_USAGE', `${what}: ${JSON.stringify(p)} is not a port (want PORT[/tcp|udp|sctp])`, { got: p });
  return `${Number(m[1])}/${(m[2] ?? 'tcp').toLowerCase()}`;
}

function setEnv(config: Mutable, key: string, value: string): void {
  const env = Array.isArray(config.Env) ? [...(config.Env as string[])] : [];
  const at = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (at >= 0) env[at] = `${key}=${value}`;
  else env.push(`${key}=${value}`);
  config.Env = env;
}

function setMapKey(config: Mutable, field: string, key: string, value: unknown): void {
  const m = isJsonObject(config[field]) ? { ...(config[field] as Mutable) } : {};
  m[key] = value;
  config[field] = m;
}

export const steps = {
  env(key: string, value: string): ConfigStep {
    if (!/^[^=\s]+$/.test(key)) throw new BerthError('BERTH_USAGE', `--env: bad variable name ${JSON.stringify(key)}`, { got: key });
    return { text: `ENV ${key}=${quoteIfNeeded(value)}`, apply: (c) => setEnv(c, key, value) };
  },
  label(key: string, value: string): ConfigStep {
    if (key === '') throw new BerthError('BERTH_USAGE', '--label: empty label name', {});
    return { text: `LABEL ${quoteIfNeeded(key)}=${quoteIfNeeded(value)}`, apply: (c) => setMapKey(c, 'Labels', key, value) };
  },
  entrypoint(cmd: string[] | null): ConfigStep {
    return { text: `ENTRYPOINT ${cmd === null ? '[]' : JSON.stringify(cmd)}`, apply: (c) => { c.Entrypoint = cmd; } };
  },
  cmd(cmd: string[] | null): ConfigStep {
    return { text: `CMD ${cmd === null ? '[]' : JSON.stringify(cmd)}`, apply: (c) => { c.Cmd = cmd; } };
  },
  workdir(dir: string): ConfigStep {
    return {
      text: `WORKDIR ${dir}`,
      apply: (c) => {
        const cur = typeof c.WorkingDir === 'string' && c.WorkingDir !== '' ? c.WorkingDir : '/';
        c.WorkingDir = dir.startsWith('/') ? dir : `${cur.replace(/\/+$/, '')}/${dir}`;
      },
    };
  },
  user(user: string): ConfigStep {
    return { text: `USER ${user}`, apply: (c) => { c.User = user; } };
  },
  expose(port: string): ConfigStep {
    const p = normalizePort(port, 'EXPOSE');
    return { text: `EXPOSE ${p}`, apply: (c) => setMapKey(c, 'ExposedPorts', p, {}) };
  },
  volume(dir: string): ConfigStep {
    return { text: `VOLUME [${JSON.stringify(dir)}]`, apply: (c) => setMapKey(c, 'Volumes', dir, {}) };
  },
  stopSignal(sig: string): ConfigStep {
    return { text: `STOPSIGNAL ${sig}`, apply: (c) => { c.StopSignal = sig; } };
  },
  onBuild(trigger: string): ConfigStep {
    return { text: `ONBUILD ${trigger}`, apply: (c) => { c.OnBuild = [...(Array.isArray(c.OnBuild) ? (c.OnBuild as string[]) : []), trigger]; } };
  },
  platform(p: Platform): ConfigStep {
    return {
      text: `# platform ${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`,
      apply: (_c, top) => {
        top.os = p.os;
        top.architecture = p.architecture;
        if (p.variant !== undefined && p.variant !== '') top.variant = p.variant;
        else delete top.variant;
      },
    };
  },
};

function quoteIfNeeded(s: string): string {
  return /^[^\s"'\\]*$/.test(s) && s !== '' ? s : JSON.stringify(s);
}

/**
 * Steps of one `--change` instruction (`ENV A=b`, `CMD ["x"]`, `EXPOSE 80 443/udp`). An unknown
 * instruction is BERTH_USAGE naming the ones accepted.
 */
export function parseChange(text: string): ConfigStep[] {
  const m = /^\s*(\S+)(?:\s+([\s\S]*))?$/.exec(text);
  if (m === null) throw new BerthError('BERTH_USAGE', '--change: empty instruction', {});
  const word = m[1]!.toUpperCase();
  const rest = (m[2] ?? '').trim();
  const what = `--change ${JSON.stringify(text)}`;
  if (!(CHANGE_INSTRUCTIONS as readonly string[]).includes(word)) {
    throw new BerthError('BERTH_USAGE', `${what}: unknown instruction ${JSON.stringify(m[1])} (want one of ${CHANGE_INSTRUCTIONS.join(', ')})`, { got: m[1] });
  }
  const need = (): void => {
    if (rest === '') throw new BerthError('BERTH_USAGE', `${what}: ${word} needs an argument`, {});
  };
  switch (word) {
    case 'ENV': {
      need();
      const first = rest.split(/\s+/)[0]!;
      if (!first.includes('=')) {
        // Legacy form: ENV KEY VALUE…
        const value = rest.slice(first.length).trim();
        return [steps.env(first, value)];
      }
      return parseKeyValues(rest, what).map(([k, v]) => steps.env(k, v));
    }
    case 'LABEL':
      need();
      return parseKeyValues(rest, what).map(([k, v]) => steps.label(k, v));
    case 'CMD':
      return [steps.cmd(parseCommand(rest, what))];
    case 'ENTRYPOINT':
      return [steps.entrypoint(parseCommand(rest, what))];
    case 'EXPOSE':
      need();
      return rest.split(/\s+/).map((p) => steps.expose(p));
    case 'VOLUME': {
      need();
      const list = rest.startsWith('[') ? parseCommand(rest, what) ?? [] : rest.split(/\s+/);
      return list.map((v) => steps.volume(v));
    }
    case 'WORKDIR':
      need();
      return [steps.workdir(rest)];
    case 'USER':
      need();
      return [steps.user(rest)];
    case 'STOPSIGNAL':
      need();
      return [steps.stopSignal(rest)];
    default:
      need();
      return [steps.onBuild(rest)];
  }
}

function deepCopy<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

export interface HistoryStamp {
  /** RFC 3339. */
  readonly created: string;
  readonly author?: string;
  readonly comment?: string;
}

/** The config with `steps` applied, one empty-layer history entry each, and `created` set. */
export function applyConfigSteps(config: JsonObject, list: readonly ConfigStep[], stamp: HistoryStamp): Mutable {
  const top = deepCopy(config) as Mutable;
  const exec: Mutable = isJsonObject(top.config) ? (top.config as Mutable) : {};
  top.config = exec;
  const history = Array.isArray(top.history) ? (top.history as unknown[]) : [];
  for (const s of list) {
    s.apply(exec, top);
    history.push({
      created: stamp.created, created_by: s.text, ...(stamp.author !== undefined ? { author: stamp.author } : {}),
      ...(stamp.comment !== undefined ? { comment: stamp.comment } : {}), empty_layer: true,
    });
  }
  top.history = history;
  top.created = stamp.created;
  return top;
}

/** The config with one more layer (its diff_id) and its history entry. */
export function appendLayerToConfig(config: JsonObject, diffId: Digest, stamp: HistoryStamp & { readonly createdBy: string }): Mutable {
  const top = deepCopy(config) as Mutable;
  const rootfs = isJsonObject(top.rootfs) ? (top.rootfs as Mutable) : { type: 'layers' };
  rootfs.diff_ids = [...(Array.isArray(rootfs.diff_ids) ? (rootfs.diff_ids as string[]) : []), diffId];
  top.rootfs = rootfs;
  const history = Array.isArray(top.history) ? (top.history as unknown[]) : [];
  history.push({
    created: stamp.created, created_by: stamp.createdBy, ...(stamp.author !== undefined ? { author: stamp.author } : {}),
    ...(stamp.comment !== undefined ? { comment: stamp.comment } : {}),
  });
  top.history = history;
  top.created = stamp.created;
  return top;
}

/** The manifest (parsed JSON) pointing at `config` and with `extraLayers` appended. */
export function rebuildManifest(manifest: JsonObject, config: Descriptor, extraLayers: readonly Descriptor[]): Mutable {
  const m = deepCopy(manifest) as Mutable;
  const oldConfig = isJsonObject(m.config) ? (m.config as Mutable) : {};
  m.config = { ...oldConfig, mediaType: config.mediaType, size: config.size, digest: config.digest };
  const layers = Array.isArray(m.layers) ? (m.layers as unknown[]) : [];
  m.layers = [...layers, ...extraLayers.map((d) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest }))];
  return m;
}

/** `--source-date-epoch` seconds (or now) as Docker writes times: RFC 3339, `Z`, no zero fraction. */
export function timestamp(epochSeconds?: number): string {
  const ms = epochSeconds === undefined ? Date.now() : epochSeconds * 1000;
  if (!Number.isFinite(ms)) throw new BerthError('BERTH_USAGE', `bad source date epoch ${String(epochSeconds)}`, { got: epochSeconds });
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}
