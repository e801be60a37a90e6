/**
 * Runs one fixture build in its own process (for the two-builds-one-cache test).
 * Usage: node build-script.js <storeRoot> <cacheDir> <out> <compression>
 * The store must have been made by makeStore; prints { outputDigest, stats } as JSON.
 */
import { openLayerCache } from '../../src/cache/layer-cache.js';
import { newProduceStats } from '../../src/builder/produce-layers.js';
import type { Compression } from '../../src/image/media-types.js';
import { buildFixture, STORE_DIR } from './fixture.js';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const [root, cacheDir, out, compression] = process.argv.slice(2) as [string, string, string, Compression];
const paths = readdirSync(join(root, STORE_DIR)).sort().map((n) => `${STORE_DIR}/${n}`);
const cache = await openLayerCache(cacheDir);
const stats = newProduceStats();
const r = await buildFixture({ root, paths, leaf: paths[paths.length - 1]! }, out, { compression, cache, stats });
process.stdout.write(JSON.stringify({ outputDigest: r.outputDigest, stats, cache: cache.stats }) + '\n');
