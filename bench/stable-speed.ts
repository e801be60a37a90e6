/**
 * How long `--layering stable` takes to plan large closures. Prints timings only (machines are
 * noisy, so nothing is asserted); used to check that the merge step scales.
 *
 *   node dist/bench/stable-speed.js [--sizes 500,2000,5000] [--budget 99]
 *
 * Each closure comes from the layering benchmark's seeded package generator with enough
 * libraries for about the requested number of paths. Two runs per size: a first plan (no
 * previous assignment, everything is packed) and a plan after an application update with the
 * first plan as the previous assignment (only the broken layers' paths are packed).
 */
import { performance } from 'node:perf_hooks';
import type { Closure } from '../src/closure/types.js';
import { stablePlan } from '../src/layering/stable.js';
import { closureOf, generatePackages, prng } from './release-sim.js';

function args(): { sizes: number[]; budget: number } {
  const argv = process.argv.slice(2);
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    sizes: (get('--sizes') ?? '500,2000,5000').split(',').map(Number),
    budget: Number(get('--budget') ?? 99),
  };
}

/** The generator adds about 30 paths besides its libraries (base, runtimes, application, roots). */
const EXTRA_PATHS = 30;

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const out = fn();
  return [out, (performance.now() - t0) / 1000];
}

const { sizes, budget } = args();
console.log(`stablePlan, budget ${budget}`);
for (const size of sizes) {
  const set = generatePackages(prng(size), Math.max(10, size - EXTRA_PATHS));
  const before: Closure = closureOf(set);
  const [first, tFirst] = time(() => stablePlan(before, budget));
  set.packages[set.app]!.version += 1;
  const after = closureOf(set);
  const previous = { layers: first.layers.map((l) => l.paths) };
  const [, tUpdate] = time(() => stablePlan(after, budget, previous));
  console.log(`${String(before.paths.size).padStart(6)} paths: first plan ${tFirst.toFixed(2)} s, after an app update ${tUpdate.toFixed(2)} s`);
}
