import { lazyCompressPool, type CompressPool } from '../compress/block-pool.js';
import type { DescribedLayer } from '../image/assemble.js';
import { findShadows, refuseShadows, sourceFiles, type LayerContents, type Shadow, type SourceFiles } from '../image/conflicts.js';
import { recordedStorePaths } from '../image/history.js';
import type { Image } from '../image/image.js';
import type { Layer } from '../image/layer.js';
import type { LayerScanner } from '../image/layer-scan.js';
import { layerTar } from '../image/layer-tar.js';
import type { Compression } from '../image/media-types.js';
import { imagePathOf, type StackPlan, type StackStep } from '../image/stack.js';
import { rewriteTars } from '../tar/rewrite.js';
import { squashView, type SquashView } from '../tar/squash.js';
import type { ImageDestination } from '../transports/types.js';
import { produceStreamedLayer } from './stream-layer.js';

/** What checking a stack found: the paths shadowed (when allowed) and the squash views to make. */
export interface CheckedStack {
  readonly plan: StackPlan;
  readonly shadowed: readonly Shadow[];
  /** Step index → which layer supplies each path, for the squash steps. */
  readonly views: ReadonlyMap<number, SquashView>;
}

export interface CheckOptions {
  /** Let an upper source replace a lower one's file; otherwise that is an error naming both. */
  readonly allowShadow: boolean;
  /** The image the stack goes on (a build's --from), checked as the lowest source. */
  readonly base?: { readonly name: string; readonly image: Image };
}

/**
 * Reads what the check needs before anything is written: every layer a source adds, except
 * strata store layers (compared by their recorded store paths), is scanned once, streaming, which
 * also verifies its digest and refuses member names that escape with `..`; squashed sources are
 * scanned whole, for their views. Throws when sources shadow each other and that is not allowed.
 */
export async function checkStack(plan: StackPlan, scanner: LayerScanner, opts: CheckOptions): Promise<CheckedStack> {
  const what = (layer: Layer, source: string) => `layer ${layer.digest} of ${source}`;
  const contents = async (layer: Layer, source: string, storePaths: readonly string[] | undefined): Promise<LayerContents> =>
    storePaths !== undefined ? { storePaths } : { members: await scanner.members(layer, what(layer, source)) };

  const views = new Map<number, SquashView>();
  const perSource = new Map<number, LayerContents[]>();
  for (const [i, step] of plan.steps.entries()) {
    const name = plan.sources[step.source]!.name;
    const list = perSource.get(step.source) ?? [];
    perSource.set(step.source, list);
    if (step.kind === 'carry') {
      list.push(await contents(step.layer, name, step.storePaths));
      continue;
    }
    const members = [];
    for (const layer of step.layers) members.push(await scanner.members(layer, what(layer, name)));
    if (step.layers.length > 1) views.set(i, squashView(members));
    list.push(...members.map((m) => ({ members: m })));
  }

  const files: SourceFiles[] = [];
  if (opts.base) {
    const base = [];
    const recorded = recordedStorePaths(opts.base.image);
    for (const [j, layer] of opts.base.image.layers.entries()) base.push(await contents(layer, opts.base.name, recorded[j]));
    files.push(sourceFiles(opts.base.name, '', base));
  }
  for (const [i, list] of [...perSource].sort((a, b) => a[0] - b[0])) {
    const src = plan.sources[i]!;
    files.push(sourceFiles(src.name, src.at, list));
  }
  const shadowed = findShadows(files);
  if (!opts.allowShadow) refuseShadows(shadowed);
  return { plan, shadowed, views };
}

export interface ProduceStackOptions {
  readonly compression: Compression;
  /** mtime of the directories made for an image path. */
  readonly mtime: number;
}

/**
 * The stack's layers into `dest`, in order: carried layers are added byte for byte (copied,
 * linked or mounted, as the destination does it), rewritten ones are made from their source
 * layers as they stream. Each comes with its history entry.
 */
export async function produceStack(checked: CheckedStack, dest: ImageDestination, opts: ProduceStackOptions): Promise<DescribedLayer[]> {
  // Started on first need, and shared: one set of compression threads for every rewritten layer.
  const compressors = lazyCompressPool();
  const pool = compressors.get;
  try {
    const out: DescribedLayer[] = [];
    for (const [i, step] of checked.plan.steps.entries()) {
      const layer = step.kind === 'carry' ? await carry(step.layer, dest) : await rewrite(step, checked, i, dest, opts, pool);
      out.push({ layer, createdBy: step.history.created_by ?? '', history: step.history });
    }
    return out;
  } finally {
    await compressors.close();
  }
}

async function carry(layer: Layer, dest: ImageDestination): Promise<Layer> {
  await dest.addLayer(layer);
  return layer;
}

async function rewrite(
  step: Extract<StackStep, { kind: 'rewrite' }>, checked: CheckedStack, index: number, dest: ImageDestination, opts: ProduceStackOptions, pool: () => CompressPool,
): Promise<Layer> {
  const name = checked.plan.sources[step.source]!.name;
  const inputs = step.layers.map((layer) => {
    const what = `layer ${layer.digest} of ${name} (placed at ${imagePathOf(step.at)})`;
    return { what, open: async () => layerTar(layer, what) };
  });
  const view = checked.views.get(index);
  const tar = rewriteTars(inputs, { prefix: step.at, mtime: opts.mtime, ...(view ? { view } : {}) });
  return produceStreamedLayer(tar, dest, opts.compression, pool);
}
