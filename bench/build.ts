/**
 * Build benchmark: strata vs GNU `tar --sort=name -cf` on the same synthetic closure
 * (bench/synthetic-store.ts, ~840 MB, ~22k files, 184 store paths).
 *
 *   npm run bench            (= tsc && node dist/bench/build.js)
 *
 * Measured, each 3 times (median printed), all on a warm page cache (caches cannot be dropped
 * here, so everything is read once first and every tool sees the same warm cache):
 *   - GNU tar, one tar of the whole tree;
 *   - GNU tar, then `openssl dgst -sha256` of its output: the tar written and its digest
 *     computed, which is what a layer needs at the least (x tar+sha256 is the ratio against it);
 *   - strata's direct writer, one layer holding the whole closure (the like-for-like case);
 *   - strata's direct writer, one layer per store path (up to 100 layers, as a build writes them);
 *   - the strata CLI building a docker-archive, when dist/src/cli/strata.mjs exists: with the default
 *     layer cache (fresh and empty each run, so the build is cold) and with --no-cache.
 * Peak RSS comes from /usr/bin/time -v around each child process. Timings are printed, never
 * asserted: machines are noisy.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, write as fsWrite, openSync, closeSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import type { BlobWriter } from '../src/transports/types.js';
import type { Digest } from '../src/image/digest.js';
import { storeLayerEntries } from '../src/tar/scan.js';
import { writeLayerTar } from '../src/tar/writer.js';
import { ensureSyntheticStore, type SyntheticStore } from './synthetic-store.js';

const here = dirname(fileURLToPath(import.meta.url));
const distRoot = resolve(here, '..');
const cliPath = join(distRoot, 'src', 'cli', 'strata.mjs');
const OUT_DIR = '/tmp/strata-bench-out';
const RUNS = 3;
const MAX_LAYERS = 100;

/** A BlobWriter appending to a file with positional writes (the shape of a docker-archive blob). */
class FileBlobWriter implements BlobWriter {
  /** fs.write is done with the buffer when its callback runs. */
  readonly releasesChunks = true;
  constructor(private readonly fd: number, private pos: number) {}
  write(chunk: Buffer): Promise<void> {
    const at = this.pos;
    this.pos += chunk.length;
    return new Promise((res, rej) => fsWrite(this.fd, chunk, 0, chunk.length, at, (e) => (e ? rej(e) : res())));
  }
  get end(): number {
    return this.pos;
  }
  async close(_digest: Digest, _size: number): Promise<() => Promise<Readable>> {
    return () => Promise.reject(new Error('not readable in the benchmark'));
  }
  async abort(): Promise<void> {}
}

/** Child mode: scan + write the closure's layers to `out`; prints the DiffIDs' count and size. */
async function directChild(mode: 'single' | 'layers', storeInfo: string, out: string): Promise<void> {
  const info = JSON.parse(readFileSync(storeInfo, 'utf8')) as SyntheticStore;
  const paths = [...info.storePaths].sort();
  const groups: string[][] = mode === 'single' ? [paths] : [];
  if (mode === 'layers') {
    // One path per layer; the rest share the last layer (the popularity plan's shape).
    for (let i = 0; i < paths.length; i++) {
      if (groups.length < MAX_LAYERS) groups.push([paths[i]!]);
      else groups[MAX_LAYERS - 1]!.push(paths[i]!);
    }
  }
  const fd = openSync(out, 'w');
  let pos = 0;
  for (const g of groups) {
    const entries = await storeLayerEntries('/nix/store', info.root, g);
    const w = new FileBlobWriter(fd, pos);
    const r = await writeLayerTar(entries, { mtime: 1 }, w);
    if (r.size !== w.end - pos) throw new Error(`writeLayerTar reported ${r.size} bytes but wrote ${w.end - pos}`);
    pos = w.end;
  }
  closeSync(fd);
  process.stdout.write(JSON.stringify({ layers: groups.length, bytes: pos }) + '\n');
}

interface Run { seconds: number; cpuSeconds: number; maxRssMB: number; outBytes: number }

