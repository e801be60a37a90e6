import type { Closure, StorePathInfo } from './types.js';

/**
 * The closure without `drop` (paths a base image already provides). References to dropped
 * paths are removed too: they are satisfied by the base, and layering must not see them.
 * Roots are recomputed over what is left, unless the original roots all remain.
 */
export function closureWithout(closure: Closure, drop: ReadonlySet<string>): Closure {
  if (drop.size === 0) return closure;
  const paths = new Map<string, StorePathInfo>();
  for (const [p, info] of closure.paths) {
    if (drop.has(p)) continue;
    paths.set(p, { ...info, references: info.references.filter((r) => !drop.has(r)) });
  }
  const referenced = new Set<string>();
  for (const info of paths.values()) for (const r of info.references) referenced.add(r);
  const roots = [...paths.keys()].filter((p) => !referenced.has(p));
  return { storeDir: closure.storeDir, paths, roots };
}

/** The store paths `root` needs, itself included (what `nix-store --query --requisites` lists). */
export function requisites(closure: Closure, root: string): Set<string> {
  const seen = new Set<string>([root]);
  const stack = [root];
  while (stack.length > 0) {
    for (const r of closure.paths.get(stack.pop()!)!.references) {
      if (!seen.has(r)) {
        seen.add(r);
        stack.push(r);
      }
    }
  }
  return seen;
}
