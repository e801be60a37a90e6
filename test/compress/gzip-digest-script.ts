/**
 * Run by cross-node.test.ts under several Node binaries: compresses the fixed sample through the
 * gzip module (worker pool and inline) with the given chunk size and prints the digests as JSON.
 * Usage: node gzip-digest-script.js <chunkSize> [outFile]
 */
import { writeFileSync } from 'node:fs';
import { CompressPool } from '../../src/compress/block-pool.js';
import { BlockCompressor } from '../../src/compress/block-writer.js';
import { sampleData } from './sample-data.js';

async function gzip(data: Buffer, chunk: number, workers: number): Promise<{ digest: string; bytes: Buffer }> {
  const pool = new CompressPool(workers);
  const parts: Buffer[] = [];
  try {
    const gz = new BlockCompressor({ write: async (b) => void parts.push(Buffer.from(b)) }, pool, 'gzip');
    for (let at = 0; at < data.length; at += chunk) await gz.write(data.subarray(at, at + chunk));
    const { digest } = await gz.finish();
    return { digest, bytes: Buffer.concat(parts) };
  } finally {
    await pool.close();
  }
}

const chunk = Number(process.argv[2] ?? 65536);
const out = process.argv[3];
const data = sampleData();
const threaded = await gzip(data, chunk, 2);
const inline = await gzip(data, chunk, 0);
if (out) writeFileSync(out, threaded.bytes);
process.stdout.write(JSON.stringify({ node: process.version, threaded: threaded.digest, inline: inline.digest, size: threaded.bytes.length }) + '\n');
