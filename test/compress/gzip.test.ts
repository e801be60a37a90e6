/**
 * The reproducible gzip: valid (node:zlib and GNU gzip restore the input), fixed header bytes,
 * independent of write chunking, of worker count and of the CRC-32 implementation; zstd refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { crc32, crc32Portable } from '../../src/compress/crc32.js';
import { checkProducibleCompression } from '../../src/compress/compression.js';
import { BLOCK_SIZE, DICT_SIZE, deflateBlock } from '../../src/compress/deflate-block.js';
import { DeflatePool } from '../../src/compress/deflate-pool.js';
import { GzipCompressor } from '../../src/compress/gzip-writer.js';
import { StrataError } from '../../src/util/errors.js';
import { sampleData } from './sample-data.js';

async function gzipWith(pool: DeflatePool, data: Buffer, chunkSizes: (i: number) => number): Promise<{ bytes: Buffer; digest: string; size: number; uncompressedSize: number }> {
  const parts: Buffer[] = [];
  const gz = new GzipCompressor({ write: async (b) => void parts.push(Buffer.from(b)) }, pool);
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = Math.max(1, chunkSizes(i));
    await gz.write(data.subarray(at, at + n));
    at += n;
  }
  const r = await gz.finish();
  return { bytes: Buffer.concat(parts), ...r };
}

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const inputs: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['one byte', Buffer.from('x')],
  ['one block exactly', randomBytes(BLOCK_SIZE)],
  ['one block + 1', randomBytes(BLOCK_SIZE + 1)],
  ['zeros, 3 blocks', Buffer.alloc(3 * BLOCK_SIZE)],
  ['mixed sample', sampleData()],
];

test('gzip output restores the input exactly (node:zlib and gzip -dc), with digest and size of the bytes written', async (t) => {
  const pool = new DeflatePool(2);
  t.after(() => pool.close());
  for (const [name, data] of inputs) {
    const r = await gzipWith(pool, data, () => 65536);
    assert.equal(Buffer.compare(gunzipSync(r.bytes), data), 0, `${name}: node:zlib gunzip`);
    const gnu = spawnSync('gzip', ['-dc'], { input: r.bytes, maxBuffer: 1 << 30 });
    assert.equal(gnu.status, 0, `${name}: gzip -dc failed: ${gnu.stderr}`);
    assert.equal(Buffer.compare(gnu.stdout, data), 0, `${name}: gzip -dc`);
    assert.equal(r.digest, sha(r.bytes), name);
    assert.equal(r.size, r.bytes.length, name);
    assert.equal(r.uncompressedSize, data.length, name);
    // Header: magic, deflate, no flags, MTIME 0, XFL 0, OS 255 — nothing from the host.
    assert.deepEqual([...r.bytes.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], name);
    // Trailer: CRC-32 and length, checked against zlib's own gunzip above and spelled out here.
    assert.equal(r.bytes.readUInt32LE(r.bytes.length - 4), data.length % 2 ** 32, name);
  }
});

test('bytes do not depend on write chunk sizes or on the number of deflate workers', async (t) => {
  const data = sampleData(3 * BLOCK_SIZE + 777, 99);
  const pools = [new DeflatePool(0), new DeflatePool(1), new DeflatePool(3)];
  t.after(() => Promise.all(pools.map((p) => p.close())));
  let seed = 7;
  const jitter = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return 1 + (seed % 200_000);
  };
  const runs = [
    await gzipWith(pools[0]!, data, () => data.length),
    await gzipWith(pools[1]!, data, () => 512),
    await gzipWith(pools[2]!, data, () => BLOCK_SIZE - 1),
    await gzipWith(pools[2]!, data, jitter),
    await gzipWith(pools[0]!, data, () => 1 << 20),
  ];
  for (const r of runs.slice(1)) assert.equal(r.digest, runs[0]!.digest);
  assert.equal(Buffer.compare(gunzipSync(runs[0]!.bytes), data), 0);
});

test('every block boundary is a valid sync point whatever bits the deflater left pending', () => {
  // Non-final blocks end with an empty stored block; the pending-bit count before it varies with
  // the data. Many small random-ish blocks cover all eight cases; each stream must inflate.
  for (let s = 1; s <= 40; s++) {
    const data = sampleData(3 * 70_000, s);
    const cut = [0, 70_000, 140_000, 210_000];
    const parts = [];
    for (let k = 0; k < 3; k++) {
      const from = cut[k]!;
      const to = cut[k + 1]!;
      parts.push(deflateBlock(data.subarray(from, to), from > 0 ? data.subarray(Math.max(0, from - DICT_SIZE), from) : undefined, k === 2));
      if (k < 2) assert.deepEqual([...parts[k]!.subarray(-4)], [0, 0, 0xff, 0xff], `seed ${s}: sync flush marker`);
    }
    assert.equal(Buffer.compare(inflateRawSync(Buffer.concat(parts)), data), 0, `seed ${s}`);
  }
});

test('CRC-32: the check value of "123456789", and node:zlib and the portable table agree', () => {
  assert.equal(crc32Portable(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  const data = randomBytes(300_001);
  assert.equal(crc32(data), crc32Portable(data));
  // Continuation: CRC of a split buffer equals CRC of the whole.
  assert.equal(crc32Portable(data.subarray(1000), crc32Portable(data.subarray(0, 1000))), crc32Portable(data));
});

test('zstd is refused with a StrataError that says why; unknown names too', () => {
  assert.throws(() => checkProducibleCompression('zstd'), (e: unknown) => e instanceof StrataError && /zstd/.test(e.message) && /reproducible/.test(e.message));
  assert.throws(() => checkProducibleCompression('brotli'), (e: unknown) => e instanceof StrataError && /brotli/.test(e.message));
  checkProducibleCompression('gzip');
  checkProducibleCompression('none');
});
