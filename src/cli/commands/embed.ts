import { imageSettings, resolveEpoch, type ImageFlags } from '../settings.js';
import { progressSink } from '../progress.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';
import { humanSize, outputOf, sourceOptions, storeOptions, uploadStats, type StoreArgs, type OutputArgs, reportStream, writtenImage } from './shared.js';

export interface EmbedArgs extends OutputArgs, RegistryArgs, ImageFlags, StoreArgs {
  apps: string[];
  into: string;
  platform?: string;
  json: boolean;
}

/** `strata embed APP... --into HOST -o DEST`: the flags become one EmbedRequest. */
export async function runEmbed(args: EmbedArgs): Promise<number> {
  const output = outputOf(args);
  const { embed } = await import('../../ops/embed.js');
  const progress = progressSink(args.progress ?? 'auto', args.json);
  const result = await embed({
    ...(progress ? { progress } : {}),
    ...sourceOptions(args),
    ...storeOptions(args),
    apps: args.apps,
    into: args.into,
    output,
    format: args.format,
    tags: args.tag ?? [],
    settings: imageSettings(args, true),
    mtime: resolveEpoch('--mtime', args.mtime),
    ...(args.compress ? { compression: args.compress } : {}),
    registry: registryOptions(args),
  });
  const { image, plan } = result;
  const out = reportStream(args);
  if (args.json) {
    const summary = {
      ...writtenImage(result),
      store: `/${plan.root}`,
      images: plan.images.map((i) => ({ id: i.id, names: i.names, digest: i.digest, layer: i.layer })),
      layers: image.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size })),
      ...(await uploadStats(output)),
    };
    out.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    const total = image.layers.reduce((s, l) => s + l.size, 0);
    const names = plan.images.flatMap((i) => i.names).join(', ');
    out.write(`wrote ${result.destination}: ${image.layers.length} layers, ${humanSize(total)}, image id ${image.configDigest}; /${plan.root} holds ${names} (${plan.layers.length} layers)\n`);
  }
  return 0;
}
