/**
 * Docker registry references `[domain/]path[:tag][@digest]`, with the normalisation the docker CLI
 * applies (distribution/reference `ParseNormalizedNamed`): no domain → `docker.io`, a single path
 * component on docker.io → `library/…`, `index.docker.io` → `docker.io`, no tag and no digest →
 * `latest`. Pure: no I/O.
 */
import { digestProblem, type Digest } from './digest.js';
import { BerthError } from './errors.js';

export interface DockerReference {
  /** Registry host with optional port, e.g. `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly domain: string;
  /** Repository path, e.g. `library/alpine`. */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export interface ParseReferenceOptions {
  /** Add tag `latest` when the text has neither tag nor digest (default true). */
  readonly defaultTag?: boolean;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const NAME_MAX = 255;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const PATH = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^\w[\w.-]{0,127}$/;
const HEX64 = /^[a-f0-9]{64}$/;

/**
 * Parses and normalises a Docker reference: `alpine` → {domain: 'docker.io', path:
 * 'library/alpine', tag: 'latest'}. Throws BERTH_INVALID_REFERENCE naming the text and the problem
 * (uppercase repository, bad tag, bad digest, bad host, name too long, 64-hex image ID).
 */
export function parseDockerReference(text: string, opts: ParseReferenceOptions = {}): DockerReference {
  const bad = (detail: string): never => {
    throw new BerthError('BERTH_INVALID_REFERENCE', `parsing reference ${JSON.stringify(text)}: ${detail}`, { subject: text, got: text });
  };
  if (text === '') bad('reference is empty');
  if (HEX64.test(text)) bad('a 64-hex string is an image ID, not a repository name');

  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    const problem = digestProblem(d);
    if (problem !== undefined) bad(`${JSON.stringify(d)} is not a valid digest (${problem})`);
    digest = d as Digest;
    rest = rest.slice(0, at);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/') && !(rest.startsWith('[') && colon < rest.indexOf(']'))) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad(`tag ${JSON.stringify(tag)} is not valid (want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})`);
  }
  if (rest === '') bad('repository name is empty');

  let domain: string;
  let path: string;
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    path = rest;
  } else {
    domain = first;
    path = rest.slice(slash + 1);
    if (!DOMAIN.test(domain)) bad(`registry host ${JSON.stringify(domain)} is not valid`);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;

  if (path === '' || path.endsWith('/')) bad('repository name is empty');
  if (path.toLowerCase() !== path && PATH.test(path.toLowerCase())) bad(`repository name ${JSON.stringify(path)} must be lowercase`);
  if (!PATH.test(path)) bad(`repository name ${JSON.stringify(path)} is not valid (want lowercase components [a-z0-9] joined by ".", "_", "__" or "-", separated by "/")`);
  const nameLength = domain.length + 1 + path.length;
  if (nameLength > NAME_MAX) bad(`repository name is longer than ${NAME_MAX} characters (want at most ${NAME_MAX}, got ${nameLength})`);

  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = DEFAULT_TAG;
  return { domain, path, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** `domain/path`, e.g. `docker.io/library/alpine`. */
export function referenceName(ref: DockerReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full form, `domain/path[:tag][@digest]`; parseDockerReference(formatReference(r)) equals r. */
export function formatReference(ref: DockerReference): string {
  return `${referenceName(ref)}${suffix(ref)}`;
}

/** The short form the docker CLI shows: `docker.io/library/x:t` → `x:t`, `docker.io/u/x` → `u/x`. */
export function familiarName(ref: DockerReference): string {
  let name = referenceName(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.path;
    const rest = name.slice(OFFICIAL_PREFIX.length);
    if (name.startsWith(OFFICIAL_PREFIX) && !rest.includes('/')) name = rest;
  }
  return `${name}${suffix(ref)}`;
}

function suffix(ref: DockerReference): string {
  return `${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/**
 * True when `host` (optionally with `:port`, IPv6 in brackets) is the local machine: `localhost`,
 * `*.localhost`, 127.0.0.0/8, `::1`. Used to allow plain HTTP to local registries.
 */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return false;
    h = h.slice(1, end);
  } else if (h.split(':').length === 2) {
    h = h.slice(0, h.indexOf(':'));
  }
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = /^(?:::ffff:)?127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return v4 !== null && v4.slice(1).every((o) => Number(o) <= 255);
}
