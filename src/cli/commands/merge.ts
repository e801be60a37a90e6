import type { RegistryArgs } from './registry-flags.js';
import { sourceOptions } from './shared.js';

/** `strata merge SRC[=NAME:TAG]... -o FILE`: several images in one docker-archive. */
export async function runMerge(args: RegistryArgs & { sources: string[]; output: string; platform?: string; json: boolean }): Promise<number> {
  const { mergeImages, parseMergeSource } = await import('../../ops/merge.js');
  const result = await mergeImages({ ...sourceOptions(args), sources: args.sources.map(parseMergeSource), output: args.output });
  if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`wrote ${result.destination}: ${result.images.length} images (${result.images.flatMap((i) => i.names).join(', ')}), ${result.layers} layer blobs\n`);
  return 0;
}
