import { buildImage, type BuildOptions, type BuildResult } from '../builder/build.js';
import type { ProgressSink } from '../transports/progress.js';
import type { StoreOwnership } from '../tar/ownership.js';
import { packageOf, repositoryName } from '../closure/package.js';
import { emptyCustomisation, type CustomisationSpec } from '../builder/customisation.js';
import type { ProduceStats } from '../builder/produce-layers.js';
import { defaultCacheDir, openLayerCache, type CacheStats } from '../cache/layer-cache.js';
import { checkProducibleCompression } from '../compress/compression.js';
import type { ImageSettings } from '../image/assemble.js';
import { manifestOf } from '../image/manifest.js';
import type { Compression } from '../image/media-types.js';
import { DEFAULT_MAX_LAYERS } from '../layering/budget.js';
import type { LayeringStrategy } from '../layering/types.js';
import { defaultCompression, type OutputFormat } from '../transports/open-destination.js';
import type { RegistryOptions } from '../transports/registry/client.js';
import { openOutput, writing } from './commit.js';
import { completeSettings, resolveEpoch } from './defaults.js';
import { checkStoreRoot, loadClosure, loadPrevious, openBase, type Base, type ClosureInput, type SourceAccess } from './inputs.js';
import { openStackSources, type StackSourceRef } from './stack.js';
import { checkStack, type CheckedStack } from '../builder/stack.js';
import type { Closure } from '../closure/types.js';
import type { Shadow } from '../image/conflicts.js';
import { LayerScanner } from '../image/layer-scan.js';
import { planStack, type StackSource } from '../image/stack.js';
import { StrataError } from '../util/errors.js';
import { hostPlatform, prepareStore, type PreparedStore, type StoreRequest } from './embed.js';

/** Everything a build takes, typed: what the CLI's flags turn into, once, at the edge. */
export interface BuildRequest extends Omit<ClosureInput, 'closure'>, SourceAccess {
  /** The closure (a file in any supported form, or parsed); none builds from --add, --import and --from alone. */
  readonly closure?: ClosureInput['closure'];
  /** Images stacked on the base, under the closure's layers (`--import SRC[=DEST]`). */
  readonly imports?: readonly StackSourceRef[];
  /** Merge each import's layers into one. */
  readonly squash?: boolean;
  /** Let an upper import replace a lower file instead of failing (reported in `shadowed`). */
  readonly allowShadow?: boolean;
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
  /** Hash every cached blob before use, trusting no stamp (`--verify-cache`). */
  readonly verifyCache?: boolean;
  readonly registry?: RegistryOptions;
  /** Filled with what was built and what came from the cache. */
  readonly stats?: ProduceStats;
  /** Store layers that exist already, by store path (compose: published package layers); see BuildOptions. */
  readonly published?: BuildOptions['published'];
  /** Where --bin paths' bin/ entries are listed from (default: the store under storeRoot). */
  readonly listBin?: BuildOptions['listBin'];
  /** App images embedded on top, as a read-only image store (`--embed`; see ops/embed.ts). */
  readonly embed?: StoreRequest;
  /** Owner of every new entry (`--uid/--gid/--uname/--gname`) and `--perms` rules for store files. */
  readonly ownership?: StoreOwnership;
  /** Told of each layer and of the bytes as they are written (the CLI's progress display). */
  readonly progress?: ProgressSink;
  /** Register the closure in a Nix database in the image (`--nix-db`). */
  readonly nixDb?: boolean;
}

export interface BuildSummary extends BuildResult {
  readonly destination: string;
  /** What the layer cache did (absent with no cache). */
  readonly cache?: CacheStats;
  readonly manifestDigest: string;
  /** Paths an import replaced in a lower source (with allowShadow). */
  readonly shadowed: readonly Shadow[];
}

/**
 * Builds an image from a closure into one destination: the closure, base and previous release
 * are read, the layers planned and produced, and the image committed (or every trace removed).
 */
export async function build(request: BuildRequest): Promise<BuildSummary> {
  return writing(request.output, () => buildUnguarded(request));
}

