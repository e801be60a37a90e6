import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openLayerCache } from '../../src/cache/layer-cache.js';
import { parseSize, pruneCache } from '../../src/cache/prune.js';
import { newProduceStats } from '../../src/builder/produce-layers.js';
import { cliPath, tempDir } from '../support/paths.js';
import { buildFixture, makeStore, treeDigest } from './fixture.js';

const sizeOf = (dir: string): number => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

test('prune keeps the blobs used most recently under the budget, drops records of the rest and stale temporary files; a build after it gives the same bytes', async (t) => {
  const dir = tempDir(t);
  const store = makeStore(dir);
  const cache = await openLayerCache(join(dir, 'cache'));
  // Two layers of two paths each: gzip layers with per-path segment pieces, so every record kind exists.
  const layout = [[0, 1], [2, 3]];
  const cold = await buildFixture(store, join(dir, 'cold'), { compression: 'gzip', cache, layout });
  const blobDir = join(cache.root, 'blobs', 'sha256');
  const names = readdirSync(blobDir).sort();
  // Ages chosen by hand: layer 1's blob was used last, everything else long ago, layer 0's blob first.
  const hex = (i: number): string => cold.layers[i]!.digest.slice(7);
  for (const [i, n] of names.entries()) utimesSync(join(blobDir, n), new Date(2_000_000 + i * 1000), new Date(2_000_000 + i * 1000));
  utimesSync(join(blobDir, hex(0)), new Date(1_000_000), new Date(1_000_000));
  utimesSync(join(blobDir, hex(1)), new Date(9_000_000_000), new Date(9_000_000_000));
  const tmp = join(cache.root, 'tmp');
  writeFileSync(join(tmp, 'blob-dead-build'), 'left by a killed build');
  utimesSync(join(tmp, 'blob-dead-build'), new Date(Date.now() - 3 * 3600_000), new Date(Date.now() - 3 * 3600_000));
  writeFileSync(join(tmp, 'blob-running-build'), 'being written');

  const before = sizeOf(blobDir);
  const budget = statSync(join(blobDir, hex(1))).size + 10;
  const r = await pruneCache(cache, budget);
  assert.equal(r.bytesBefore, before);
  assert.ok(r.bytesAfter <= budget, `${r.bytesAfter} > ${budget}`);
  assert.deepEqual(readdirSync(blobDir), [hex(1)], 'only the most recently used blob fits');
  assert.equal(r.blobsRemoved, names.length - 1);
  assert.equal(sizeOf(blobDir), r.bytesAfter);
  assert.deepEqual(readdirSync(tmp), ['blob-running-build']);
  assert.equal(r.tmpRemoved, 1);
  // Every record left names only blobs that are still there: layer 1's index and diffid records.
  const records = ['layers', 'segments', 'diffids/gzip'].flatMap((d) => readdirSync(join(cache.root, d)).map((f) => JSON.parse(readFileSync(join(cache.root, d, f), 'utf8')) as { digest?: string; tar?: { digest: string } }));
  assert.ok(records.length >= 2 && r.recordsRemoved > 0);
  for (const rec of records) assert.equal(rec.digest ?? rec.tar?.digest, cold.layers[1]!.digest);

  // The next build takes layer 1 from the cache, makes layer 0 again, and its bytes are the same.
  const stats = newProduceStats();
  const again = await buildFixture(store, join(dir, 'again'), { compression: 'gzip', cache, layout, stats });
  assert.deepEqual(stats.fromCache, [1]);
  assert.deepEqual(stats.built, [0]);
  assert.equal(again.outputDigest, cold.outputDigest);
  // Using a blob marks it as used now (its mtime), which is what the next prune goes by.
  assert.ok(Math.abs(statSync(join(blobDir, hex(1))).mtimeMs - Date.now()) < 60_000, 'a cache hit refreshes the blob\'s last use');
  // A budget the cache already meets removes nothing.
  const r2 = await pruneCache(cache, 10 ** 12);
  assert.equal(r2.blobsRemoved + r2.recordsRemoved, 0);
});

test('prune counts containers (linked outputs) like blobs: removing one drops its locations and the records that need them, never touching the output', async (t) => {
  const dir = tempDir(t);
  const store = makeStore(dir);
  const cache = await openLayerCache(join(dir, 'cache'));
  const out = join(dir, 'image.tar');
  const cold = await buildFixture(store, out, { compression: 'none', cache });
  const [container] = readdirSync(cache.dirs.containers);
  assert.ok(container !== undefined);
  const size = statSync(out).size;
  const kept = await pruneCache(cache, size);
  assert.equal(kept.bytesBefore, size, 'the container is what the cache holds');
  assert.equal(kept.blobsRemoved + kept.recordsRemoved, 0, 'within budget: nothing goes');

  const r = await pruneCache(cache, 0);
  assert.equal(r.blobsRemoved, 1);
  assert.equal(r.bytesAfter, 0);
  assert.deepEqual(readdirSync(cache.dirs.containers), []);
  assert.deepEqual(readdirSync(cache.dirs.locations), []);
  assert.deepEqual(readdirSync(join(cache.root, 'layers')), []);
  assert.equal(treeDigest(out), cold.outputDigest, 'the output itself is untouched');
  const stats = newProduceStats();
  assert.equal((await buildFixture(store, join(dir, 'again.tar'), { compression: 'none', cache, stats })).outputDigest, cold.outputDigest);
  assert.deepEqual(stats.built.sort(), [0, 1, 2, 3]);
});

test('sizes: bytes, SI and binary suffixes; anything else is refused by the CLI, naming the value', () => {
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('500M'), 500_000_000);
  assert.equal(parseSize('10G'), 10_000_000_000);
  assert.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(parseSize('2ki'), 2048);
  assert.equal(parseSize('7 MB'), 7_000_000);
  for (const bad of ['', 'ten', '5X', '-1G', '1e9', 'G']) assert.equal(parseSize(bad), undefined, bad);
  const r = spawnSync(process.execPath, [cliPath, 'cache', 'prune', '--max-size', '5X', '--cache-dir', '/nonexistent/never-made'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--max-size "5X": not a size/);
});
