import { posix } from 'node:path';
import { nixDbEntries } from './nix-db.js';
import type { StoreOwnership } from '../tar/ownership.js';
import { digestHex } from '../image/digest.js';
import type { Closure } from '../closure/types.js';
import { closureWithout } from '../closure/subset.js';
import { assembleImage, type DescribedLayer, type ImageSettings } from '../image/assemble.js';
import { CUSTOMISATION_CREATED_BY, storeLayerHistory } from '../image/history.js';
import type { Image } from '../image/image.js';
import { storeLayerBudget } from '../layering/budget.js';
import { planLayers } from '../layering/plan.js';
import type { PreviousAssignment } from '../layering/stable.js';
import type { LayerPlan, LayeringStrategy } from '../layering/types.js';
import type { ImageDestination } from '../transports/types.js';
import { customisationEntries, storeBinLister, type BinLister, type CustomisationSpec } from './customisation.js';
import { produceLayers, type LayerJobSource, type ProduceStats } from './produce-layers.js';
import type { LayerCache } from '../cache/layer-cache.js';
import { storeLayerJob } from './store-layer-job.js';
import { produceStack, type CheckedStack } from './stack.js';
import type { Compression } from '../image/media-types.js';
import { annotatedLayer, type PathLayer } from '../image/package.js';
import type { Layer } from '../image/layer.js';
import { layerTar } from '../image/layer-tar.js';
import { concatTars } from '../tar/concat.js';
import { lazyCompressPool } from '../compress/block-pool.js';
import { StrataError } from '../util/errors.js';
import { produceStreamedLayer } from './stream-layer.js';
import { produceStore } from './embed.js';
import type { StorePlan } from '../transports/containers-storage/plan.js';
import type { WhiteoutMode } from '../transports/containers-storage/layer-tar.js';

export interface BuildOptions {
  closure: Closure;
  /** Physical directory under which the logical store paths are read ('/' for the real store). */
  storeRoot: string;
  layering: LayeringStrategy;
  maxLayers: number;
  previous?: PreviousAssignment;
  /** The image to build on; its layers are carried over unchanged. */
  base?: Image;
  /** Store paths the base image (and the imports) already carry: not added again. */
  basePaths?: ReadonlySet<string>;
  /** Images stacked on the base before the closure's layers (`--import`), checked (checkStack). */
  imports?: CheckedStack;
  settings: ImageSettings;
  customisation: CustomisationSpec;
  /** mtime of every entry in new layers (seconds since the epoch). */
  mtime: number;
  /** Compression of new layer blobs. */
  compression: Compression;
  /** Layer cache; undefined builds every layer afresh (`--no-cache`). */
  cache?: LayerCache;
  /** Filled with what was built and what came from the cache. */
  stats?: ProduceStats;
  tags: readonly string[];
  /**
   * With no `tags`: the image is tagged `<defaultName>:<first 32 hex digits of its config digest>`,
   * as nixpkgs tags an image with its content hash, so that loading it gives a named image whose
   * name is the same for the same content.
   */
  defaultName?: string;
  /**
   * Store layers that exist already, by store path (published package layers): the closure is
   * planned as ever, but a planned layer of one such path is that layer, carried byte for byte,
   * and a layer of several is made from their tars (concatTars) — the store is never read.
   */
  published?: ReadonlyMap<string, PathLayer>;
  /** Where --bin paths' bin/ entries are listed from (default: the store under storeRoot). */
  listBin?: BinLister;
  /** Owner and --perms modes of the store layers' entries (the owner also the customisation layer's). */
  ownership?: StoreOwnership;
  /** Register the closure in a Nix database at /nix/var/nix/db (in the customisation layer). */
  nixDb?: boolean;
  /** An image store of app images, embedded on top of everything else (planStore). */
  store?: { plan: StorePlan; whiteouts: WhiteoutMode };
}

export interface BuildResult {
  image: Image;
  plan: LayerPlan;
  /** Closure paths left out because the base image has them. */
  providedByBase: string[];
  /** The names it was committed under (the tags, or the default name). */
  tags: readonly string[];
}

/**
 * The whole pipeline over one destination: plan → base layers carried over → store layers and
 * the customisation layer streamed into the destination → config → commit. Any failure aborts
 * the destination, which removes what it had written.
 */
export async function buildImage(opts: BuildOptions, dest: ImageDestination): Promise<BuildResult> {
  try {
    const result = await produceImage(opts, dest);
    const tags = opts.tags.length > 0 || opts.defaultName === undefined ? opts.tags : [`${opts.defaultName}:${digestHex(result.image.configDigest).slice(0, 32)}`];
    await dest.commit(result.image, tags);
    await opts.cache?.stampUsed();
    return { ...result, tags };
  } catch (err) {
    await dest.abort();
    throw err;
  }
}

