import { closureWithout } from '../closure/subset.js';
import { DEFAULT_MAX_LAYERS, storeLayerBudget } from '../layering/budget.js';
import { planToJson } from '../layering/plan-file.js';
import { planLayers } from '../layering/plan.js';
import type { LayeringStrategy } from '../layering/types.js';
import { loadClosure, loadPrevious, openBase, type ClosureInput, type SourceAccess } from './inputs.js';

export interface PlanRequest extends ClosureInput, SourceAccess {
  readonly from?: string;
  readonly previous?: string;
  readonly planIn?: string;
  readonly layering?: LayeringStrategy;
  readonly maxLayers?: number;
}

/** The layer assignment a build would make, without building: the closure less what the base carries, planned under the budget. */
export async function plan(request: PlanRequest) {
  const closure = await loadClosure(request);
  // The request carries previous/planIn and the platform and registry access by the same names.
  const previous = await loadPrevious(request, request);
  const base = request.from ? await openBase(request.from, closure, request) : undefined;
  try {
    const maxLayers = request.maxLayers ?? DEFAULT_MAX_LAYERS;
    const baseLayers = base?.source.image.layers.length ?? 0;
    const budget = storeLayerBudget(maxLayers, baseLayers);
    const remaining = closureWithout(closure, new Set(base?.paths ?? []));
    const planned = planLayers(remaining, request.layering ?? 'stable', budget, previous);
    return { ...planToJson(planned, remaining), budget, baseLayers, maxLayers };
  } finally {
    await base?.source.close();
  }
}
