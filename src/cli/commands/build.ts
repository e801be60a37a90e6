import { parseAdd, parseSymlink } from '../../builder/customisation.js';
import type { OutputFormat } from '../../transports/open-destination.js';
import { registryOptions } from './registry-flags.js';
import { imageSettings, resolveEpoch, type ImageFlags } from '../settings.js';
import { closureInput, humanSize, outputOf, reportShadowed, sourceOptions, uploadStats, type ClosureArgs } from './shared.js';

export interface BuildArgs extends ClosureArgs, ImageFlags {
  'store-root': string;
  output?: string;
  push?: string;
  compress?: 'none' | 'gzip' | 'zstd';
  cache?: boolean;
  'cache-dir'?: string;
  format: OutputFormat;
  tag?: string[];
  mtime?: string;
  add?: string[];
  bin?: string[];
  symlink?: string[];
  remove?: string[];
  import?: string[];
  squash: boolean;
  'allow-shadow': boolean;
}

/** `strata build`: the flags become one typed BuildRequest, and the library does the rest. */
export async function runBuild(args: BuildArgs): Promise<number> {
  // -o takes every reference --from takes; --push REF is -o docker://REF.
  const output = outputOf(args);
  const { build } = await import('../../ops/build.js');
  const { parseStackSource } = await import('../../ops/stack.js');
  const result = await build({
    ...closureInput(args),
    ...sourceOptions(args),
    output,
    format: args.format,
    storeRoot: args['store-root'],
    tags: args.tag ?? [],
    ...(args.from ? { from: args.from } : {}),
    imports: (args.import ?? []).map((i) => parseStackSource(i, '--import')),
    squash: args.squash,
    allowShadow: args['allow-shadow'],
    ...(args.previous ? { previous: args.previous } : {}),
    ...(args['plan-in'] ? { planIn: args['plan-in'] } : {}),
    layering: args.layering,
    maxLayers: args['max-layers'],
    settings: imageSettings(args, args.from !== undefined),
    customisation: {
      adds: (args.add ?? []).map(parseAdd),
      bins: args.bin ?? [],
      symlinks: (args.symlink ?? []).map(parseSymlink),
      removes: args.remove ?? [],
    },
    mtime: resolveEpoch('--mtime', args.mtime),
    ...(args.compress ? { compression: args.compress } : {}),
    ...(args.cache === false ? { cache: false as const } : args['cache-dir'] ? { cache: args['cache-dir'] } : {}),
    registry: registryOptions(args),
  });
  const { image } = result;
  const total = image.layers.reduce((s, l) => s + l.size, 0);
  const summary = {
    output: result.destination,
    imageId: image.configDigest,
    manifestDigest: result.manifestDigest,
    layers: image.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size, storePaths: l.storePaths ?? [] })),
    providedByBase: result.providedByBase,
    shadowed: result.shadowed,
    ...(await uploadStats(output)),
  };
  const out = args.output === '-' ? process.stderr : process.stdout;
  reportShadowed(result.shadowed);
  if (args.json) out.write(`${JSON.stringify(summary, null, 2)}\n`);
  else out.write(`wrote ${result.destination}: ${image.layers.length} layers, ${humanSize(total)}, image id ${image.configDigest}\n`);
  return 0;
}
