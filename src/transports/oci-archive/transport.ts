/** `oci-archive:FILE[:REF]`: an OCI image layout in a tar file (optionally compressed). */
import type { Transport } from '../transport.js';
import { openArchiveFiles } from '../shared/files.js';
import { LayoutSource } from '../shared/layout.js';
import { splitPathAndSelector } from '../shared/reference.js';
import { WritablePathReference } from '../shared/destination-reference.js';

export const ociArchiveTransport: Transport = {
  name: 'oci-archive',
  parseReference(rest) {
    const { path, selector } = splitPathAndSelector(rest, 'oci-archive');
    // the destination code (layout and tar writers) loads only when something is written
    return new WritablePathReference(ociArchiveTransport, path, selector, async (ref, opts) => new LayoutSource(ref, await openArchiveFiles(ref.path, opts)),
      async (ref, opts) => (await import('./destination.js')).OciArchiveDestination.open(ref, opts));
  },
};
