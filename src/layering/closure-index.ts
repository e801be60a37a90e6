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
  private bits: Uint32Array | undefined;

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

  /** 32-bit words in one closure bitset (`closureBits`). */
  get words(): number {
    return (this.paths.length + 31) >>> 5;
  }

  /**
   * Every path's closure (itself and all it depends on) as a bitset: row i is words
   * [i·words, (i+1)·words). Made once, bottom up (a path's row is its own bit OR its references'
   * rows), so it costs n·words words however deep the graph is, where sets of indices would cost
   * the sum of all closure sizes.
   */
  closureBits(): Uint32Array {
    if (this.bits) return this.bits;
    const n = this.paths.length;
    const words = this.words;
    const bits = new Uint32Array(n * words);
    const state = new Uint8Array(n); // 0 new, 1 on the stack, 2 done
    const stack: number[] = [];
    for (let start = 0; start < n; start++) {
      if (state[start] !== 0) continue;
      stack.push(start);
      while (stack.length > 0) {
        const i = stack[stack.length - 1]!;
        if (state[i] === 0) {
          state[i] = 1;
          for (const r of this.refs[i]!) if (state[r] === 0) stack.push(r);
          continue;
        }
        stack.pop();
        if (state[i] === 2) continue;
        state[i] = 2;
        const row = i * words;
        bits[row + (i >>> 5)]! |= 1 << (i & 31);
        // A reference still on the stack is a cycle (Nix forbids them; hand-made closures may not):
        // the reach() sets resolve those, so fall back to them for this row.
        if (this.refs[i]!.some((r) => state[r] !== 2)) {
          for (const d of this.dependencies(i)) bits[row + (d >>> 5)]! |= 1 << (d & 31);
          continue;
        }
        for (const r of this.refs[i]!) {
          const rr = r * words;
          for (let w = 0; w < words; w++) bits[row + w]! |= bits[rr + w]!;
        }
      }
    }
    this.bits = bits;
    return bits;
  }

  /**
   * For every path, how many paths depend on it transitively (`users(i).size` for every i),
   * counted from the closure bitsets: the user sets of widely used paths are as large as the closure.
   */
  userCounts(): Int32Array {
    const n = this.paths.length;
    const words = this.words;
    const bits = this.closureBits();
    const counts = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const row = i * words;
      for (let w = 0; w < words; w++) {
        let x = bits[row + w]!;
        while (x !== 0) {
          const low = x & -x;
          const d = w * 32 + 31 - Math.clz32(low);
          if (d !== i) counts[d]! += 1;
          x ^= low;
        }
      }
    }
    return counts;
  }

  /** Total narSize of the members and everything they depend on. */
  closureSize(members: Iterable<number>): number {
    const words = this.words;
    const bits = this.closureBits();
    const union = new Uint32Array(words);
    for (const m of members) for (let w = 0; w < words; w++) union[w]! |= bits[m * words + w]!;
    let total = 0;
    for (let w = 0; w < words; w++) {
      let x = union[w]!;
      while (x !== 0) {
        const low = x & -x;
        total += this.sizes[w * 32 + 31 - Math.clz32(low)]!;
        x ^= low;
      }
    }
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

