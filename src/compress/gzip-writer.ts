/**
 * Streaming gzip for layer blobs: uncompressed bytes in (any chunk sizes), one gzip member out,
 * the blob digest and size computed as the compressed bytes leave.
 *
 * Incoming bytes are copied into fixed BLOCK_SIZE blocks, so block boundaries are offsets of the
 * uncompressed stream and never depend on how callers chunk their writes. Full blocks go to the
 * DeflatePool at once (several in flight, in parallel); their results are written strictly in
 * block order. Memory is bounded: at most `maxBlocksInFlight` blocks (input + output) per stream.
 */
import { createHash } from 'node:crypto';
import type { Digest } from '../image/digest.js';
import { crc32 } from './crc32.js';
import { BLOCK_SIZE, DICT_SIZE } from './deflate-block.js';
import type { DeflatePool } from './deflate-pool.js';
import { GZIP_HEADER, gzipTrailer } from './gzip-format.js';

/** Where bytes go, in order; a write's promise settles when the bytes may be reused or are stored. */
export interface ByteSink {
  write(chunk: Buffer): Promise<void>;
}

export interface GzipResult {
  /** sha256 of the gzip bytes: the blob digest. */
  digest: Digest;
  /** Gzip bytes written. */
  size: number;
  /** Uncompressed bytes consumed. */
  uncompressedSize: number;
}

export class GzipCompressor implements ByteSink {
  private block: Uint8Array;
  private fill = 0;
  /** Last DICT_SIZE bytes of the previous block: the next block's dictionary. */
  private dict: Uint8Array | undefined;
  private crc = 0;
  private inSize = 0;
  private outSize = 0;
  private readonly hash = createHash('sha256');
  /** Per submitted block, settles once its output has been written downstream. */
  private readonly emitted: Promise<void>[] = [];
  private tail: Promise<void>;
  private error: unknown;
  private finished = false;

  constructor(
    private readonly out: ByteSink,
    private readonly pool: DeflatePool,
    private readonly maxBlocksInFlight = Math.max(2, pool.size * 2 + 1),
  ) {
    this.block = pool.takeBlock(BLOCK_SIZE);
    this.tail = this.emit(GZIP_HEADER).catch((e: unknown) => {
      this.error ??= e;
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.error !== undefined) throw this.error;
    if (this.finished) throw new Error('internal: write after finish');
    this.crc = crc32(chunk, this.crc);
    this.inSize += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(BLOCK_SIZE - this.fill, chunk.length - at);
      this.block.set(chunk.subarray(at, at + take), this.fill);
      this.fill += take;
      at += take;
      if (this.fill === BLOCK_SIZE) {
        this.submit(false);
        // Backpressure: wait for the oldest block once enough are in flight.
        while (this.emitted.length >= this.maxBlocksInFlight) await this.emitted.shift();
        if (this.error !== undefined) throw this.error;
      }
    }
  }

  /** Compresses what is left, writes the trailer and waits for every byte to be written. */
  async finish(): Promise<GzipResult> {
    if (this.error !== undefined) throw this.error;
    this.finished = true;
    this.submit(true);
    this.tail = this.tail.then(() => this.emit(gzipTrailer(this.crc, this.inSize)));
    await this.tail;
    if (this.error !== undefined) throw this.error;
    return { digest: `sha256:${this.hash.digest('hex')}`, size: this.outSize, uncompressedSize: this.inSize };
  }

  /** Waits for work already started, so that no write is still running when the caller cleans up. */
  async settle(): Promise<void> {
    await this.tail.catch(() => undefined);
  }

  private submit(last: boolean): void {
    const block = this.fill === BLOCK_SIZE ? this.block : this.block.slice(0, this.fill);
    const dict = this.dict;
    // Copy the next dictionary out before the block's buffer is transferred to a worker.
    if (!last) this.dict = this.block.slice(BLOCK_SIZE - DICT_SIZE);
    const result = this.pool.deflate(block, dict, last);
    result.catch(() => undefined); // observed in order below
    this.block = last ? new Uint8Array(0) : this.pool.takeBlock(BLOCK_SIZE);
    this.fill = 0;
    const done = this.tail.then(async () => {
      if (this.error !== undefined) return;
      await this.emit(await result);
    });
    this.tail = done.catch((e: unknown) => {
      this.error ??= e;
    });
    this.emitted.push(this.tail);
  }

  private async emit(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    this.hash.update(bytes);
    this.outSize += bytes.length;
    await this.out.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
}
