import { parseAdd, parseSymlink } from '../../builder/customisation.js';
import type { OutputFormat } from '../../transports/open-destination.js';
import { StrataError } from '../../util/errors.js';
import { registryOptions } from './registry-flags.js';
import { imageSettings, resolveEpoch, type ImageFlags } from '../settings.js';
import { closureInput, humanSize, sourceOptions, type ClosureArgs } from './shared.js';

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
}

/** `strata build`: the flags become one typed BuildRequest, and the library does the rest. */
export async function runBuild(args: BuildArgs): Promise<number> {
  if (!args.output && !args.push) throw new StrataError('no output: pass -o FILE|DIR|- or --push REGISTRY/REPO:TAG');
  if (args.output && args.push) throw new StrataError('give either -o or --push, not both');
  // -o takes every reference --from takes; --push REF is -o docker://REF.
  const output = args.push ? (args.push.startsWith('docker://') ? args.push : `docker://${args.push}`) : args.output!;
  const { build } = await import('../../ops/build.js');
  const result = await build({
    ...closureInput(args),
    ...sourceOptions(args),
    output,
    format: args.format,
    storeRoot: args['store-root'],
    tags: args.tag ?? [],
    ...(args.from ? { from: args.from } : {}),
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
    // What went over the wire: lets CI see that an unchanged re-push uploaded nothing.
    ...(output.startsWith('docker://') ? { upload: { ...(await import('../../transports/registry/client.js')).registryStats } } : {}),
  };
  const out = args.output === '-' ? process.stderr : process.stdout;
  if (args.json) out.write(`${JSON.stringify(summary, null, 2)}\n`);
  else out.write(`wrote ${result.destination}: ${image.layers.length} layers, ${humanSize(total)}, image id ${image.configDigest}\n`);
  return 0;
}
