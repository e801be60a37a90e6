/**
 * nixpkgs' popularity contest, checked against orders worked out by hand from the published
 * algorithm (closure-graph.py / flatten-references-graph popularity_contest.py):
 *
 *   routes(w)     = distinct routes from any root (a path nothing refers to) to w; 1 for a root
 *   popularity(u) = Σ routes(w) over every w that is u or reaches u
 *   order         = popularity descending, ties by package_name ascending, where package_name
 *                   moves the first '-'-separated part to the end ("/nix/store/h-foo-1" ->
 *                   "foo-1-/nix/store/h"), compared by code point (= bytes for these names).
 *
 * Names are chosen so that tie-breaking by package_name differs from sorting by path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closureFromEdges } from '../../src/closure/build-closure.js';
import { parseClosure } from '../../src/closure/read.js';
import { packageName, popularityOrder, popularityPlan, popularityScores } from '../../src/layering/popularity.js';
import { repoRoot } from '../support/paths.js';

const S = (name: string) => `/nix/store/${name}`;
/** Builds a closure from edges written with short names. */
function graph(edges: Record<string, string[]>) {
  return closureFromEdges(Object.fromEntries(Object.entries(edges).map(([k, v]) => [S(k), v.map(S)])));
}
const short = (paths: readonly string[]) => paths.map((p) => p.slice('/nix/store/'.length));

test('package_name moves the hash part to the end', () => {
  assert.equal(packageName('/nix/store/abc-hello-2.12'), 'hello-2.12-/nix/store/abc');
  assert.equal(packageName('/nix/store/abc'), '/nix/store/abc');
  assert.equal(packageName('/nix/store/abc-'), '-/nix/store/abc');
});

test("nixpkgs' own documented example: F E D C B G A", () => {
  // From the script's header comment: A-B-C-D-F, B-E, C-E, E-F, A-G.
  // routes: A1 B1 G1 C1 D1 E2 (via B, via C) F3 (via D, and E's two)
  // popularity: A=1, B=1+1=2, G=1+1=2, C=1+1+1=3, D=1+3=4, E=2+C1+B1+A1=5,
  //             F=3+D1+E2+C1+B1+A1=9
  // ties: B, G at 2 -> "B-/nix/store/2" < "G-/nix/store/1"
  const c = graph({ '7-A': ['2-B', '1-G'], '2-B': ['6-C', '3-E'], '6-C': ['5-D', '3-E'], '5-D': ['4-F'], '3-E': ['4-F'], '4-F': [], '1-G': [] });
  assert.deepEqual(short(popularityOrder(c)), ['4-F', '3-E', '5-D', '6-C', '2-B', '1-G', '7-A']);
  assert.deepEqual(Object.fromEntries([...popularityScores(c)].map(([p, v]) => [short([p])[0], v])),
    { '7-A': 1n, '2-B': 2n, '1-G': 2n, '6-C': 3n, '5-D': 4n, '3-E': 5n, '4-F': 9n });
});

test('diamond: the shared bottom first, the two sides by name, the root last', () => {
  // root -> left, right; left -> bottom; right -> bottom
  // routes: root1 left1 right1 bottom2; popularity: root1, left2, right2, bottom 2+1+1+1=5
  // tie left/right: "left-..." < "right-..." although path 1-right < 8-left
  const c = graph({ '0-root': ['8-left', '1-right'], '8-left': ['5-bottom'], '1-right': ['5-bottom'], '5-bottom': [] });
  assert.deepEqual(short(popularityOrder(c)), ['5-bottom', '8-left', '1-right', '0-root']);
});

