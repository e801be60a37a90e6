/**
 * How planning time and memory grow with the closure, for every layering mode (issue 17, part 6).
 * Closures are random but seeded: path i refers to up to 6 of the 2,000 paths before it, sizes
 * 1 kB–50 MB. Each plan runs in a child process of its own, so its peak memory is its own. Times
 * are printed with the ratio to popularity's (nixpkgs' own mode) at the same size, measured in
 * the same run: the machines are shared, so only ratios mean much.
 *
 *   node dist/bench/plan-scale.js [--sizes 1000,2000,5000,10000,20000] [--budget 99] [--modes stable,auto,popularity,per-path]
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Closure, StorePathInfo } from '../src/closure/types.js';
import { planLayers } from '../src/layering/plan.js';
import type { LayeringStrategy } from '../src/layering/types.js';
import { prng } from './release-sim.js';

const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** The random closure of `n` paths from `seed`. */
export function randomClosure(n: number, seed = 1): Closure {
  const rnd = prng(seed);
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    let hash = '';
    for (let k = 0; k < 32; k++) hash += NIX_BASE32[Math.floor(rnd() * 32)];
    names.push(`/nix/store/${hash}-pkg-${i}`);
  }
  const paths = new Map<string, StorePathInfo>();
  for (let i = 0; i < n; i++) {
    const refs = new Set<string>();
    const count = Math.floor(rnd() * 7);
    for (let k = 0; k < count && i > 0; k++) refs.add(names[Math.max(0, i - 1 - Math.floor(rnd() * Math.min(i, 2000)))]!);
    const narSize = Math.round(1000 * Math.pow(50_000, rnd()));
    paths.set(names[i]!, { path: names[i]!, narSize, references: [...refs].sort() } as StorePathInfo);
  }
  return { storeDir: '/nix/store', paths, roots: [names[n - 1]!] };
}

function child(mode: LayeringStrategy, n: number, budget: number): void {
  const closure = randomClosure(n);
  const t0 = performance.now();
  const plan = planLayers(closure, mode, budget);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ seconds, maxRssMB: process.resourceUsage().maxRSS / 1024, layers: plan.layers.length }));
}

function main(): void {
  const argv = process.argv.slice(2);
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (get('--child')) return child(get('--child') as LayeringStrategy, Number(get('--n')), Number(get('--budget')));
  const sizes = (get('--sizes') ?? '1000,2000,5000,10000,20000').split(',').map(Number);
  const budget = Number(get('--budget') ?? 99);
  const modes = (get('--modes') ?? 'popularity,auto,stable,per-path').split(',') as LayeringStrategy[];
  const self = fileURLToPath(import.meta.url);
  console.log(`plan time and peak memory, budget ${budget} (each in its own process; ratio = time / popularity's time at that size)`);
  for (const n of sizes) {
    const results = new Map<string, { seconds: number; maxRssMB: number }>();
    for (const mode of modes) {
      const out = execFileSync(process.execPath, ['--max-old-space-size=8192', self, '--child', mode, '--n', String(n), '--budget', String(budget)], { encoding: 'utf8', maxBuffer: 1 << 20 });
      results.set(mode, JSON.parse(out) as { seconds: number; maxRssMB: number });
    }
    const base = results.get('popularity')?.seconds;
    for (const [mode, r] of results) {
      const ratio = base ? ` (${(r.seconds / base).toFixed(2)}× popularity)` : '';
      console.log(`${String(n).padStart(6)} paths  ${mode.padEnd(10)} ${r.seconds.toFixed(2).padStart(7)} s${ratio.padEnd(22)} peak ${r.maxRssMB.toFixed(0)} MB`);
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
