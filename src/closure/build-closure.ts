import { StrataError } from '../util/errors.js';
import { sortBytewise } from '../util/byte-order.js';
import { checkStoreDir, checkStorePath, DEFAULT_STORE_DIR } from './store-path.js';
import type { Closure, StorePathInfo } from './types.js';

/** One store path as an input format described it, before validation. */
export interface ClosureEntry {
  readonly path: string;
  /** May include the path itself and duplicates; both are dropped. */
  readonly references: readonly string[];
  readonly narSize?: number | undefined;
  readonly narHash?: string | undefined;
  readonly pname?: string | undefined;
  readonly version?: string | undefined;
  readonly output?: string | undefined;
}

/** The package fields of an entry, as given; kept per path, and never part of any layer's bytes. */
type PackageFields = Pick<StorePathInfo, 'pname' | 'version' | 'output'>;
const PACKAGE_FIELDS = ['pname', 'version', 'output'] as const;

export interface BuildClosureOptions {
  /** Names the input in every error message (a file name, or a description). */
  readonly source: string;
  readonly storeDir: string;
  /** Explicit roots; when absent, the paths no other path refers to. */
  readonly roots?: readonly string[] | undefined;
}

/**
 * Validates normalised entries and builds the Closure every later stage relies on: all paths
 * well-formed and directly inside the store dir, every reference present, no cycles, sizes sane,
 * iteration in bytewise path order. Later stages never re-check any of this.
 */
export function buildClosure(entries: Iterable<ClosureEntry>, opts: BuildClosureOptions): Closure {
  const { source } = opts;
  const storeDir = checkStoreDir(opts.storeDir, source);
  const byPath = new Map<string, { references: string[]; narSize: number | undefined; narHash: string | undefined; pkg: PackageFields }>();

  for (const entry of entries) {
    const path = checkStorePath(entry.path, storeDir, source);
    if (!Array.isArray(entry.references)) {
      throw new StrataError(`${source}: store path ${path} has no references list`);
    }
    const refs = new Set<string>();
    for (const ref of entry.references) {
      checkStorePath(ref, storeDir, `${source} (a reference of ${path})`);
      // Self-references are how Nix records that a path mentions its own hash; they are not
      // dependencies, and keeping them would make every such path a one-node cycle.
      if (ref !== path) refs.add(ref);
    }
    const narSize = entry.narSize;
    if (narSize !== undefined && !(Number.isSafeInteger(narSize) && narSize >= 0)) {
      throw new StrataError(`${source}: store path ${path} has narSize ${JSON.stringify(narSize)}, which is not a non-negative integer`);
    }
    if (entry.narHash !== undefined && typeof entry.narHash !== 'string') {
      throw new StrataError(`${source}: store path ${path} has a narHash that is not a string`);
    }
    const pkg: { -readonly [K in keyof PackageFields]: PackageFields[K] } = {};
    for (const field of PACKAGE_FIELDS) {
      const v = entry[field];
      if (v === undefined) continue;
      if (typeof v !== 'string' || v === '') throw new StrataError(`${source}: store path ${path} has a "${field}" that is not a non-empty string`);
      pkg[field] = v;
    }
    const references = sortBytewise(refs);
    const prev = byPath.get(path);
    if (prev === undefined) {
      byPath.set(path, { references, narSize, narHash: entry.narHash, pkg });
      continue;
    }
    // The same path listed twice is harmless when both entries say the same thing (concatenated
    // graphs do this); if they disagree, one of them describes a different store, so refuse.
    if (prev.references.join('\n') !== references.join('\n')) {
      throw new StrataError(`${source}: store path ${path} is listed twice with different references`);
    }
    if (prev.narSize !== undefined && narSize !== undefined && prev.narSize !== narSize) {
      throw new StrataError(`${source}: store path ${path} is listed twice with different narSize (${prev.narSize} and ${narSize})`);
    }
    if (prev.narHash !== undefined && entry.narHash !== undefined && prev.narHash !== entry.narHash) {
      throw new StrataError(`${source}: store path ${path} is listed twice with different narHash (${prev.narHash} and ${entry.narHash})`);
    }
    prev.narSize ??= narSize;
    prev.narHash ??= entry.narHash;
    prev.pkg = { ...pkg, ...prev.pkg };
  }

  if (byPath.size === 0) throw new StrataError(`${source}: the closure is empty (no store paths)`);

  const sortedPaths = sortBytewise(byPath.keys());
  for (const path of sortedPaths) {
    for (const ref of byPath.get(path)!.references) {
      if (!byPath.has(ref)) {
        throw new StrataError(`${source}: store path ${path} refers to ${ref}, which is not in the closure`);
      }
    }
  }

  const cycle = findCycle(sortedPaths, (p) => byPath.get(p)!.references);
  if (cycle) {
    throw new StrataError(`${source}: reference cycle ${[...cycle, cycle[0]].join(' -> ')} (only self-references are allowed)`);
  }

  let roots: string[];
  if (opts.roots !== undefined) {
    for (const root of opts.roots) {
      if (typeof root !== 'string' || !byPath.has(root)) {
        throw new StrataError(`${source}: root ${JSON.stringify(root)} is not in the closure`);
      }
    }
    roots = sortBytewise(new Set(opts.roots));
  } else {
    const referenced = new Set<string>();
    for (const info of byPath.values()) for (const ref of info.references) referenced.add(ref);
    roots = sortedPaths.filter((p) => !referenced.has(p));
  }

  const paths = new Map<string, StorePathInfo>();
  for (const path of sortedPaths) {
    const { references, narSize, narHash, pkg } = byPath.get(path)!;
    const info: StorePathInfo = { path, references: Object.freeze(references), narSize: narSize ?? 0, ...(narHash === undefined ? {} : { narHash }), ...pkg };
    paths.set(path, Object.freeze(info));
  }
  return Object.freeze({ storeDir, paths, roots: Object.freeze(roots) });
}

