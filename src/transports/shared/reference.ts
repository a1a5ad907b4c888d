/**
 * References of the path-based transports: `PREFIX:PATH[:SELECTOR]`. Paths cannot contain ':'
 * (the containers/image rule), so the first ':' ends the path.
 */
import { digestAlgorithm, isDigest, isVerifiableAlgorithm, type Digest } from '../../core/digest.js';
import { BerthError } from '../../core/errors.js';
import type { IoOptions } from '../../io/stream.js';
import type { ImageReference, ImageSelector, ImageSource, Transport } from '../transport.js';

export function parseSelector(text: string, where: string): ImageSelector | undefined {
  if (text === '') return undefined;
  if (text.startsWith('@')) {
    const rest = text.slice(1);
    if (/^\d+$/.test(rest)) return { kind: 'position', position: Number(rest) };
    if (isDigest(rest)) return { kind: 'digest', digest: rest };
    throw new BerthError('BERTH_INVALID_REFERENCE', `${where}: "@${rest}" is neither an index (@0, @1, …) nor a digest`, { subject: where });
  }
  // `sample:latest` fits the digest grammar (an unregistered algorithm); only registered
  // algorithms make a bare selector a digest, anything else is a name
  if (looksLikeDigest(text)) return { kind: 'digest', digest: text };
  return { kind: 'name', name: text };
}

function looksLikeDigest(text: string): text is Digest {
  return isDigest(text) && isVerifiableAlgorithm(digestAlgorithm(text));
}

export function formatSelector(selector: ImageSelector | undefined): string {
  if (selector === undefined) return '';
  switch (selector.kind) {
    case 'position':
      return `:@${selector.position}`;
    case 'digest':
      return `@${selector.digest}`;
    case 'name':
      return `:${selector.name}`;
  }
}

/** Splits `PATH[:SELECTOR]` or `PATH@DIGEST`. */
export function splitPathAndSelector(rest: string, transport: string): { path: string; selector: ImageSelector | undefined } {
  const where = `${transport}:${rest}`;
  if (rest === '') throw new BerthError('BERTH_INVALID_REFERENCE', `${where}: a path is required`, { subject: where });
  const at = rest.search(/@sha(?:256|512):/);
  const colon = rest.indexOf(':');
  if (at > 0 && (colon < 0 || at < colon)) {
    return { path: rest.slice(0, at), selector: parseSelector(rest.slice(at), where) };
  }
  if (colon < 0) return { path: rest, selector: undefined };
  if (colon === 0) throw new BerthError('BERTH_INVALID_REFERENCE', `${where}: a path is required before ":"`, { subject: where });
  return { path: rest.slice(0, colon), selector: parseSelector(rest.slice(colon + 1), where) };
}

export class PathReference implements ImageReference {
  constructor(
    readonly transport: Transport,
    readonly path: string,
    readonly selector: ImageSelector | undefined,
    private readonly opener: (ref: PathReference, opts: IoOptions) => Promise<ImageSource>,
  ) {}

  toString(): string {
    return `${this.transport.name}:${this.path}${formatSelector(this.selector)}`;
  }

  openSource(opts: IoOptions = {}): Promise<ImageSource> {
    return this.opener(this, opts);
  }
}
