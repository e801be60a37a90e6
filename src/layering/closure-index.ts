/**
 * A closure as dense integer indices, for the layering strategies that walk the graph many
 * times. Index order is bytewise store-path order, so "ascending index" is a deterministic order
 * that does not depend on how the caller built its maps.
 */
import type { Closure } from '../closure/types.js';
import { compareBytes } from '../util/byte-order.js';
import { StrataError } from '../util/errors.js';

export class ClosureIndex {
  readonly paths: readonly string[];
  readonly sizes: readonly number[];
  /** Direct references, as indices. */
  readonly refs: readonly (readonly number[])[];
  /** Direct users (paths that refer to this one), as indices. */
  readonly directUsers: readonly (readonly number[])[];
  readonly indexOf: ReadonlyMap<string, number>;
  private readonly depCache: (Set<number> | undefined)[];
  private readonly userCache: (Set<number> | undefined)[];

  constructor(closure: Closure) {
    // Sort explicitly rather than trust map order: a hand-built Closure may not honour it.
    const paths = [...closure.paths.keys()].sort(compareBytes);
    const indexOf = new Map(paths.map((p, i) => [p, i]));
    const refs = paths.map((p) =>
      closure.paths.get(p)!.references
        .filter((r) => r !== p)
        .map((r) => {
          const i = indexOf.get(r);
          if (i === undefined) throw new StrataError(`store path ${p} refers to ${r}, which is not in the closure`);
          return i;
        })
        .sort((a, b) => a - b),
    );
    const users: number[][] = paths.map(() => []);
    refs.forEach((rs, user) => rs.forEach((r) => users[r]!.push(user)));
    this.paths = paths;
    this.sizes = paths.map((p) => closure.paths.get(p)!.narSize);
    this.refs = refs;
    this.directUsers = users;
    this.indexOf = indexOf;
    this.depCache = new Array(paths.length);
    this.userCache = new Array(paths.length);
  }

  get size(): number {
    return this.paths.length;
  }

  /** Transitive dependencies of `i`, without `i` itself. */
  dependencies(i: number): ReadonlySet<number> {
    return (this.depCache[i] ??= reach(i, this.refs));
  }

  /** Transitive users of `i` (everything that depends on it), without `i` itself. */
  users(i: number): ReadonlySet<number> {
    return (this.userCache[i] ??= reach(i, this.directUsers));
  }

  /**
   * For every path, how many paths depend on it transitively (`users(i).size` for every i), from
   * the dependency sets alone: the user sets of widely used paths are as large as the closure.
   */
  userCounts(): Int32Array {
    const counts = new Int32Array(this.paths.length);
    for (let i = 0; i < this.paths.length; i++) for (const d of this.dependencies(i)) counts[d]! += 1;
    return counts;
  }

  /** Total narSize of the members and everything they depend on. */
  closureSize(members: Iterable<number>): number {
    const seen = new Set<number>();
    for (const m of members) {
      seen.add(m);
      for (const d of this.dependencies(m)) seen.add(d);
    }
    let total = 0;
    for (const i of seen) total += this.sizes[i]!;
    return total;
  }
}

function reach(start: number, edges: readonly (readonly number[])[]): Set<number> {
  const seen = new Set<number>();
  const todo = [...edges[start]!];
  while (todo.length > 0) {
    const x = todo.pop()!;
    if (x === start || seen.has(x)) continue;
    seen.add(x);
    for (const y of edges[x]!) todo.push(y);
  }
  return seen;
}

