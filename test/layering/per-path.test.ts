/**
 * `--layering per-path`: one layer per store path in a deterministic dependency-first order
 * (Kahn's algorithm, the bytewise smallest ready path first); over budget, the budget − 1 most
 * popular paths keep their layer and the rest share the last one.
 *
 * Store path names below start with a short "hash" chosen so that ordering by full path (which
 * is what the order uses) and by package name disagree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildClosure, closureFromEdges } from '../../src/closure/build-closure.js';
import type { Closure, StorePathInfo } from '../../src/closure/types.js';
import { perPathOrder, perPathPlan } from '../../src/layering/per-path.js';
import { LAYERING_STRATEGIES, planLayers } from '../../src/layering/plan.js';
import { popularityPlan } from '../../src/layering/popularity.js';
import { compareBytes, sortBytewise } from '../../src/util/byte-order.js';
import { StrataError } from '../../src/util/errors.js';
import { runStrata } from '../support/cli.js';
import { repoRoot } from '../support/paths.js';

const S = (name: string) => `/nix/store/${name}`;
const short = (p: string) => p.slice('/nix/store/'.length);
const graph = (edges: Record<string, string[]>) =>
  closureFromEdges(Object.fromEntries(Object.entries(edges).map(([k, v]) => [S(k), v.map(S)])));
const order = (c: Closure) => perPathOrder(c).map(short);
const layers = (c: Closure, budget: number) => perPathPlan(c, budget).layers.map((l) => l.paths.map(short));

// app refers to libx and liby, both refer to libc. By name libx < liby; by path 3-liby < 7-libx.
const diamond = graph({ '1-app': ['7-libx', '3-liby'], '7-libx': ['9-libc'], '3-liby': ['9-libc'], '9-libc': [] });
// A chain whose path order is the reverse of its dependency order.
const chain = graph({ '1-top': ['2-mid'], '2-mid': ['3-base'], '3-base': [] });
// nixpkgs' documented example (as in popularity-budget.test.ts); popularity order
// F(9) E(5) D(4) C(3) B(2) G(2) A(1), B before G by package name although 1-G < 2-B by path.
const nixpkgs = graph({ '7-A': ['2-B', '1-G'], '2-B': ['6-C', '3-E'], '6-C': ['5-D', '3-E'], '5-D': ['4-F'], '3-E': ['4-F'], '4-F': [], '1-G': [] });

test('diamond: the shared dependency first, the two middles by path (not by name), the root last', () => {
  assert.deepEqual(order(diamond), ['9-libc', '3-liby', '7-libx', '1-app']);
  assert.deepEqual(layers(diamond, 100), [['9-libc'], ['3-liby'], ['7-libx'], ['1-app']]);
});

test('chain: dependencies before the paths that refer to them, whatever the path order', () => {
  assert.deepEqual(order(chain), ['3-base', '2-mid', '1-top']);
});

test('a path becoming ready is taken before a larger path that was ready earlier (not leaves first)', () => {
  const c = graph({ '5-a': [], '8-b': [], '2-c': ['5-a'] });
  assert.deepEqual(order(c), ['5-a', '2-c', '8-b']);
  assert.deepEqual(order(nixpkgs), ['1-G', '4-F', '3-E', '5-D', '6-C', '2-B', '7-A']);
});

test('budget at or above the path count: one layer per path in the order, strategy per-path', () => {
  for (const budget of [7, 8, 100]) {
    const plan = perPathPlan(nixpkgs, budget);
    assert.equal(plan.strategy, 'per-path');
    assert.deepEqual(plan.layers.map((l) => l.paths), perPathOrder(nixpkgs).map((p) => [p]));
  }
});

test('over budget: the budget − 1 most popular keep a layer in dependency order, the rest share the last, sorted', () => {
  // Kept F, E, D; the rest in dependency order would be G C B A, sorted it is G B C A.
  assert.deepEqual(layers(nixpkgs, 4), [['4-F'], ['3-E'], ['5-D'], ['1-G', '2-B', '6-C', '7-A']]);
  // B and G tie on popularity; popularity's tie-break (package name) keeps B, not the smaller path G.
  assert.deepEqual(layers(nixpkgs, 6), [['4-F'], ['3-E'], ['5-D'], ['6-C'], ['2-B'], ['1-G', '7-A']]);
  assert.deepEqual(layers(nixpkgs, 2), [['4-F'], ['1-G', '2-B', '3-E', '5-D', '6-C', '7-A']]);
});

test('over budget: the kept layers follow dependency order, not popularity order', () => {
  // 2-liba is used by three apps, 1-libb by one: liba is more popular, libb is first by path.
  const c = graph({ '1-libb': [], '2-liba': [], '3-app1': ['1-libb', '2-liba'], '4-app2': ['2-liba'], '5-app3': ['2-liba'] });
  assert.deepEqual(popularityPlan(c, 3).layers.map((l) => l.paths.map(short)), [['2-liba'], ['1-libb'], ['3-app1', '4-app2', '5-app3']]);
  assert.deepEqual(layers(c, 3), [['1-libb'], ['2-liba'], ['3-app1', '4-app2', '5-app3']]);
  assert.deepEqual(layers(c, 4), [['1-libb'], ['2-liba'], ['3-app1'], ['4-app2', '5-app3']]);
});

test('budget 1: everything in one layer, bytewise sorted', () => {
  assert.deepEqual(layers(chain, 1), [['1-top', '2-mid', '3-base']]);
  assert.deepEqual(layers(graph({ '1-only': [] }), 1), [['1-only']]);
});

test('a budget below 1 or not an integer is a StrataError', () => {
  for (const budget of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => perPathPlan(diamond, budget), (e: unknown) => e instanceof StrataError && /layer budget/.test(e.message), String(budget));
  }
});

test('the same order and plan whatever order the closure was given in', () => {
  const entries = [
    { path: S('1-app'), references: [S('7-libx'), S('3-liby')] },
    { path: S('7-libx'), references: [S('9-libc')] },
    { path: S('3-liby'), references: [S('9-libc')] },
    { path: S('9-libc'), references: [] },
    { path: S('5-tools'), references: [S('9-libc')] },
  ];
  const a = buildClosure(entries, { source: 'a', storeDir: '/nix/store' });
  const b = buildClosure([...entries].reverse().map((e) => ({ ...e, references: [...e.references].reverse() })), { source: 'b', storeDir: '/nix/store' });
  assert.deepEqual(order(a), ['9-libc', '3-liby', '5-tools', '7-libx', '1-app']);
  assert.deepEqual(perPathOrder(b), perPathOrder(a));
  for (const budget of [1, 2, 3, 5]) assert.deepEqual(perPathPlan(b, budget), perPathPlan(a, budget));

  // A hand-built Closure whose map is not in bytewise order, with unsorted references.
  const paths = new Map<string, StorePathInfo>();
  for (const e of entries) paths.set(e.path, { path: e.path, references: [...e.references].reverse(), narSize: 0 });
  const hand: Closure = { storeDir: '/nix/store', paths, roots: [S('1-app')] };
  assert.deepEqual(perPathOrder(hand), perPathOrder(a));
});

/** A random DAG on n paths with random hashes; edges only go from later to earlier nodes. */
function randomClosure(seed: number, n: number): Record<string, string[]> {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const alphabet = '0123456789abcdfghijklmnpqrsvwxyz';
  const names = Array.from({ length: n }, (_, i) => {
    let h = '';
    for (let k = 0; k < 8; k++) h += alphabet[Math.floor(rand() * 32)];
    return S(`${h}-pkg${i}`);
  });
  const edges: Record<string, string[]> = {};
  names.forEach((p, i) => {
    const refs = new Set<string>();
    for (let j = 0; j < i; j++) if (rand() < 3 / (i + 1)) refs.add(names[j]!);
    edges[p] = [...refs];
  });
  return edges;
}

