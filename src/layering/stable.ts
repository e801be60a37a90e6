/**
 * `--layering stable`: layers that survive releases.
 *
 * 1. Reuse. Every layer of the previous image whose store paths are all still in the closure is
 *    kept exactly as it was (same paths, so the same tar bytes and digest; a client already has
 *    it). This is ostree-ext's idea (containers/bootc ostree-ext/src/chunking.rs): keep the
 *    previous assignment so that boundaries stay put.
 * 2. Budget. If the reused layers leave no room for what is left, the smallest reused layers are
 *    given up first (they are the cheapest to download again).
 * 3. Pack what is left — new paths and the survivors of broken layers — into the remaining slots,
 *    minimising the bytes a client is expected to download at the next release.
 *
 * The packing model (Nix semantics): a store path gets a new hash when it or anything it depends
 * on changes, so a layer is downloaded again when any path in the union of its members' closures
 * changes. Each path d is assumed to change on its own with probability q(d), high for the
 * application at the top and falling with the number of paths that depend on it (glibc, used by
 * everything, rarely changes; the application and its nearest dependencies change in most
 * releases). A layer L then changes with probability c(L) = 1 − Π over its closure of (1 − q),
 * and costs c(L)·size(L) per release. Starting from one layer per path, the cheapest merge
 * (smallest rise in total expected cost) is made until the layers fit the budget. This keeps the
 * application and its nearest dependencies in small layers of their own, lets a very large path
 * stay alone (merging it with anything volatile is expensive), and lets tiny paths share.
 *
 * Deterministic: only sizes, the graph and bytewise path order enter the computation, ties are
 * broken by bytewise path order, and probabilities are products of IEEE operations in a fixed
 * order (no Math.exp/log, whose last bits may differ between engines).
 */
import type { Closure } from '../closure/types.js';
import type { LayerPlan, PlannedLayer } from './types.js';
import { check } from '../util/errors.js';
import { ClosureIndex } from './closure-index.js';

/** The previous image's store-path layers, bottom first (what `--plan-in` reads). */
export interface PreviousAssignment {
  readonly layers: readonly (readonly string[])[];
}

/**
 * The change prior. A release updates about one package (CHANGES_PER_RELEASE). A share of that
 * (UNIFORM_SHARE) is spread evenly over all paths — any library, glibc included, can get a
 * security fix — and the rest goes to the top of the graph, weighted by nearTop(u) for a path
 * with u transitive users: the roots and the application under them change in most releases,
 * their nearest dependencies less, the foundation rarely. Chosen on the benchmark's seeds 1–2
 * among a few simple forms, checked on other seeds (see bench/layers.ts).
 */
const CHANGES_PER_RELEASE = 1;
const UNIFORM_SHARE = 0.3;
const nearTop = (users: number) => 1 / ((1 + users) * (1 + users));

export function stablePlan(closure: Closure, budget: number, previous?: PreviousAssignment): LayerPlan {
  check(Number.isInteger(budget) && budget >= 1, `layer budget must be a positive integer, got ${budget}`);
  const g = new ClosureIndex(closure);
  const n = g.size;

  // 1. Reuse every previous layer whose paths are all present (and not claimed twice).
  const taken = new Uint8Array(n);
  let reused: { from: number; members: number[]; size: number }[] = [];
  (previous?.layers ?? []).forEach((layer, from) => {
    const members = layer.map((p) => g.indexOf.get(p));
    if (members.length === 0 || members.some((i) => i === undefined || taken[i] === 1)) return;
    const ids = (members as number[]).sort((a, b) => a - b);
    if (new Set(ids).size !== ids.length) return;
    for (const i of ids) taken[i] = 1;
    reused.push({ from, members: ids, size: ids.reduce((s, i) => s + g.sizes[i]!, 0) });
  });

  // 2. Keep one slot for leftover paths; give up the smallest reused layers until they fit.
  const leftoverCount = () => n - reused.reduce((s, l) => s + l.members.length, 0);
  while (reused.length > budget - (leftoverCount() > 0 ? 1 : 0)) {
    let victim = 0;
    for (let k = 1; k < reused.length; k++) {
      const [a, b] = [reused[k]!, reused[victim]!];
      if (a.size < b.size || (a.size === b.size && a.from > b.from)) victim = k;
    }
    for (const i of reused[victim]!.members) taken[i] = 0;
    reused = reused.filter((_, k) => k !== victim);
  }

  // 3. Pack the rest.
  const free: number[] = [];
  for (let i = 0; i < n; i++) if (taken[i] === 0) free.push(i);
  const packed = free.length === 0 ? [] : pack(g, free, budget - reused.length);

  const fresh = packed.map((members) => ({ members, closureSize: g.closureSize(members) }));
  fresh.sort((a, b) => a.closureSize - b.closureSize || a.members[0]! - b.members[0]!);
  const layers: PlannedLayer[] = [
    ...reused.sort((a, b) => a.from - b.from).map((l) => ({ paths: l.members.map((i) => g.paths[i]!), reusedFrom: l.from })),
    ...fresh.map((l) => ({ paths: l.members.map((i) => g.paths[i]!) })),
  ];
  return { strategy: 'stable', layers };
}

