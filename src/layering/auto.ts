/**
 * `--layering auto`: nixpkgs' auto-layer (pkgs/build-support/docker/auto-layer.py, PR #355189)
 * reproduced exactly — the same layers for the same graph and budget — with one deliberate
 * difference: the order of layers whose closure sizes tie. nixpkgs sorts layers by closure size
 * only, starting from a Python set of frozensets, so tied layers come out in an order that
 * depends on PYTHONHASHSEED. We break those ties by the layer's bytewise-smallest store path
 * (layers are disjoint, so that order is total).
 *
 * The algorithm, as nixpkgs states it: take store paths from the largest narSize down; each one
 * becomes a "primary" path. Every store path is labelled with the set of primary paths that
 * "own" it; paths with the same label share a layer. When a primary P is added, P is labelled
 * {P}, and each dependency D of P loses the primaries that depend on P (they reach D through P
 * anyway) and, if none of its remaining owners is itself a dependency of P, gains P. Stop at the
 * first primary whose addition would make more distinct labels than the budget; keep the split
 * from before it.
 */
import type { Closure } from '../closure/types.js';
import type { LayerPlan, PlannedLayer } from './types.js';
import { check } from '../util/errors.js';
import { ClosureIndex } from './closure-index.js';

export function autoPlan(closure: Closure, budget: number): LayerPlan {
  check(Number.isInteger(budget) && budget >= 1, `layer budget must be a positive integer, got ${budget}`);
  const g = new ClosureIndex(closure);
  const n = g.size;

  // nixpkgs: `sorted(graph, key=narSize)` then `pop()` from the end. Python's sort is stable and
  // Nix writes the references graph in store-path order, so among equal sizes the path that
  // sorts last is popped first: narSize descending, then path descending.
  const bySizeDesc = [...Array(n).keys()].sort((a, b) => g.sizes[b]! - g.sizes[a]! || b - a);

  // A label is a set of primary indices; kept as a sorted array plus a string key for counting.
  let labels: number[][] = Array.from({ length: n }, () => []);
  for (const primary of bySizeDesc) {
    const deps = g.dependencies(primary);
    const users = g.users(primary);
    const next = labels.slice();
    next[primary] = [primary];
    for (const dep of deps) {
      const kept = labels[dep]!.filter((owner) => !users.has(owner));
      // Among the label's remaining owners, is any one a dependency of the new primary?
      if (!kept.some((owner) => deps.has(owner))) kept.push(primary);
      next[dep] = kept.sort((a, b) => a - b);
    }
    if (distinctLabels(next) > budget) break;
    labels = next;
  }

  const groups = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const key = labels[i]!.join(',');
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(i);
  }

  const layers = [...groups.values()].map((members) => ({
    members, // ascending index = bytewise path order
    closureSize: g.closureSize(members),
  }));
  // Dependencies come first: a layer's closure strictly contains the closure of every layer it
  // depends on (unless sizes are zero), so closure size ascending is nixpkgs' order.
  layers.sort((a, b) => a.closureSize - b.closureSize || a.members[0]! - b.members[0]!);
  return {
    strategy: 'auto',
    layers: layers.map((l): PlannedLayer => ({ paths: l.members.map((i) => g.paths[i]!) })),
  };
}

function distinctLabels(labels: readonly number[][]): number {
  const seen = new Set<string>();
  for (const label of labels) seen.add(label.join(','));
  return seen.size;
}
