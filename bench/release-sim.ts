/**
 * A synthetic but realistic Nix closure and a series of releases with Nix semantics, for the
 * layering benchmark. Everything comes from a seeded PRNG, so a seed names one exact series.
 *
 * The package set mimics a typical application image: a handful of base libraries (glibc-like,
 * used by nearly everything), a few hundred libraries and tools in dependency levels with
 * preferential attachment (popular libraries get more users), a few very large paths (compilers,
 * interpreters, data), many tiny ones (setup hooks, configs, wrappers, -dev stubs), and at the top
 * the application with a few private dependencies, an entrypoint script and the image's roots.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Closure, StorePathInfo } from '../src/closure/types.js';

/** sfc32: small, fast, good-quality 32-bit PRNG; identical sequence on every platform. */
export function prng(seed: number): () => number {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed >>> 0;
  const next = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    const r = (t + d) | 0;
    c = (c + r) | 0;
    return (r >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) next();
  return next;
}

export type Tier = 'base' | 'lib' | 'app' | 'top';

export interface Package {
  readonly name: string;
  readonly tier: Tier;
  /** Dependency level: 0 for base libraries, growing upwards. */
  readonly level: number;
  /** Indices of the packages this one depends on (always lower indices). */
  readonly deps: readonly number[];
  size: number;
  version: number;
}

export interface PackageSet {
  readonly packages: Package[];
  /** The application: what a leaf update changes. */
  readonly app: number;
  /** Its private dependencies (only it uses them); an app update sometimes bumps one. */
  readonly appDeps: readonly number[];
}

const KB = 1024;
const MB = 1024 * 1024;

/** Log-uniform size between lo and hi, skewed: most paths small, a few large. */
function skewedSize(rnd: () => number, lo: number, hi: number): number {
  return Math.round(lo * Math.pow(hi / lo, Math.pow(rnd(), 1.6)));
}

export function generatePackages(rnd: () => number, libCount = 200): PackageSet {
  const packages: Package[] = [];
  const deps: Set<number>[] = [];
  const uses: number[] = [];
  const add = (name: string, tier: Tier, level: number, ds: Iterable<number>, size: number): number => {
    packages.push({ name, tier, level, deps: [], size: Math.round(size), version: 1 });
    deps.push(new Set());
    uses.push(0);
    const i = packages.length - 1;
    for (const d of ds) depend(i, d);
    return i;
  };
  const depend = (user: number, dep: number) => {
    if (deps[user]!.has(dep)) return;
    deps[user]!.add(dep);
    uses[dep]! += 1;
  };
  // Extra attraction for the big runtimes (interpreters, compilers, ICU data): in real closures
  // the giants sit low in the graph and many packages use them.
  const boost: number[] = [];
  /** Picks a dependency below `maxLevel`, popular packages more often (preferential attachment). */
  const pick = (maxLevel: number): number => {
    const weight = (i: number) => 1 + uses[i]! + (boost[i] ?? 0);
    let total = 0;
    for (let i = 0; i < packages.length; i++) if (packages[i]!.level < maxLevel) total += weight(i);
    let r = rnd() * total;
    let last = 0;
    for (let i = 0; i < packages.length; i++) {
      if (packages[i]!.level >= maxLevel) continue;
      last = i;
      r -= weight(i);
      if (r < 0) return i;
    }
    return last;
  };

  // Base: a libc everything uses, its compiler runtime, a few more near-universal libraries.
  const libc = add('glibc', 'base', 0, [], 30 * MB);
  add('gcc-lib', 'base', 0, [libc], 8 * MB);
  const base = [libc];
  for (const [name, size] of [['zlib', 150 * KB], ['libffi', 80 * KB], ['ncurses', 3 * MB], ['openssl', 6 * MB], ['bash', 1.5 * MB], ['tzdata', 2 * MB], ['iana-etc', 30 * KB]] as const) {
    base.push(add(name, 'base', 0, name === 'tzdata' || name === 'iana-etc' ? [] : [libc], size));
  }

  // A few big runtimes low in the graph.
  const libs: number[] = [];
  const giants = 4 + Math.floor(rnd() * 4);
  for (let i = 0; i < giants; i++) {
    const g = add(`runtime${i}`, 'lib', 1, [libc, pick(1), pick(1)], skewedSize(rnd, 40 * MB, 250 * MB));
    boost[g] = 12;
    libs.push(g);
  }

  // Libraries and tools, levels 1..5, generated level by level so dependencies always have
  // lower indices. Lower levels hold the bigger libraries; a long tail of tiny paths everywhere.
  const levels = Array.from({ length: libCount }, () => 1 + Math.floor(Math.pow(rnd(), 1.3) * 5)).sort((a, b) => a - b);
  levels.forEach((level, i) => {
    const size = rnd() < 0.25 ? skewedSize(rnd, 1 * KB, 90 * KB) // hooks, wrappers, configs, -dev stubs
      : skewedSize(rnd, 100 * KB, level <= 2 ? 30 * MB : 8 * MB);
    const ds = [libc];
    const n = 1 + Math.floor(rnd() * 3) + (level > 2 ? Math.floor(rnd() * 3) : 0);
    for (let k = 0; k < n; k++) ds.push(pick(level));
    libs.push(add(`lib${i}`, 'lib', level, ds, size));
  });

  // The application, its private dependencies, a few top-level tools, the entrypoint, the root.
  const appDeps: number[] = [];
  for (let i = 0; i < 4; i++) appDeps.push(add(`app-dep${i}`, 'app', 6, [libc, pick(6), pick(6)], skewedSize(rnd, 20 * KB, 15 * MB)));
  const tools: number[] = [];
  for (const name of ['coreutils', 'bash-interactive', 'curl']) tools.push(add(name, 'lib', 6, [libc, pick(6), pick(6)], skewedSize(rnd, 200 * KB, 8 * MB)));
  const app = add('app', 'app', 7, [libc, ...appDeps, ...Array.from({ length: 10 }, () => pick(6))], 80 * MB);

  // A closure holds only what the root reaches: give every unused library a user one level up
  // (or, at the top level, the application, its private dependencies or a tool).
  for (let i = libs.length - 1; i >= 0; i--) {
    const lib = libs[i]!;
    if (uses[lib]! > 0) continue;
    const level = packages[lib]!.level;
    const higher = libs.filter((j) => packages[j]!.level > level);
    const users = higher.length > 0 && level < 5 ? higher : [app, ...appDeps, ...tools];
    depend(users[Math.floor(rnd() * users.length)]!, lib);
  }

  const entry = add('app-entrypoint', 'top', 8, [app, base[5]!], 2 * KB);
  add('image-env', 'top', 9, [entry, app, ...tools, base[6]!, base[7]!], 40 * KB);
  packages.forEach((p, i) => ((p as { deps: readonly number[] }).deps = [...deps[i]!].sort((a, b) => a - b)));
  return { packages, app, appDeps };
}

