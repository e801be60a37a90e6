/**
 * The reproducible gzip: valid (node:zlib and GNU gzip restore the input), each block exactly
 * the gzip member that libdeflate's own packaged API makes of it, fixed header bytes, boundaries
 * where the caller puts them, and independent of write chunking and of worker count; unknown
 * compressions refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { gzip as libdeflateGzip } from 'libdeflate';
import { checkProducibleCompression } from '../../src/compress/compression.js';
import { BLOCK_SIZE } from '../../src/compress/block-size.js';
import { GZIP_LEVEL } from '../../src/compress/deflate-block.js';
import { CompressPool } from '../../src/compress/block-pool.js';
import { BlockCompressor } from '../../src/compress/block-writer.js';
import { StrataError } from '../../src/util/errors.js';
import { blocksOf, codecInputs, compressWith, sampleData, sha } from './sample-data.js';


/** What the blob must be: each piece gzipped on its own by the package's public wrapper. */
function expectedMembers(pieces: Buffer[]): Buffer {
  return Buffer.concat(pieces.map((p) => libdeflateGzip(p, GZIP_LEVEL)));
}



const inputs = codecInputs();

test('gzip output restores the input exactly (node:zlib and gzip -dc), with digest and size of the bytes written', async (t) => {
  const pool = new CompressPool(2);
  t.after(() => pool.close());
  for (const [name, data] of inputs) {
    const r = await compressWith(pool, 'gzip', data, () => 65536);
    assert.equal(Buffer.compare(gunzipSync(r.bytes), data), 0, `${name}: node:zlib gunzip`);
    const gnu = spawnSync('gzip', ['-dc'], { input: r.bytes, maxBuffer: 1 << 30 });
    assert.equal(gnu.status, 0, `${name}: gzip -dc failed: ${gnu.stderr}`);
    assert.equal(Buffer.compare(gnu.stdout, data), 0, `${name}: gzip -dc`);
    assert.equal(r.digest, sha(r.bytes), name);
    assert.equal(r.size, r.bytes.length, name);
    assert.equal(r.uncompressedSize, data.length, name);
    // Header: magic, deflate, no flags, MTIME 0, XFL 0, OS 255 — nothing from the host.
    assert.deepEqual([...r.bytes.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], name);
    // One member per BLOCK_SIZE block (one empty member for empty input), each exactly libdeflate's.
    const expected = expectedMembers(data.length === 0 ? [data] : blocksOf(data));
    assert.equal(Buffer.compare(r.bytes, expected), 0, `${name}: members`);
  }
});

test('bytes do not depend on write chunk sizes or on the number of deflate workers', async (t) => {
  const data = sampleData(3 * BLOCK_SIZE + 777, 99);
  const pools = [new CompressPool(0), new CompressPool(1), new CompressPool(3)];
  t.after(() => Promise.all(pools.map((p) => p.close())));
  let seed = 7;
  const jitter = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return 1 + (seed % 200_000);
  };
  const runs = [
    await compressWith(pools[0]!, 'gzip', data, () => data.length),
    await compressWith(pools[1]!, 'gzip', data, () => 512),
    await compressWith(pools[2]!, 'gzip', data, () => BLOCK_SIZE - 1),
    await compressWith(pools[2]!, 'gzip', data, jitter),
    await compressWith(pools[0]!, 'gzip', data, () => 1 << 20),
  ];
  for (const r of runs.slice(1)) assert.equal(r.digest, runs[0]!.digest);
  assert.equal(Buffer.compare(gunzipSync(runs[0]!.bytes), data), 0);
});

test('boundary() ends a member exactly there; a boundary at a block edge or twice in a row adds nothing', async (t) => {
  const pool = new CompressPool(1);
  t.after(() => pool.close());
  const data = sampleData(2 * BLOCK_SIZE + 5000, 5);
  const cuts = [1000, BLOCK_SIZE + 1000, BLOCK_SIZE + 1000, 2 * BLOCK_SIZE + 1000]; // the repeat is a no-op
  const parts: Buffer[] = [];
  const gz = new BlockCompressor({ write: async (b) => void parts.push(Buffer.from(b)) }, pool, 'gzip');
  let at = 0;
  for (const cut of cuts) {
    await gz.write(data.subarray(at, cut));
    await gz.boundary();
    at = cut;
  }
  await gz.write(data.subarray(at));
  await gz.finish();
  // Pieces: [0,1000) | one full block | one full block | the rest.
  const pieces = [data.subarray(0, 1000), ...blocksOf(data.subarray(1000, BLOCK_SIZE + 1000)), ...blocksOf(data.subarray(BLOCK_SIZE + 1000, 2 * BLOCK_SIZE + 1000)), data.subarray(2 * BLOCK_SIZE + 1000)];
  assert.equal(pieces.length, 4);
  const bytes = Buffer.concat(parts);
  assert.equal(Buffer.compare(bytes, expectedMembers(pieces)), 0);
  assert.equal(Buffer.compare(gunzipSync(bytes), data), 0);
});

test('an unknown compression is refused with a StrataError naming it', () => {
  assert.throws(() => checkProducibleCompression('brotli'), (e: unknown) => e instanceof StrataError && /brotli/.test(e.message));
  checkProducibleCompression('gzip');
  checkProducibleCompression('zstd');
  checkProducibleCompression('none');
});
