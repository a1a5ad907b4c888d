/**
 * `docker://HOST[:PORT]/REPO[:TAG][@DIGEST]` with Docker's naming rules (core/reference.ts):
 * `docker://alpine` is `docker.io/library/alpine:latest`. A reference is plain data plus the
 * opener; the registry is contacted only when a source is opened.
 */
import { BerthError } from '../../core/errors.js';
import { formatReference, parseDockerReference, referenceName, type DockerReference } from '../../core/reference.js';
import type { ImageSelector } from '../transport.js';

/** The host berth sends requests to: Docker Hub's API lives at registry-1.docker.io. */
export function apiHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
}

/** Parses the text after `docker:`; it must start with `//`. */
export function parseRegistryName(rest: string): DockerReference {
  if (!rest.startsWith('//')) {
    throw new BerthError('BERTH_INVALID_REFERENCE', `docker:${rest}: registry references are written docker://HOST/REPO[:TAG][@DIGEST]`, { subject: `docker:${rest}` });
  }
  return parseDockerReference(rest.slice(2));
}

/** What a registry reference selects: the digest when there is one (the tag is then only a name). */
export function selectorOf(ref: DockerReference): ImageSelector | undefined {
  if (ref.digest !== undefined) return { kind: 'digest', digest: ref.digest };
  if (ref.tag !== undefined) return { kind: 'name', name: ref.tag };
  return undefined;
}

/** `docker://domain/path[:tag][@digest]`. */
export function formatRegistryReference(ref: DockerReference): string {
  return `docker://${formatReference(ref)}`;
}

/** `docker://domain/path` (no tag or digest), for repository-level operations. */
export function formatRepository(ref: DockerReference): string {
  return `docker://${referenceName(ref)}`;
}

const HOST = /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;

/** Parses `docker://HOST` or `HOST` (for catalog, login, logout): a registry host with optional port. */
export function parseRegistryHost(text: string): string {
  let h = text.startsWith('docker://') ? text.slice('docker://'.length) : text;
  h = h.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (h === 'index.docker.io' || h === 'registry-1.docker.io') h = 'docker.io';
  if (!HOST.test(h)) {
    throw new BerthError('BERTH_INVALID_REFERENCE', `${JSON.stringify(text)} is not a registry host (want HOST[:PORT], e.g. 127.0.0.1:5000)`, { subject: text });
  }
  return h;
}
