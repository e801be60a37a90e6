/**
 * The layer cache through produceLayers with real destinations: a rebuild after one leaf changes
 * reads only that path's files and gives the bytes of a cold build; corrupt entries are detected,
 * rebuilt and repaired; two builds at once on one cache agree; beginBlob follows job order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { defaultCacheDir, openLayerCache, type LayerCache, type NarHashLookup } from '../../src/cache/layer-cache.js';
import type { Digest } from '../../src/image/digest.js';
import { storeLayerJob } from '../../src/builder/store-layer-job.js';
import { newProduceStats, produceLayers } from '../../src/builder/produce-layers.js';
import type { Compression } from '../../src/image/media-types.js';
import { storeLayerEntries } from '../../src/tar/scan.js';
import { tarSize } from '../../src/tar/writer.js';
import { openDockerArchiveDestination } from '../../src/transports/docker-archive/write.js';
import type { ImageDestination } from '../../src/transports/types.js';
import { StrataError } from '../../src/util/errors.js';
import { distDir, tempDir } from '../support/paths.js';
import { buildFixture, filesBelow, makeStore, MTIME, STORE_DIR } from './fixture.js';

/** Where the cache holds blob `digest`: its own file, or a range of a container (a linked output). */
async function located(cache: LayerCache, digest: string): Promise<{ path: string; offset: number }> {
  const loc = await cache.locateBlob(digest as Digest);
  assert.ok(loc, `the cache has ${digest}`);
  return loc;
}

/** sha256 of the `size` bytes the cache holds for `digest` (fewer if the file was cut short). */
async function cachedSha(cache: LayerCache, digest: string, size: number): Promise<string> {
  const { path, offset } = await located(cache, digest);
  return `sha256:${createHash('sha256').update(readFileSync(path).subarray(offset, offset + size)).digest('hex')}`;
}

