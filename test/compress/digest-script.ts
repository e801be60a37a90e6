/**
 * Run by cross-node.test.ts under several Node binaries: compresses the fixed sample with every
 * block codec (worker pool and inline) with the given chunk size and prints the digests as JSON.
 * Usage: node digest-script.js <chunkSize> [outPrefix]   (writes <outPrefix>.gzip and .zstd)
 */
import { writeFileSync } from 'node:fs';
import { CompressPool } from '../../src/compress/block-pool.js';
import { BlockCompressor } from '../../src/compress/block-writer.js';
import type { BlockCompression } from '../../src/compress/codec.js';
import { sampleData } from './sample-data.js';

async function compress(codec: BlockCompression, data: Buffer, chunk: number, workers: number): Promise<{ digest: string; bytes: Buffer }> {
  const pool = new CompressPool(workers);
  const parts: Buffer[] = [];
  try {
    const c = new BlockCompressor({ write: async (b) => void parts.push(Buffer.from(b)) }, pool, codec);
    for (let at = 0; at < data.length; at += chunk) await c.write(data.subarray(at, at + chunk));
    const { digest } = await c.finish();
    return { digest, bytes: Buffer.concat(parts) };
  } finally {
    await pool.close();
  }
}

export interface CodecRun {
  threaded: string;
  inline: string;
  size: number;
}

const chunk = Number(process.argv[2] ?? 65536);
const out = process.argv[3];
const data = sampleData();
const result: Record<string, unknown> = { node: process.version };
for (const codec of ['gzip', 'zstd'] as const) {
  const threaded = await compress(codec, data, chunk, 2);
  const inline = await compress(codec, data, chunk, 0);
  if (out) writeFileSync(`${out}.${codec}`, threaded.bytes);
  result[codec] = { threaded: threaded.digest, inline: inline.digest, size: threaded.bytes.length } satisfies CodecRun;
}
process.stdout.write(JSON.stringify(result) + '\n');
