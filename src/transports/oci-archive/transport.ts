/** `oci-archive:FILE[:REF]`: an OCI image layout in a tar file (optionally compressed). */
import type { Transport } from '../transport.js';
import { openArchiveFiles } from '../shared/files.js';
import { LayoutSource } from '../shared/layout.js';
import { PathReference, splitPathAndSelector } from '../shared/reference.js';

export const ociArchiveTransport: Transport = {
  name: 'oci-archive',
  parseReference(rest) {
    const { path, selector } = splitPathAndSelector(rest, 'oci-archive');
    return new PathReference(ociArchiveTransport, path, selector, async (ref, opts) => new LayoutSource(ref, await openArchiveFiles(ref.path, opts)));
  },
};
