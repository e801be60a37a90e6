import { imageSettings, resolveEpoch, type ImageFlags } from '../settings.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';
import { uploadStats } from './shared.js';

export interface PublishArgs extends RegistryArgs, Pick<ImageFlags, 'arch' | 'os' | 'variant' | 'created'> {
  closure: string;
  to: string;
  'store-root': string;
  'store-dir'?: string;
  root?: string[];
  compress?: 'none' | 'gzip' | 'zstd';
  mtime?: string;
  cache?: boolean;
  'cache-dir'?: string;
  json: boolean;
}

/** `strata publish CLOSURE --to REPO`: one layer per store path, one package image per path. */
export async function runPublish(args: PublishArgs): Promise<number> {
  const { publish } = await import('../../ops/publish.js');
  const { created, architecture, os, variant } = imageSettings(args, false);
  const result = await publish({
    closure: args.closure,
    ...(args['store-dir'] ? { storeDir: args['store-dir'] } : {}),
    ...(args.root?.length ? { roots: args.root } : {}),
    to: args.to,
    storeRoot: args['store-root'],
    mtime: resolveEpoch('--mtime', args.mtime),
    ...(args.compress ? { compression: args.compress } : {}),
    settings: { created, ...(architecture ? { architecture } : {}), ...(os ? { os } : {}), ...(variant ? { variant } : {}) },
    ...(args.cache === false ? { cache: false as const } : args['cache-dir'] ? { cache: args['cache-dir'] } : {}),
    registry: registryOptions(args),
  });
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ ...result, ...(await uploadStats(args.to)) }, null, 2)}\n`);
    return 0;
  }
  for (const p of result.packages) process.stdout.write(`${p.reference}: ${p.reused ? 'already published' : `tagged ${p.tagged.join(', ')}`}\n`);
  const fresh = result.packages.filter((p) => !p.reused).length;
  process.stdout.write(`published ${result.packages.length} store paths to ${result.repository}: ${fresh} new, ${result.packages.length - fresh} already there\n`);
  return 0;
}
