import type { Closure } from '../closure/types.js';
import { autoPlan } from './auto.js';
import { perPathPlan } from './per-path.js';
import { popularityPlan } from './popularity.js';
import { stablePlan, type PreviousAssignment } from './stable.js';
import type { LayerPlan, LayeringStrategy } from './types.js';

export const LAYERING_STRATEGIES: readonly LayeringStrategy[] = ['popularity', 'auto', 'stable', 'per-path'];

/** Assigns the closure's store paths to at most `budget` layers with the chosen strategy. */
export function planLayers(closure: Closure, strategy: LayeringStrategy, budget: number, previous?: PreviousAssignment): LayerPlan {
  switch (strategy) {
    case 'popularity': return popularityPlan(closure, budget);
    case 'auto': return autoPlan(closure, budget);
    case 'stable': return stablePlan(closure, budget, previous);
    case 'per-path': return perPathPlan(closure, budget);
  }
}
