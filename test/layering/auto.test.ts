import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { autoPlan } from '../../src/layering/auto.js';
import type { Closure, StorePathInfo } from '../../src/closure/types.js';
import { repoRoot } from '../support/paths.js';

interface GraphNode { path: string; narSize: number; references: string[] }

/** A Closure straight from an exportReferencesGraph-style list (self-references dropped). */
function closureOf(graph: readonly GraphNode[]): Closure {
  const sorted = [...graph].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const paths = new Map<string, StorePathInfo>(
    sorted.map((n) => [n.path, { path: n.path, narSize: n.narSize, references: n.references.filter((r) => r !== n.path).sort() }]),
  );
  const used = new Set(sorted.flatMap((n) => n.references.filter((r) => r !== n.path)));
  return { storeDir: '/nix/store', paths, roots: sorted.map((n) => n.path).filter((p) => !used.has(p)) };
}

const sp = (name: string) => `/nix/store/${name.padEnd(32, '0').slice(0, 32)}-${name}`;
const setOf = (layers: readonly (readonly string[])[]) => layers.map((l) => [...l].sort().join(' ')).sort();

// app(100) -> libA(50) -> glibc(10); tool(80) -> glibc. Worked by hand from nixpkgs' rules:
// primaries app, tool, libA, glibc; each step's label count is 2, 3, 4, 4.
const small = closureOf([
  { path: sp('app'), narSize: 100, references: [sp('libA')] },
  { path: sp('libA'), narSize: 50, references: [sp('glibc')] },
  { path: sp('glibc'), narSize: 10, references: [] },
  { path: sp('tool'), narSize: 80, references: [sp('glibc')] },
]);

test('auto: hand-worked example at every budget', () => {
  const paths = (b: number) => autoPlan(small, b).layers.map((l) => l.paths);
  assert.deepEqual(paths(1), [[sp('app'), sp('glibc'), sp('libA'), sp('tool')].sort()]);
  // tool's closure is 90 bytes, the app layer's 160: dependencies-first order.
  assert.deepEqual(paths(2), [[sp('tool')], [sp('app'), sp('glibc'), sp('libA')].sort()]);
  assert.deepEqual(paths(3), [[sp('glibc')], [sp('tool')], [sp('app'), sp('libA')].sort()]);
  assert.deepEqual(paths(4), [[sp('glibc')], [sp('libA')], [sp('tool')], [sp('app')]]);
  assert.deepEqual(paths(100), paths(4));
  for (const b of [1, 2, 3, 4]) assert.equal(autoPlan(small, b).strategy, 'auto');
});

test('auto: equal narSizes make the bytewise-last path primary first, like Python pop() on a stable sort', () => {
  // x and y (both 10) each use z. The first primary takes z into its layer; the second would
  // split z off into a third layer, which budget 2 forbids, so only the first one counts.
  const c = closureOf([
    { path: sp('x'), narSize: 10, references: [sp('z')] },
    { path: sp('y'), narSize: 10, references: [sp('z')] },
    { path: sp('z'), narSize: 1, references: [] },
  ]);
  // y sorts after x, so y is popped first: layers {y, z} and {x}.
  assert.deepEqual(setOf(autoPlan(c, 2).layers.map((l) => l.paths)), setOf([[sp('y'), sp('z')], [sp('x')]]));
});

test('auto: closure-size ties are ordered by smallest store path, whatever the input order', () => {
  const nodes = [
    { path: sp('b'), narSize: 10, references: [] },
    { path: sp('a'), narSize: 10, references: [] },
    { path: sp('c'), narSize: 10, references: [] },
  ];
  for (const order of [nodes, [...nodes].reverse()]) {
    assert.deepEqual(autoPlan(closureOf(order), 5).layers.map((l) => l.paths), [[sp('a')], [sp('b')], [sp('c')]]);
  }
});

test('auto: rejects a budget below one layer', () => {
  assert.throws(() => autoPlan(small, 0), /budget/);
});

for (const name of ['graph-1', 'graph-3', 'graph-6']) {
  test(`auto: same layers as nixpkgs auto-layer.py on ${name}`, () => {
    const fixture = JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'auto', `${name}.json`), 'utf8')) as {
      graph: GraphNode[];
      cases: { budget: number; layers: string[][] }[];
    };
    const closure = closureOf(fixture.graph);
    const size = new Map(fixture.graph.map((n) => [n.path, n.narSize]));
    const refs = new Map(fixture.graph.map((n) => [n.path, n.references]));
    const closureSize = (layer: readonly string[]) => {
      const seen = new Set<string>();
      const todo = [...layer];
      while (todo.length) {
        const p = todo.pop()!;
        if (!seen.has(p)) { seen.add(p); todo.push(...refs.get(p)!); }
      }
      return [...seen].reduce((s, p) => s + size.get(p)!, 0);
    };
    assert.ok(fixture.cases.length > 0);
    for (const { budget, layers } of fixture.cases) {
      const plan = autoPlan(closure, budget);
      const got = plan.layers.map((l) => l.paths);
      assert.deepEqual(setOf(got), setOf(layers), `budget ${budget}`);
      // Order: the script's key (closure size ascending), ties by the layer's smallest path.
      for (let i = 1; i < got.length; i++) {
        const [a, b] = [closureSize(got[i - 1]!), closureSize(got[i]!)];
        assert.ok(a < b || (a === b && got[i - 1]![0]! < got[i]![0]!), `budget ${budget}: layers ${i - 1} and ${i} out of order`);
      }
      for (const l of got) assert.deepEqual(l, [...l].sort(), 'paths inside a layer are bytewise sorted');
    }
  });
}
