/** Path references that can be written to as well as read: `oci:`, `oci-archive:`, `docker-archive:`. */
import type { IoOptions } from '../../io/stream.js';
import type { DestinationOptions, ImageDestination, ImageSelector, ImageSource, Transport, WritableReference } from '../transport.js';
import { PathReference } from './reference.js';

export class WritablePathReference extends PathReference implements WritableReference {
  constructor(
    transport: Transport,
    path: string,
    selector: ImageSelector | undefined,
    opener: (ref: PathReference, opts: IoOptions) => Promise<ImageSource>,
    private readonly destinationOpener: (ref: WritablePathReference, opts: DestinationOptions) => Promise<ImageDestination>,
  ) {
    super(transport, path, selector, opener);
  }

  openDestination(opts: DestinationOptions = {}): Promise<ImageDestination> {
    return this.destinationOpener(this, opts);
  }
}