/**
 * The producing half of a build, without the commit: the image's layers are written into `dest`
 * and the finished Image returned. Committing is the caller's next step — to `dest`, or as a child
 * of an index — and its layers re-open from `dest` (BlobWriter.close), so the same image can then
 * be copied to further destinations. On failure the caller aborts `dest`.
 */
export async function produceImage(opts: BuildOptions, dest: ImageDestination): Promise<BuildResult> {
  const baseLayers = opts.base?.layers ?? [];
  const storeLayers = opts.store ? opts.store.plan.layers.length + 1 : 0;
  const budget = storeLayerBudget(opts.maxLayers, baseLayers.length + (opts.imports?.plan.steps.length ?? 0) + storeLayers);
  const providedByBase = [...(opts.basePaths ?? [])].filter((p) => opts.closure.paths.has(p)).sort();
  const closure = closureWithout(opts.closure, new Set(providedByBase));
  const plan = closure.paths.size > 0 ? planLayers(closure, opts.layering, budget, opts.previous) : { strategy: opts.layering, layers: [] };

  for (const layer of baseLayers) await dest.addLayer(layer);
  const imported = opts.imports ? await produceStack(opts.imports, dest, { compression: opts.compression, mtime: opts.mtime }) : [];

  const stored = opts.published ? await carryPublished(plan, opts.published, dest, opts.compression) : [];

  // Each layer is scanned when its turn comes, so scanning overlaps with making the layers before
  // it; layers are produced concurrently where the destination allows, through the cache; blob
  // order stays the plan's order.
  const jobs: LayerJobSource[] = [];
  const jobOpts = { storeDir: closure.storeDir, storeRoot: opts.storeRoot, mtime: opts.mtime, compression: opts.compression, identities: opts.cache !== undefined, narHashes: opts.closure.paths, ...(opts.ownership ? { ownership: opts.ownership } : {}) };
  if (!opts.published) for (const planned of plan.layers) jobs.push(() => storeLayerJob(planned.paths, jobOpts));
  // The customisation layer is scanned first: a bad --add fails the build before any work.
  const files = opts.nixDb ? await nixDbEntries(opts.closure, opts.mtime) : [];
  const customisation = { ...opts.customisation, ...(opts.ownership?.owner ? { owner: opts.ownership.owner } : {}), ...(files.length > 0 ? { files: [...(opts.customisation.files ?? []), ...files] } : {}) };
  jobs.push({ entries: await customisationEntries(customisation, opts.listBin ?? storeBinLister(opts.closure, opts.storeRoot)) });
  const layers = await produceLayers(jobs, dest, {
    mtime: opts.mtime,
    compression: opts.compression,
    ...(opts.cache ? { cache: opts.cache } : {}),
    ...(opts.stats ? { stats: opts.stats } : {}),
  });
  const newLayers: DescribedLayer[] = [...stored, ...layers].map((layer, i) => {
    const paths = plan.layers[i]?.paths;
    return paths ? { layer, ...storeLayerHistory(paths) } : { layer, createdBy: CUSTOMISATION_CREATED_BY };
  });

  const embedded = opts.store ? await produceStore(opts.store.plan, dest, { compression: opts.compression, mtime: opts.mtime, whiteouts: opts.store.whiteouts }) : [];

  const image = assembleImage(opts.base, [...imported, ...newLayers, ...embedded], opts.settings);
  return { image, plan, providedByBase, tags: opts.tags };
}

/**
 * The planned store layers from published ones: a one-path layer is the published layer (its
 * descriptor annotated as a package layer), added to `dest` as it is; a layer of several paths —
 * a budget merge — is the one blob made anew, from the published tars in plan order.
 */
async function carryPublished(plan: LayerPlan, published: ReadonlyMap<string, PathLayer>, dest: ImageDestination, compression: Compression): Promise<Layer[]> {
  const out: Layer[] = [];
  const pool = lazyCompressPool();
  try {
    for (const planned of plan.layers) {
      const sources = planned.paths.map((p) => {
        const l = published.get(p);
        if (l === undefined) throw new StrataError(`internal: no published layer for ${p}`);
        return l;
      });
      if (sources.length === 1) {
        const layer = annotatedLayer(sources[0]!.layer, sources[0]!);
        await dest.addLayer(layer).catch((e: unknown) => {
          // The transport names the blob; the user knows the store path.
          throw e instanceof StrataError ? new StrataError(`the published layer of ${sources[0]!.storePath}: ${e.message}`, { cause: e }) : e;
        });
        out.push(layer);
        continue;
      }
      const tars = sources.map((s) => ({ what: `the layer of ${s.storePath}`, open: async () => layerTar(s.layer, `the layer of ${s.storePath}`) }));
      const made = await produceStreamedLayer(concatTars(tars, posix.dirname(planned.paths[0]!)), dest, compression, pool.get);
      out.push({ ...made, storePaths: planned.paths });
    }
  } finally {
    await pool.close();
  }
  return out;
}
