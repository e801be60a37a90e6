import { closureInput, humanSize, sourceOptions, type ClosureArgs } from './shared.js';

export async function runPlan(args: ClosureArgs): Promise<number> {
  const { plan } = await import('../../ops/plan.js');
  const json = await plan({
    ...closureInput(args),
    closure: args.closure!, // a positional yargs demands for `plan`
    ...sourceOptions(args),
    ...(args.from ? { from: args.from } : {}),
    ...(args.previous ? { previous: args.previous } : {}),
    ...(args['plan-in'] ? { planIn: args['plan-in'] } : {}),
    layering: args.layering,
    maxLayers: args['max-layers'],
  });
  const { budget, baseLayers } = json;
  if (args.json) {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `strategy ${json.strategy}: ${json.pathCount} store paths in ${json.layers.length} layers ` +
      `(budget ${budget} = max-layers ${args['max-layers']} - ${baseLayers} base - 1 customisation)`,
    `${'layer'.padStart(5)}  ${'nar size'.padStart(9)}  ${'reused'.padEnd(8)}  paths`,
  ];
  for (const l of json.layers) {
    const reused = l.reusedFrom === undefined ? '' : `prev ${l.reusedFrom}`;
    lines.push(`${String(l.index).padStart(5)}  ${humanSize(l.narSize).padStart(9)}  ${reused.padEnd(8)}  ${l.paths[0] ?? ''}`);
    for (const p of l.paths.slice(1)) lines.push(`${''.padStart(5)}  ${''.padStart(9)}  ${''.padEnd(8)}  ${p}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
