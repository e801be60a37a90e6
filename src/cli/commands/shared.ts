import { readFile, stat } from 'node:fs/promises';
import { readClosureFile } from '../../closure/read.js';
import type { Closure } from '../../closure/types.js';
import { layerHistory, layersWithHistoryPaths, storePathsFromHistory } from '../../image/history.js';
import { storePathsInLayer } from '../../image/store-paths.js';
import { parsePlanFile } from '../../layering/plan-file.js';
import type { PreviousAssignment } from '../../layering/stable.js';
import type { ImageSource } from '../../transports/types.js';
import { StrataError } from '../../util/errors.js';
import { parsePlatform } from '../../image/platform.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';

export interface ClosureArgs extends RegistryArgs {
  closure: string;
  'store-dir'?: string;
  root?: string[];
  'max-layers': number;
  layering: 'popularity' | 'auto' | 'stable';
  from?: string;
  platform?: string;
  previous?: string;
  'plan-in'?: string;
  json: boolean;
}

export async function loadClosure(args: ClosureArgs): Promise<Closure> {
  return readClosureFile(args.closure, {
    ...(args['store-dir'] ? { storeDir: args['store-dir'] } : {}),
    ...(args.root?.length ? { roots: args.root } : {}),
  });
}

/** Options for opening an image named on the command line: platform choice and registry access. */
export function sourceOptions(args: RegistryArgs & { platform?: string }) {
  return { ...(args.platform ? { platform: parsePlatform(args.platform, '--platform') } : {}), registry: registryOptions(args) };
}

/** Opens `--from` and lists the store paths its layers already carry. */
export async function openBase(args: ClosureArgs, closure: Closure): Promise<{ source: ImageSource; paths: Set<string> } | undefined> {
  if (!args.from) return undefined;
  const source = await openImage(args.from, args);
  const paths = new Set<string>();
  for (const layer of layersWithHistoryPaths(source.image)) {
    for (const p of await storePathsInLayer(layer, closure.storeDir, source.name)) paths.add(p);
  }
  return { source, paths };
}

/** The previous release's store-path layers, from `--previous IMAGE` or `--plan-in FILE`. */
export async function loadPrevious(args: ClosureArgs): Promise<PreviousAssignment | undefined> {
  if (args.previous && args['plan-in']) throw new StrataError('give either --previous or --plan-in, not both');
  if (args['plan-in']) {
    const file = args['plan-in'];
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new StrataError(`--plan-in ${file}: ${(err as Error).message}`);
    }
    return parsePlanFile(parsed, file);
  }
  if (!args.previous) return undefined;
  const source = await openImage(args.previous, args);
  try {
    const history = layerHistory(source.image.config.history, source.image.layers.length);
    const layers = history.map(storePathsFromHistory).filter((p): p is string[] => p !== undefined && p.length > 0);
    if (layers.length === 0) {
      throw new StrataError(`--previous ${args.previous}: the image records no strata store layers (was it built by strata?); use --plan-in instead`);
    }
    return { layers };
  } finally {
    await source.close();
  }
}

/**
 * Opens an image named on the command line. The image readers (archives, layouts, registries)
 * load on first use: most builds name no --from or --previous and never need them.
 */
export async function openImage(ref: string, args: RegistryArgs & { platform?: string }): Promise<ImageSource> {
  const { openImageSource } = await import('../../transports/open-source.js');
  return openImageSource(ref, sourceOptions(args));
}

export async function checkStoreRoot(root: string): Promise<void> {
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new StrataError(`--store-root ${root}: not a directory`);
}

export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