for (const compression of ['none', 'gzip', 'zstd'] as const satisfies readonly Compression[]) {
  test(`${compression}: a rebuild after a leaf changes reads only that path's files and equals a cold build`, async (t) => {
    const dir = tempDir(t);
    const store = makeStore(dir);
    const cache = await openLayerCache(join(dir, 'cache'));

    const s1 = newProduceStats();
    const cold = await buildFixture(store, join(dir, 'cold'), { compression, cache, stats: s1 });
    assert.deepEqual(s1.built.sort(), [0, 1, 2, 3]);
    // The cache changes nothing about the bytes, and neither does scheduling.
    const noCache = await buildFixture(store, join(dir, 'nocache'), { compression, concurrency: 1 });
    assert.equal(noCache.outputDigest, cold.outputDigest);

    const s2 = newProduceStats();
    const warm = await buildFixture(store, join(dir, 'warm'), { compression, cache, stats: s2 });
    assert.deepEqual(s2.fromCache.sort(), [0, 1, 2, 3]);
    assert.deepEqual(s2.filesRead, []);
    assert.equal(warm.outputDigest, cold.outputDigest);

    writeFileSync(join(store.root, store.leaf, 'bin', 'app'), '#!/bin/sh\necho changed, and longer\n');
    const s3 = newProduceStats();
    const rebuilt = await buildFixture(store, join(dir, 'rebuilt'), { compression, cache, stats: s3 });
    assert.deepEqual(s3.built, [3]);
    assert.deepEqual(s3.fromCache.sort(), [0, 1, 2]);
    assert.deepEqual([...new Set(s3.filesRead)].sort(), filesBelow(store.root, store.leaf));
    assert.equal(s3.filesRead.length, new Set(s3.filesRead).size, 'each file read once');

    const coldAfter = await buildFixture(store, join(dir, 'cold-after'), { compression });
    assert.equal(rebuilt.outputDigest, coldAfter.outputDigest);
    assert.notEqual(rebuilt.outputDigest, cold.outputDigest, 'the change reached the image');
    for (const [i, l] of rebuilt.layers.entries()) {
      assert.equal(l.compression, compression);
      if (i < 3) assert.equal(l.digest, cold.layers[i]!.digest);
    }
  });

  test(`${compression}: in a layer shared by several paths, a leaf change reads only the leaf's files; corrupt runs are rebuilt`, async (t) => {
    const dir = tempDir(t);
    const store = makeStore(dir);
    const cache = await openLayerCache(join(dir, 'cache'));
    // The leaf (index 3) shares a layer with 'big' and 'libc', as popularity layering does.
    const layout = [[0], [1, 2, 3]];
    const cold = await buildFixture(store, join(dir, 'cold'), { compression, cache, layout });
    assert.equal(cold.outputDigest, (await buildFixture(store, join(dir, 'nocache'), { compression, layout })).outputDigest, 'cache or not, same bytes');

    writeFileSync(join(store.root, store.leaf, 'bin', 'app'), '#!/bin/sh\necho changed\n');
    const s = newProduceStats();
    const rebuilt = await buildFixture(store, join(dir, 'rebuilt'), { compression, cache, layout, stats: s });
    assert.deepEqual(s.built, [1]);
    assert.deepEqual(s.fromCache, [0]);
    // Only the leaf's files: 'big' (2.5 MB) and 'libc' in the same layer came from the cache.
    assert.deepEqual([...new Set(s.filesRead)].sort(), filesBelow(store.root, store.leaf));
    const coldAfter = await buildFixture(store, join(dir, 'cold-after'), { compression, layout });
    assert.equal(rebuilt.outputDigest, coldAfter.outputDigest, 'a run-wise rebuild equals a cold build');
    assert.notEqual(rebuilt.outputDigest, cold.outputDigest);

    // Damage the cached bytes of 'big' (its tar run, and compressed units when compressed): found,
    // rebuilt. An uncompressed run is a range of the layer blob, so the damage costs every run in
    // that blob; a compressed run's pieces are blobs of their own, so only 'big' is read again.
    writeFileSync(join(store.root, store.leaf, 'bin', 'app'), '#!/bin/sh\necho changed again\n');
    const segDir = join(cache.dir, 'v1', 'segments');
    const damagedBlobs = new Set<string>();
    for (const f of readdirSync(segDir)) {
      const rec = JSON.parse(readFileSync(join(segDir, f), 'utf8')) as { identity: string; tar: { digest: string; size: number; offset?: number; length?: number } };
      const loc = await located(cache, rec.tar.digest);
      const b = readFileSync(loc.path);
      const start = loc.offset + (rec.tar.offset ?? 0);
      const run = b.subarray(start, start + (rec.tar.length ?? rec.tar.size));
      const blob = `${loc.path}@${loc.offset}`;
      if (run.includes('data.bin') && !damagedBlobs.has(blob)) {
        b[start + run.length - 2000] ^= 0x01; // inside data.bin's bytes, not a header
        writeFileSync(loc.path, b);
        damagedBlobs.add(blob);
      }
    }
    assert.equal(damagedBlobs.size, 1, 'one cached run holds data.bin');
    const corruptBefore = cache.stats.corrupt;
    const s2 = newProduceStats();
    const again = await buildFixture(store, join(dir, 'again'), { compression, cache, layout, stats: s2 });
    assert.equal(cache.stats.corrupt, corruptBefore + 1);
    const reread = compression === 'none' ? [1, 2, 3] : [1, 3];
    assert.deepEqual([...new Set(s2.filesRead)].sort(), reread.flatMap((i) => filesBelow(store.root, store.paths[i]!)).sort());
    assert.equal(again.outputDigest, (await buildFixture(store, join(dir, 'cold-again'), { compression, layout })).outputDigest);
  });

  // Each layer's blob in a file of its own (an OCI layout's blob, linked, for 'none'; a cache
  // copy for gzip), so that cutting one short harms no other; for damage to a docker-archive
  // container see the container test below.
  test(`${compression}: truncated, altered or missing cache blobs and broken index entries are rebuilt, never used`, async (t) => {
    const dir = tempDir(t);
    const store = makeStore(dir);
    const cache = await openLayerCache(join(dir, 'cache'));
    const output = 'oci';
    const cold = await buildFixture(store, join(dir, 'cold'), { compression, cache, output });
    const blob = async (i: number): Promise<string> => {
      const loc = await located(cache, cold.layers[i]!.digest);
      assert.equal(loc.offset, 0, 'a blob file of its own');
      return loc.path;
    };
    const sha = (i: number): Promise<string> => cachedSha(cache, cold.layers[i]!.digest, cold.layers[i]!.size);

    const damage: [string, number, () => Promise<void>][] = [
      ['truncated', 1, async () => truncateSync(await blob(1), Math.floor(cold.layers[1]!.size / 2))],
      ['altered (same size)', 0, async () => {
        const b = readFileSync(await blob(0));
        b[b.length >> 1] ^= 0x01;
        writeFileSync(await blob(0), b);
      }],
      ['emptied', 2, async () => truncateSync(await blob(2), 0)],
    ];
    for (const [what, i, harm] of damage) {
      await harm();
      assert.notEqual(await sha(i), cold.layers[i]!.digest, `${what}: the damage is real`);
      const corruptBefore = cache.stats.corrupt;
      const stats = newProduceStats();
      const again = await buildFixture(store, join(dir, `after-${i}`), { compression, cache, stats, output });
      assert.deepEqual(stats.built, [i], what);
      assert.equal(cache.stats.corrupt, corruptBefore + 1, what);
      assert.equal(again.outputDigest, cold.outputDigest, `${what}: output as from a cold build`);
      assert.equal(await sha(i), cold.layers[i]!.digest, `${what}: cache entry repaired`);
    }

    // Index entries that are not valid JSON or name no blob: every layer is rebuilt.
    const indexDir = join(cache.dir, 'v1', 'layers');
    const indexFiles = readdirSync(indexDir);
    assert.equal(indexFiles.length, 4);
    writeFileSync(join(indexDir, indexFiles[0]!), '{"identity": tru');
    for (const f of indexFiles.slice(1)) writeFileSync(join(indexDir, f), JSON.stringify({ ...JSON.parse(readFileSync(join(indexDir, f), 'utf8')), digest: 'nonsense' }));
    const stats = newProduceStats();
    const again = await buildFixture(store, join(dir, 'after-index'), { compression, cache, stats, output });
    assert.deepEqual(stats.built.sort(), [0, 1, 2, 3]);
    assert.equal(again.outputDigest, cold.outputDigest);
    const warm = newProduceStats();
    await buildFixture(store, join(dir, 'after-index-warm'), { compression, cache, stats: warm, output });
    assert.deepEqual(warm.fromCache.sort(), [0, 1, 2, 3], 'index repaired');
  });
}

