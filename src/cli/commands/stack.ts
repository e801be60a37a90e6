import { imageSettings, resolveEpoch, type ImageFlags } from '../settings.js';
import { progressSink } from '../progress.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';
import { humanSize, outputOf, reportShadowed, sourceOptions, uploadStats, type OutputArgs, reportStream, writtenImage } from './shared.js';

export interface StackArgs extends OutputArgs, RegistryArgs, ImageFlags {
  sources: string[];
  platform?: string;
  squash: boolean;
  'allow-shadow': boolean;
  json: boolean;
}

/** `strata stack SRC[=DEST]... -o DEST`: the flags become one StackRequest. */
export async function runStack(args: StackArgs): Promise<number> {
  const output = outputOf(args);
  const { stack, parseStackSource } = await import('../../ops/stack.js');
  const settings = imageSettings(args, true);
  const progress = progressSink(args.progress ?? 'auto', args.json);
  const result = await stack({
    ...(progress ? { progress } : {}),
    ...sourceOptions(args),
    sources: args.sources.map((s) => parseStackSource(s, 'stack')),
    output,
    format: args.format,
    tags: args.tag ?? [],
    settings,
    squash: args.squash,
    allowShadow: args['allow-shadow'],
    mtime: resolveEpoch('--mtime', args.mtime),
    ...(args.compress ? { compression: args.compress } : {}),
    registry: registryOptions(args),
  });
  reportShadowed(result.shadowed);
  const { image, plan } = result;
  const out = reportStream(args);
  if (args.json) {
    const summary = {
      ...writtenImage(result),
      layers: plan.steps.map((step, i) => ({
        digest: image.layers[i]!.digest,
        diffId: image.layers[i]!.diffId,
        size: image.layers[i]!.size,
        source: plan.sources[step.source]!.name,
        kept: step.kind === 'carry',
      })),
      repeated: plan.repeated.map((r) => ({ source: plan.sources[r.source]!.name, diffId: r.diffId })),
      shadowed: result.shadowed,
      ...(await uploadStats(output)),
    };
    out.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    const total = image.layers.reduce((s, l) => s + l.size, 0);
    const kept = plan.steps.filter((s) => s.kind === 'carry').length;
    out.write(`wrote ${result.destination}: ${image.layers.length} layers (${kept} kept byte for byte), ${humanSize(total)}, image id ${image.configDigest}\n`);
  }
  return 0;
}
