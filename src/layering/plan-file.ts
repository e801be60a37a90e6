/**
 * The plan as JSON: what `strata plan --json` prints, and what `--plan-in FILE` reads back as the
 * previous release's assignment for the stable strategy. `--plan-in` also takes a bare JSON list
 * of layers (each a list of store paths), which is the form nixpkgs' auto-layer writes
 * (layers.json), so an image built by nixpkgs can seed a stable plan.
 */
import type { Closure } from '../closure/types.js';
import type { LayerPlan } from './types.js';
import type { PreviousAssignment } from './stable.js';
import { StrataError } from '../util/errors.js';

export interface PlanJsonLayer {
  index: number;
  paths: string[];
  /** Sum of the layer's store paths' narSize. */
  narSize: number;
  reusedFrom?: number;
}

export interface PlanJson {
  strategy: string;
  layers: PlanJsonLayer[];
  /** Sum over all layers; equals the closure's total narSize. */
  narSize: number;
  pathCount: number;
}

export function planToJson(plan: LayerPlan, closure: Closure): PlanJson {
  let total = 0;
  let count = 0;
  const layers = plan.layers.map((layer, index): PlanJsonLayer => {
    const narSize = layer.paths.reduce((sum, p) => sum + (closure.paths.get(p)?.narSize ?? 0), 0);
    total += narSize;
    count += layer.paths.length;
    const out: PlanJsonLayer = { index, paths: [...layer.paths], narSize };
    if (layer.reusedFrom !== undefined) out.reusedFrom = layer.reusedFrom;
    return out;
  });
  return { strategy: plan.strategy, layers, narSize: total, pathCount: count };
}

/**
 * Reads a previous assignment from parsed JSON. `source` names the input (a file name) in errors.
 * Accepts `{layers: [{paths: [...]}, ...]}` (our own output; other fields are ignored) or
 * `[[...], ...]`. A store path in two layers, an empty layer or a non-string entry is an error:
 * such a file did not come from a real plan.
 */
export function parsePlanFile(input: unknown, source: string): PreviousAssignment {
  let rawLayers: unknown[];
  let describe: (i: number) => string;
  if (Array.isArray(input)) {
    rawLayers = input;
    describe = (i) => `layer ${i}`;
  } else if (input !== null && typeof input === 'object' && Array.isArray((input as { layers?: unknown }).layers)) {
    rawLayers = (input as { layers: unknown[] }).layers;
    describe = (i) => `layers[${i}]`;
  } else {
    throw new StrataError(`${source}: expected a plan ({"layers": [...]}, as \`strata plan --json\` prints) or a JSON list of layers`);
  }

  const seen = new Map<string, number>();
  const layers = rawLayers.map((raw, i): string[] => {
    const paths = Array.isArray(raw)
      ? raw
      : raw !== null && typeof raw === 'object' && Array.isArray((raw as { paths?: unknown }).paths)
        ? (raw as { paths: unknown[] }).paths
        : undefined;
    if (paths === undefined) throw new StrataError(`${source}: ${describe(i)} is not a list of store paths (nor an object with "paths")`);
    if (paths.length === 0) throw new StrataError(`${source}: ${describe(i)} has no store paths`);
    for (const p of paths) {
      if (typeof p !== 'string' || !p.startsWith('/')) {
        throw new StrataError(`${source}: ${describe(i)} contains ${JSON.stringify(p)}, which is not an absolute store path`);
      }
      const other = seen.get(p);
      if (other !== undefined) throw new StrataError(`${source}: store path ${p} is in both ${describe(other)} and ${describe(i)}`);
      seen.set(p, i);
    }
    return [...(paths as string[])].sort(compare);
  });
  return { layers };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
