/**
 * Which data root `store:NAME` and bare names use, and whether writes may change a root berth did
 * not create. Apart from src/store.ts so that the CLI, which sets both before every command, loads
 * none of the store code to do so.
 */
import { setStoreAllowWrite, setStoreDefaults, type StoreDefaults } from './transports/store/reference.js';

export type { StoreDefaults } from './transports/store/reference.js';

/** Sets the store `store:NAME` and bare names use: `--root`, else the environment given. */
export function configureStore(d: StoreDefaults): void {
  setStoreDefaults(d);
}

/** Sets whether `store:` destinations and store commands may write roots berth did not create (the CLI's --allow-write). */
export function configureStoreWrites(opts: { allowWrite?: boolean }): void {
  setStoreAllowWrite(opts.allowWrite);
}