/** Greedy agglomerative packing of `free` (ascending indices) into at most `slots` layers. */
function pack(g: ClosureIndex, free: readonly number[], slots: number): number[][] {
  const n = g.size;
  const words = (n + 31) >>> 5;
  // keep[d] = 1 − q(d): the probability that d itself does not change in a release. The q(d)
  // sum to CHANGES_PER_RELEASE, so no product of keeps underflows, and with two or more paths
  // every q(d) < 1, so no keep is 0 (the merge arithmetic divides by products of them).
  const keep = new Float64Array(n);
  let topWeight = 0;
  for (let d = 0; d < n; d++) topWeight += nearTop(g.users(d).size);
  for (let d = 0; d < n; d++) {
    keep[d] = 1 - CHANGES_PER_RELEASE * (UNIFORM_SHARE / n + (1 - UNIFORM_SHARE) * nearTop(g.users(d).size) / topWeight);
  }

  const table = byteProducts(keep);
  interface Cluster { members: number[]; bits: Uint32Array; keepAll: number; size: number; version: number; alive: boolean }
  const clusters: Cluster[] = free.map((i) => {
    const bits = new Uint32Array(words);
    bits[i >>> 5]! |= 1 << (i & 31);
    for (const d of g.dependencies(i)) bits[d >>> 5]! |= 1 << (d & 31);
    return { members: [i], bits, keepAll: productOf(bits, table), size: g.sizes[i]!, version: 0, alive: true };
  });
  const cost = (c: { keepAll: number; size: number }) => (1 - c.keepAll) * c.size;

  if (clusters.length <= slots) return clusters.map((c) => c.members);

  const mergedKeep = (a: Cluster, b: Cluster): number => {
    // Π(A ∪ B) = Π(A)·Π(B) / Π(A ∩ B); only words the two closures share cost anything.
    let shared = 1;
    for (let w = 0; w < words; w++) {
      const x = a.bits[w]! & b.bits[w]!;
      if (x !== 0) shared *= wordProduct(table, w, x);
    }
    return (a.keepAll * b.keepAll) / shared;
  };
  const delta = (a: Cluster, b: Cluster) => (1 - mergedKeep(a, b)) * (a.size + b.size) - cost(a) - cost(b);

  const heap = new MergeHeap();
  for (let a = 0; a < clusters.length; a++) {
    for (let b = a + 1; b < clusters.length; b++) heap.push({ delta: delta(clusters[a]!, clusters[b]!), a, b, va: 0, vb: 0 });
  }
  let count = clusters.length;
  while (count > slots) {
    const e = heap.pop()!;
    const [A, B] = [clusters[e.a]!, clusters[e.b]!];
    if (!A.alive || !B.alive || A.version !== e.va || B.version !== e.vb) continue;
    // Merge B into A (A has the smaller first member, so the cluster keeps its tie-break rank).
    for (let w = 0; w < words; w++) A.bits[w]! |= B.bits[w]!;
    A.keepAll = productOf(A.bits, table);
    A.members = mergeSorted(A.members, B.members);
    A.size += B.size;
    A.version += 1;
    B.alive = false;
    count -= 1;
    clusters.forEach((C, c) => {
      if (!C.alive || c === e.a) return;
      const [lo, hi] = c < e.a ? [c, e.a] : [e.a, c];
      heap.push({ delta: delta(A, C), a: lo, b: hi, va: clusters[lo]!.version, vb: clusters[hi]!.version });
    });
  }
  return clusters.filter((c) => c.alive).map((c) => c.members);
}

/**
 * For every byte of the path bitsets, the product of keep[] over each of its 256 values, so a
 * product over a set costs one lookup per byte rather than one multiplication per path.
 */
function byteProducts(keep: Float64Array): Float64Array {
  const positions = Math.ceil(keep.length / 32) * 4; // whole 32-bit words, as the bitsets have
  const table = new Float64Array(positions * 256);
  for (let pos = 0; pos < positions; pos++) {
    const t = pos * 256;
    table[t] = 1;
    for (let b = 1; b < 256; b++) {
      const low = b & -b;
      const bit = pos * 8 + 31 - Math.clz32(low);
      table[t + b] = table[t + (b ^ low)]! * (bit < keep.length ? keep[bit]! : 1);
    }
  }
  return table;
}

function wordProduct(table: Float64Array, w: number, x: number): number {
  const t = w * 1024;
  return table[t + (x & 255)]! * table[t + 256 + ((x >>> 8) & 255)]! * table[t + 512 + ((x >>> 16) & 255)]! * table[t + 768 + (x >>> 24)]!;
}

function productOf(bits: Uint32Array, table: Float64Array): number {
  let p = 1;
  for (let w = 0; w < bits.length; w++) if (bits[w] !== 0) p *= wordProduct(table, w, bits[w]!);
  return p;
}

function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0, j = 0;
  while (i < a.length || j < b.length) out.push(j >= b.length || (i < a.length && a[i]! < b[j]!) ? a[i++]! : b[j++]!);
  return out;
}

interface MergeEntry { delta: number; a: number; b: number; va: number; vb: number }

/** Binary min-heap on (delta, a, b): a total order, so the merge sequence is deterministic. */
class MergeHeap {
  private readonly items: MergeEntry[] = [];
  private static less(x: MergeEntry, y: MergeEntry): boolean {
    return x.delta < y.delta || (x.delta === y.delta && (x.a < y.a || (x.a === y.a && x.b < y.b)));
  }
  push(e: MergeEntry): void {
    const items = this.items;
    items.push(e);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      if (!MergeHeap.less(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  pop(): MergeEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < items.length && MergeHeap.less(items[l]!, items[m]!)) m = l;
        if (r < items.length && MergeHeap.less(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}