test('none into a docker-archive: the cache links the output instead of writing a copy; a rebuild of that output replaces the link; damage to it is found', async (t) => {
  const dir = tempDir(t);
  const store = makeStore(dir);
  const cache = await openLayerCache(join(dir, 'cache'));
  const containers = (): string[] => readdirSync(cache.dirs.containers);
  const out = join(dir, 'image.tar');
  const cold = await buildFixture(store, out, { compression: 'none', cache });
  assert.deepEqual(readdirSync(cache.dirs.blobs), [], 'no layer was copied into the cache');
  assert.equal(containers().length, 1);
  const linked = join(cache.dirs.containers, containers()[0]!);
  assert.equal(statSync(linked).ino, statSync(out).ino, 'the container is the output itself');
  assert.equal(readdirSync(cache.dirs.locations).length, 4);
  for (const l of cold.layers) assert.equal(await cachedSha(cache, l.digest, l.size), l.digest);

  // The same output built again: every layer copied from the old output into the new one, which
  // the cache now holds instead (the old file is gone with its link).
  const warm = newProduceStats();
  const again = await buildFixture(store, out, { compression: 'none', cache, stats: warm });
  assert.deepEqual(warm.fromCache.sort(), [0, 1, 2, 3]);
  assert.equal(again.outputDigest, cold.outputDigest);
  assert.equal(containers().length, 1, 'the old link is retired');
  assert.equal(statSync(join(cache.dirs.containers, containers()[0]!)).ino, statSync(out).ino);
  for (const l of cold.layers) assert.equal((await located(cache, l.digest)).path, join(cache.dirs.containers, containers()[0]!));

  // The user alters the output in place: the cache's bytes are the output's, so the layer is rebuilt.
  const big = cold.layers.reduce((a, l, i) => (l.size > cold.layers[a]!.size ? i : a), 0);
  const { digest, size } = cold.layers[big]!;
  const { offset } = await located(cache, digest);
  const b = readFileSync(out);
  b[offset + size - 4096] ^= 0x10;
  writeFileSync(out, b);
  utimesSync(out, new Date(1_000_000), new Date(1_000_000));
  const s = newProduceStats();
  const other = join(dir, 'other.tar');
  const repaired = await buildFixture(store, other, { compression: 'none', cache, stats: s });
  assert.deepEqual(s.built, [big]);
  assert.equal(statSync(out).mtimeMs, 1_000_000, 'hits from an output leave its times alone');
  assert.equal(repaired.outputDigest, cold.outputDigest, 'the altered bytes never reach the output');
  assert.equal(await cachedSha(cache, digest, size), digest, 'found again, in the new output');
  assert.equal(containers().length, 2, 'another output is another container');

  // Cut short: every layer beyond the cut is missing, found so, and made again.
  truncateSync(other, 1024);
  const s2 = newProduceStats();
  assert.equal((await buildFixture(store, join(dir, 'third.tar'), { compression: 'none', cache, stats: s2 })).outputDigest, cold.outputDigest);
  assert.deepEqual(s2.built.sort(), [0, 1, 2, 3]);
});

