/** `docker-archive:FILE[:NAME[:TAG]|:@N]`: a `docker save` tar, legacy or Docker 25+ layout. */
import type { Transport } from '../transport.js';
import { openArchiveFiles } from '../shared/files.js';
import { splitPathAndSelector } from '../shared/reference.js';
import { WritablePathReference } from '../shared/destination-reference.js';
import { DockerArchiveSource } from './source.js';

export const dockerArchiveTransport: Transport = {
  name: 'docker-archive',
  parseReference(rest) {
    const { path, selector } = splitPathAndSelector(rest, 'docker-archive');
    // the destination code (layout and tar writers) loads only when something is written
    return new WritablePathReference(dockerArchiveTransport, path, selector, async (ref, opts) => new DockerArchiveSource(ref, await openArchiveFiles(ref.path, opts)),
      async (ref, opts) => (await import('./destination.js')).DockerArchiveDestination.open(ref, opts));
  },
};
