/**
 * `image/<driver>/repositories.json`: tags and digests → image IDs (docs/formats.md 10.2).
 *
 *   {"Repositories":{"bb":{"bb:1":"sha256:6f6d…","bb@sha256:3830…":"sha256:6f6d…"}}}
 *
 * Second-level keys are familiar repository names (`bb`, `example.com/ns/bb`), third-level keys
 * familiar references (`name:tag` or `name@sha256:<manifest digest>`), values image IDs. dockerd
 * keeps references to IDs that no longer exist; they stay listed but resolve to nothing.
 */
import { isDigest, type Digest } from '../../core/digest.js';
import { BerthError } from '../../core/errors.js';
import { familiarName, parseDockerReference } from '../../core/reference.js';

export interface RepositoryReference {
  /** Familiar repository name, e.g. `bb`, `example.com/ns/bb`. */
  readonly repository: string;
  /** Familiar reference as stored, e.g. `bb:1`, `bb@sha256:…`. */
  readonly reference: string;
  readonly kind: 'tag' | 'digest';
  /** The tag (kind `tag`) or the manifest digest (kind `digest`). */
  readonly value: string;
  readonly id: Digest;
}

export interface Repositories {
  /** The file's exact bytes (empty when the file is missing). */
  readonly raw: Uint8Array;
  /** Every reference, in file order. */
  readonly refs: readonly RepositoryReference[];
}

/** Parses repositories.json; anything but `{"Repositories":{repo:{ref:id}}}` is BERTH_INVALID_LAYOUT naming `where`. */
export function parseRepositories(raw: Uint8Array, where: string): Repositories {
  const bad = (detail: string, path?: string): never => {
    throw new BerthError('BERTH_INVALID_LAYOUT', `${where}${path ? ` ${path}` : ''}: ${detail}`, { subject: where, ...(path ? { path } : {}) });
  };
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(raw));
  } catch (err) {
    return bad(`not JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not a JSON object');
  const repos = (v as Record<string, unknown>).Repositories;
  if (repos === undefined || repos === null) return { raw, refs: [] };
  if (typeof repos !== 'object' || Array.isArray(repos)) return bad('"Repositories" is not an object');
  const refs: RepositoryReference[] = [];
  for (const [repository, entries] of Object.entries(repos as Record<string, unknown>)) {
    if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) return bad('is not an object', `Repositories[${JSON.stringify(repository)}]`);
    for (const [reference, id] of Object.entries(entries as Record<string, unknown>)) {
      const path = `Repositories[${JSON.stringify(repository)}][${JSON.stringify(reference)}]`;
      if (!isDigest(id)) return bad(`image ID ${JSON.stringify(id)} is not a digest`, path);
      const at = reference.indexOf('@');
      if (at >= 0) {
        refs.push({ repository, reference, kind: 'digest', value: reference.slice(at + 1), id });
        continue;
      }
      const colon = reference.lastIndexOf(':');
      const tag = colon > reference.lastIndexOf('/') ? reference.slice(colon + 1) : '';
      refs.push({ repository, reference, kind: 'tag', value: tag, id });
    }
  }
  return { raw, refs };
}

/**
 * The familiar form under which dockerd files a name: `docker.io/library/bb` → `bb:latest`,
 * `bb@sha256:…` kept, `example.com/ns/bb:2` kept. Undefined when `text` is not a valid reference
 * (then it cannot be in repositories.json).
 */
export function storeReferenceKey(text: string): string | undefined {
  try {
    return familiarName(parseDockerReference(text));
  } catch {
    return undefined;
  }
}

/** Image IDs for a name, in file order (several only if a tag and a digest disagree, which dockerd never writes). */
export function lookupReference(repos: Repositories, text: string): RepositoryReference | undefined {
  const key = storeReferenceKey(text);
  if (key === undefined) return undefined;
  // `name:tag@digest`: dockerd files the digest form only.
  const m = /^([^@]+?)(?::[\w][\w.-]{0,127})?@(.+)$/.exec(key);
  const want = m ? `${m[1]}@${m[2]}` : key;
  return repos.refs.find((r) => r.reference === want);
}

/** Every reference that points at `id`, tags first, each group in file order. */
export function referencesOf(repos: Repositories, id: Digest): { tags: string[]; digests: string[] } {
  const mine = repos.refs.filter((r) => r.id === id);
  return { tags: mine.filter((r) => r.kind === 'tag').map((r) => r.reference), digests: mine.filter((r) => r.kind === 'digest').map((r) => r.reference) };
}