/**
 * Returns the paths of one reference cycle, in reference order, or undefined when the graph is
 * acyclic. Iterative DFS (closures can be deep chains) visiting nodes and edges in the given order,
 * so the cycle reported is the same on every run.
 */
function findCycle(nodes: readonly string[], refs: (p: string) => readonly string[]): string[] | undefined {
  const DONE = -1;
  const state = new Map<string, number>(); // absent: unvisited; >= 0: index on the stack; DONE
  for (const start of nodes) {
    if (state.has(start)) continue;
    const stack: { node: string; next: number }[] = [{ node: start, next: 0 }];
    state.set(start, 0);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const children = refs(top.node);
      if (top.next === children.length) {
        state.set(top.node, DONE);
        stack.pop();
        continue;
      }
      const child = children[top.next++]!;
      const s = state.get(child);
      if (s === undefined) {
        state.set(child, stack.length);
        stack.push({ node: child, next: 0 });
      } else if (s !== DONE) {
        return stack.slice(s).map((f) => f.node);
      }
    }
  }
  return undefined;
}

/**
 * Builds a validated Closure from an adjacency list, for tests and benchmarks:
 * `closureFromEdges({ '/nix/store/a-app': ['/nix/store/b-lib'], '/nix/store/b-lib': [] })`.
 * Every path must be a key; `sizes` gives narSize (0 when absent). Validates like parseClosure.
 */
export function closureFromEdges(edges: Record<string, string[]>, sizes?: Record<string, number>, storeDir: string = DEFAULT_STORE_DIR): Closure {
  const source = 'closureFromEdges';
  if (sizes) {
    for (const path of Object.keys(sizes)) {
      if (!Object.hasOwn(edges, path)) throw new StrataError(`${source}: size given for ${path}, which is not in the closure`);
    }
  }
  const entries = Object.keys(edges).map((path) => ({ path, references: edges[path]!, narSize: sizes?.[path] }));
  return buildClosure(entries, { source, storeDir });
}