/** The definition, done slowly: repeatedly take the bytewise smallest path whose references are all placed. */
function referenceOrder(c: Closure): string[] {
  const placed = new Set<string>();
  const out: string[] = [];
  while (out.length < c.paths.size) {
    const ready = sortBytewise([...c.paths.values()].filter((i) => !placed.has(i.path) && i.references.every((r) => placed.has(r))).map((i) => i.path));
    out.push(ready[0]!);
    placed.add(ready[0]!);
  }
  return out;
}

test('random graphs: every path once, dependencies first, equal to the definition', () => {
  for (const seed of [1, 2, 3, 4]) {
    const c = closureFromEdges(randomClosure(seed, 150));
    const o = perPathOrder(c);
    assert.equal(o.length, c.paths.size);
    assert.deepEqual(sortBytewise(o), [...c.paths.keys()]);
    const at = new Map(o.map((p, i) => [p, i]));
    for (const info of c.paths.values()) for (const r of info.references) assert.ok(at.get(r)! < at.get(info.path)!);
    assert.deepEqual(o, referenceOrder(c));

    for (const budget of [1, 2, 10, 149, 150, 151]) {
      const plan = perPathPlan(c, budget);
      assert.equal(plan.layers.length, Math.min(budget, c.paths.size));
      const all = plan.layers.flatMap((l) => l.paths);
      assert.deepEqual(sortBytewise(all), [...c.paths.keys()]);
      for (const l of plan.layers) assert.deepEqual(l.paths, [...l.paths].sort(compareBytes));
    }
  }
});

test('the order of a sub-closure is the whole closure\'s order restricted to it', () => {
  const edges = randomClosure(7, 120);
  const full = perPathOrder(closureFromEdges(edges));
  for (const top of Object.keys(edges).filter((_, i) => i % 10 === 9)) {
    const members = new Set<string>();
    const visit = (p: string) => { if (!members.has(p)) { members.add(p); edges[p]!.forEach(visit); } };
    visit(top);
    const sub = closureFromEdges(Object.fromEntries([...members].map((p) => [p, edges[p]!])));
    assert.deepEqual(perPathOrder(sub), full.filter((p) => members.has(p)));
  }
});

test('planLayers and the strategy list know per-path', () => {
  assert.ok(LAYERING_STRATEGIES.includes('per-path'));
  assert.deepEqual(planLayers(nixpkgs, 'per-path', 4), perPathPlan(nixpkgs, 4));
});

test('strata plan --layering per-path --json: one layer per store path, dependencies first', async () => {
  const file = 'closures/demo/closure.json';
  const r = await runStrata(['plan', file, '--layering', 'per-path', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout) as { strategy: string; pathCount: number; layers: { paths: string[] }[] };
  const entries = JSON.parse(readFileSync(join(repoRoot, file), 'utf8')) as { path: string; references: string[] }[];
  const demo = buildClosure(entries, { source: file, storeDir: '/nix/store' });
  assert.equal(plan.strategy, 'per-path');
  assert.equal(plan.pathCount, demo.paths.size);
  assert.deepEqual(plan.layers.map((l) => l.paths), perPathOrder(demo).map((p) => [p]));
});