test('none into a docker-archive on another filesystem than the cache: the layers are copied into the cache', async (t) => {
  const dir = tempDir(t);
  if (statSync('/dev/shm', { throwIfNoEntry: false })?.dev === undefined || statSync('/dev/shm').dev === statSync(dir).dev) {
    t.skip('no second filesystem (/dev/shm) here');
    return;
  }
  const cacheDir = mkdtempSync('/dev/shm/strata-cache-');
  t.after(() => rmSync(cacheDir, { recursive: true, force: true }));
  const store = makeStore(dir);
  const cache = await openLayerCache(cacheDir);
  const cold = await buildFixture(store, join(dir, 'image.tar'), { compression: 'none', cache });
  assert.deepEqual(readdirSync(cache.dirs.containers), [], 'nothing could be linked');
  assert.equal(readdirSync(cache.dirs.blobs).length, 4);
  const warm = newProduceStats();
  assert.equal((await buildFixture(store, join(dir, 'again.tar'), { compression: 'none', cache, stats: warm })).outputDigest, cold.outputDigest);
  assert.deepEqual(warm.fromCache.sort(), [0, 1, 2, 3]);
});

for (const output of ['oci', 'oci-no-region'] as const) {
  test(`none into ${output}: a cached layer is copied in one checked pass, or verified first; an altered one is rebuilt in its place`, async (t) => {
    const dir = tempDir(t);
    const store = makeStore(dir);
    const cache = await openLayerCache(join(dir, 'cache'));
    const opts = { compression: 'none' as Compression, cache, output };
    const cold = await buildFixture(store, join(dir, 'cold'), opts);
    const warm = newProduceStats();
    assert.equal((await buildFixture(store, join(dir, 'warm'), { ...opts, stats: warm })).outputDigest, cold.outputDigest);
    assert.deepEqual(warm.fromCache.sort(), [0, 1, 2, 3]);
    // Flip one byte of the biggest layer's cached blob: same size, so only its hash can tell.
    const big = cold.layers.reduce((a, l, i) => (l.size > cold.layers[a]!.size ? i : a), 0);
    const { digest, size } = cold.layers[big]!;
    const { path, offset } = await located(cache, digest);
    const b = readFileSync(path);
    b[offset + size - 2048] ^= 0x40;
    writeFileSync(path, b);
    const corruptBefore = cache.stats.corrupt;
    const s = newProduceStats();
    const again = await buildFixture(store, join(dir, 'again'), { ...opts, stats: s });
    assert.deepEqual(s.built, [big]);
    assert.equal(cache.stats.corrupt, corruptBefore + 1);
    assert.equal(again.outputDigest, cold.outputDigest, 'the altered bytes never reach the output');
    assert.equal(await cachedSha(cache, digest, size), digest, 'cache entry repaired');

    // One output built over and over, with a cache of its own: every build copies every layer
    // from the output before, which it replaces (in the cache too).
    const fresh = { ...opts, cache: await openLayerCache(join(dir, 'cache-2')) };
    const same = join(dir, 'same');
    await buildFixture(store, same, fresh);
    for (const round of [1, 2]) {
      const st = newProduceStats();
      assert.equal((await buildFixture(store, same, { ...fresh, stats: st })).outputDigest, cold.outputDigest);
      assert.deepEqual(st.fromCache.sort(), [0, 1, 2, 3], `round ${round}`);
      // A layout whose writers offer no file region cannot be linked: the cache keeps copies.
      if (output === 'oci-no-region') continue;
      for (const l of cold.layers) {
        const at = (await located(fresh.cache, l.digest)).path;
        assert.equal(statSync(at).ino, statSync(join(same, 'blobs', 'sha256', l.digest.slice(7))).ino, `round ${round}: found in the layout built last`);
      }
      assert.equal(readdirSync(fresh.cache.dirs.containers).length, 4, `round ${round}: the layout before is no longer held`);
    }
  });
}

function runBuild(root: string, cacheDir: string, out: string, compression: string): Promise<{ outputDigest: string; stats: { built: number[]; fromCache: number[] } }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(distDir, 'test', 'cache', 'build-script.js'), root, cacheDir, out, compression], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`build-script exited ${code}: ${stderr}`))));
  });
}

