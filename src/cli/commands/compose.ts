import type { OutputFormat } from '../../transports/open-destination.js';
import { imageSettings, resolveEpoch, type ImageFlags } from '../settings.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';
import { customisationOf, humanSize, importsOf, outputOf, reportShadowed, uploadStats, type CustomisationArgs, reportStream, writtenImage } from './shared.js';

export interface ComposeArgs extends RegistryArgs, ImageFlags, CustomisationArgs {
  packages: string[];
  registry: string;
  output?: string;
  push?: string;
  format: OutputFormat;
  compress?: 'none' | 'gzip' | 'zstd';
  tag?: string[];
  mtime?: string;
  'max-layers': number;
  lock?: string;
  frozen: boolean;
  json: boolean;
}

/** `strata compose NAME@RANGE... --registry REPO -o OUT`: the flags become one ComposeRequest. */
export async function runCompose(args: ComposeArgs): Promise<number> {
  const output = outputOf(args);
  const { compose } = await import('../../ops/compose.js');
  const result = await compose({
    packages: args.packages,
    repository: args.registry,
    output,
    format: args.format,
    tags: args.tag ?? [],
    maxLayers: args['max-layers'],
    settings: imageSettings(args, false),
    bins: args.bin ?? [],
    customisation: await customisationOf(args),
    ...(await importsOf(args)),
    mtime: resolveEpoch('--mtime', args.mtime),
    ...(args.compress ? { compression: args.compress } : {}),
    ...(args.lock !== undefined ? { lock: args.lock } : {}),
    frozen: args.frozen,
    cache: false,
    registry: registryOptions(args),
  });
  reportShadowed(result.shadowed);
  const out = reportStream(args);
  if (result.merged) {
    process.stderr.write(`strata: the layer budget merged ${result.merged.paths.length} store paths into one new layer; ${result.merged.packages.join(', ')} no longer share those layers with their package images\n`);
  }
  const { image } = result;
  if (args.json) {
    const { recordedStorePaths } = await import('../../image/history.js');
    const paths = recordedStorePaths(image);
    const summary = {
      ...writtenImage(result),
      resolved: result.resolved,
      layers: image.layers.map((l, i) => ({ digest: l.digest, diffId: l.diffId, size: l.size, storePaths: paths[i] ?? [] })),
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
