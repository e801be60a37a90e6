import { registryOptions } from './registry-flags.js';
import { progressSink } from '../progress.js';
import { imageSettings, resolveEpoch, type ImageFlags } from '../settings.js';
import { closureInput, customisationOf, humanSize, importsOf, outputOf, reportShadowed, sourceOptions, storeOptions, uploadStats, type ClosureArgs, type CustomisationArgs, type StoreArgs, type OutputArgs, type OwnershipArgs, ownershipOf, reportStream, writtenImage } from './shared.js';
import { StrataError } from '../../util/errors.js';

export interface BuildArgs extends OutputArgs, ClosureArgs, ImageFlags, CustomisationArgs, StoreArgs, OwnershipArgs {
  embed?: string[];
  'nix-db'?: boolean;
  'store-root': string;
  cache?: boolean;
  'cache-dir'?: string;
  'verify-cache'?: boolean;
}

const STORE_FLAG_OF = { store: '--store', whiteouts: '--whiteouts', maxAppLayers: '--max-app-layers', names: '--name' } as const;

/** `strata build`: the flags become one typed BuildRequest, and the library does the rest. */
export async function runBuild(args: BuildArgs): Promise<number> {
  // -o takes every reference --from takes; --push REF is -o docker://REF.
  const output = outputOf(args);
  const store = storeOptions(args);
  const stray = Object.keys(store)[0] as keyof typeof STORE_FLAG_OF | undefined;
  if (!args.embed?.length && stray) throw new StrataError(`${STORE_FLAG_OF[stray]} is for the image store of --embed: name the apps to embed with --embed`);
  const { build } = await import('../../ops/build.js');
  const { ownership, paths } = await ownershipOf(args);
  const progress = progressSink(args.progress ?? 'auto', args.json);
  const result = await build({
    ...(progress ? { progress } : {}),
    ...closureInput(args),
    ...sourceOptions(args),
    output,
    format: args.format,
    storeRoot: args['store-root'],
    tags: args.tag ?? [],
    ...(args.from ? { from: args.from } : {}),
    ...(await importsOf(args)),
    ...(args.previous ? { previous: args.previous } : {}),
    ...(args['plan-in'] ? { planIn: args['plan-in'] } : {}),
    layering: args.layering,
    maxLayers: args['max-layers'],
    settings: imageSettings(args, args.from !== undefined),
    customisation: { ...(await customisationOf(args)), bins: args.bin ?? [], paths },
    ...(ownership ? { ownership } : {}),
    mtime: resolveEpoch('--mtime', args.mtime),
    ...(args.compress ? { compression: args.compress } : {}),
    ...(args.cache === false ? { cache: false as const } : args['cache-dir'] ? { cache: args['cache-dir'] } : {}),
    ...(args['verify-cache'] ? { verifyCache: true } : {}),
    ...(args['nix-db'] ? { nixDb: true } : {}),
    registry: registryOptions(args),
    ...(args.embed?.length ? { embed: { apps: args.embed, ...store } } : {}),
  });
  const { image } = result;
  const total = image.layers.reduce((s, l) => s + l.size, 0);
  const summary = {
    ...writtenImage(result),
    tags: result.tags,
    layers: image.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size, storePaths: l.storePaths ?? [] })),
    providedByBase: result.providedByBase,
    shadowed: result.shadowed,
    ...(result.cache ? { cache: result.cache } : {}),
    ...(await uploadStats(output)),
  };
  const out = reportStream(args);
  reportShadowed(result.shadowed);
  if (args.json) out.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    const named = !args.tag?.length && result.tags.length > 0 ? `; named ${result.tags.join(', ')}` : '';
    out.write(`wrote ${result.destination}: ${image.layers.length} layers, ${humanSize(total)}, image id ${image.configDigest}${named}\n`);
  }
  return 0;
}
