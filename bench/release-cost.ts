/**
 * What a release costs to rebuild (issue 17): the strata CLI on the synthetic closure
 * (bench/synthetic-store.ts, ~850 MB, 184 paths), a cold build of release 1 with an empty
 * cache, then release 2 — one leaf file changed, in a private hard-linked copy of the store —
 * built warm into the same output, per output format. Printed as warm/cold ratios measured in the
 * same run (the machines are shared and noisy; nothing is asserted). Rows marked "NAR hashes" give
 * the closure NAR hashes, as Nix does (release 2's leaf a new one); rows "on XFS" put output and
 * cache on a RAM-backed XFS loop mount, where unchanged layers are reflinked (root only).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/release-cost.js [--only XFS]
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSyntheticStore, firstFile } from './synthetic-store.js';
import { startRegistry } from '../test/support/registry.js';

const WORK = '/tmp/strata-bench-release';
const cli = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'src', 'cli', 'strata.mjs');

interface Run { seconds: number; cache: { trusted: number; hashed: number; hits: number; misses: number } }

function strata(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(process.execPath, [cli, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      if (code !== 0) return rej(new Error(`strata ${args.join(' ')}: ${err}`));
      res({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, cache: (JSON.parse(out) as { cache: Run['cache'] }).cache });
    });
  });
}

/** The median wall time of five runs of node with `args`. */
function medianSeconds(args: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    if (spawnSync(process.execPath, args, { stdio: 'ignore' }).status !== 0) throw new Error(`node ${args.join(' ')} failed`);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return times.sort((a, b) => a - b)[2]!;
}

/**
 * The closure as Nix gives it: every path with a NAR hash (made up here from the path; strata only
 * compares them), so a warm build finds unchanged layers in the cache without reading the store.
 * Release 2's leaf gets a new one, as a changed path does.
 */
function withNarHashes(closurePath: string, out: string, changed?: string): string {
  const doc = JSON.parse(readFileSync(closurePath, 'utf8')) as { paths: { path: string; narHash?: string }[] };
  for (const p of doc.paths) p.narHash = `sha256-${createHash('sha256').update(p.path + (p.path === changed ? ' release 2' : '')).digest('base64')}`;
  writeFileSync(out, JSON.stringify(doc));
  return out;
}

/**
 * A RAM-backed XFS (a loop mount of a sparse file in /dev/shm): what a warm rebuild costs where
 * the filesystem has reflinks (XFS, btrfs), without this machine's disk in the numbers. Undefined
 * where it cannot be mounted (not root, no mkfs.xfs); the rows are then left out, and say so.
 */
function mountXfs(): { dir: string; unmount(): void } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  if (!existsSync('/usr/sbin/mkfs.xfs')) spawnSync('apt-get', ['install', '-y', 'xfsprogs'], { stdio: 'ignore' });
  const image = '/dev/shm/strata-bench-xfs.img';
  const dir = join(WORK, 'xfs');
  mkdirSync(dir, { recursive: true });
  writeFileSync(image, '');
  truncateSync(image, 8 * 2 ** 30);
  const ok = spawnSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', image]).status === 0 && spawnSync('mount', ['-o', 'loop', image, dir]).status === 0;
  const unmount = () => {
    spawnSync('umount', [dir]);
    rmSync(image, { force: true });
  };
  if (!ok) {
    unmount();
    return undefined;
  }
  return { dir, unmount };
}