test('stacked diamonds double the routes at each level', () => {
  // t -> a1, b1; a1, b1 -> m; m -> a2, b2; a2, b2 -> z
  // routes: t1 a1 1 b1 1 m2 a2 2 b2 2 z4
  // popularity: t1; a1=1+1=2; b1=2; m=2+1+1+1=5; a2=2+m2+a1+b1+t=2+5=7; b2=7;
  //             z=4+a2 2+b2 2+m2+a1 1+b1 1+t1=13
  const c = graph({ t: ['a1', 'b1'], a1: ['m'], b1: ['m'], m: ['a2', 'b2'], a2: ['z'], b2: ['z'], z: [] });
  // "a1", "b1", "m" etc. have no '-': package_name is the path itself.
  assert.deepEqual(short(popularityOrder(c)), ['z', 'a2', 'b2', 'm', 'a1', 'b1', 't']);
});

test('long chain: deepest first, without recursion limits', () => {
  // p0 -> p1 -> ... -> p(n-1): routes all 1, popularity(pk) = k + 1.
  const n = 3000;
  const edges: Record<string, string[]> = {};
  for (let k = 0; k < n; k++) edges[`${String(n - k).padStart(5, '0')}-p${k}`] = k + 1 < n ? [`${String(n - k - 1).padStart(5, '0')}-p${k + 1}`] : [];
  const order = short(popularityOrder(graph(edges)));
  assert.equal(order.length, n);
  assert.equal(order[0], '00001-p2999');
  assert.equal(order[n - 1], '03000-p0');
  for (let i = 0; i < n; i++) assert.equal(order[i], `${String(i + 1).padStart(5, '0')}-p${n - 1 - i}`);
});

test('wide fan: leaves tie and sort by name bytewise (uppercase first), root last', () => {
  // root -> 5 leaves: each leaf popularity 1 + 1 = 2, root 1.
  // names: "Zlib" < "acl" < "attr" < "bash" < "coreutils" by bytes ('Z' 0x5a < 'a' 0x61)
  const c = graph({ '0-root': ['1-coreutils', '2-bash', '3-attr', '4-acl', '5-Zlib'], '1-coreutils': [], '2-bash': [], '3-attr': [], '4-acl': [], '5-Zlib': [] });
  assert.deepEqual(short(popularityOrder(c)), ['5-Zlib', '4-acl', '3-attr', '2-bash', '1-coreutils', '0-root']);
});

test('fan-in: a path shared by many roots comes first', () => {
  // r1..r4 -> shared: routes(shared)=4, popularity = 4 + 4 = 8; each root 1
  const c = graph({ '4-r1': ['0-shared'], '3-r2': ['0-shared'], '2-r3': ['0-shared'], '1-r4': ['0-shared'], '0-shared': [] });
  assert.deepEqual(short(popularityOrder(c)), ['0-shared', '4-r1', '3-r2', '2-r3', '1-r4']);
});

test('self-references change nothing (and do not stop a path being a root)', () => {
  // app -> lib (both self-referencing): lib 2, app 1
  const withSelf = parseClosure({ graph: [
    { path: S('1-app'), references: [S('1-app'), S('2-lib')] },
    { path: S('2-lib'), references: [S('2-lib')] },
  ] }, 'g.json');
  assert.deepEqual(short(popularityOrder(withSelf)), ['2-lib', '1-app']);
});

test('equal popularity: ties by name, then by hash; version text compares bytewise', () => {
  // root -> five leaves, all popularity 2. package_name keys:
  //   "foo-/nix/store/1", "foo-/nix/store/2", "foo-1.2-/nix/store/0", "foo-bar-/nix/store/00",
  //   "foo.x-/nix/store/9"
  // bytewise: "foo-/" < "foo-1" < "foo-b" ('/' 0x2f < '1' 0x31 < 'b' 0x62), and "foo-" < "foo."
  // ('-' 0x2d < '.' 0x2e); same name "foo": hash 1 before hash 2.
  const c = graph({ 'r-root': ['2-foo', '1-foo', '0-foo-1.2', '00-foo-bar', '9-foo.x'], '2-foo': [], '1-foo': [], '0-foo-1.2': [], '00-foo-bar': [], '9-foo.x': [] });
  assert.deepEqual(short(popularityOrder(c)), ['1-foo', '2-foo', '0-foo-1.2', '00-foo-bar', '9-foo.x', 'r-root']);
});

