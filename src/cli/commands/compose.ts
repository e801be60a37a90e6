import { parseAdd, parseSymlink } from '../../builder/customisation.js';
import type { OutputFormat } from '../../transports/open-destination.js';
import { imageSettings, resolveEpoch, type ImageFlags } from '../settings.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';
import { humanSize, outputOf, reportShadowed, uploadStats } from './shared.js';

export interface ComposeArgs extends RegistryArgs, ImageFlags {
  packages: string[];
  registry: string;
  output?: string;
  push?: string;
  format: OutputFormat;
  compress?: 'none' | 'gzip';
  tag?: string[];
  mtime?: string;
  'max-layers': number;
  add?: string[];
  bin?: string[];
  symlink?: string[];
  remove?: string[];
  import?: string[];
  squash: boolean;
  'allow-shadow': boolean;
  lock?: string;
  frozen: boolean;
  json: boolean;
}

/** `strata compose NAME@RANGE... --registry REPO -o OUT`: the flags become one ComposeRequest. */
export async function runCompose(args: ComposeArgs): Promise<number> {
  const output = outputOf(args);
  const { compose } = await import('../../ops/compose.js');
  const { parseStackSource } = await import('../../ops/stack.js');
  const result = await compose({
    packages: args.packages,
    repository: args.registry,
    output,
    format: args.format,
    tags: args.tag ?? [],
    maxLayers: args['max-layers'],
    settings: imageSettings(args, false),
    bins: args.bin ?? [],
    customisation: { adds: (args.add ?? []).map(parseAdd), symlinks: (args.symlink ?? []).map(parseSymlink), removes: args.remove ?? [] },
    imports: (args.import ?? []).map((i) => parseStackSource(i, '--import')),
    squash: args.squash,
    allowShadow: args['allow-shadow'],
    mtime: resolveEpoch('--mtime', args.mtime),
    ...(args.compress ? { compression: args.compress } : {}),
    ...(args.lock !== undefined ? { lock: args.lock } : {}),
    frozen: args.frozen,
    cache: false,
    registry: registryOptions(args),
  });
  reportShadowed(result.shadowed);
  const out = args.output === '-' ? process.stderr : process.stdout;
  if (result.merged) {
    process.stderr.write(`strata: the layer budget merged ${result.merged.paths.length} store paths into one new layer; ${result.merged.packages.join(', ')} no longer share those layers with their package images\n`);
  }
  const { image } = result;
  if (args.json) {
    const summary = {
      output: result.destination,
      imageId: image.configDigest,
      manifestDigest: result.manifestDigest,
      resolved: result.resolved,
      layers: image.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size, storePaths: l.storePaths ?? [] })),
      merged: result.merged ?? null,
      ...(await uploadStats(output)),
    };
    out.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    for (const r of result.resolved) out.write(`${r.request} → ${r.reference} (${r.digest})\n`);
    const total = image.layers.reduce((s, l) => s + l.size, 0);
    out.write(`wrote ${result.destination}: ${image.layers.length} layers, ${humanSize(total)}, image id ${image.configDigest}\n`);
  }
  return 0;
}
