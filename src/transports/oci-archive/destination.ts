/**
 * Writing an OCI layout as a tar file (`oci-archive:FILE[:NAME]`). Blobs are staged in a temp
 * directory beside FILE; at commit the layout is packed into a temp file beside FILE (`oci-layout`
 * and `index.json` first, for streaming readers: formats.md 4.2) and renamed over it. An existing
 * FILE is replaced only with `overwrite`.
 */
import { BerthError } from '../../core/errors.js';
import type { IoOptions } from '../../io/stream.js';
import type { DestinationCapabilities, DestinationOptions, ImageDestination, ImageReference, NamedRoot } from '../transport.js';
import { layoutMembers, rootEntries, serializeIndex, stagingBeside, StagingDestination, targetState, writeTarFile } from '../shared/layout-writer.js';

export const OCI_ARCHIVE_CAPABILITIES: DestinationCapabilities = {
  acceptsIndex: true,
  manifestTypes: 'any',
  layerCompression: 'preserve',
  acceptsForeignLayers: true,
  acceptsAttestations: true,
  parallelPuts: true,
  multipleRoots: true,
};

export class OciArchiveDestination extends StagingDestination {
  private constructor(reference: ImageReference, staging: string, opts: DestinationOptions) {
    super(reference, OCI_ARCHIVE_CAPABILITIES, staging, opts, { scratch: true });
  }

  static async open(reference: ImageReference, opts: DestinationOptions = {}): Promise<ImageDestination> {
    const target = reference.path;
    const state = await targetState(target);
    if (state.kind === 'directory') {
      throw new BerthError('BERTH_EXISTS', `${reference.toString()}: ${target} is a directory (use oci:${target} to write a layout directory)`, { subject: target });
    }
    if (state.kind === 'file' && opts.overwrite !== true) {
      throw new BerthError('BERTH_EXISTS', `${reference.toString()}: ${target} already exists (use --overwrite to replace it)`, { subject: target });
    }
    return new OciArchiveDestination(reference, await stagingBeside(target), opts);
  }

  protected async publish(roots: readonly NamedRoot[], opts: IoOptions): Promise<void> {
    const index = serializeIndex(rootEntries(roots, 'oci'));
    const members = await layoutMembers(this.staging, index, this.blobs.blobs);
    await writeTarFile(this.reference.path, members, { ...opts, fsync: this.opts.fsync !== false });
  }
}
