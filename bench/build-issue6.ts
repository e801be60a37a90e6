/**
 * Issue 6 benchmark: compressed layers, the layer cache and concurrent layer production, on the
 * synthetic closure of bench/synthetic-store.ts (~894 MB, ~22k files, 184 paths), against GNU
 * tar, `tar | gzip -1` and `tar | pigz` on the same tree in the same run.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/build-issue6.js
 *
 * Each case runs once (the machine is shared; CPU is scarce) in a child process under
 * /usr/bin/time -v (peak RSS). Everything is read once first so every case sees a warm page
 * cache. The leaf change is made in a private hard-linked copy of the store (cp -al), replacing
 * one file of the leaf path, so the shared store is never modified. Printed, never asserted.
 *
 * The synthetic contents compress like a real closure's (bench/synthetic-content.ts: machine-
 * code-like binaries and text at ~0.36 under gzip -6, .gz/.mo files incompressible), so the
 * gzip rows measure deflate on realistic data; the output sizes printed show the ratios.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLayerCache } from '../src/cache/layer-cache.js';
import { storeLayerJob } from '../src/builder/store-layer-job.js';
import { newProduceStats, produceLayers, type IdentifiedJob, type LayerJob } from '../src/builder/produce-layers.js';
import { readClosureFile } from '../src/closure/read.js';
import type { Compression } from '../src/image/media-types.js';
import { planLayers } from '../src/layering/plan.js';
import { openDockerArchiveDestination } from '../src/transports/docker-archive/write.js';
import { openOciDirectoryDestination } from '../src/transports/oci-layout/write.js';
import { ensureSyntheticStore, firstFile } from './synthetic-store.js';
import fg from 'fast-glob';
import { BLOCK_SIZE } from '../src/compress/block-size.js';
import { blockCodec } from '../src/compress/codec.js';

const self = fileURLToPath(import.meta.url);
const WORK = '/tmp/strata-bench-issue6';
const MTIME = 1;

/** Child: plan (popularity, 100 layers), then produceLayers into a destination; prints stats. */
async function child(root: string, closurePath: string, compression: Compression, cacheDir: string, out: string): Promise<void> {
  const t0 = process.hrtime.bigint();
  const closure = await readClosureFile(closurePath);
  const plan = planLayers(closure, 'popularity', 99);
  const jobs: (LayerJob | IdentifiedJob)[] = [];
  // As src/builder/build.ts does it (there lazily, here all first so scanning is timed apart).
  const jobOpts = { storeDir: closure.storeDir, storeRoot: root, mtime: MTIME, compression, identities: cacheDir !== '-', narHashes: closure.paths };
  for (const l of plan.layers) jobs.push(await storeLayerJob(l.paths, jobOpts));
  const tScan = process.hrtime.bigint();
  const cache = cacheDir === '-' ? undefined : await openLayerCache(cacheDir);
  const dest = compression === 'none' ? await openDockerArchiveDestination(out, { mtime: MTIME }) : await openOciDirectoryDestination(out, { compression });
  const stats = newProduceStats();
  const layers = await produceLayers(jobs, dest, { mtime: MTIME, compression, stats, ...(cache ? { cache } : {}) });
  await dest.abort(); // blobs written and hashed is what is measured; no image is committed
  const t1 = process.hrtime.bigint();
  process.stdout.write(JSON.stringify({
    layers: layers.length,
    scanMs: Number(tScan - t0) / 1e6,
    produceMs: Number(t1 - tScan) / 1e6,
    blobBytes: layers.reduce((n, l) => n + l.size, 0),
    built: stats.built.length,
    fromCache: stats.fromCache.length,
    filesRead: stats.filesRead.length,
    bytesTarred: stats.bytesTarred,
  }) + '\n');
}

interface Measured {
  wallMs: number;
  /** User + system CPU seconds of the whole process tree: fairer than wall time on a busy machine. */
  cpuS: number;
  rssMb: number;
  stdout: string;
}

function timed(cmd: string, args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn('/usr/bin/time', ['-v', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      const user = /User time \(seconds\): ([\d.]+)/.exec(stderr);
      const sys = /System time \(seconds\): ([\d.]+)/.exec(stderr);
      resolve({ wallMs, cpuS: Number(user?.[1] ?? NaN) + Number(sys?.[1] ?? NaN), rssMb: m ? Number(m[1]) / 1024 : NaN, stdout });
    });
  });
}

