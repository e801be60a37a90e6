import type { RegistryArgs } from './registry-flags.js';
import { humanSize, sourceOptions } from './shared.js';

/** `strata diff A B`: what changes from A to B, and what a client that has A downloads for B. */
export async function runDiff(args: RegistryArgs & { from: string; to: string; platform?: string; 'store-dir'?: string; json: boolean }): Promise<number> {
  const { diffImages } = await import('../../ops/diff.js');
  const d = await diffImages(args.from, args.to, { ...sourceOptions(args), ...(args['store-dir'] ? { storeDir: args['store-dir'] } : {}) });
  if (args.json) {
    process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
    return 0;
  }
  const sum = (ls: readonly { size: number }[]) => humanSize(ls.reduce((s, l) => s + l.size, 0));
  const lines = [
    `${d.from} → ${d.to}`,
    `  layers     ${d.kept.length} kept (${sum(d.kept)}), ${d.added.length} added (${sum(d.added)}), ${d.removed.length} removed (${sum(d.removed)})`,
    `  download   ${humanSize(d.downloadBytes)} for a client that has ${d.from}`,
    ...d.storePaths.added.map((p) => `  + ${p}`),
    ...d.storePaths.removed.map((p) => `  - ${p}`),
    ...(d.configChanged.length > 0 ? [`  config     ${d.configChanged.join(', ')} changed`] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