test('two builds at once on one cache (separate processes) both succeed with identical outputs', async (t) => {
  const dir = tempDir(t);
  const store = makeStore(dir);
  const cacheDir = join(dir, 'cache');
  const expected = await buildFixture(store, join(dir, 'reference'), { compression: 'gzip' });
  for (const round of ['empty cache', 'warm cache']) {
    const [a, b] = await Promise.all([
      runBuild(store.root, cacheDir, join(dir, `a-${round}`), 'gzip'),
      runBuild(store.root, cacheDir, join(dir, `b-${round}`), 'gzip'),
    ]);
    assert.equal(a.outputDigest, expected.outputDigest, round);
    assert.equal(b.outputDigest, expected.outputDigest, round);
    if (round === 'warm cache') {
      assert.deepEqual(a.stats.fromCache.sort(), [0, 1, 2, 3]);
      assert.deepEqual(b.stats.fromCache.sort(), [0, 1, 2, 3]);
    }
  }
  assert.deepEqual(readdirSync(join(cacheDir, 'v1', 'tmp')), [], 'no temporary files left behind');
});

test('beginBlob is called in job order whatever finishes first', async (t) => {
  const dir = tempDir(t);
  const store = makeStore(dir);
  // The big path first: with 4 jobs at once, the small ones finish long before it.
  const order = [store.paths[1]!, store.paths[0]!, store.paths[2]!, store.paths[3]!];
  const jobs = await Promise.all(order.map(async (p) => ({ entries: await storeLayerEntries(STORE_DIR, store.root, [p]), storePaths: [p] })));
  const real = await openDockerArchiveDestination(join(dir, 'x.tar'), { mtime: 1 });
  const sizes: (number | undefined)[] = [];
  const dest: ImageDestination = { ...real, beginBlob: (n) => (sizes.push(n), real.beginBlob(n)) };
  const layers = await produceLayers(jobs, dest, { mtime: MTIME, compression: 'none', concurrency: 4 });
  await real.abort();
  assert.deepEqual(sizes, jobs.map((j) => tarSize(j.entries)));
  assert.deepEqual(layers.map((l) => l.size), sizes);
  assert.deepEqual(layers.map((l) => l.storePaths), order.map((p) => [p]));
});

test('an unknown compression is refused before the destination is touched', async (t) => {
  const dir = tempDir(t);
  let touched = false;
  const dest = { name: 'x', compression: 'brotli', beginBlob: async () => { touched = true; throw new Error('no'); } } as unknown as ImageDestination;
  await assert.rejects(produceLayers([{ entries: [] }], dest, { mtime: 1, compression: 'brotli' as Compression }), (e: unknown) => e instanceof StrataError && /brotli/.test(e.message) && /none, gzip or zstd/.test(e.message));
  assert.equal(touched, false);
  void dir;
});

test('layer identity: NAR hash when known, else the scan\'s entries and file stamps; tar options and compression count', async (t) => {
  const dir = tempDir(t);
  const store = makeStore(dir);
  const p = store.leaf;
  const base = { storeDir: STORE_DIR, storeRoot: store.root, mtime: 1, compression: 'gzip' as Compression, identities: true };
  const id = async (o: Partial<typeof base> & { narHashes?: NarHashLookup } = {}): Promise<string> => (await storeLayerJob([p], { ...base, ...o })).identity!;
  const scanId = await id();
  assert.match(scanId, /^sha256:[0-9a-f]{64}$/);
  assert.equal(await id(), scanId, 'stable while nothing changes');
  assert.notEqual(await id({ compression: 'none' }), scanId);
  assert.notEqual(await id({ mtime: 2 }), scanId);
  // Same size, same content, only the mtime moved: still a miss (the file may have changed).
  const f = join(store.root, p, 'bin', 'app');
  utimesSync(f, new Date(1000), new Date(2000));
  const touched = await id();
  assert.notEqual(touched, scanId);
  // A new (empty, so unstamped by size) file counts, and so does a chmod.
  writeFileSync(join(store.root, p, 'empty'), '');
  const withEmpty = await id();
  assert.notEqual(withEmpty, touched);
  chmodSync(f, 0o755);
  assert.notEqual(await id(), withEmpty);
  assert.equal(await id(), await id(), 'a second scan of an unchanged tree hits');

  const nar = new Map([[p, { path: p, references: [], narSize: 1, narHash: 'sha256-AAAA' }]]);
  const narId = await id({ narHashes: nar });
  writeFileSync(f, 'different');
  // Nix's contract: a store path with a given NAR hash has that content; the disk is not consulted.
  assert.equal(await id({ narHashes: nar }), narId);
  assert.notEqual(await id({ narHashes: new Map([[p, 'sha256-BBBB']]) }), narId);
});