function sh(script: string): Promise<Measured> {
  return timed('/bin/sh', ['-c', script]);
}

function row(name: string, m: Measured, extra = ''): void {
  console.log(`${name.padEnd(46)} ${(m.wallMs / 1000).toFixed(2).padStart(7)} s wall ${m.cpuS.toFixed(2).padStart(7)} s CPU ${m.rssMb.toFixed(0).padStart(5)} MB RSS  ${extra}`);
}

async function main(): Promise<void> {
  const store = await ensureSyntheticStore((s) => console.error(s));
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  // A private view of the store: hard links, so the leaf change below never touches the shared one.
  const root = join(WORK, 'root');
  if (spawnSync('cp', ['-al', store.root, root]).status !== 0) throw new Error('cp -al failed');
  if (!existsSync('/usr/bin/pigz')) spawnSync('apt-get', ['install', '-y', 'pigz'], { stdio: 'inherit' });
  const cores = availableParallelism();
  console.log(`synthetic store: ${(store.totalBytes / 1e6).toFixed(0)} MB, ${store.fileCount} files, ${store.storePaths.length} paths; ${cores} cores; node ${process.version}`);
  const tarCmd = `tar --sort=name --format=posix --mtime=@1 --owner=0 --group=0 --numeric-owner -C ${root} -cf - nix`;
  await sh(`${tarCmd} > /dev/null`); // warm the page cache

  const outSize = (p: string): string => `${(statSync(p).size / 1e6).toFixed(0)} MB out`;
  let m = await sh(`${tarCmd} > ${WORK}/gnu.tar`);
  row('GNU tar (one tar)', m, outSize(`${WORK}/gnu.tar`));
  rmSync(`${WORK}/gnu.tar`);
  m = await sh(`${tarCmd} | gzip -1 > ${WORK}/gnu.tar.gz`);
  row('tar | gzip -1', m, outSize(`${WORK}/gnu.tar.gz`));
  rmSync(`${WORK}/gnu.tar.gz`);
  m = await sh(`${tarCmd} | pigz -p ${cores} > ${WORK}/gnu.tar.gz`);
  row(`tar | pigz -p ${cores} (level 6)`, m, outSize(`${WORK}/gnu.tar.gz`));
  rmSync(`${WORK}/gnu.tar.gz`);
  if (!existsSync('/usr/bin/zstd')) spawnSync('apt-get', ['install', '-y', 'zstd'], { stdio: 'inherit' });
  m = await sh(`${tarCmd} | zstd -q -3 -T${cores} > ${WORK}/gnu.tar.zst`);
  row(`tar | zstd -3 -T${cores}`, m, outSize(`${WORK}/gnu.tar.zst`));
  rmSync(`${WORK}/gnu.tar.zst`);

  const strata = async (name: string, compression: Compression, cacheDir: string, out: string): Promise<{ wallMs: number; blobBytes: number }> => {
    const r = await timed(process.execPath, [self, '--child', root, store.closurePath, compression, cacheDir, out]);
    const s = JSON.parse(r.stdout) as { layers: number; scanMs: number; produceMs: number; blobBytes: number; built: number; fromCache: number; filesRead: number };
    row(name, r, `${(s.blobBytes / 1e6).toFixed(0)} MB blobs, ${s.layers} layers (${s.built} built, ${s.fromCache} cached, ${s.filesRead} files read); scan ${(s.scanMs / 1000).toFixed(2)} s, produce ${(s.produceMs / 1000).toFixed(2)} s`);
    rmSync(out, { recursive: true, force: true });
    return { wallMs: r.wallMs, blobBytes: s.blobBytes };
  };
  await strata('strata cold, uncompressed (cache on)', 'none', join(WORK, 'cache-none'), join(WORK, 'none.tar'));
  const gzipCold = await strata('strata cold, gzip (cache on)', 'gzip', join(WORK, 'cache-gzip'), join(WORK, 'gzip-oci'));
  const gzipWarm = await strata('strata warm, gzip, nothing changed', 'gzip', join(WORK, 'cache-gzip'), join(WORK, 'gzip-oci'));
  const zstdCold = await strata('strata cold, zstd (cache on)', 'zstd', join(WORK, 'cache-zstd'), join(WORK, 'zstd-oci'));
  const zstdWarm = await strata('strata warm, zstd, nothing changed', 'zstd', join(WORK, 'cache-zstd'), join(WORK, 'zstd-oci'));
  console.log(`zstd vs gzip, cold: ${(gzipCold.wallMs / zstdCold.wallMs).toFixed(2)}× faster, blobs ${(zstdCold.blobBytes / gzipCold.blobBytes).toFixed(3)}× the size`);
  console.log(`warm/cold, nothing changed: gzip ${(gzipWarm.wallMs / gzipCold.wallMs).toFixed(2)}, zstd ${(zstdWarm.wallMs / zstdCold.wallMs).toFixed(2)}`);
  await encoderSpeeds(store.storePaths.map((p) => join(root, p)));

  // Two kinds of change, each to one file (unlinked and rewritten, breaking its hard link):
  //  (a) a path with a layer of its own in the plan (popularity gives those to shared paths);
  //  (b) a leaf (a path nothing refers to), which popularity puts in the last, shared layer:
  //      the realistic "the application changed" rebuild, which rebuilds that whole layer.
  const closure = await readClosureFile(store.closurePath);
  const plan = planLayers(closure, 'popularity', 99);
  const referenced = new Set([...closure.paths.values()].flatMap((p) => p.references));
  const own = plan.layers.filter((l) => l.paths.length === 1).map((l) => l.paths[0]!);
  const change = (storePath: string): void => {
    const f = firstFile(join(root, storePath));
    const content = readFileSync(f);
    unlinkSync(f);
    writeFileSync(f, Buffer.concat([content, Buffer.from('changed\n')]));
    console.log(`changed ${f.slice(root.length)}`);
  };
  change(own[own.length - 1]!);
  await strata('strata warm, gzip, one own-layer path changed', 'gzip', join(WORK, 'cache-gzip'), join(WORK, 'gzip-oci'));
  await strata('strata warm, none, one own-layer path changed', 'none', join(WORK, 'cache-none'), join(WORK, 'none.tar'));
  const leaf = [...closure.paths.keys()].filter((p) => !referenced.has(p)).sort()[0]!;
  change(leaf);
  await strata('strata warm, gzip, a leaf changed (shared layer)', 'gzip', join(WORK, 'cache-gzip'), join(WORK, 'gzip-oci'));
  rmSync(WORK, { recursive: true, force: true });
}


