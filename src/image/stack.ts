/**
 * Stacking images: the layers of several images, bottom first, as the layers of one. This is the
 * pure, data-in/data-out planner: which layers are carried byte for byte, which must be rewritten
 * (moved under an image path, or squashed), which are already present below and so not repeated,
 * and what the history says about each. Producing the rewritten layers is the builder's job.
 */
import { StrataError } from '../util/errors.js';
import type { HistoryEntry, ImageConfig } from './config.js';
import type { Digest } from './digest.js';
import { layerHistory, recordedStorePaths, STORE_LAYER_CREATED_BY } from './history.js';
import type { Image } from './image.js';
import type { Layer } from './layer.js';
import { formatPlatform, samePlatformAnyVersion } from './platform.js';
import { imagePlatform } from './select.js';

/** The most layers an image may have for overlay-based runtimes (containerd and podman mount 127). */
export const MAX_STACK_LAYERS = 127;

/** One image to stack, and where its filesystem goes. */
export interface StackSource {
  /** The reference it was read from, for messages (`oci:out:kernel`). */
  readonly name: string;
  /**
   * How the history names it: the same wherever the stack is made (a registry reference, or a
   * local image's name and config digest — never a host path), so the output stays reproducible.
   */
  readonly label: string;
  readonly image: Image;
  /** Tar name of the image path its filesystem is placed at: '' for `/`, `opt/tool` for `/opt/tool`. */
  readonly at: string;
  /** Merge its layers into one, applying its whiteouts. */
  readonly squash: boolean;
}

/** A layer of the stacked image: an existing one carried byte for byte, or one to be made. */
export type StackStep =
  | {
      readonly kind: 'carry';
      readonly source: number;
      readonly layer: Layer;
      readonly history: HistoryEntry;
      /** The store paths strata recorded for the layer, when it is a strata store layer. */
      readonly storePaths?: readonly string[];
    }
  | {
      readonly kind: 'rewrite';
      readonly source: number;
      /** The source layers it is made of, bottom first: one for a move, several for a squash. */
      readonly layers: readonly Layer[];
      readonly at: string;
      readonly history: HistoryEntry;
    };

export interface StackPlan {
  readonly sources: readonly StackSource[];
  readonly steps: readonly StackStep[];
  /** Layers not repeated because the same content is already lower in the stack. */
  readonly repeated: readonly { readonly source: number; readonly diffId: Digest }[];
}

/** The image path a tar name stands for, for messages: '' → '/', 'opt/x' → '/opt/x'. */
export function imagePathOf(at: string): string {
  return `/${at}`;
}

/**
 * Plans the stack of `sources` on top of `below` (the layers already there: a base image's, or
 * none). Every source must be for one platform; a layer whose content is already in the stack is
 * not repeated; the result must fit MAX_STACK_LAYERS, counting `below`.
 */
export function planStack(sources: readonly StackSource[], below: readonly Layer[] = [], platformOf?: Image): StackPlan {
  checkPlatforms(sources, platformOf);
  const present = new Set<string>(below.map((l) => l.diffId));
  const steps: StackStep[] = [];
  const repeated: { source: number; diffId: Digest }[] = [];
  sources.forEach((src, i) => {
    const history = layerHistory(src.image.config.history, src.image.layers.length);
    const recorded = recordedStorePaths(src.image);
    const layers = src.image.layers;
    if (src.squash && layers.length > 1) {
      // Keyed by what it is made of and where, so the same squash twice is made once.
      const key = `squash ${layers.map((l) => l.diffId).join(',')} @${src.at}`;
      if (present.has(key)) return void repeated.push(...layers.map((l) => ({ source: i, diffId: l.diffId })));
      present.add(key);
      steps.push({ kind: 'rewrite', source: i, layers, at: src.at, history: squashHistory(src, history) });
      return;
    }
    layers.forEach((layer, j) => {
      const key = src.at === '' ? layer.diffId : `${layer.diffId} @${src.at}`;
      if (present.has(key)) return void repeated.push({ source: i, diffId: layer.diffId });
      present.add(key);
      steps.push(
        src.at === ''
          ? { kind: 'carry', source: i, layer, history: carriedHistory(history[j], src.label), ...(recorded[j] ? { storePaths: recorded[j] } : {}) }
          : { kind: 'rewrite', source: i, layers: [layer], at: src.at, history: movedHistory(history[j], layer, src) },
      );
    });
  });
  const total = below.length + steps.length;
  if (total > MAX_STACK_LAYERS) {
    const lower = below.length > 0 ? ` (${below.length} of them the base's)` : '';
    throw new StrataError(`the stacked image would have ${total} layers${lower}, more than the ${MAX_STACK_LAYERS} that overlay-based runtimes mount; squash some sources (--squash) or stack fewer`);
  }
  return { sources, steps, repeated };
}

/** All sources (and the base, when given) must be for one platform: a stack mixes no architectures. */
function checkPlatforms(sources: readonly StackSource[], base: Image | undefined): void {
  const first = base ? { name: 'the base image', image: base } : sources[0];
  if (!first) return;
  const want = imagePlatform(first.image);
  for (const s of sources) {
    const have = imagePlatform(s.image);
    if (!samePlatformAnyVersion(have, want)) {
      throw new StrataError(`${s.name} is for ${formatPlatform(have)} but ${first.name} is for ${formatPlatform(want)}: a stack holds one platform (pick one with --platform)`);
    }
  }
}

/**
 * A carried layer keeps its history entry; entries strata wrote for store layers are kept exactly
 * (later builds read their store paths back), others say where the layer came from.
 */
function carriedHistory(entry: HistoryEntry | undefined, source: string): HistoryEntry {
  const e: HistoryEntry = { ...(entry ?? {}) };
  delete e.empty_layer;
  if (e.created_by?.startsWith(STORE_LAYER_CREATED_BY)) return e;
  return { ...e, comment: e.comment ? `from ${source}: ${e.comment}` : `from ${source}` };
}

function movedHistory(entry: HistoryEntry | undefined, layer: Layer, src: StackSource): HistoryEntry {
  return {
    ...(entry?.created ? { created: entry.created } : {}),
    created_by: `strata: import ${layer.digest} of ${src.label} at ${imagePathOf(src.at)}`,
    ...(entry?.created_by ? { comment: `was: ${entry.created_by}` } : {}),
  };
}

function squashHistory(src: StackSource, history: readonly (HistoryEntry | undefined)[]): HistoryEntry {
  const created = history.map((h) => h?.created).filter((c): c is string => typeof c === 'string').sort().at(-1);
  return {
    ...(created ? { created } : {}),
    created_by: `strata: squash of ${src.image.layers.length} layers of ${src.label} at ${imagePathOf(src.at)}`,
    comment: `layers: ${src.image.layers.map((l) => l.digest).join(' ')}`,
  };
}

/**
 * The config a stack's image starts from: the last source's, with no layers or history of its own
 * (assembleImage adds the stacked layers and the build's settings on top).
 */
export function stackTemplate(plan: StackPlan): Image {
  const last = plan.sources.at(-1);
  if (!last) throw new StrataError('nothing to stack: name at least one image');
  const config: ImageConfig = { ...last.image.config, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
  return { config, configBytes: Buffer.alloc(0), configDigest: last.image.configDigest, layers: [] };
}
