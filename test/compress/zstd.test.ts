/**
 * The reproducible zstd: valid (zstd(1) and strata's own reader restore the input), each block
 * exactly the frame that the pinned package's public compress() makes of it at level 3, frame
 * headers that carry the content size and nothing from the host, boundaries where the caller puts
 * them, and independent of write chunking and of worker count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { BLOCK_SIZE } from '../../src/compress/block-size.js';
import { CompressPool } from '../../src/compress/block-pool.js';
import { BlockCompressor } from '../../src/compress/block-writer.js';
import { ZstdDecoder } from '../../src/compress/zstd-decode.js';
import { ZSTD_LEVEL } from '../../src/compress/zstd-block.js';
import { ensurePackages } from '../support/tools.js';
import { blocksOf, codecInputs, compressWith, sampleData, sha } from './sample-data.js';

/**
 * An independent build of libzstd to check strata's against: the @bokuweb/zstd-wasm package (a
 * development dependency; strata's own module is built by src/compress/zstd-wasm/build.sh), whose
 * frames for the same pieces at the same level must be strata's, byte for byte.
 */
const zstdWasm = createRequire(import.meta.url)('@bokuweb/zstd-wasm') as { init(): Promise<void>; compress(b: Uint8Array, level: number): Uint8Array };
// Once: a second init() re-instantiates the package's shared module while its promise has already resolved.
const wasmReady = zstdWasm.init();


/** What the blob must be: each piece compressed on its own by the independent build's public wrapper. */
async function expectedFrames(pieces: Buffer[]): Promise<Buffer> {
  await wasmReady;
  return Buffer.concat(pieces.map((p) => zstdWasm.compress(p, ZSTD_LEVEL)));
}


function decoded(bytes: Buffer): Buffer {
  const dec = new ZstdDecoder();
  const parts = [...dec.steps(bytes), ...dec.end()].map((p) => Buffer.from(p));
  return Buffer.concat(parts);
}


const inputs = codecInputs();

test('zstd output restores the input exactly (zstd -dc and strata\'s reader), one frame per block, each the package\'s own', async (t) => {
  await ensurePackages(['zstd']);
  const pool = new CompressPool(2);
  t.after(() => pool.close());
  for (const [name, data] of inputs) {
    const r = await compressWith(pool, 'zstd', data, () => 65536);
    const cli = spawnSync('zstd', ['-dc'], { input: r.bytes, maxBuffer: 1 << 30 });
    assert.equal(cli.status, 0, `${name}: zstd -dc failed: ${cli.stderr}`);
    assert.equal(Buffer.compare(cli.stdout, data), 0, `${name}: zstd -dc`);
    assert.equal(Buffer.compare(decoded(r.bytes), data), 0, `${name}: strata's reader`);
    assert.equal(r.digest, sha(r.bytes), name);
    assert.equal(r.size, r.bytes.length, name);
    assert.equal(r.uncompressedSize, data.length, name);
    // Frame header: magic, then a descriptor with the content size and no checksum or dictionary.
    assert.deepEqual([...r.bytes.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], name);
    const fhd = r.bytes[4]!;
    assert.equal(fhd & 0x07, 0, `${name}: no checksum, no dictionary ID`);
    const expected = await expectedFrames(data.length === 0 ? [data] : blocksOf(data));
    assert.equal(Buffer.compare(r.bytes, expected), 0, `${name}: frames`);
  }
  // zstd -l counts the frames: one per block.
  const r = await compressWith(pool, 'zstd', sampleData(), () => 65536);
  const listed = spawnSync('zstd', ['-lv', '-'], { input: r.bytes, encoding: 'utf8' });
  const frames = /Zstandard Frames: (\d+)/.exec(listed.stdout + listed.stderr)?.[1];
  if (frames !== undefined) assert.equal(Number(frames), Math.ceil(sampleData().length / BLOCK_SIZE));
});

test('zstd bytes do not depend on write chunk sizes or on the number of workers', async (t) => {
  const data = sampleData(3 * BLOCK_SIZE + 777, 99);
  const pools = [new CompressPool(0), new CompressPool(1), new CompressPool(3)];
  t.after(() => Promise.all(pools.map((p) => p.close())));
  const runs = [
    await compressWith(pools[0]!, 'zstd', data, () => data.length),
    await compressWith(pools[1]!, 'zstd', data, () => 512),
    await compressWith(pools[2]!, 'zstd', data, () => BLOCK_SIZE - 1),
    await compressWith(pools[2]!, 'zstd', data, (i) => 1 + ((i * 7919) % 200_000)),
  ];
  for (const r of runs.slice(1)) assert.equal(r.digest, runs[0]!.digest);
  assert.equal(Buffer.compare(decoded(runs[0]!.bytes), data), 0);
});

test('zstd: boundary() ends a frame exactly there', async (t) => {
  const pool = new CompressPool(1);
  t.after(() => pool.close());
  const data = sampleData(2 * BLOCK_SIZE + 5000, 5);
  const parts: Buffer[] = [];
  const z = new BlockCompressor({ write: async (b) => void parts.push(Buffer.from(b)) }, pool, 'zstd');
  await z.write(data.subarray(0, 1000));
  await z.boundary();
  await z.boundary(); // a second one adds nothing
  await z.write(data.subarray(1000));
  await z.finish();
  const pieces = [data.subarray(0, 1000), ...blocksOf(data.subarray(1000))];
  assert.equal(Buffer.compare(Buffer.concat(parts), await expectedFrames(pieces)), 0);
});

test('a gzip and a zstd layer can share one pool: each block is compressed with its own codec', async (t) => {
  const pool = new CompressPool(2);
  t.after(() => pool.close());
  const data = sampleData(2 * BLOCK_SIZE + 3, 3);
  const [z, g] = await Promise.all([
    compressWith(pool, 'zstd', data, () => 100_000),
    (async () => {
      const parts: Buffer[] = [];
      const c = new BlockCompressor({ write: async (b) => void parts.push(Buffer.from(b)) }, pool, 'gzip');
      await c.write(data);
      await c.finish();
      return Buffer.concat(parts);
    })(),
  ]);
  assert.equal(Buffer.compare(z.bytes, await expectedFrames(blocksOf(data))), 0);
  assert.deepEqual([...g.subarray(0, 2)], [0x1f, 0x8b]);
});