const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** The closure of the current package set: store path hashes follow Nix semantics. */
export function closureOf(set: PackageSet): Closure {
  const { packages } = set;
  const pathOf: string[] = [];
  packages.forEach((p, i) => {
    // A store path's hash covers its own recipe and its dependencies' paths, so a change
    // anywhere below a package gives it a new path too.
    const h = createHash('sha256').update(`${p.name}\0${p.version}\0${p.deps.map((d) => pathOf[d]).join('\0')}`).digest();
    let hash = '';
    for (let k = 0; k < 32; k++) hash += NIX_BASE32[h[k]! & 31];
    pathOf[i] = `/nix/store/${hash}-${p.name}-${p.version}`;
  });
  const entries = packages.map((p, i): [string, StorePathInfo] => [
    pathOf[i]!,
    { path: pathOf[i]!, narSize: p.size, references: p.deps.map((d) => pathOf[d]!).sort() },
  ]);
  entries.sort((x, y) => (x[0] < y[0] ? -1 : 1));
  const used = new Set(entries.flatMap(([, info]) => info.references));
  return {
    storeDir: '/nix/store',
    paths: new Map(entries),
    roots: entries.map(([p]) => p).filter((p) => !used.has(p)),
  };
}

export type ReleaseKind = 'initial' | 'app' | 'lib' | 'base';

export interface Release {
  readonly kind: ReleaseKind;
  /** What was updated, for the table. */
  readonly changed: string;
  readonly closure: Closure;
}

/**
 * `count` releases: the initial one, then updates. Leaf-application updates are most frequent,
 * mid-level library updates less, and exactly one base-library update happens somewhere in the
 * middle of the series.
 */
export function releaseSeries(seed: number, count: number): Release[] {
  const rnd = prng(seed);
  return seriesOf(generatePackages(rnd), rnd, count, ['glibc', 'zlib', 'libffi', 'ncurses', 'openssl']);
}

/**
 * A series from this machine's real Debian package graph (/var/lib/dpkg/status: installed
 * packages, their Installed-Size and Depends), updated as the synthetic one is: the application
 * is the largest package nothing depends on, base updates bump libc6, zlib1g or libssl.
 * Undefined when there is no dpkg database.
 */
