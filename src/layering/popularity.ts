/**
 * `--layering popularity`: nixpkgs' "popularity contest" (dockerTools buildLayeredImage /
 * streamLayeredImage), reproduced exactly: the same order and the same layers for the same graph.
 *
 * Sources: pkgs/build-support/references-by-popularity/closure-graph.py and its successor
 * pkgs/by-name/fl/flatten-references-graph (popularity_contest.py; lib.py `limit_layers`), driven
 * by the pipeline [["popularity_contest"], ["limit_layers", available]].
 *
 * The script builds, for each root (a path nothing else refers to), the tree of all routes out of
 * it, and scores bottom-up: at a node, each child scores 1 and every score inside a child's subtree
 * is incremented by 1 as it is merged upward; a root finally scores 1 itself. Unrolling that
 * recursion, the popularity of path u is
 *
 *     popularity(u) = Σ over every w that is u or can reach u of routes(w),
 *     routes(w)     = number of distinct routes from any root to w (1 for a root),
 *
 * (proof by induction on the recursion: the score u gets inside the subtree of v is
 * Σ_{w reachable from v, w reaches u or is u, w ≠ v} routes_from_v(w), and the "+1" per level adds
 * the w = v term). Route counts grow exponentially with depth, so they are BigInt.
 *
 * Order: popularity descending; ties by `package_name(path)` ascending, where package_name moves
 * the first '-'-separated part (the store dir and hash) to the end: "/nix/store/h-foo-1" sorts as
 * "foo-1-/nix/store/h". Python compares str by code point, which is UTF-8 byte order.
 */
import type { Closure } from '../closure/types.js';
import { sortBytewise } from '../util/byte-order.js';
import { StrataError } from '../util/errors.js';
import type { LayerPlan } from './types.js';

/** Store paths, most popular first, in exactly the order nixpkgs' popularity contest prints them. */
export function popularityOrder(closure: Closure): string[] {
  const { paths, refs } = indexClosure(closure);
  const n = paths.length;
  const popularity = popularities(n, refs);
  const keys = paths.map((p) => Buffer.from(packageName(p), 'utf8'));
  const order = [...Array(n).keys()];
  order.sort((a, b) => {
    const pa = popularity[a]!;
    const pb = popularity[b]!;
    if (pa !== pb) return pa > pb ? -1 : 1;
    return Buffer.compare(keys[a]!, keys[b]!);
  });
  return order.map((i) => paths[i]!);
}

/** Each path's popularity, exactly as closure-graph.py's `graph_popularity_contest` scores it. */
export function popularityScores(closure: Closure): Map<string, bigint> {
  const { paths, refs } = indexClosure(closure);
  const popularity = popularities(paths.length, refs);
  return new Map(paths.map((p, i) => [p, popularity[i]!]));
}

/**
 * nixpkgs' layer assignment for `budget` store-path layers: the (budget − 1) most popular paths get
 * a layer each and every remaining path shares the last one (`limit_layers`); empty layers are
 * dropped, so a closure smaller than the budget gets one layer per path. Layers go bottom (most
 * popular) first; paths inside a layer are bytewise sorted.
 */
export function popularityPlan(closure: Closure, budget: number): LayerPlan {
  if (!Number.isSafeInteger(budget) || budget < 1) {
    throw new StrataError(`layer budget must be a positive integer, got ${budget}`);
  }
  const order = popularityOrder(closure);
  const layers = order.slice(0, budget - 1).map((p) => ({ paths: [p] }));
  const rest = order.slice(budget - 1);
  if (rest.length > 0) layers.push({ paths: sortBytewise(rest) });
  return { strategy: 'popularity', layers };
}

/** closure-graph.py `package_name`: the first '-'-separated part moved to the end. */
export function packageName(path: string): string {
  const parts = path.split('-');
  const start = parts.shift()!;
  parts.push(start);
  return parts.join('-');
}

function indexClosure(closure: Closure): { paths: string[]; refs: number[][] } {
  // Sort here rather than trust the map's order: a hand-built Closure may not honour it, and the
  // result must not depend on how the caller built its maps.
  const paths = sortBytewise([...closure.paths.keys()]);
  const indexOf = new Map(paths.map((p, i) => [p, i]));
  const refs = paths.map((p) => {
    const out = new Set<number>();
    for (const r of closure.paths.get(p)!.references) {
      if (r === p) continue; // nixpkgs' make_lookup drops self-references
      const i = indexOf.get(r);
      if (i === undefined) throw new StrataError(`store path ${p} refers to ${r}, which is not in the closure`);
      out.add(i);
    }
    return [...out];
  });
  return { paths, refs };
}

/**
 * popularity(u) = Σ routes(w) over w ∈ {u} ∪ ancestors(u). Ancestor sets are bitsets filled in
 * topological order (parents before children); sums run in doubles when the grand total of routes
 * fits exactly, else in BigInt.
 */
function popularities(n: number, refs: readonly number[][]): bigint[] {
  const indegree = new Uint32Array(n);
  for (const rs of refs) for (const r of rs) indegree[r]!++;
  const topo: number[] = [];
  for (let i = 0; i < n; i++) if (indegree[i] === 0) topo.push(i);
  const routes: bigint[] = Array.from({ length: n }, (_, i) => (indegree[i] === 0 ? 1n : 0n));
  const words = (n + 31) >>> 5;
  const anc = new Uint32Array(n * words); // row u: bit w set when w = u or w reaches u
  const remaining = Uint32Array.from(indegree);
  for (let k = 0; k < topo.length; k++) {
    const u = topo[k]!;
    anc[u * words + (u >>> 5)]! |= 1 << (u & 31);
    for (const c of refs[u]!) {
      routes[c]! += routes[u]!;
      const src = u * words;
      const dst = c * words;
      for (let w = 0; w < words; w++) anc[dst + w]! |= anc[src + w]!;
      if (--remaining[c]! === 0) topo.push(c);
    }
  }
  if (topo.length !== n) throw new StrataError('the closure has a reference cycle; popularity is undefined');

  let total = 0n;
  for (const r of routes) total += r;
  const popularity: bigint[] = new Array(n);
  if (total <= BigInt(Number.MAX_SAFE_INTEGER)) {
    const r = routes.map(Number);
    for (let u = 0; u < n; u++) {
      let sum = 0;
      forEachBit(anc, u * words, words, (w) => { sum += r[w]!; });
      popularity[u] = BigInt(sum);
    }
  } else {
    for (let u = 0; u < n; u++) {
      let sum = 0n;
      forEachBit(anc, u * words, words, (w) => { sum += routes[w]!; });
      popularity[u] = sum;
    }
  }
  return popularity;
}

function forEachBit(bits: Uint32Array, offset: number, words: number, fn: (index: number) => void): void {
  for (let w = 0; w < words; w++) {
    let x = bits[offset + w]!;
    while (x !== 0) {
      const low = x & -x;
      fn((w << 5) + (31 - Math.clz32(low)));
      x ^= low;
    }
  }
}
