/** `oci:DIR[:REF]`: an OCI image layout directory. */
import type { Transport } from '../transport.js';
import { openDirectoryFiles } from '../shared/files.js';
import { LayoutSource } from '../shared/layout.js';
import { PathReference, splitPathAndSelector } from '../shared/reference.js';

export const ociTransport: Transport = {
  name: 'oci',
  parseReference(rest) {
    const { path, selector } = splitPathAndSelector(rest, 'oci');
    return new PathReference(ociTransport, path, selector, async (ref) => new LayoutSource(ref, await openDirectoryFiles(ref.path)));
  },
};