const store = await ensureSyntheticStore((s) => console.error(s));
// A run killed before its `finally` leaves the XFS mounted, and WORK could not be removed.
if (process.getuid?.() === 0) spawnSync('umount', [join(WORK, 'xfs')], { stdio: 'ignore' });
rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
const xfs = mountXfs();
interface Case { name: string; out: string; flags: string[]; env?: NodeJS.ProcessEnv; push?: boolean; nar?: boolean; on?: string }
const cases: Case[] = [
  { name: 'docker-archive (default)', out: 'image.tar', flags: [] },
  // The same with copies through user space: what the kernel copies (copy_file_range) save.
  { name: 'docker-archive, no kernel copies', out: 'image-user.tar', flags: [], env: { ...process.env, STRATA_NO_KERNEL_COPY: '1' } },
  // With NAR hashes, as every closure from Nix has them: unchanged layers are found without reading the store.
  { name: 'docker-archive, NAR hashes', out: 'image-nar.tar', flags: [], nar: true },
  { name: 'OCI layout, uncompressed, in place', out: 'layout-none', flags: ['--format', 'oci', '--compress', 'none'] },
  { name: 'OCI uncompressed, in place, NAR hashes', out: 'layout-none-nar', flags: ['--format', 'oci', '--compress', 'none'], nar: true },
  { name: 'OCI layout, gzip, in place', out: 'layout-gzip', flags: ['--format', 'oci', '--compress', 'gzip'] },
  { name: 'OCI layout, zstd, in place', out: 'layout-zstd', flags: ['--format', 'oci', '--compress', 'zstd'] },
  { name: 'OCI gzip, in place, NAR hashes', out: 'layout-gzip-nar', flags: ['--format', 'oci', '--compress', 'gzip'], nar: true },
  { name: 'OCI zstd, in place, NAR hashes', out: 'layout-zstd-nar', flags: ['--format', 'oci', '--compress', 'zstd'], nar: true },
  // --push to a registry on 127.0.0.1 (gzip): a warm release sends only the changed layer, and
  // layers the registry has are taken by a HEAD, without reading the cache's copy.
  { name: 'push to a local registry (gzip)', out: 'push', flags: [], push: true },
  // Output and cache on XFS: the unchanged layers are reflinked into the new archive, not copied.
  ...(xfs
    ? [
        { name: 'docker-archive on XFS', out: 'image-scan.tar', flags: [], on: xfs.dir },
        { name: 'docker-archive on XFS, NAR hashes', out: 'image.tar', flags: [], nar: true, on: xfs.dir },
        { name: 'oci-archive gzip on XFS, NAR hashes', out: 'image-gzip.tar', flags: ['--format', 'oci-archive', '--compress', 'gzip'], nar: true, on: xfs.dir },
      ]
    : []),
];
const registry = await startRegistry();
console.log(`synthetic store: ${(store.totalBytes / 1e6).toFixed(0)} MB, ${store.storePaths.length} paths; node ${process.version}${xfs ? '' : '; no XFS rows (needs root and a loop mount)'}`);
const closure = (JSON.parse(readFileSync(store.closurePath, 'utf8')) as { paths: { path: string; references: string[] }[] }).paths;
const referenced = new Set(closure.flatMap((p) => p.references));
const leaf = closure.map((p) => p.path).filter((p) => !referenced.has(p)).sort()[0]!;
const nar1 = withNarHashes(store.closurePath, join(WORK, 'closure-nar-1.json'));
const nar2 = withNarHashes(store.closurePath, join(WORK, 'closure-nar-2.json'), leaf);
// `--only TEXT` runs the rows whose name contains TEXT.
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1]! : '';
// Whatever happens, the registry stops and the XFS is unmounted: a mount left behind makes the next run fail (EBUSY).
try {
  // What every warm run pays before it reads a record, in the same minutes as the rows: a ratio of
  // 0.1× against a 2.5 s cold build leaves 0.25 s, of which these are the floor.
  console.log(`fixed cost, median of 5: node -e 0 ${medianSeconds(['-e', '0']).toFixed(3)} s; strata --version ${medianSeconds([cli, '--version']).toFixed(3)} s`);
  for (const c of cases.filter((x) => x.name.includes(only))) {
    const root = join(WORK, 'root');
    rmSync(root, { recursive: true, force: true });
    if (spawnSync('cp', ['-al', store.root, root]).status !== 0) throw new Error('cp -al failed');
    const where = c.on ?? WORK;
    const target = c.push ? ['--push', `${registry.host}/bench/app:1`] : ['-o', join(where, c.out)];
    const args = (release: 1 | 2) => [c.nar ? (release === 1 ? nar1 : nar2) : store.closurePath, '--store-root', root, ...target, '--cache-dir', join(where, `cache-${c.out}`), ...c.flags];
    const env = c.env ?? process.env;
    const cold = await strata(['build', ...args(1)], env);
    // Release 2: one file of a leaf (a path nothing refers to) changes.
    const f = firstFile(join(root, leaf));
    const content = readFileSync(f);
    unlinkSync(f);
    writeFileSync(f, Buffer.concat([content, Buffer.from('changed\n')]));
    const warm = await strata(['build', ...args(2)], env);
    const again = await strata(['build', ...args(2)], env);
    console.log(`${c.name.padEnd(40)} cold ${cold.seconds.toFixed(2)} s; release 2 warm ${warm.seconds.toFixed(2)} s = ${(warm.seconds / cold.seconds).toFixed(2)}× cold (${warm.cache.trusted} trusted, ${warm.cache.hashed} hashed); unchanged rebuild ${(again.seconds / cold.seconds).toFixed(2)}× cold (${again.cache.trusted} trusted, ${again.cache.hashed} hashed)`);
    // The XFS is in memory: what a case leaves there is given back before the next.
    if (c.on) for (const name of [c.out, `cache-${c.out}`]) rmSync(join(c.on, name), { recursive: true, force: true });
  }
} finally {
  await registry.stop();
  xfs?.unmount();
}
rmSync(WORK, { recursive: true, force: true });
