/**
 * The library as the commands call it. The light helpers (errors, digests, platforms, limits)
 * load at start-up; every other function imports its facade on first call, so `berth --version`
 * and `--help` load no transport, and each command loads only the facades it uses.
 */
import type { ByteStream } from '../src/index.js';

// the types of the whole API, for the commands' signatures (erased: they load nothing)
export type * from '../src/index.js';

export { BerthError, DEFAULT_LIMITS, configureLimits, isBerthError, parseDigest, parsePlatform, resetLimits, shortDigest, toBerthError } from '../src/basics.js';

/** `name` of the facade `load` imports, as an async function that loads the facade when called. */
function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K): M[K] {
  const call = async (...args: unknown[]): Promise<unknown> => ((await load())[name] as (...a: unknown[]) => unknown)(...args);
  return call as M[K];
}

const images = () => import('../src/images.js');
const attestations = () => import('../src/attestations.js');
const layers = () => import('../src/layers.js');
const copying = () => import('../src/copying.js');
const registry = () => import('../src/registry.js');
const store = () => import('../src/store.js');
const containers = () => import('../src/containers.js');
const mutate = () => import('../src/mutate.js');
const registrySettings = () => import('../src/registry-settings.js');
const storeSettings = () => import('../src/store-settings.js');

/**
 * Async here (the library's are synchronous); the preAction hooks await them. Small modules that
 * load no store or registry code, loaded only when a command runs (not for --version or --help).
 */
export const configureRegistry = async (...args: Parameters<typeof import('../src/registry-settings.js').configureRegistry>): Promise<void> => (await registrySettings()).configureRegistry(...args);
export const configureStore = async (...args: Parameters<typeof import('../src/store-settings.js').configureStore>): Promise<void> => (await storeSettings()).configureStore(...args);
export const configureStoreWrites = async (...args: Parameters<typeof import('../src/store-settings.js').configureStoreWrites>): Promise<void> => (await storeSettings()).configureStoreWrites(...args);

export const treeOf = lazy(images, 'treeOf');
export const inspectReference = lazy(images, 'inspectReference');
export const rawManifestOf = lazy(images, 'rawManifestOf');
export const rawConfigOf = lazy(images, 'rawConfigOf');
export const openBlobByDigest = lazy(images, 'openBlobByDigest');
export const platformsOf = lazy(images, 'platformsOf');
export const verifyReference = lazy(images, 'verifyReference');

export const attestationsOf = lazy(attestations, 'attestationsOf');

export const layersOf = lazy(layers, 'layersOf');
export const listFiles = lazy(layers, 'listFiles');
export const readFile = lazy(layers, 'readFile');
export const exportFlattenedToFile = lazy(layers, 'exportFlattenedToFile');
export const unpack = lazy(layers, 'unpack');
export const diffImages = lazy(layers, 'diffImages');
export const searchFiles = lazy(layers, 'searchFiles');
/** Synchronous in the library (it returns a stream): the facade loads when the stream is first read. */
export function exportFlattened(...args: Parameters<typeof import('../src/layers.js').exportFlattened>): ByteStream {
  return (async function* () {
    yield* (await layers()).exportFlattened(...args);
  })();
}

export const copyReferences = lazy(copying, 'copyReferences');

export const isRegistryName = async (text: string): Promise<boolean> => (await registry()).isRegistryName(text);
export const listTags = lazy(registry, 'listTags');
export const listCatalog = lazy(registry, 'listCatalog');
export const manifestDigest = lazy(registry, 'manifestDigest');
export const deleteManifest = lazy(registry, 'deleteManifest');
export const referrersOf = lazy(registry, 'referrersOf');
export const login = lazy(registry, 'login');
export const logout = lazy(registry, 'logout');

export const listStoreImages = lazy(store, 'listStoreImages');
export const storeHistory = lazy(store, 'storeHistory');
export const traceStore = lazy(store, 'traceStore');
export const saveStoreImages = lazy(store, 'saveStoreImages');
export const loadImages = lazy(store, 'loadImages');
export const tagStoreImage = lazy(store, 'tagStoreImage');
export const removeStoreImages = lazy(store, 'removeStoreImages');
export const fsckStore = lazy(store, 'fsckStore');
export const gcStore = lazy(store, 'gcStore');

export const listContainers = lazy(containers, 'listContainers');
export const containerDiff = lazy(containers, 'containerDiff');
export const exportContainerToFile = lazy(containers, 'exportContainerToFile');
export const containerLayerToFile = lazy(containers, 'containerLayerToFile');
export const commitContainer = lazy(containers, 'commitContainer');
export const createContainer = lazy(containers, 'createContainer');
export const mountContainer = lazy(containers, 'mountContainer');
export const unmountContainer = lazy(containers, 'unmountContainer');
export const removeContainer = lazy(containers, 'removeContainer');

export const appendLayer = lazy(mutate, 'appendLayer');
export const setImageConfig = lazy(mutate, 'setImageConfig');
export const retagImage = lazy(mutate, 'retagImage');
