/** `oci:DIR[:REF]`: an OCI image layout directory. */
import type { Transport } from '../transport.js';
import { openDirectoryFiles } from '../shared/files.js';
import { LayoutSource } from '../shared/layout.js';
import { splitPathAndSelector } from '../shared/reference.js';
import { WritablePathReference } from '../shared/destination-reference.js';

export const ociTransport: Transport = {
  name: 'oci',
  parseReference(rest) {
    const { path, selector } = splitPathAndSelector(rest, 'oci');
    // the destination code (layout and tar writers) loads only when something is written
    return new WritablePathReference(ociTransport, path, selector, async (ref) => new LayoutSource(ref, await openDirectoryFiles(ref.path)),
      async (ref, opts) => (await import('./destination.js')).OciLayoutDestination.open(ref, opts));
  },
};
