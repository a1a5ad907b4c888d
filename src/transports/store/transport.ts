/** `store:[ROOT]NAME[:TAG]`, `store:[ROOT]@ID`: images in a Docker-compatible data root, read and written. */
import { isBerthError } from '../../core/errors.js';
import type { Transport } from '../transport.js';
import { DataRoot } from './data-root.js';
import { StoreDestination } from './destination.js';
import { defaultStoreRoot, parseStoreReference, StoreReference } from './reference.js';
import { storeReferenceKey } from './repositories.js';
import { StoreSource } from './source.js';

export { defaultStoreRoot, setStoreDefaults, type StoreDefaults } from './reference.js';

export const storeTransport: Transport = {
  name: 'store',
  parseReference(rest) {
    return new StoreReference(storeTransport, parseStoreReference(rest), async (ref) => new StoreSource(ref, await DataRoot.open(ref.path)),
      (ref, opts) => StoreDestination.open(ref, opts));
  },
};

/**
 * The store reference a bare `NAME[:TAG]` means, when the default store has that image; undefined
 * otherwise (no store there, not a valid name, no such image). Reads repositories.json and the
 * image list only.
 */
export async function bareStoreReference(text: string): Promise<StoreReference | undefined> {
  if (storeReferenceKey(text) === undefined && !/^@?(?:sha256:)?[a-f0-9]{1,64}$/.test(text)) return undefined;
  let store: DataRoot;
  try {
    store = await DataRoot.open(defaultStoreRoot());
  } catch {
    return undefined;
  }
  try {
    if ((await store.resolve(text)) === undefined) return undefined;
  } catch (err) {
    // An ambiguous ID prefix is still a store reference: opening it explains the ambiguity.
    if (!isBerthError(err, 'BERTH_AMBIGUOUS')) return undefined;
  }
  return storeTransport.parseReference(text) as StoreReference;
}
