/**
 * `manifest.json` of a docker-archive (`docker save`), legacy and Docker 25+ layouts.
 * Keys are matched case-insensitively, as Docker's Go decoder does (Jib writes `config`,
 * `repoTags`, `layers`).
 */
import { parseDescriptor, type Descriptor } from '../../core/descriptor.js';
import { isDigest, type Digest } from '../../core/digest.js';
import { BerthError, fieldPath } from '../../core/errors.js';
import { parseJsonBytes } from '../../core/json.js';

export interface ManifestJsonEntry {
  readonly config: string;
  readonly repoTags: readonly string[];
  readonly layers: readonly string[];
  readonly parent: string | undefined;
  /** Descriptors of foreign layers keyed by diff_id (their files may be absent). */
  readonly layerSources: ReadonlyMap<Digest, Descriptor>;
}

function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(obj)) if (key.toLowerCase() === lower) return obj[key];
  return undefined;
}

export function parseManifestJson(bytes: Uint8Array): ManifestJsonEntry[] {
  const value = parseJsonBytes(bytes, 'manifest.json');
  if (value === null) {
    throw new BerthError('BERTH_INVALID_ARCHIVE', 'manifest.json: is null, not a list of images', { subject: 'manifest.json' });
  }
  if (!Array.isArray(value)) {
    throw new BerthError('BERTH_INVALID_ARCHIVE', `manifest.json: must be a JSON array of images, got ${typeof value}`, { subject: 'manifest.json' });
  }
  return value.map((item, i) => {
    const at = (...p: Array<string | number>) => `manifest.json${fieldPath(i, ...p).replace(/^/, '')}`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw new BerthError('BERTH_INVALID_ARCHIVE', `${at()}: must be an object`, { path: fieldPath(i) });
    }
    const obj = item as Record<string, unknown>;
    const config = field(obj, 'Config');
    if (typeof config !== 'string' || config === '') {
      throw new BerthError('BERTH_INVALID_ARCHIVE', `${at('Config')}: must be a non-empty string (the config file's path)`, { path: fieldPath(i, 'Config') });
    }
    const tags = field(obj, 'RepoTags');
    if (tags !== undefined && tags !== null && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) {
      throw new BerthError('BERTH_INVALID_ARCHIVE', `${at('RepoTags')}: must be a list of strings or null`, { path: fieldPath(i, 'RepoTags') });
    }
    const layers = field(obj, 'Layers');
    if (!Array.isArray(layers)) {
      throw new BerthError('BERTH_INVALID_ARCHIVE', `${at('Layers')}: must be a list of layer paths`, { path: fieldPath(i, 'Layers') });
    }
    layers.forEach((l, j) => {
      if (typeof l !== 'string' || l === '') {
        throw new BerthError('BERTH_INVALID_ARCHIVE', `${at('Layers', j)}: must be a non-empty string`, { path: fieldPath(i, 'Layers', j) });
      }
    });
    const parent = field(obj, 'Parent');
    const sources = new Map<Digest, Descriptor>();
    const rawSources = field(obj, 'LayerSources');
    if (rawSources !== undefined && rawSources !== null) {
      if (typeof rawSources !== 'object' || Array.isArray(rawSources)) {
        throw new BerthError('BERTH_INVALID_ARCHIVE', `${at('LayerSources')}: must be an object keyed by diff_id`, { path: fieldPath(i, 'LayerSources') });
      }
      for (const [key, desc] of Object.entries(rawSources as Record<string, unknown>)) {
        if (!isDigest(key)) {
          throw new BerthError('BERTH_INVALID_DIGEST', `${at('LayerSources')}: key "${key}" is not a valid digest`, { path: fieldPath(i, 'LayerSources', key) });
        }
        sources.set(key, parseDescriptor(desc, `manifest.json${fieldPath(i, 'LayerSources', key)}`));
      }
    }
    return {
      config,
      repoTags: (tags ?? []) as string[],
      layers: layers as string[],
      parent: typeof parent === 'string' && parent !== '' ? parent : undefined,
      layerSources: sources,
    };
  });
}
