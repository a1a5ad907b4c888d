/**
 * `store:[ROOT]NAME[:TAG]`, `store:[ROOT]@ID`: images in a Docker-compatible data root, read and
 * written. Parsing needs only reference.ts; the data root, source and destination code load when a
 * reference is first opened, so commands that never touch the store do not pay for it.
 */
import { isBerthError } from '../../core/errors.js';
import type { ImageDestination, ImageSource, Transport } from '../transport.js';
import type { DataRoot } from './data-root.js';
import type { StoreDestinationOptions } from './destination.js';
import { defaultStoreRoot, parseStoreReference, storeAllowWrite, StoreReference } from './reference.js';

export { defaultStoreRoot, setStoreAllowWrite, setStoreDefaults, storeAllowWrite, type StoreDefaults } from './reference.js';

async function openStoreSource(ref: StoreReference): Promise<ImageSource> {
  const [{ StoreSource }, { DataRoot }] = await Promise.all([import('./source.js'), import('./data-root.js')]);
  return new StoreSource(ref, await DataRoot.open(ref.path));
}

async function openStoreDestination(ref: StoreReference, opts: StoreDestinationOptions): Promise<ImageDestination> {
  const { StoreDestination } = await import('./destination.js');
  // the configured --allow-write applies unless the caller decided
  const allowWrite = opts.allowWrite ?? storeAllowWrite();
  return StoreDestination.open(ref, { ...opts, ...(allowWrite !== undefined ? { allowWrite } : {}) });
}

export const storeTransport: Transport = {
  name: 'store',
  parseReference(rest) {
    return new StoreReference(storeTransport, parseStoreReference(rest), openStoreSource, openStoreDestination);
  },
};

/**
 * The store reference a bare `NAME[:TAG]` means, when the default store has that image; undefined
 * otherwise (no store there, not a valid name, no such image). Reads repositories.json and the
 * image list only.
 */
export async function bareStoreReference(text: string): Promise<StoreReference | undefined> {
  const { storeReferenceKey } = await import('./repositories.js');
  if (storeReferenceKey(text) === undefined && !/^@?(?:sha256:)?[a-f0-9]{1,64}$/.test(text)) return undefined;
  const { DataRoot: Root } = await import('./data-root.js');
  let store: DataRoot;
  try {
    store = await Root.open(defaultStoreRoot());
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
