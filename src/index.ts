/**
 * strata as a library: the same operations the CLI runs, typed, in the spirit of
 * go-containerregistry's pkg/crane, over one model (Image, Layer, ImageIndex, Descriptor) and
 * transports that read and write it (docker-archive, OCI layout and archive, registry).
 *
 *   import { build } from 'strata';
 *   await build({ closure: 'closure.json', storeRoot: '/', output: 'oci:out:app', tags: ['app:1'] });
 */
export { build, type BuildRequest, type BuildSummary } from './ops/build.js';
export { produceImage, buildImage, type BuildOptions, type BuildResult } from './builder/build.js';
export { stack, parseStackSource, type StackRequest, type StackSummary, type StackSourceRef } from './ops/stack.js';
export { checkStack, produceStack, type CheckedStack } from './builder/stack.js';
export { embed, prepareStore, DEFAULT_STORE, type EmbedRequest, type EmbedSummary, type StoreRequest, type PreparedStore } from './ops/embed.js';
export { produceStore, squashTop } from './builder/embed.js';
export { planStore, MAX_STORE_LAYERS, type StorePlan, type StoreImage, type StoredLayer, type StoredImage } from './transports/containers-storage/plan.js';
export type { WhiteoutMode } from './transports/containers-storage/layer-tar.js';
export { publish, type PublishRequest, type PublishSummary, type PublishedEntry } from './ops/publish.js';
export { compose, type ComposeRequest, type ComposeSummary, type Resolution } from './ops/compose.js';
export { openPackageRepository, type PackageRepository } from './transports/package-repository.js';
export { plan, type PlanRequest } from './ops/plan.js';
export { inspect, type InspectResult } from './ops/inspect.js';
export { copy, type CopyOptions } from './ops/copy.js';
export { exportImage, type ExportRequest, type ExportSummary } from './ops/export.js';
export { diffImages, type ImageDiff, type DiffLayer } from './ops/diff.js';
export { mergeImages, parseMergeSource, type MergeRequest, type MergeSummary, type MergeSource } from './ops/merge.js';
export { createIndex, appendIndex, removeFromIndex, filterIndex, type IndexSourceRef, type IndexResult } from './ops/index.js';
export type { IndexOptions } from './image/index-ops.js';
export { openImageSource, openImageRoot, type OpenSourceOptions } from './transports/open-source.js';
export { openImageDestination, type DestinationOptions, type OutputFormat } from './transports/open-destination.js';
export type { ImageDestination, ImageSource, RootSource, BlobWriter } from './transports/types.js';
export type { RegistryOptions } from './transports/registry/client.js';

// The model.
export { isIndex, type Image, type ImageIndex } from './image/image.js';
export type { Layer } from './image/layer.js';
export type { Descriptor } from './image/descriptor.js';
export type { ImageConfig } from './image/config.js';
export type { ImageSettings } from './image/assemble.js';
export { manifestOf, type SerializedManifest } from './image/manifest.js';
export { makeIndex, childOf, type IndexChild } from './image/make-index.js';
export { parsePlatform, formatPlatform, type Platform } from './image/platform.js';
export { resolveImage } from './image/select.js';
export { planStack, type StackPlan, type StackSource, type StackStep } from './image/stack.js';
export { findShadows, type Shadow } from './image/conflicts.js';
export { PackageAnnotations, packageImage, readPackage, type PathLayer, type PublishedPackage } from './image/package.js';
export { packageOf, versionTag, buildTag, repositoryName, type PackageId } from './closure/package.js';
export { compareVersions, parseDrvName, parseVersionRange, highestInRange } from './closure/nix-name.js';
export type { Closure } from './closure/types.js';
export { StrataError } from './util/errors.js';