test('multiple roots, including an isolated one', () => {
  // r1 -> x -> y; r2 -> y; r3 alone.
  // routes: r1 1, r2 1, r3 1, x 1, y 2; popularity: y = 2 + x1 + r1 + r2 = 5, x = 1 + 1 = 2, roots 1
  const c = graph({ '9-r1': ['5-x'], '8-r2': ['4-y'], '7-r3': [], '5-x': ['4-y'], '4-y': [] });
  assert.deepEqual(short(popularityOrder(c)), ['4-y', '5-x', '9-r1', '8-r2', '7-r3']);
});

test('explicit closure roots do not change the contest (nixpkgs always finds its own roots)', () => {
  const input = [{ path: S('1-app'), references: [S('2-lib')] }, { path: S('2-lib'), references: [] }];
  assert.deepEqual(popularityOrder(parseClosure(input, 'c.json', { roots: [S('2-lib')] })), popularityOrder(parseClosure(input, 'c.json')));
});

test('route counts beyond 2^53 stay exact (BigInt)', () => {
  // A ladder: t -> a1, b1; a(i), b(i) -> a(i+1), b(i+1) for i < L. routes(a_i) = 2^(i-1).
  // popularity(a_i) = routes(a_i) + t + Σ_{j<i} (routes(a_j) + routes(b_j))
  //                 = 2^(i-1) + 1 + 2(2^(i-1) - 1) = 3·2^(i-1) - 1.
  // Below a_L hang x (referenced by a_L only) and y (by a_L and an extra root s):
  //   popularity(x) = routes(x) + popularity(a_L) = 2^(L-1) + 3·2^(L-1) - 1 = 2^(L+1) - 1
  //   popularity(y) = (2^(L-1) + 1) + popularity(a_L) + popularity-of-s-term 1 = 2^(L+1) + 1
  // With L = 59, 2^60 ± 1 round to the same double: only exact arithmetic puts y before x
  // (by name x "aaa-x" would come first).
  const L = 59;
  const name = (k: string, i: number) => `${k}${String(i).padStart(2, '0')}`;
  const edges: Record<string, string[]> = { t: [name('a', 1), name('b', 1)], 's-s': ['zzz-y'], 'aaa-x': [], 'zzz-y': [] };
  for (let i = 1; i <= L; i++) {
    const next = i < L ? [name('a', i + 1), name('b', i + 1)] : [];
    edges[name('a', i)] = i === L ? ['aaa-x', 'zzz-y'] : next;
    edges[name('b', i)] = next;
  }
  const c = graph(edges);
  const scores = popularityScores(c);
  const two = (e: number) => 2n ** BigInt(e);
  for (const i of [1, 2, 30, L]) {
    assert.equal(scores.get(S(name('a', i))), 3n * two(i - 1) - 1n);
    assert.equal(scores.get(S(name('b', i))), 3n * two(i - 1) - 1n);
  }
  assert.equal(scores.get(S('aaa-x')), two(L + 1) - 1n);
  assert.equal(scores.get(S('zzz-y')), two(L + 1) + 1n);
  assert.deepEqual(short(popularityOrder(c).slice(0, 4)), ['zzz-y', 'aaa-x', name('a', L), name('b', L)]);
});

test("randomized 60-path graph matches nixpkgs' closure-graph.py output", () => {
  const fixture = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/popularity/random-60.json'), 'utf8')) as { graph: unknown; expectedOrder: string[] };
  const c = parseClosure(fixture.graph, 'random-60.json');
  assert.equal(c.paths.size, 60);
  assert.deepEqual(popularityOrder(c), fixture.expectedOrder);
  // limit_layers(20): the 19 most popular alone, the other 41 together.
  const plan = popularityPlan(c, 20);
  assert.equal(plan.layers.length, 20);
  assert.deepEqual(plan.layers.slice(0, 19).map((l) => l.paths), fixture.expectedOrder.slice(0, 19).map((p) => [p]));
  assert.deepEqual(plan.layers[19]!.paths, [...fixture.expectedOrder.slice(19)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
});
