/**
 * berth's public API. Named exports only: what is not listed here is internal.
 * The CLI and the explorer import nothing else.
 */
export { BerthError, isBerthError, toBerthError, withContext, type ErrorCode } from './core/errors.js';
export { parseDigest, shortDigest, digestOf, type Digest } from './core/digest.js';
export type { Descriptor } from './core/descriptor.js';
export { parsePlatform, formatPlatform, normalizePlatform, type Platform } from './core/platform.js';
export { classifyMediaType, type MediaTypeInfo } from './core/media-types.js';
export type { ImageManifest, IndexManifest } from './core/manifest.js';
export type { ImageConfig } from './core/config.js';
export { chainIds } from './core/config.js';
export type { ByteStream, IoOptions } from './io/stream.js';
export { configureLimits, resetLimits, limits, DEFAULT_LIMITS, type Limits } from './io/limits.js';
export type { TreeNode, TreeRole } from './image/tree.js';
export type { InspectResult, InspectLayer, InspectHistory } from './image/inspect.js';
export type { VerifyReport, VerifyProblem } from './image/verify.js';
export { hostPlatform } from './image/resolve.js';
export { parseImageName } from './transports/all.js';
export {
  configureStore,
  storeRoot,
  listStoreImages,
  storeHistory,
  traceStore,
  saveStoreImages,
  type SaveFormat,
  type SaveOptions,
  type SaveResult,
  type StoreDefaults,
  type StoreDriver,
  type StoreOptions,
  type StoreImageInfo,
  type StoreImagesResult,
  type ListImagesOptions,
  type StoreHistoryEntry,
  type StoreHistoryResult,
  type TraceLayer,
  type TracePath,
  type TracePathEvent,
  type TraceResult,
  type TraceOptions,
  configureStoreWrites,
  loadImages,
  tagStoreImage,
  removeStoreImages,
  fsckStore,
  gcStore,
  type LoadOptions,
  type LoadResult,
  type LoadedImage,
  type StoreWriteOptions,
  type TagResult,
  type RemoveOptions,
  type RemoveResult,
  type FsckStoreOptions,
  type FsckResult,
  type FsckProblem,
  type GcStoreOptions,
  type GcResult,
  type GcRemoval,
} from './store.js';
export { disassembleTar, assembleTar, readTarSplit, writeTarSplit, type TarSplitRecord, type TarSplitFile, type TarSplitSegment } from './tar/split.js';
export type { ImageReference, ImageSource, EntryPoint, RootEntry, SourceFormat } from './transports/transport.js';
export {
  withSource,
  treeOf,
  inspectReference,
  rawManifestOf,
  rawConfigOf,
  openBlobByDigest,
  platformsOf,
  verifyReference,
  type TreeResult,
  type PlatformEntry,
  type ReadOptions,
  type VerifyReferenceOptions,
} from './images.js';
export {
  attestationsOf,
  predicateTypeMatches,
  type AttestationsOptions,
  type AttestationsResult,
  type ImageAttestations,
  type AttestationManifestInfo,
  type AttestationStatementInfo,
} from './attestations.js';
export type {
  AttestationSummary,
  ProvenanceAttestation,
  SbomAttestation,
  UnknownAttestation,
  ProvenanceSummary,
  ProvenanceMaterial,
  ProvenanceSource,
  SbomSummary,
  SbomPackage,
  StatementSubject,
} from './attest/index.js';
export {
  layersOf,
  listFiles,
  readFile,
  exportFlattened,
  exportFlattenedToFile,
  unpack,
  diffImages,
  searchFiles,
  layerChanges,
  FileIndexCache,
  type LayerChangesOptions,
  type LayerChangesResult,
  type FileChange,
  type FileIndexCacheStats,
  type IndexOptions,
  type SearchOptions,
  type SearchResult,
  type LayerInfo,
  type LayersResult,
  type FileInfo,
  type ListOptions,
  type ListResult,
  type ReadFileResult,
  type UnpackOptions,
  type UnpackResult,
  type DiffEntry,
  type DiffSide,
  type DiffResult,
  type DiffOptions,
} from './layers.js';
export type { ExtractLimits } from './layer/extract.js';
export { copyImage, DEFAULT_COPY_OPTIONS, type CopyOptions, type CopyResult } from './copy/copy.js';
export type { CopyEvent, CopyEventListener, BlobRole } from './copy/events.js';
export { copyReference, copyReferences, parseDestinationName, type CopyReferenceOptions, type CopyReferenceResult } from './copying.js';
export type { ImageDestination, DestinationCapabilities, DestinationOptions, NamedRoot, WritableReference } from './transports/transport.js';
export {
  configureRegistry,
  listTags,
  listCatalog,
  manifestDigest,
  deleteManifest,
  referrersOf,
  login,
  logout,
  isRegistryName,
  type RegistrySettings,
  type TagsResult,
  type CatalogResult,
  type DigestResult,
  type ReferrersList,
  type Credentials,
} from './registry.js';
export {
  listContainers,
  containerDiff,
  exportContainer,
  exportContainerToFile,
  containerLayerStream,
  containerLayerToFile,
  commitContainer,
  createContainer,
  mountContainer,
  unmountContainer,
  removeContainer,
  type CreateContainerOptions,
  type CreateContainerResult,
  type MountContainerOptions,
  type MountContainerResult,
  type UnmountContainerOptions,
  type UnmountContainerResult,
  type RemoveContainerOptions,
  type RemoveContainerResult,
  type CommitOptions,
  type ContainerOptions,
  type ContainerInfo,
  type ContainersResult,
  type ContainerDiffOptions,
  type ContainerDiffResult,
  type ContainerLayerOptions,
  type ContainerLayerResult,
  type DiffMode,
  type FsChange,
  type ChangeKind,
} from './containers.js';
export {
  appendLayer,
  setImageConfig,
  retagImage,
  configSteps,
  CHANGE_INSTRUCTIONS,
  type MutateOptions,
  type MutateResult,
  type AppendOptions,
  type ConfigChanges,
} from './mutate.js';
export { layerFromDirectory, layerFromDirectoryDiff, type DirectoryLayerOptions } from './layer/generate.js';
