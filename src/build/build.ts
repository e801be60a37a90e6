import type { Closure } from '../closure/types.js';
import { closureWithout } from '../closure/subset.js';
import { assembleImage, type DescribedLayer, type ImageSettings } from '../image/assemble.js';
import { CUSTOMISATION_CREATED_BY, storeLayerHistory } from '../image/history.js';
import type { Image } from '../image/image.js';
import type { Layer } from '../image/layer.js';
import { ociLayerMediaType } from '../image/media-types.js';
import { storeLayerBudget } from '../layering/budget.js';
import { planLayers } from '../layering/plan.js';
import type { PreviousAssignment } from '../layering/stable.js';
import type { LayerPlan, LayeringStrategy } from '../layering/types.js';
import type { TarEntry } from '../tar/entry.js';
import { storeLayerEntries } from '../tar/scan.js';
import { tarSize, writeLayerTar } from '../tar/writer.js';
import type { ImageDestination } from '../transports/types.js';
import { customisationEntries, type CustomisationSpec } from './customisation.js';

export interface BuildOptions {
  closure: Closure;
  /** Physical directory under which the logical store paths are read ('/' for the real store). */
  storeRoot: string;
  layering: LayeringStrategy;
  maxLayers: number;
  previous?: PreviousAssignment;
  /** The image to build on; its layers are carried over unchanged. */
  base?: Image;
  /** Store paths the base image already carries: not added again. */
  basePaths?: ReadonlySet<string>;
  settings: ImageSettings;
  customisation: CustomisationSpec;
  /** mtime of every entry in new layers (seconds since the epoch). */
  mtime: number;
  tags: readonly string[];
}

export interface BuildResult {
  image: Image;
  plan: LayerPlan;
  /** Closure paths left out because the base image has them. */
  providedByBase: string[];
}

/**
 * The whole pipeline over one destination: plan → base layers carried over → store layers and
 * the customisation layer streamed into the destination → config → commit. Any failure aborts
 * the destination, which removes what it had written.
 */
export async function buildImage(opts: BuildOptions, dest: ImageDestination): Promise<BuildResult> {
  try {
    const result = await buildInto(opts, dest);
    await dest.commit(result.image, opts.tags);
    return result;
  } catch (err) {
    await dest.abort();
    throw err;
  }
}

async function buildInto(opts: BuildOptions, dest: ImageDestination): Promise<BuildResult> {
  const baseLayers = opts.base?.layers ?? [];
  const budget = storeLayerBudget(opts.maxLayers, baseLayers.length);
  const providedByBase = [...(opts.basePaths ?? [])].filter((p) => opts.closure.paths.has(p)).sort();
  const closure = closureWithout(opts.closure, new Set(providedByBase));
  const plan = closure.paths.size > 0 ? planLayers(closure, opts.layering, budget, opts.previous) : { strategy: opts.layering, layers: [] };

  for (const layer of baseLayers) await dest.addLayer(layer);

  const newLayers: DescribedLayer[] = [];
  for (const planned of plan.layers) {
    const entries = await storeLayerEntries(closure.storeDir, opts.storeRoot, planned.paths);
    const layer = await writeNewLayer(entries, opts.mtime, dest, planned.paths);
    newLayers.push({ layer, ...storeLayerHistory(planned.paths) });
  }
  const custom = await customisationEntries(opts.customisation, opts.closure, opts.storeRoot);
  newLayers.push({ layer: await writeNewLayer(custom, opts.mtime, dest), createdBy: CUSTOMISATION_CREATED_BY });

  const image = assembleImage(opts.base, newLayers, opts.settings);
  return { image, plan, providedByBase };
}

/** Streams one layer tar into the destination, hashing it on the way: each file is read once. */
async function writeNewLayer(entries: readonly TarEntry[], mtime: number, dest: ImageDestination, storePaths?: readonly string[]): Promise<Layer> {
  const size = tarSize(entries);
  const writer = await dest.beginBlob(size);
  try {
    const { diffId } = await writeLayerTar(entries, { mtime }, writer);
    const open = await writer.close(diffId, size);
    return {
      diffId,
      digest: diffId,
      size,
      mediaType: ociLayerMediaType('none'),
      compression: 'none',
      ...(storePaths ? { storePaths } : {}),
      open,
    };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
