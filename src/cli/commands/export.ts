import type { RegistryArgs } from './registry-flags.js';
import { humanSize, reportStream, sourceOptions } from './shared.js';

/** `strata export IMAGE -o FILE|-`: the image's filesystem, flattened, as one tar. */
export async function runExport(args: RegistryArgs & { image: string; output: string; platform?: string; json: boolean }): Promise<number> {
  const { exportImage } = await import('../../ops/export.js');
  const result = await exportImage({ ...sourceOptions(args), image: args.image, output: args.output });
  const out = reportStream(args);
  if (args.json) out.write(`${JSON.stringify({ output: args.output, ...result }, null, 2)}\n`);
  else out.write(`wrote ${args.output === '-' ? 'stdout' : args.output}: the filesystem of ${result.source} (${result.layers} layers applied), ${humanSize(result.size)}, ${result.digest}\n`);
  return 0;
}