/** Runs a command under /usr/bin/time -v; wall time from our clock, peak RSS from time(1). */
function timed(cmd: string, args: string[], out: string): Promise<Run> {
  return new Promise((res, rej) => {
    rmSync(out, { force: true });
    // A fresh, empty layer cache for every run: the CLI build is measured cold.
    const cacheHome = join(OUT_DIR, 'xdg-cache');
    rmSync(cacheHome, { recursive: true, force: true });
    mkdirSync(cacheHome, { recursive: true });
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-v', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_CACHE_HOME: cacheHome } });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', rej);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return rej(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${stdout}${stderr}`));
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      const user = /User time \(seconds\): ([\d.]+)/.exec(stderr);
      const sys = /System time \(seconds\): ([\d.]+)/.exec(stderr);
      const cpuSeconds = user && sys ? Number(user[1]) + Number(sys[1]) : NaN;
      const outBytes = existsSync(out) ? statSync(out).size : 0;
      rmSync(out, { force: true });
      res({ seconds, cpuSeconds, maxRssMB: m ? Number(m[1]) / 1024 : NaN, outBytes });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const [flag, a, b, c] = process.argv.slice(2);
  if (flag === '--direct') return directChild(a as 'single' | 'layers', b!, c!);

  const store = await ensureSyntheticStore((s) => console.log(s));
  const storeInfo = '/tmp/strata-bench-store/info.json';
  mkdirSync(OUT_DIR, { recursive: true });
  const mb = store.totalBytes / 1e6;
  console.log(`synthetic closure: ${store.storePaths.length} store paths, ${store.fileCount} files, ${mb.toFixed(0)} MB (${store.root})`);
  console.log(`node ${process.version}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'default (4)'}; warm page cache; median of ${RUNS} runs\n`);

  const out = join(OUT_DIR, 'out.tar');
  const self = fileURLToPath(import.meta.url);
  const cases: { label: string; cmd: string; args: string[] }[] = [
    { label: 'GNU tar --sort=name -cf', cmd: 'tar', args: ['--sort=name', '-cf', out, '-C', store.root, 'nix'] },
    // What a layer needs at the least: its tar written and its digest (the DiffID) computed. GNU
    // tar does not hash; sha256 of these bytes is ~0.5 CPU-s even with SHA-NI, about as much as
    // tar's own work. openssl, not coreutils sha256sum (no SHA-NI, ~5x slower), and not through a
    // pipe (tar | tee | openssl costs more in pipe copies than the hash).
    { label: 'GNU tar -cf FILE && openssl dgst -sha256', cmd: 'sh', args: ['-c', 'tar --sort=name -cf "$2" -C "$1" nix && openssl dgst -sha256 "$2" >/dev/null', 'sh', store.root, out] },
    { label: 'strata writeLayerTar, 1 layer (direct)', cmd: process.execPath, args: [self, '--direct', 'single', storeInfo, out] },
    { label: `strata writeLayerTar, ${Math.min(MAX_LAYERS, store.storePaths.length)} layers (direct)`, cmd: process.execPath, args: [self, '--direct', 'layers', storeInfo, out] },
  ];
  if (existsSync(cliPath)) {
    const build = [cliPath, 'build', store.closurePath, '--store-root', store.root, '-o', out];
    // Both: the default build also keys every layer and records it in the (fresh, empty) layer
    // cache, which links the output rather than copying it; --no-cache shows the build alone.
    cases.push({ label: 'strata build -> docker-archive (CLI)', cmd: process.execPath, args: build });
    cases.push({ label: 'strata build --no-cache -> docker-archive (CLI)', cmd: process.execPath, args: [...build, '--no-cache'] });
  } else {
    console.log(`(strata CLI not built at ${cliPath}: CLI row skipped, direct writer rows stand in)\n`);
  }

  // Warm-up: every case once, which also reads every file into the page cache.
  for (const k of cases) await timed(k.cmd, k.args, out);

  const results: { label: string; runs: Run[] }[] = cases.map((k) => ({ label: k.label, runs: [] }));
  for (let r = 0; r < RUNS; r++) {
    // Interleaved, so a slow phase of the machine hits every case alike.
    for (let i = 0; i < cases.length; i++) results[i]!.runs.push(await timed(cases[i]!.cmd, cases[i]!.args, out));
  }

  const gnu = median(results[0]!.runs.map((r) => r.seconds));
  const hashed = median(results[1]!.runs.map((r) => r.seconds));
  const pad = Math.max(...results.map((r) => r.label.length));
  console.log(`${'case'.padEnd(pad)}  median s   runs (s)              MB/s   x GNU tar  x tar+sha256  CPU s (user+sys)  peak RSS MB  output MB`);
  for (const r of results) {
    const s = median(r.runs.map((x) => x.seconds));
    console.log(
      `${r.label.padEnd(pad)}  ${s.toFixed(3).padStart(8)}   ${r.runs.map((x) => x.seconds.toFixed(2)).join(' ').padEnd(18)}  ` +
      `${(mb / s).toFixed(0).padStart(5)}   ${(s / gnu).toFixed(2).padStart(8)}  ${(s / hashed).toFixed(2).padStart(12)}  ${median(r.runs.map((x) => x.cpuSeconds)).toFixed(2).padStart(16)}  ${median(r.runs.map((x) => x.maxRssMB)).toFixed(0).padStart(11)}  ${(r.runs[0]!.outBytes / 1e6).toFixed(0).padStart(9)}`,
    );
  }
  rmSync(OUT_DIR, { recursive: true, force: true });
  console.log(
    '\nNotes: MB/s counts store bytes. Wall times on a shared or virtual machine are noisy; CPU s shows the work done.\n' +
    'On VMs with free page reporting (firecracker, page_reporting), writing a fresh output file can cost\n' +
    'host page faults that depend on timing, not on the tool: compare medians, and CPU s.',
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