for (const compression of ['none', 'gzip'] as const satisfies readonly Compression[]) {
  test(`${compression}: with NAR hashes, a warm rebuild reads nothing below the store paths and gives the cold bytes; a missing path is still named`, async (t) => {
    const dir = tempDir(t);
    const store = makeStore(dir);
    const narHashes: NarHashLookup = new Map(store.paths.map((p, i) => [p, `sha256-${'A'.repeat(42)}${i}=`]));
    const cache = await openLayerCache(join(dir, 'cache'));
    const cold = await buildFixture(store, join(dir, 'cold'), { compression, cache, narHashes, layout: [[0, 1], [2, 3]] });
    // Empty every store path (the directories stay): only a build that scans nothing can succeed.
    for (const p of store.paths) {
      rmSync(join(store.root, p), { recursive: true });
      mkdirSync(join(store.root, p));
    }
    const s = newProduceStats();
    const warm = await buildFixture(store, join(dir, 'warm'), { compression, cache, narHashes, stats: s, layout: [[0, 1], [2, 3]] });
    assert.equal(warm.outputDigest, cold.outputDigest);
    assert.deepEqual(s.fromCache.sort(), [0, 1]);
    assert.deepEqual(s.filesRead, []);
    // A store path gone altogether is an error naming it, cache or not.
    rmSync(join(store.root, store.leaf), { recursive: true });
    await assert.rejects(buildFixture(store, join(dir, 'gone'), { compression, cache, narHashes, layout: [[0, 1], [2, 3]] }), (e: unknown) => e instanceof Error && e.message.includes(store.leaf));
  });
}

test('none, by NAR hash: a corrupt cached layer whose store files no longer match their NAR hash fails clearly, naming the paths', async (t) => {
  const dir = tempDir(t);
  const store = makeStore(dir);
  const narHashes: NarHashLookup = new Map(store.paths.map((p, i) => [p, `sha256-${'B'.repeat(42)}${i}=`]));
  const cache = await openLayerCache(join(dir, 'cache'));
  const layout = [[0, 1], [2, 3]];
  await buildFixture(store, join(dir, 'cold'), { compression: 'none', cache, narHashes, layout });
  // The cold archive is the cache's copy (a hard link): damage a byte of the big layer in it, and
  // make the store disagree with its NAR hash (a file grows).
  const archive = join(dir, 'cold');
  const bytes = readFileSync(archive);
  const at = bytes.indexOf(Buffer.from('data.bin')) + 512 * 40;
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(archive, bytes);
  writeFileSync(join(store.root, store.paths[1]!, 'share', 'data.bin'), Buffer.alloc(2_600_000, 7));
  await assert.rejects(buildFixture(store, join(dir, 'warm'), { compression: 'none', cache, narHashes, layout }), (e: unknown) =>
    e instanceof StrataError && e.message.includes(store.paths[1]!) && /NAR hash/.test(e.message) && /--no-cache/.test(e.message));
});

test('defaultCacheDir follows XDG_CACHE_HOME (absolute only), else ~/.cache/strata', () => {
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/var/cache/me' }), '/var/cache/me/strata');
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: 'relative' }), join(homedir(), '.cache', 'strata'));
  assert.equal(defaultCacheDir({}), join(homedir(), '.cache', 'strata'));
});

test('a cache that cannot be written never fails the build', async (t) => {
  const dir = tempDir(t);
  const store = makeStore(dir);
  const cache = await openLayerCache(join(dir, 'cache'));
  const reference = await buildFixture(store, join(dir, 'reference'), { compression: 'gzip' });
  // Its temp directory vanished (someone cleaned the cache mid-build): nothing can be staged.
  rmSync(join(cache.dir, 'v1', 'tmp'), { recursive: true });
  const stats = newProduceStats();
  const r = await buildFixture(store, join(dir, 'out'), { compression: 'gzip', cache, stats });
  assert.equal(r.outputDigest, reference.outputDigest);
  assert.deepEqual(stats.built.sort(), [0, 1, 2, 3]);
  assert.equal(cache.stats.errors, 4);
  assert.equal(cache.stats.published, 0);
});
