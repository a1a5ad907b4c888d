/** `oci-archive:FILE[:REF]`: an OCI image layout in a tar file (optionally compressed). */
import type { Transport } from '../transport.js';
import { openArchiveFiles } from '../shared/files.js';
import { LayoutSource } from '../shared/layout.js';
import { splitPathAndSelector } from '../shared/reference.js';
import { WritablePathReference } from '../shared/destination-reference.js';
import { OciArchiveDestination } from './destination.js';

export const ociArchiveTransport: Transport = {
  name: 'oci-archive',
  parseReference(rest) {
    const { path, selector } = splitPathAndSelector(rest, 'oci-archive');
    return new WritablePathReference(ociArchiveTransport, path, selector, async (ref, opts) => new LayoutSource(ref, await openArchiveFiles(ref.path, opts)),
      (ref, opts) => OciArchiveDestination.open(ref, opts));
  },
};
