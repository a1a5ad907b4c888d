/** `oci:DIR[:REF]`: an OCI image layout directory. */
import type { Transport } from '../transport.js';
import { openDirectoryFiles } from '../shared/files.js';
import { LayoutSource } from '../shared/layout.js';
import { splitPathAndSelector } from '../shared/reference.js';
import { WritablePathReference } from '../shared/destination-reference.js';
import { OciLayoutDestination } from './destination.js';

export const ociTransport: Transport = {
  name: 'oci',
  parseReference(rest) {
    const { path, selector } = splitPathAndSelector(rest, 'oci');
    return new WritablePathReference(ociTransport, path, selector, async (ref) => new LayoutSource(ref, await openDirectoryFiles(ref.path)),
      (ref, opts) => OciLayoutDestination.open(ref, opts));
  },
};
