import { buildImage, type BuildResult } from '../builder/build.js';
import { emptyCustomisation, type CustomisationSpec } from '../builder/customisation.js';
import type { ProduceStats } from '../builder/produce-layers.js';
import { defaultCacheDir, openLayerCache } from '../cache/layer-cache.js';
import { checkProducibleCompression } from '../compress/compression.js';
import { rfc3339, type ImageSettings } from '../image/assemble.js';
import { manifestOf } from '../image/manifest.js';
import type { Compression } from '../image/media-types.js';
import { DEFAULT_MAX_LAYERS } from '../layering/budget.js';
import type { LayeringStrategy } from '../layering/types.js';
import { defaultCompression, openImageDestination, type OutputFormat } from '../transports/open-destination.js';
import type { RegistryOptions } from '../transports/registry/client.js';
import type { ImageDestination } from '../transports/types.js';
import { defaultArchitecture, resolveEpoch } from './defaults.js';
import { checkStoreRoot, loadClosure, loadPrevious, openBase, type ClosureInput, type SourceAccess } from './inputs.js';

/** Everything a build takes, typed: what the CLI's flags turn into, once, at the edge. */
export interface BuildRequest extends ClosureInput, SourceAccess {
  /** Where the image goes: `docker://REF`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE`, a plain path (see `format`), or `-`. */
  readonly output: string;
  /** Format of a plain-path output (default docker-archive). */
  readonly format?: OutputFormat;
  /** Physical root the store paths are read under (default '/'). */
  readonly storeRoot?: string;
  readonly tags?: readonly string[];
  /** Base image reference. */
  readonly from?: string;
  /** Previous release (an image strata built) or its plan file, for the stable layering. */
  readonly previous?: string;
  readonly planIn?: string;
  readonly layering?: LayeringStrategy;
  readonly maxLayers?: number;
  /** Config fields; `created` defaults to SOURCE_DATE_EPOCH (else 1), the architecture to the base's, else the host's. */
  readonly settings?: Partial<ImageSettings>;
  readonly customisation?: Partial<CustomisationSpec>;
  /** mtime of every entry in new layers (default: SOURCE_DATE_EPOCH, else 1). */
  readonly mtime?: number;
  /** Layer compression (default: gzip for registries and OCI outputs, none for docker-archive). */
  readonly compression?: Compression;
  /** Layer cache directory, or false for none (default: $XDG_CACHE_HOME/strata). */
  readonly cache?: string | false;
  readonly registry?: RegistryOptions;
  /** Filled with what was built and what came from the cache. */
  readonly stats?: ProduceStats;
}

export interface BuildSummary extends BuildResult {
  readonly destination: string;
  readonly manifestDigest: string;
}

/**
 * Builds an image from a closure into one destination: the closure, base and previous release
 * are read, the layers planned and produced, and the image committed (or every trace removed).
 */
export async function build(request: BuildRequest): Promise<BuildSummary> {
  const closure = await loadClosure(request);
  const storeRoot = request.storeRoot ?? '/';
  await checkStoreRoot(storeRoot);
  // The request carries previous/planIn and the platform and registry access by the same names.
  const previous = await loadPrevious(request, request);
  const base = request.from ? await openBase(request.from, closure, request) : undefined;
  try {
    const compression = request.compression ?? defaultCompression(request.output, request.format);
    checkProducibleCompression(compression);
    const mtime = request.mtime ?? resolveEpoch('--mtime', undefined);
    const cache = request.cache === false ? undefined : await openLayerCache(request.cache ?? defaultCacheDir());
    const dest = await openDestination(request, compression, mtime);
    const result = await buildImage(
      {
        closure,
        storeRoot,
        layering: request.layering ?? 'stable',
        maxLayers: request.maxLayers ?? DEFAULT_MAX_LAYERS,
        ...(previous ? { previous } : {}),
        ...(base ? { base: base.source.image, basePaths: base.paths } : {}),
        settings: completeSettings(request.settings ?? {}, base !== undefined),
        customisation: { ...emptyCustomisation, ...(request.customisation ?? {}) },
        mtime,
        compression,
        ...(cache ? { cache } : {}),
        ...(request.stats ? { stats: request.stats } : {}),
        tags: request.tags ?? [],
      },
      dest,
    );
    return { ...result, destination: dest.name, manifestDigest: manifestOf(result.image).digest };
  } finally {
    await base?.source.close();
  }
}

/** Unset fields of the settings: created from SOURCE_DATE_EPOCH (else 1); platform from the base, else the host. */
function completeSettings(s: Partial<ImageSettings>, hasBase: boolean): ImageSettings {
  return {
    ...s,
    created: s.created ?? rfc3339(resolveEpoch('--created', undefined)),
    ...(s.architecture === undefined && !hasBase ? { architecture: defaultArchitecture() } : {}),
    ...(s.os === undefined && !hasBase ? { os: 'linux' } : {}),
  };
}

/**
 * A registry output spools each new layer so its digest is known before upload (a layer the
 * registry has then costs one HEAD), and may mount base layers from the base's repository.
 */
async function openDestination(request: BuildRequest, compression: Compression, mtime: number): Promise<ImageDestination> {
  const registry = request.registry ?? {};
  if (!request.output.startsWith('docker://')) return openImageDestination(request.output, { ...(request.format ? { format: request.format } : {}), mtime, compression, registry });
  const { sameRegistryRepository } = await import('../transports/registry/reference.js');
  const mountFrom = request.from ? sameRegistryRepository(request.from, request.output) : undefined;
  return openImageDestination(request.output, {
    mtime,
    compression,
    registry: { ...registry, blobWrites: 'spool', ...(mountFrom ? { mountFrom: [mountFrom] } : {}) },
  });
}
