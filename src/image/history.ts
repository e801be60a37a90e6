import type { HistoryEntry } from './config.js';
import type { Image } from './image.js';
import { describedAs, type Layer } from './layer.js';

/**
 * How strata describes its layers in the image history. The store paths of a layer are recorded
 * in its history comment so that a later build can recover the previous release's layer
 * assignment (stable layering) and skip paths a base image already has, from the image alone.
 */
export const STORE_LAYER_CREATED_BY = 'strata: store paths';
export const CUSTOMISATION_CREATED_BY = 'strata: customisation layer';
const COMMENT_PREFIX = 'store paths: ';

export function storeLayerHistory(paths: readonly string[]): { createdBy: string; comment: string } {
  return { createdBy: `${STORE_LAYER_CREATED_BY} (${paths.length})`, comment: COMMENT_PREFIX + paths.join(' ') };
}

/** The store paths strata recorded for a layer, or undefined when the entry is not strata's. */
export function storePathsFromHistory(entry: HistoryEntry | undefined): string[] | undefined {
  if (!entry?.created_by?.startsWith(STORE_LAYER_CREATED_BY) || !entry.comment?.startsWith(COMMENT_PREFIX)) return undefined;
  const rest = entry.comment.slice(COMMENT_PREFIX.length);
  return rest === '' ? [] : rest.split(' ');
}

/** History entries aligned with layers: the i-th non-empty entry describes the i-th layer. */
export function layerHistory(history: readonly HistoryEntry[] | undefined, layerCount: number): (HistoryEntry | undefined)[] {
  const nonEmpty = (history ?? []).filter((h) => !h.empty_layer);
  const offset = layerCount - nonEmpty.length;
  return Array.from({ length: layerCount }, (_, i) => (i - offset >= 0 ? nonEmpty[i - offset] : undefined));
}

/**
 * The image's layers, with `storePaths` filled in from strata's history entries where the layer
 * itself does not say, so that a strata-built image never has to be re-read to list its paths.
 */
export function layersWithHistoryPaths(image: Image): Layer[] {
  const recorded = recordedStorePaths(image);
  return image.layers.map((layer, i) => {
    const paths = recorded[i];
    if (layer.storePaths || !paths) return layer;
    return describedAs(layer, { storePaths: paths });
  });
}

/**
 * The store paths each of an image's layers carries, where the layer or strata's history entry
 * for it says (undefined elsewhere), without touching the layers themselves — so a registry
 * layer stays what it is, and can still be mounted from where it came.
 */
export function recordedStorePaths(image: Image): (readonly string[] | undefined)[] {
  const history = layerHistory(image.config.history, image.layers.length);
  return image.layers.map((layer, i) => layer.storePaths ?? storePathsFromHistory(history[i]));
}
