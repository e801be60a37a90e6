import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePlanFile, planToJson } from '../../src/layering/plan-file.js';
import { StrataError } from '../../src/util/errors.js';
import type { Closure, StorePathInfo } from '../../src/closure/types.js';
import type { LayerPlan } from '../../src/layering/types.js';

const p = (name: string) => `/nix/store/${'a'.repeat(32)}-${name}`;
const info = (name: string, narSize: number, references: string[] = []): [string, StorePathInfo] => [p(name), { path: p(name), narSize, references }];
const closure: Closure = {
  storeDir: '/nix/store',
  paths: new Map([info('app', 100, [p('lib')]), info('glibc', 30), info('lib', 7, [p('glibc')])]),
  roots: [p('app')],
};
const plan: LayerPlan = {
  strategy: 'stable',
  layers: [{ paths: [p('glibc')], reusedFrom: 2 }, { paths: [p('app'), p('lib')] }],
};

test('planToJson prints strategy, indexed layers with sizes, reusedFrom only when set', () => {
  assert.deepEqual(planToJson(plan, closure), {
    strategy: 'stable',
    layers: [
      { index: 0, paths: [p('glibc')], narSize: 30, reusedFrom: 2 },
      { index: 1, paths: [p('app'), p('lib')], narSize: 107 },
    ],
    narSize: 137,
    pathCount: 3,
  });
});

test('parsePlanFile(planToJson(plan)) round-trips through JSON text', () => {
  const text = JSON.stringify(planToJson(plan, closure));
  assert.deepEqual(parsePlanFile(JSON.parse(text), 'plan.json'), { layers: [[p('glibc')], [p('app'), p('lib')]] });
});

test('parsePlanFile accepts a bare list of layers (nixpkgs layers.json) and sorts each layer', () => {
  assert.deepEqual(parsePlanFile([[p('lib'), p('app')], [p('glibc')]], 'layers.json'), { layers: [[p('app'), p('lib')], [p('glibc')]] });
});

test('parsePlanFile names the file and the culprit', () => {
  const bad: [unknown, RegExp][] = [
    [{ nope: 1 }, /prev\.json: expected a plan/],
    ['text', /prev\.json: expected a plan/],
    [[[p('a')], [p('b'), p('a')]], /prev\.json: store path \/nix\/store\/a+-a is in both layer 0 and layer 1/],
    [{ layers: [{ paths: [p('a')] }, { paths: [p('a')] }] }, /in both layers\[0\] and layers\[1\]/],
    [[[]], /prev\.json: layer 0 has no store paths/],
    [[[p('a'), 3]], /layer 0 contains 3, which is not an absolute store path/],
    [{ layers: [{ files: [] }] }, /layers\[0\] is not a list of store paths/],
  ];
  for (const [input, message] of bad) {
    assert.throws(() => parsePlanFile(input, 'prev.json'), (e: unknown) => e instanceof StrataError && message.test(e.message));
  }
});
