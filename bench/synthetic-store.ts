/**
 * A synthetic Nix store for benchmarks: generated once from a fixed seed, cached under
 * /tmp/strata-bench-store (regenerated only when the parameters change), shaped like a real
 * application closure — many small files (docs, headers, scripts, python modules), some
 * medium shared libraries, a few 50–150 MB blobs, symlinks, executables, empty files, a few
 * hard links (as in an optimised store) — plus its closure JSON with a realistic reference DAG.
 */
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SyntheticContent, type ContentKind } from './synthetic-content.js';

export const BENCH_STORE_DIR = '/tmp/strata-bench-store';

const PARAMS = {
  generator: 6,
  seed: 0x5eed_1234,
  paths: 184,
  bigFiles: [62, 95, 140] as const, // MiB
  mediumPaths: 32,
  smallFileTarget: 22_000,
} as const;

export interface SyntheticStore {
  /** Physical root: store paths live at root + '/nix/store/...'. */
  root: string;
  closurePath: string;
  storePaths: string[];
  totalBytes: number;
  fileCount: number;
}

/** Deterministic PRNG (mulberry32): the store is the same on every machine and every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const WORDS = ['glibc', 'zlib', 'openssl', 'libffi', 'ncurses', 'readline', 'sqlite', 'bzip2', 'xz', 'gcc-lib',
  'python3', 'perl', 'bash', 'coreutils', 'icu', 'libxml2', 'curl', 'nghttp2', 'expat', 'gdbm', 'libuv', 'nodejs',
  'brotli', 'zstd', 'pcre2', 'gmp', 'mpfr', 'attr', 'acl', 'libcap', 'systemd-minimal', 'dbus', 'tzdata', 'cacert',
  'mailcap', 'iana-etc', 'krb5', 'keyutils', 'libidn2', 'libunistring', 'gnugrep', 'gnused', 'gawk', 'findutils',
  'diffutils', 'less', 'tar', 'gzip', 'util-linux', 'shadow', 'pam', 'linux-headers', 'libxcrypt', 'libedit'];

export async function ensureSyntheticStore(log: (s: string) => void = () => {}): Promise<SyntheticStore> {
  const paramsFile = join(BENCH_STORE_DIR, 'params.json');
  const infoFile = join(BENCH_STORE_DIR, 'info.json');
  const want = JSON.stringify(PARAMS);
  if (existsSync(paramsFile) && existsSync(infoFile) && readFileSync(paramsFile, 'utf8') === want) {
    return JSON.parse(readFileSync(infoFile, 'utf8')) as SyntheticStore;
  }
  log(`generating synthetic store under ${BENCH_STORE_DIR} (once) ...`);
  rmSync(BENCH_STORE_DIR, { recursive: true, force: true });
  const info = generate();
  writeFileSync(infoFile, JSON.stringify(info));
  writeFileSync(paramsFile, want); // written last: marks the cache complete
  return info;
}

function generate(): SyntheticStore {
  const rand = rng(PARAMS.seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const root = join(BENCH_STORE_DIR, 'root');
  const storeDir = '/nix/store';
  mkdirSync(join(root, storeDir), { recursive: true });

  // Contents that compress like a real closure's (see synthetic-content.ts): the gzip cases of
  // the benchmarks measure deflate on realistic data, not on its random-bytes worst case.
  const content = new SyntheticContent(rand);
  const kindOf = (file: string): ContentKind =>
    /\.(gz|mo)$/.test(file) ? 'random' : /(^|\/)bin\/|\.so(\.\d+)?$|\.bin$/.test(file) ? 'binary' : 'text';

  // Store path names, in dependency order (index 0 = lowest level, e.g. glibc).
  const paths: string[] = [];
  for (let i = 0; i < PARAMS.paths; i++) {
    let hash = '';
    for (let k = 0; k < 32; k++) hash += NIX32[int(0, 31)];
    const word = WORDS[i % WORDS.length]!;
    const suffix = i < WORDS.length ? '' : `-${['lib', 'dev', 'bin', 'doc', 'py', 'data'][i % 6]}${Math.floor(i / WORDS.length)}`;
    paths.push(`${storeDir}/${hash}-${word}${suffix}-${int(1, 9)}.${int(0, 30)}.${int(0, 9)}`);
  }
  const big = new Map<number, number>([[40, PARAMS.bigFiles[0]], [120, PARAMS.bigFiles[1]], [170, PARAMS.bigFiles[2]]]);
  const medium = new Set<number>();
  while (medium.size < PARAMS.mediumPaths) medium.add(int(0, PARAMS.paths - 1));

  let totalBytes = 0;
  let fileCount = 0;
  const narSizes: number[] = [];
  const earlier: { file: string; size: number }[] = []; // hard-link candidates
  // Small-file counts per path: heavy-tailed (most paths have a few dozen, some thousands).
  const weights = paths.map(() => Math.pow(rand(), 3));
  const wsum = weights.reduce((a, b) => a + b, 0);

  for (let i = 0; i < paths.length; i++) {
    const p = join(root, paths[i]!);
    const name = paths[i]!.slice(storeDir.length + 34);
    let bytes = 0;
    const put = (rel: string, data: Buffer, exec = false): void => {
      const f = join(p, rel);
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, data);
      if (exec) chmodSync(f, 0o755);
      bytes += data.length;
      fileCount++;
      if (data.length > 0 && data.length < 8192 && rand() < 0.02) earlier.push({ file: f, size: data.length });
    };
    mkdirSync(p, { recursive: true });
    const bigMiB = big.get(i);
    if (bigMiB !== undefined) put(`share/${name}/data.bin`, content.bytes('binary', bigMiB << 20));
    if (medium.has(i)) {
      for (let k = int(1, 3); k > 0; k--) put(`lib/lib${name}-${k}.so.${int(1, 9)}`, content.bytes('binary', int(1 << 20, 8 << 20)), true);
    }
    const nSmall = Math.max(3, Math.round((weights[i]! / wsum) * PARAMS.smallFileTarget));
    const dirs = ['bin', 'lib', `share/doc/${name}`, `include/${name}`, `lib/python3.11/site-packages/${name}`, `share/man/man1`, `share/locale/de/LC_MESSAGES`, `etc/${name}`];
    for (let k = 0; k < nSmall; k++) {
      const d = dirs[int(0, dirs.length - 1)]!;
      const sub = rand() < 0.4 ? `/m${int(0, Math.ceil(nSmall / 40))}` : '';
      // Log-uniform sizes from 1 B to ~128 KiB (mean ~11 KiB); a few empty files.
      const size = rand() < 0.02 ? 0 : Math.floor(Math.pow(2, rand() * 17));
      const file = `${d}${sub}/f${k}${d === 'bin' ? '' : ['.py', '.h', '.txt', '.gz', '.mo', ''][k % 6]}`;
      put(file, content.bytes(kindOf(file), size), d === 'bin' || rand() < 0.05);
    }
    // Symlinks: relative inside the path, and absolute into a dependency (as Nix outputs have).
    symlinkSync(`lib`, join(p, 'lib64'));
    if (i > 0) symlinkSync(`${paths[int(0, i - 1)]}/lib`, join(p, 'dep-lib'));
    // A hard link to an identical file in an earlier path, as `nix-store --optimise` makes.
    if (earlier.length > 0 && rand() < 0.3) {
      const src = earlier[int(0, earlier.length - 1)]!;
      mkdirSync(join(p, 'share'), { recursive: true });
      linkSync(src.file, join(p, 'share', `linked-${i}`));
      bytes += src.size;
      fileCount++;
    }
    narSizes.push(bytes + 4096);
    totalBytes += bytes;
  }

  // References: each path uses a few earlier ones, biased toward the lowest levels (glibc is
  // used by almost everything); the last path (the application) uses whatever nobody else does.
  const refs: string[][] = paths.map(() => []);
  const used = new Set<number>();
  for (let i = 1; i < paths.length; i++) {
    const set = new Set<number>();
    set.add(0);
    for (let k = int(0, 6); k > 0; k--) set.add(Math.floor(Math.pow(rand(), 2) * i));
    for (const j of set) {
      refs[i]!.push(paths[j]!);
      used.add(j);
    }
  }
  const app = paths.length - 1;
  for (let j = 0; j < app; j++) if (!used.has(j)) refs[app]!.push(paths[j]!);
  const closure = {
    version: 1,
    storeDir,
    paths: paths.map((path, i) => ({ path, references: [...new Set(refs[i])].sort(), narSize: narSizes[i] })),
  };
  const closurePath = join(BENCH_STORE_DIR, 'closure.json');
  writeFileSync(closurePath, JSON.stringify(closure, null, 1));
  return { root, closurePath, storePaths: paths, totalBytes, fileCount };
}

/** The first regular file below `dir`, by name order (a file a benchmark may change). */
export function firstFile(dir: string): string {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isFile()) return p;
    if (e.isDirectory()) {
      const f = firstFile(p);
      if (f) return f;
    }
  }
  return '';
}
