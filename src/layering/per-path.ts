/**
 * `--layering per-path`: one layer per store path, dependencies first. This is the layout
 * package-as-layer distribution needs: an image of one package and an image composed of many put
 * the same store path in the same layer (one path, so the same tar bytes and blob digest) and in
 * the same relative order, so registries and clients share the blobs between them.
 *
 * Order (`perPathOrder`): a deterministic topological order, every path after all the paths it
 * refers to. Kahn's algorithm: a path is ready once every path it refers to has been placed; at
 * each step the ready path that is smallest by compareBytes (the full store path, so in effect by
 * hash, not by name) is placed next. Closure has no self-references (they are removed when it is
 * built), and every closure path appears exactly once.
 *
 * Because a reference-closed subset (a package's sub-closure) makes each of its paths ready at
 * the same moment as in the whole closure, and the smallest ready path overall is also the
 * smallest ready path of the subset whenever it lies in it, the order of a sub-closure is exactly
 * the whole closure's order restricted to it. That is what lets package images and composed
 * images agree.
 *
 * Budget (`perPathPlan`): when the closure has at most `budget` paths, every path is its own layer,
 * in that order. When it has more, the `budget − 1` most popular paths (popularity and its
 * tie-break exactly as `--layering popularity` computes them) keep a layer each, in the
 * topological order restricted to them, and all the other paths share one last layer, bytewise
 * sorted like every layer. Layers past the merge are no longer shared with package images, so the
 * budget should be large enough for the closures this strategy is used on. budget < 1 is an
 * error; budget 1 puts everything in one layer.
 */
import type { Closure } from '../closure/types.js';
import { sortBytewise } from '../util/byte-order.js';
import { StrataError } from '../util/errors.js';
import { popularityOrder } from './popularity.js';
import type { LayerPlan, PlannedLayer } from './types.js';

/** Every store path of the closure, dependencies first; ties: the bytewise smallest ready path. */
export function perPathOrder(closure: Closure): string[] {
  // Sort here rather than trust the map's order (as popularity does): index order is then
  // compareBytes order, and the result never depends on how the caller built the map.
  const paths = sortBytewise(closure.paths.keys());
  const n = paths.length;
  const indexOf = new Map(paths.map((p, i) => [p, i]));
  const users: number[][] = paths.map(() => []);
  const waiting = new Uint32Array(n); // references of each path not yet placed
  paths.forEach((p, i) => {
    for (const r of new Set(closure.paths.get(p)!.references)) {
      if (r === p) continue; // never in a built Closure; a hand-built one must not deadlock
      const j = indexOf.get(r);
      if (j === undefined) throw new StrataError(`store path ${p} refers to ${r}, which is not in the closure`);
      users[j]!.push(i);
      waiting[i]!++;
    }
  });

  const ready = new MinHeap();
  for (let i = 0; i < n; i++) if (waiting[i] === 0) ready.push(i);
  const order: string[] = [];
  while (ready.size > 0) {
    const i = ready.pop();
    order.push(paths[i]!);
    for (const u of users[i]!) if (--waiting[u]! === 0) ready.push(u);
  }
  if (order.length !== n) throw new StrataError('the closure has a reference cycle; it has no dependency order');
  return order;
}

/** One layer per store path in `perPathOrder`; over budget, the least popular paths share the last. */
export function perPathPlan(closure: Closure, budget: number): LayerPlan {
  if (!Number.isSafeInteger(budget) || budget < 1) {
    throw new StrataError(`layer budget must be a positive integer, got ${budget}`);
  }
  const order = perPathOrder(closure);
  if (order.length <= budget) {
    return { strategy: 'per-path', layers: order.map((p) => ({ paths: [p] })) };
  }
  const kept = new Set(popularityOrder(closure).slice(0, budget - 1));
  const layers: PlannedLayer[] = order.filter((p) => kept.has(p)).map((p) => ({ paths: [p] }));
  layers.push({ paths: sortBytewise(order.filter((p) => !kept.has(p))) });
  return { strategy: 'per-path', layers };
}

/** A binary min-heap of path indices (index order is bytewise path order). */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(x: number): void {
    const a = this.items;
    let k = a.length;
    a.push(x);
    while (k > 0) {
      const parent = (k - 1) >>> 1;
      if (a[parent]! <= x) break;
      a[k] = a[parent]!;
      k = parent;
    }
    a[k] = x;
  }

  pop(): number {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    const n = a.length;
    if (n === 0) return top;
    let k = 0;
    for (;;) {
      let child = 2 * k + 1;
      if (child >= n) break;
      if (child + 1 < n && a[child + 1]! < a[child]!) child += 1;
      if (a[child]! >= last) break;
      a[k] = a[child]!;
      k = child;
    }
    a[k] = last;
    return top;
  }
}