async function buildUnguarded(request: BuildRequest): Promise<BuildSummary> {
  const imports = request.imports ?? [];
  const customised = (request.customisation?.adds?.length ?? 0) + (request.customisation?.symlinks?.length ?? 0) > 0;
  if (request.closure === undefined && imports.length === 0 && request.from === undefined && !customised) {
    throw new StrataError('nothing to build: give a closure, or the image content with --add, --import or --from');
  }
  const closure = request.closure === undefined ? emptyClosure(request.storeDir) : await loadClosure({ ...request, closure: request.closure });
  const storeRoot = request.storeRoot ?? '/';
  await checkStoreRoot(storeRoot);
  // The request carries previous/planIn and the platform and registry access by the same names.
  const previous = await loadPrevious(request, request);
  const scanner = new LayerScanner();
  const base = request.from ? await openBase(request.from, closure, request, scanner, imports.length > 0) : undefined;
  const opened = await openStackSources(imports, request.squash ?? false, request, '--import').catch(async (e) => {
    await base?.source.close();
    throw e;
  });
  let store: PreparedStore | undefined;
  try {
    const platformFrom = base?.source.image ?? opened.sources[0]?.image;
    const settings = completeSettings(request.settings ?? {}, platformFrom);
    if (request.embed) store = await prepareStore(request.embed, request, hostPlatform(platformFrom, settings));
    const checked = imports.length > 0 ? await checkImports(opened.sources, base, scanner, request.allowShadow ?? false) : undefined;
    const basePaths = new Set(base?.paths ?? []);
    if (checked) for (const p of await importedStorePaths(checked, closure.storeDir, scanner)) basePaths.add(p);
    const compression = request.compression ?? defaultCompression(request.output, request.format);
    checkProducibleCompression(compression);
    const mtime = request.mtime ?? resolveEpoch('--mtime', undefined);
    const cache = request.cache === false ? undefined : await openLayerCache(request.cache ?? defaultCacheDir(), { verify: request.verifyCache ?? false });
    const dest = await openOutput(request.output, {
      ...(request.format ? { format: request.format } : {}),
      compression,
      mtime,
      registry: request.registry ?? {},
      ...(request.progress ? { progress: request.progress } : {}),
      sources: [...(request.from ? [request.from] : []), ...imports.map((i) => i.ref), ...(request.embed?.apps ?? [])],
    });
    const result = await buildImage(
      {
        closure,
        storeRoot,
        layering: request.layering ?? 'stable',
        maxLayers: request.maxLayers ?? DEFAULT_MAX_LAYERS,
        ...(previous ? { previous } : {}),
        ...(base ? { base: base.source.image } : {}),
        basePaths,
        ...(checked ? { imports: checked } : {}),
        settings,
        ...(store ? { store: { plan: store.plan, whiteouts: store.whiteouts } } : {}),
        customisation: { ...emptyCustomisation, ...(request.customisation ?? {}) },
        mtime,
        compression,
        ...(cache ? { cache } : {}),
        ...(request.stats ? { stats: request.stats } : {}),
        tags: request.tags ?? [],
        ...(dest.name.startsWith('docker-archive:') ? defaultName(closure) : {}),
        ...(request.published ? { published: request.published } : {}),
        ...(request.listBin ? { listBin: request.listBin } : {}),
        ...(request.ownership ? { ownership: request.ownership } : {}),
        ...(request.nixDb ? { nixDb: true } : {}),
      },
      dest,
    );
    return { ...result, destination: dest.name, manifestDigest: manifestOf(result.image).digest, shadowed: checked?.shadowed ?? [], ...(cache ? { cache: { ...cache.stats } } : {}) };
  } finally {
    await store?.close();
    await opened.close();
    await base?.source.close();
  }
}

/**
 * The name a docker-archive gets when no --tag is given: the root package's repository name (a
 * closure of one root), so that `docker load` and `podman load` give a named image. None for a
 * closure of several roots, or none.
 */
function defaultName(closure: Closure): { defaultName?: string } {
  if (closure.roots.length !== 1) return {};
  const root = closure.paths.get(closure.roots[0]!);
  if (!root) return {};
  try {
    return { defaultName: repositoryName(packageOf(root, closure.storeDir).pname) };
  } catch {
    return {};
  }
}

function emptyClosure(storeDir = '/nix/store'): Closure {
  return { storeDir, paths: new Map(), roots: [] };
}

/** The imports planned on top of the base and checked against it and each other. */
function checkImports(sources: StackSource[], base: Base | undefined, scanner: LayerScanner, allowShadow: boolean): Promise<CheckedStack> {
  const plan = planStack(sources, base?.source.image.layers ?? [], base?.source.image);
  return checkStack(plan, scanner, { allowShadow, ...(base ? { base: { name: base.source.name, image: base.source.image } } : {}) });
}

/** Store paths the imports carry at `/` (those placed elsewhere are no longer store paths). */
async function importedStorePaths(checked: CheckedStack, storeDir: string, scanner: LayerScanner): Promise<string[]> {
  const out: string[] = [];
  for (const step of checked.plan.steps) {
    const name = checked.plan.sources[step.source]!.name;
    if (step.kind === 'carry') out.push(...(step.storePaths ?? (await scanner.storePaths(step.layer, storeDir, name))));
    else if (step.at === '') for (const layer of step.layers) out.push(...(await scanner.storePaths(layer, storeDir, name)));
  }
  return out;
}