/**
 * The encoders alone, on one thread: 1 MiB blocks of the store's files (the first 256 MB), as the
 * pool compresses them. What the cold builds' ratio is made of: the rest of a build (reading, tar,
 * both sha256 digests, writing) costs gzip and zstd builds the same.
 */
async function encoderSpeeds(dirs: string[]): Promise<void> {
  const files = await Promise.all(dirs.map((d) => fg('**', { cwd: d, onlyFiles: true, absolute: true })));
  const parts: Buffer[] = [];
  let size = 0;
  for (const f of files.flat().sort()) {
    if (size >= 256e6) break;
    const b = readFileSync(f);
    parts.push(b);
    size += b.length;
  }
  const sample = Buffer.concat(parts);
  const speeds: Record<string, number> = {};
  for (const c of ['gzip', 'zstd'] as const) {
    const compress = await blockCodec(c).load();
    const t0 = process.hrtime.bigint();
    let out = 0;
    for (let at = 0; at < sample.length; at += BLOCK_SIZE) out += compress(sample.subarray(at, Math.min(sample.length, at + BLOCK_SIZE))).length;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    speeds[c] = sample.length / 1e6 / s;
    console.log(`encoder alone, one thread, ${c}: ${speeds[c]!.toFixed(0)} MB/s, ${(out / sample.length).toFixed(3)} of the input (${(sample.length / 1e6).toFixed(0)} MB)`);
  }
  console.log(`encoder alone: zstd ${(speeds.zstd! / speeds.gzip!).toFixed(2)}× gzip's speed per core`);
}

if (process.argv[2] === '--child') {
  const [root, closurePath, compression, cacheDir, out] = process.argv.slice(3) as [string, string, Compression, string, string];
  await child(root, closurePath, compression, cacheDir, out);
} else {
  await main();
}

