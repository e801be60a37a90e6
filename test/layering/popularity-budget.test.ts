/**
 * Layer budgets: nixpkgs' limit_layers (the first available − 1 paths in popularity order get a
 * layer each, all the rest share the last; empty layers dropped) and the maxLayers arithmetic of
 * popularity-contest-layering-pipeline.nix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closureFromEdges } from '../../src/closure/build-closure.js';
import { popularityPlan } from '../../src/layering/popularity.js';
import { DEFAULT_MAX_LAYERS, storeLayerBudget } from '../../src/layering/budget.js';
import { StrataError } from '../../src/util/errors.js';

const S = (name: string) => `/nix/store/${name}`;
// nixpkgs' documented example; popularity order worked out in popularity.test.ts:
// F(9) E(5) D(4) C(3) B(2) G(2) A(1)
const closure = closureFromEdges(Object.fromEntries(Object.entries({
  '7-A': ['2-B', '1-G'], '2-B': ['6-C', '3-E'], '6-C': ['5-D', '3-E'], '5-D': ['4-F'], '3-E': ['4-F'], '4-F': [], '1-G': [],
}).map(([k, v]) => [S(k), v.map(S)])));
const layers = (budget: number) => popularityPlan(closure, budget).layers.map((l) => l.paths.map((p) => p.slice(11)));

test('budget 1: everything in one layer, bytewise sorted', () => {
  assert.deepEqual(layers(1), [['1-G', '2-B', '3-E', '4-F', '5-D', '6-C', '7-A']]);
  assert.equal(popularityPlan(closure, 1).strategy, 'popularity');
});

test('budget 2: the most popular path alone, the rest together', () => {
  assert.deepEqual(layers(2), [['4-F'], ['1-G', '2-B', '3-E', '5-D', '6-C', '7-A']]);
});

test('budget 4: three singletons in popularity order, then the shared layer', () => {
  assert.deepEqual(layers(4), [['4-F'], ['3-E'], ['5-D'], ['1-G', '2-B', '6-C', '7-A']]);
});

test('budget equal to the closure size: one path per layer', () => {
  assert.deepEqual(layers(7), [['4-F'], ['3-E'], ['5-D'], ['6-C'], ['2-B'], ['1-G'], ['7-A']]);
});

test('budget larger than the closure: one path per layer, no empty layers', () => {
  assert.deepEqual(layers(100), [['4-F'], ['3-E'], ['5-D'], ['6-C'], ['2-B'], ['1-G'], ['7-A']]);
});

test('every path appears exactly once for every budget', () => {
  for (let b = 1; b <= 9; b++) {
    const all = layers(b).flat().sort();
    assert.deepEqual(all, ['1-G', '2-B', '3-E', '4-F', '5-D', '6-C', '7-A']);
    assert.equal(layers(b).length, Math.min(b, 7));
  }
});

test('a budget that is not a positive integer is refused, naming it', () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(() => popularityPlan(closure, bad), (e: unknown) => e instanceof StrataError && e.message.includes(String(bad)));
  }
});

test('storeLayerBudget: maxLayers minus base layers minus the customisation layer', () => {
  assert.equal(DEFAULT_MAX_LAYERS, 100);
  assert.equal(storeLayerBudget(100, 0), 99);
  assert.equal(storeLayerBudget(100, 3), 96);
  assert.equal(storeLayerBudget(2, 0), 1);
  assert.equal(storeLayerBudget(125, 0), 124);
  assert.equal(storeLayerBudget(10, 8), 1);
});

test('storeLayerBudget refuses impossible numbers and says them', () => {
  const refuses = (max: number, base: number, ...fragments: string[]) =>
    assert.throws(() => storeLayerBudget(max, base), (e: unknown) =>
      e instanceof StrataError && fragments.every((f) => e.message.includes(f)));
  refuses(1, 0, '1', '2');
  refuses(0, 0, '0');
  refuses(126, 0, '126', '125');
  refuses(10, 9, '10', '9');
  refuses(10, 20, '10', '20');
  refuses(10, -1, '-1');
  refuses(10.5, 0, '10.5');
});
