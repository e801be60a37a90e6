import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stablePlan, type PreviousAssignment } from '../../src/layering/stable.js';
import { popularityPlan } from '../../src/layering/popularity.js';
import type { Closure, StorePathInfo } from '../../src/closure/types.js';
import type { LayerPlan } from '../../src/layering/types.js';
import { releaseSeries } from '../../bench/release-sim.js';

/** Deterministic small PRNG for test graphs (independent of the benchmark's). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

interface Node { name: string; size: number; deps: number[]; version: number }

/** A random DAG: node i depends only on lower indices; node 0 is a libc everything uses. */
function randomPackages(seed: number, n: number): Node[] {
  const rnd = lcg(seed);
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) {
    const deps = new Set<number>();
    if (i > 0) deps.add(0);
    for (let k = Math.floor(rnd() * 4); k > 0 && i > 1; k--) deps.add(1 + Math.floor(rnd() * (i - 1)));
    const size = rnd() < 0.2 ? Math.floor(rnd() * 5000) : Math.floor(Math.exp(rnd() * 18));
    nodes.push({ name: `pkg${i}`, size, deps: [...deps], version: 1 });
  }
  return nodes;
}

/** Store paths with Nix semantics: a path's name covers its version and its dependencies' names. */
function pathsOf(nodes: readonly Node[]): string[] {
  const out: string[] = [];
  nodes.forEach((node, i) => {
    let h = 2166136261;
    for (const ch of `${node.name}-${node.version}-${node.deps.map((d) => out[d]).join(',')}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    out[i] = `/nix/store/${h.toString(32).padStart(8, '0').repeat(4)}-${node.name}-${node.version}`;
  });
  return out;
}

/** Builds the Closure by hand; `reverse` inserts the map entries in reverse (non-sorted) order. */
function closureOf(nodes: readonly Node[], reverse = false): Closure {
  const paths = pathsOf(nodes);
  const entries = nodes.map((node, i): [string, StorePathInfo] => [
    paths[i]!,
    { path: paths[i]!, narSize: node.size, references: node.deps.map((d) => paths[d]!).sort() },
  ]);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  if (reverse) entries.reverse();
  const used = new Set(entries.flatMap(([, e]) => e.references));
  return { storeDir: '/nix/store', paths: new Map(entries), roots: entries.map(([p]) => p).filter((p) => !used.has(p)).sort() };
}

function assertValidPlan(plan: LayerPlan, closure: Closure, budget: number, what: string): void {
  assert.equal(plan.strategy, 'stable');
  assert.ok(plan.layers.length <= budget, `${what}: ${plan.layers.length} layers > budget ${budget}`);
  const seen = new Map<string, number>();
  plan.layers.forEach((layer, i) => {
    assert.ok(layer.paths.length > 0, `${what}: layer ${i} is empty`);
    assert.deepEqual([...layer.paths], [...layer.paths].sort(), `${what}: layer ${i} not sorted`);
    for (const p of layer.paths) {
      assert.ok(closure.paths.has(p), `${what}: ${p} is not in the closure`);
      assert.ok(!seen.has(p), `${what}: ${p} in layers ${seen.get(p)} and ${i}`);
      seen.set(p, i);
    }
  });
  assert.equal(seen.size, closure.paths.size, `${what}: some paths are in no layer`);
}

const asPrevious = (plan: LayerPlan): PreviousAssignment => ({ layers: plan.layers.map((l) => l.paths) });

/** Bumps package `i`: it and (through pathsOf) everything depending on it get new store paths. */
function bump(nodes: readonly Node[], i: number): Node[] {
  return nodes.map((node, k) => (k === i ? { ...node, version: node.version + 1 } : node));
}

test('stable: budget respected and every path in exactly one layer, budgets 1..N, with and without a previous plan', () => {
  for (const seed of [1, 2, 3]) {
    const nodes = randomPackages(seed, 40);
    const before = closureOf(nodes);
    const after = closureOf(bump(nodes, 25));
    for (let budget = 1; budget <= 45; budget++) {
      const first = stablePlan(before, budget);
      assertValidPlan(first, before, budget, `seed ${seed} budget ${budget}`);
      assertValidPlan(stablePlan(after, budget, asPrevious(first)), after, budget, `seed ${seed} budget ${budget} (update)`);
      // A previous plan made for a larger budget must still be squeezed into this one.
      assertValidPlan(stablePlan(after, budget, asPrevious(stablePlan(before, 45))), after, budget, `seed ${seed} budget ${budget} (shrunk)`);
    }
    assert.equal(stablePlan(before, 45).layers.length, 40, 'with room for every path, every path gets its own layer');
  }
});

test('stable: previous layers whose paths all remain are reused identically, with reusedFrom', () => {
  for (const seed of [4, 5, 6]) {
    const nodes = randomPackages(seed, 60);
    const before = closureOf(nodes);
    for (const budget of [3, 8, 20]) {
      const prev = stablePlan(before, budget);
      for (const changed of [59, 30, 5]) {
        const after = closureOf(bump(nodes, changed));
        const plan = stablePlan(after, budget, asPrevious(prev));
        // Expected independently: the previous layers whose paths are all still in the closure.
        const survivors = prev.layers.map((l, i) => ({ i, paths: l.paths })).filter((l) => l.paths.every((p) => after.paths.has(p)));
        assert.ok(survivors.length < prev.layers.length, 'the update breaks at least one layer');
        for (const s of survivors) {
          const match = plan.layers.find((l) => l.reusedFrom === s.i);
          assert.ok(match, `seed ${seed} budget ${budget}: previous layer ${s.i} not reused`);
          assert.deepEqual(match.paths, s.paths);
        }
        assert.equal(plan.layers.filter((l) => l.reusedFrom !== undefined).length, survivors.length);
      }
    }
  }
});

test('stable: previous layers naming unknown or duplicated paths are not reused', () => {
  const nodes = randomPackages(7, 10);
  const c = closureOf(nodes);
  const all = [...c.paths.keys()];
  const prev: PreviousAssignment = { layers: [[all[0]!, '/nix/store/gone-0'], [all[1]!], [all[1]!, all[2]!], []] };
  const plan = stablePlan(c, 5, prev);
  assertValidPlan(plan, c, 5, 'odd previous');
  assert.deepEqual(plan.layers.filter((l) => l.reusedFrom !== undefined).map((l) => [l.reusedFrom, l.paths]), [[1, [all[1]!]]]);
});

test('stable: deterministic — same inputs twice, maps inserted in another order, previous layers shuffled', () => {
  const nodes = randomPackages(8, 50);
  const before = closureOf(nodes);
  const after = closureOf(bump(nodes, 20));
  const afterReversed = closureOf(bump(nodes, 20), true);
  assert.deepEqual([...afterReversed.paths.keys()], [...after.paths.keys()].reverse(), 'the test really inserts in another order');
  for (const budget of [2, 7, 15, 60]) {
    const prev = stablePlan(before, budget);
    assert.deepEqual(stablePlan(closureOf(nodes, true), budget), prev);
    const a = stablePlan(after, budget, asPrevious(prev));
    const b = stablePlan(afterReversed, budget, { layers: prev.layers.map((l) => [...l.paths].reverse()) });
    assert.deepEqual(b, a);
    assert.deepEqual(stablePlan(after, budget, asPrevious(prev)), a);
  }
});

test('stable: with a previous plan, a leaf-application update changes only small layers', () => {
  // libc (30 MB) <- four big libraries (50..80 MB) <- many small libraries <- app (5 MB) <- entry.
  const MB = 1_000_000;
  const nodes: Node[] = [{ name: 'glibc', size: 30 * MB, deps: [], version: 1 }];
  for (let i = 0; i < 4; i++) nodes.push({ name: `big${i}`, size: (50 + 10 * i) * MB, deps: [0], version: 1 });
  for (let i = 0; i < 30; i++) nodes.push({ name: `small${i}`, size: 200_000 + i * 10_000, deps: [0, 1 + (i % 4)], version: 1 });
  nodes.push({ name: 'app', size: 5 * MB, deps: [0, ...Array.from({ length: 30 }, (_, i) => 5 + i)], version: 1 });
  const app = nodes.length - 1;
  nodes.push({ name: 'entry', size: 2000, deps: [app], version: 1 });
  const before = closureOf(nodes);
  const after = closureOf(bump(nodes, app));
  const newPaths = [...after.paths.keys()].filter((p) => !before.paths.has(p));
  assert.equal(newPaths.length, 2, 'app and entry changed');
  const newBytes = newPaths.reduce((s, p) => s + after.paths.get(p)!.narSize, 0);
  for (const budget of [4, 6, 10, 30]) {
    const plan = stablePlan(after, budget, asPrevious(stablePlan(before, budget)));
    const fresh = plan.layers.filter((l) => l.reusedFrom === undefined);
    const freshBytes = fresh.reduce((s, l) => s + l.paths.reduce((t, p) => t + after.paths.get(p)!.narSize, 0), 0);
    assert.ok(freshBytes < newBytes + 10 * MB, `budget ${budget}: ${freshBytes} bytes in changed layers for ${newBytes} new`);
    for (const p of [...after.paths.keys()].filter((q) => /-(glibc|big\d)-/.test(q))) {
      assert.ok(!fresh.some((l) => l.paths.includes(p)), `budget ${budget}: ${p} was re-laid`);
    }
  }
});

test('stable without a previous plan beats the popularity plan on the first update', () => {
  for (const seed of [1, 2]) {
    const [r0, r1] = releaseSeries(seed, 3);
    for (const budget of [11, 19, 39, 99]) {
      const downloaded = (a: LayerPlan, b: LayerPlan) => {
        const had = new Set(a.layers.map((l) => l.paths.join('\n')));
        return b.layers.filter((l) => !had.has(l.paths.join('\n'))).reduce((s, l) => s + l.paths.reduce((t, p) => t + r1!.closure.paths.get(p)!.narSize, 0), 0);
      };
      const stable = downloaded(stablePlan(r0!.closure, budget), stablePlan(r1!.closure, budget));
      const popularity = downloaded(popularityPlan(r0!.closure, budget), popularityPlan(r1!.closure, budget));
      assert.ok(stable < popularity, `seed ${seed} budget ${budget}: stable ${stable} vs popularity ${popularity}`);
    }
  }
});

test('stable: rejects a budget below one layer', () => {
  assert.throws(() => stablePlan(closureOf(randomPackages(1, 3)), 0), /budget/);
});
