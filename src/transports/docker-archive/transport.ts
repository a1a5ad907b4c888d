/** `docker-archive:FILE[:NAME[:TAG]|:@N]`: a `docker save` tar, legacy or Docker 25+ layout. */
import type { Transport } from '../transport.js';
import { openArchiveFiles } from '../shared/files.js';
import { splitPathAndSelector } from '../shared/reference.js';
import { WritablePathReference } from '../shared/destination-reference.js';
import { DockerArchiveDestination } from './destination.js';
import { DockerArchiveSource } from './source.js';

export const dockerArchiveTransport: Transport = {
  name: 'docker-archive',
  parseReference(rest) {
    const { path, selector } = splitPathAndSelector(rest, 'docker-archive');
    return new WritablePathReference(dockerArchiveTransport, path, selector, async (ref, opts) => new DockerArchiveSource(ref, await openArchiveFiles(ref.path, opts)),
      (ref, opts) => DockerArchiveDestination.open(ref, opts));
  },
};
