import { humanSize, sourceOptions } from './shared.js';
import type { RegistryArgs } from './registry-flags.js';

/** `strata inspect`: an index's children, or an image's layers, as a table or JSON. */
export async function runInspect(args: RegistryArgs & { image: string; platform?: string; previous?: string; json: boolean }): Promise<number> {
  const { inspect } = await import('../../ops/inspect.js');
  const { kind, ...info } = await inspect(args.image, { ...sourceOptions(args), ...(args.previous ? { previous: args.previous } : {}) });
  if (args.json) {
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    return 0;
  }
  const lines: string[] = [`${info.source}`];
  if ('children' in info) {
    lines.push(`  index      ${info.digest} (${info.mediaType})`, `  children   ${info.children.length}`);
    for (const [i, c] of info.children.entries()) {
      lines.push(`  [${i}] ${(c.platform ?? 'no platform').padEnd(18)} ${c.digest}  ${humanSize(c.size).padStart(9)}`);
      for (const [k, v] of Object.entries(c.annotations)) lines.push(`        ${k}=${v}`);
    }
  } else {
    const { layers } = info;
    lines.push(
      `  image id   ${info.imageId}`,
      `  platform   ${info.os}/${info.architecture}`,
      `  created    ${info.created ?? '-'}`,
      `  layers     ${layers.length}, ${humanSize(info.totalSize)}`,
      ...(info.newBytes !== undefined ? [`  vs previous ${layers.filter((l) => l.inPrevious).length} layers reused, ${humanSize(info.newBytes)} new to download`] : []),
    );
    for (const l of layers) {
      const mark = l.inPrevious === undefined ? '' : l.inPrevious ? 'reused  ' : 'new     ';
      lines.push(`  [${l.index}] ${mark}${l.digest}  ${humanSize(l.size).padStart(9)}  ${l.storePaths.length ? `${l.storePaths.length} store paths` : ''}`);
      for (const p of l.storePaths) lines.push(`        ${p}`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