export function dpkgSeries(seed: number, count: number, statusFile = '/var/lib/dpkg/status'): Release[] | undefined {
  let text: string;
  try {
    text = readFileSync(statusFile, 'utf8');
  } catch {
    return undefined;
  }
  const records = text.split(/\n\n+/).map((block) => {
    const fields = new Map<string, string>();
    let key = '';
    for (const line of block.split('\n')) {
      if (/^\s/.test(line) && key) fields.set(key, `${fields.get(key)} ${line.trim()}`);
      else {
        const m = /^([\w-]+):\s*(.*)$/.exec(line);
        if (m) fields.set((key = m[1]!), m[2]!);
      }
    }
    return fields;
  }).filter((f) => f.get('Package') && /install ok installed/.test(f.get('Status') ?? ''));
  const byName = new Map(records.map((f) => [f.get('Package')!, f]));
  const depsOf = (f: Map<string, string>): string[] => [...(f.get('Pre-Depends') ?? '').split(','), ...(f.get('Depends') ?? '').split(',')]
    .map((alt) => alt.split('|').map((d) => d.trim().split(/[\s(:]/)[0]!).find((d) => byName.has(d)))
    .filter((d): d is string => d !== undefined);
  // Packages in dependency order (dependencies first); a cycle is cut where the walk meets it.
  const order: string[] = [];
  const state = new Map<string, 1 | 2>();
  const visit = (name: string): void => {
    if (state.has(name)) return;
    state.set(name, 1);
    for (const d of depsOf(byName.get(name)!)) visit(d);
    state.set(name, 2);
    order.push(name);
  };
  for (const name of [...byName.keys()].sort()) visit(name);
  const index = new Map(order.map((n, i) => [n, i]));
  const packages: Package[] = [];
  for (const name of order) {
    const deps = [...new Set(depsOf(byName.get(name)!).map((d) => index.get(d)!).filter((d) => d < index.get(name)!))].sort((a, b) => a - b);
    const level = deps.length === 0 ? 0 : Math.max(...deps.map((d) => packages[d]!.level)) + 1;
    packages.push({ name, tier: 'lib', level, deps, size: Math.max(1, Number(byName.get(name)!.get('Installed-Size') ?? '1')) * 1024, version: 1 });
  }
  const used = new Set(packages.flatMap((p) => p.deps));
  const leaves = packages.map((_, i) => i).filter((i) => !used.has(i));
  const app = leaves.reduce((a, b) => (packages[b]!.size > packages[a]!.size ? b : a), leaves[0]!);
  const appDeps = packages[app]!.deps.filter((d) => packages.filter((p) => p.deps.includes(d)).length === 1);
  return seriesOf({ packages, app, appDeps }, prng(seed), count, ['libc6', 'zlib1g', 'libssl3']);
}

function seriesOf(set: PackageSet, rnd: () => number, count: number, baseNames: readonly string[]): Release[] {
  const { packages } = set;
  const releases: Release[] = [{ kind: 'initial', changed: '-', closure: closureOf(set) }];
  // Mid-level: libraries at levels 2..4 (neither the foundation nor the application).
  const midLevel = packages.map((p, i) => i).filter((i) => packages[i]!.tier === 'lib' && packages[i]!.level >= 2 && packages[i]!.level <= 4);
  const mids = midLevel.length > 0 ? midLevel : packages.map((_, i) => i).filter((i) => i !== set.app);
  const bases = packages.map((p, i) => i).filter((i) => baseNames.includes(packages[i]!.name));
  const bump = (i: number, jitter: number) => {
    const p = packages[i]!;
    p.version += 1;
    p.size = Math.max(1, Math.round(p.size * (1 + (rnd() * 2 - 1) * jitter)));
  };
  // The update mix: about a quarter library updates, one base update (never among the first
  // three, so the series first shows the steady state), the rest application updates; shuffled.
  const updates = count - 1;
  const libUpdates = Math.max(1, Math.round(updates / 4));
  const kinds: ReleaseKind[] = [...Array<ReleaseKind>(updates - libUpdates - 1).fill('app'), ...Array<ReleaseKind>(libUpdates).fill('lib')];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  kinds.splice(3 + Math.floor(rnd() * (kinds.length - 3)), 0, 'base');
  for (let r = 1; r < count; r++) {
    const kind = kinds[r - 1]!;
    const changed: string[] = [];
    if (kind === 'base') {
      const i = bases[Math.floor(rnd() * bases.length)]!;
      bump(i, 0.01);
      changed.push(packages[i]!.name);
    } else if (kind === 'app') {
      bump(set.app, 0.05);
      changed.push('app');
      // Now and then the release also bumps one of the application's private dependencies.
      if (rnd() < 0.3 && set.appDeps.length > 0) {
        const d = set.appDeps[Math.floor(rnd() * set.appDeps.length)]!;
        bump(d, 0.05);
        changed.push(packages[d]!.name);
      }
    } else {
      const i = mids[Math.floor(rnd() * mids.length)]!;
      bump(i, 0.03);
      changed.push(packages[i]!.name);
    }
    releases.push({ kind, changed: changed.join('+'), closure: closureOf(set) });
  }
  return releases;
}
