import { closureWithout } from '../../closure/subset.js';
import { storeLayerBudget } from '../../layering/budget.js';
import { planToJson } from '../../layering/plan-file.js';
import { planLayers } from '../../layering/plan.js';
import { humanSize, loadClosure, loadPrevious, openBase, type ClosureArgs } from './shared.js';

export async function runPlan(args: ClosureArgs): Promise<number> {
  const closure = await loadClosure(args);
  const previous = await loadPrevious(args);
  const base = await openBase(args, closure);
  try {
    const baseLayers = base?.source.image.layers.length ?? 0;
    const budget = storeLayerBudget(args['max-layers'], baseLayers);
    const remaining = closureWithout(closure, base?.paths ?? new Set());
    const plan = planLayers(remaining, args.layering, budget, previous);
    const json = planToJson(plan, remaining);
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ ...json, budget, baseLayers, maxLayers: args['max-layers'] }, null, 2)}\n`);
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
  } finally {
    await base?.source.close();
  }
}
