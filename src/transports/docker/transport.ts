/**
 * `docker://HOST[:PORT]/REPO[:TAG][@DIGEST]`: an image in a registry, read and pushed. Parsing needs
 * only reference.ts; the HTTP client, source and destination load when a reference is opened.
 */
import type { DockerReference } from '../../core/reference.js';
import type { IoOptions } from '../../io/stream.js';
import type { DestinationOptions, ImageDestination, ImageSelector, ImageSource, Transport, WritableReference } from '../transport.js';
import type { ImageReference } from '../transport.js';
import { apiHost, formatRegistryReference, parseRegistryName, selectorOf } from './reference.js';

export const dockerTransport: Transport = {
  name: 'docker',
  parseReference(rest) {
    return new RegistryReference(parseRegistryName(rest));
  },
};

export class RegistryReference implements WritableReference {
  readonly transport = dockerTransport;
  /** `domain/path`, e.g. `127.0.0.1:5000/app`. */
  readonly path: string;
  readonly selector: ImageSelector | undefined;

  constructor(readonly docker: DockerReference) {
    this.path = `${docker.domain}/${docker.path}`;
    this.selector = selectorOf(docker);
  }

  toString(): string {
    return formatRegistryReference(this.docker);
  }

  async openSource(_opts: IoOptions = {}): Promise<ImageSource> {
    const [{ clientFor }, { RegistrySource }] = await Promise.all([import('./client.js'), import('./source.js')]);
    return new RegistrySource(this, this.docker, clientFor(apiHost(this.docker.domain)));
  }

  async openDestination(opts: DestinationOptions = {}): Promise<ImageDestination> {
    const [{ clientFor }, { RegistryDestination }] = await Promise.all([import('./client.js'), import('./destination.js')]);
    return new RegistryDestination(this, this.docker, clientFor(apiHost(this.docker.domain)), opts);
  }
}

/** True for a reference this transport made. */
export function isRegistryReference(ref: ImageReference): ref is RegistryReference {
  return ref instanceof RegistryReference;
}
