import { createHash, randomBytes } from 'node:crypto';
import { BLOCK_SIZE } from '../../src/compress/block-size.js';
import type { CompressPool } from '../../src/compress/block-pool.js';
import { BlockCompressor } from '../../src/compress/block-writer.js';
import type { BlockCompression } from '../../src/compress/codec.js';

/**
 * Deterministic test input for the compression tests: text-like runs (long matches), pseudo-random runs
 * (stored blocks) and zero runs, in a few MiB, so several deflate blocks of every kind occur.
 * Generated from a fixed seed with an explicit PRNG: identical on every Node version.
 */
export function sampleData(size = 5 * (1 << 20) + 12345, seed = 0x1234_5678): Buffer {
  let a = seed >>> 0;
  const rand = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const out = Buffer.alloc(size);
  const words = ['nix', 'store', 'layer', 'glibc', 'lib', 'share', 'bin', '/', '-', '.so', '\n', ' ', 'hello', 'strata', '0', '1'];
  let at = 0;
  while (at < size) {
    const kind = rand() % 8;
    const len = Math.min(size - at, 1000 + (rand() % 300_000));
    if (kind < 5) {
      let i = at;
      while (i < at + len) i += out.write(words[rand() % words.length]!, i, at + len - i, 'latin1');
    } else if (kind < 7) {
      for (let i = at; i < at + len; i++) out[i] = rand() & 0xff;
    } // else: zeros (already)
    at += len;
  }
  return out;
}

/** The inputs every block codec is checked on: edges of the block size, zeros, the mixed sample. */
export function codecInputs(): [string, Buffer][] {
  return [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from('x')],
    ['one block exactly', randomBytes(BLOCK_SIZE)],
    ['one block + 1', randomBytes(BLOCK_SIZE + 1)],
    ['zeros, 3 blocks', Buffer.alloc(3 * BLOCK_SIZE)],
    ['mixed sample', sampleData()],
  ];
}

/** `data` cut into BLOCK_SIZE pieces from `from` (the last one shorter): one compressed unit each. */
export function blocksOf(data: Buffer, from = 0): Buffer[] {
  const out: Buffer[] = [];
  for (let at = from; at < data.length; at += BLOCK_SIZE) out.push(data.subarray(at, Math.min(data.length, at + BLOCK_SIZE)));
  return out;
}

export const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** `data` through a BlockCompressor with `codec`, written in chunks of `chunkSizes(i)` bytes. */
export async function compressWith(pool: CompressPool, codec: BlockCompression, data: Buffer, chunkSizes: (i: number) => number): Promise<{ bytes: Buffer; digest: string; size: number; uncompressedSize: number }> {
  const parts: Buffer[] = [];
  const c = new BlockCompressor({ write: async (b) => void parts.push(Buffer.from(b)) }, pool, codec);
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = Math.max(1, chunkSizes(i));
    await c.write(data.subarray(at, at + n));
    at += n;
  }
  const r = await c.finish();
  return { bytes: Buffer.concat(parts), ...r };
}
