/**
 * `--layering stable` on closures past the size where every pair of paths is compared (issue 17,
 * part 6): the paths are first clustered along references. The plan must still be a plan (every
 * path once, the budget kept), deterministic, reuse a previous release's layers, and beat
 * nixpkgs' own modes under the cost model it minimises.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Closure } from '../../src/closure/types.js';
import { autoPlan } from '../../src/layering/auto.js';
import { popularityPlan } from '../../src/layering/popularity.js';
import { expectedCost, stablePlan } from '../../src/layering/stable.js';
import { ClosureIndex } from '../../src/layering/closure-index.js';
import { randomClosure } from '../../bench/plan-scale.js';

function checkPlan(closure: Closure, layers: readonly { paths: readonly string[] }[], budget: number): void {
  assert.ok(layers.length <= budget, `${layers.length} layers for a budget of ${budget}`);
  const all = layers.flatMap((l) => l.paths);
  assert.equal(all.length, closure.paths.size);
  assert.equal(new Set(all).size, closure.paths.size, 'every path exactly once');
}

test('stable, 3,000 paths: a valid plan, the same from a map built in another order, cheaper than auto and popularity', () => {
  const closure = randomClosure(3000, 7);
  for (const budget of [12, 99]) {
    const plan = stablePlan(closure, budget);
    checkPlan(closure, plan.layers, budget);
    const reversed: Closure = { ...closure, paths: new Map([...closure.paths].reverse()) };
    assert.deepEqual(stablePlan(reversed, budget), plan);
    const cost = (layers: readonly { paths: readonly string[] }[]) => expectedCost(closure, layers.map((l) => l.paths));
    assert.ok(cost(plan.layers) < cost(autoPlan(closure, budget).layers), `budget ${budget}: cheaper than auto`);
    assert.ok(cost(plan.layers) < cost(popularityPlan(closure, budget).layers), `budget ${budget}: cheaper than popularity`);
  }
});

test('stable, 3,000 paths: a previous release\'s layers whose paths all remain are kept as they were', () => {
  const before = randomClosure(3000, 8);
  const first = stablePlan(before, 40);
  // The next release: one more path on top (an application update adds a new root).
  const top = '/nix/store/00000000000000000000000000000000-app-2';
  const after: Closure = { ...before, paths: new Map([...before.paths, [top, { path: top, narSize: 1000, references: [before.roots[0]!] }]]), roots: [top] };
  const next = stablePlan(after, 40, { layers: first.layers.map((l) => l.paths) });
  checkPlan(after, next.layers, 40);
  const kept = next.layers.filter((l) => l.reusedFrom !== undefined);
  assert.ok(kept.length >= 38, `${kept.length} layers kept`);
  for (const l of kept) assert.deepEqual(l.paths, first.layers[l.reusedFrom!]!.paths);
});

test('closure bitsets: each row is the path and everything it reaches, as the reference walk finds them', () => {
  const closure = randomClosure(700, 9);
  const g = new ClosureIndex(closure);
  const bits = g.closureBits();
  for (const i of [0, 1, 350, 699]) {
    const row = new Set<number>();
    for (let d = 0; d < g.size; d++) if (bits[i * g.words + (d >>> 5)]! & (1 << (d & 31))) row.add(d);
    assert.deepEqual([...row].sort((a, b) => a - b), [i, ...g.dependencies(i)].sort((a, b) => a - b));
  }
  const counts = g.userCounts();
  for (const i of [0, 10, 699]) assert.equal(counts[i], g.users(i).size);
});
