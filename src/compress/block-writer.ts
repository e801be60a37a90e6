/**
 * Streaming block compression for layer blobs: uncompressed bytes in (any chunk sizes), one
 * compressed unit per block out (gzip members, zstd frames: see codec.ts), the blob digest and
 * size computed as the compressed bytes leave.
 *
 * Incoming bytes are copied into fixed BLOCK_SIZE blocks, so block boundaries are offsets of the
 * uncompressed stream — counted from the start or from the last `boundary()` — and never depend
 * on how callers chunk their writes. Full blocks go to the CompressPool at once (several in
 * flight, in parallel); their units are written strictly in block order. Memory is bounded:
 * at most `maxBlocksInFlight` blocks (input + output) per stream.
 */
import { createHash } from 'node:crypto';
import type { Digest } from '../image/digest.js';
import type { BlockCompression } from './codec.js';
import { BLOCK_SIZE } from './block-size.js';
import type { CompressPool } from './block-pool.js';

/** Where bytes go, in order; a write's promise settles when the bytes may be reused or are stored. */
export interface ByteSink {
  write(chunk: Buffer): Promise<void>;
}

export interface CompressResult {
  /** sha256 of the compressed bytes: the blob digest. */
  digest: Digest;
  /** Compressed bytes written. */
  size: number;
  /** Uncompressed bytes consumed. */
  uncompressedSize: number;
}

export class BlockCompressor implements ByteSink {
  private block: Uint8Array;
  private fill = 0;
  private blocks = 0;
  private inSize = 0;
  private outSize = 0;
  private readonly hash = createHash('sha256');
  /** Per submitted block, settles once its unit has been written downstream. */
  private readonly emitted: Promise<void>[] = [];
  private tail: Promise<void> = Promise.resolve();
  private error: unknown;
  private finished = false;
  /** Where units are also copied (a cache piece being recorded), per block from submit on. */
  private tap: ByteSink | undefined;

  constructor(
    private readonly out: ByteSink,
    private readonly pool: CompressPool,
    private readonly codec: BlockCompression,
    private readonly maxBlocksInFlight = Math.max(2, pool.size * 2 + 1),
  ) {
    this.block = pool.takeBlock(BLOCK_SIZE);
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.error !== undefined) throw this.error;
    if (this.finished) throw new Error('internal: write after finish');
    this.inSize += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(BLOCK_SIZE - this.fill, chunk.length - at);
      this.block.set(chunk.subarray(at, at + take), this.fill);
      this.fill += take;
      at += take;
      if (this.fill === BLOCK_SIZE) await this.submit();
    }
  }

  /**
   * Ends the current unit here, so the bytes that follow start a new one. Callers use it at
   * content-defined places only (never at I/O sizes), or the bytes would depend on scheduling.
   */
  async boundary(): Promise<void> {
    if (this.error !== undefined) throw this.error;
    if (this.fill > 0) await this.submit();
  }

  /**
   * From the next unit on, also copies units to `tap` (undefined stops). Call it right after a
   * boundary(), so that exactly the units of what follows are copied.
   */
  setTap(tap: ByteSink | undefined): void {
    this.tap = tap;
  }

  /**
   * Puts units compressed earlier (a cached store-path run) next in the output, standing for
   * `uncompressedSize` bytes the caller does not write. Must follow a boundary(). `copy` writes the
   * units through `emit` in order; they are hashed and counted like freshly compressed ones.
   */
  async insertCompressed(uncompressedSize: number, copy: (emit: (bytes: Buffer) => Promise<void>) => Promise<void>): Promise<void> {
    if (this.error !== undefined) throw this.error;
    if (this.fill !== 0) throw new Error('internal: insertCompressed without a boundary first');
    this.inSize += uncompressedSize;
    await this.enqueue(() => copy((bytes) => this.emit(bytes, undefined)));
  }

  /** Compresses what is left and waits for every byte to be written. */
  async finish(): Promise<CompressResult> {
    if (this.error !== undefined) throw this.error;
    // An empty stream still is one (empty) unit: a blob of zero bytes is neither gzip nor zstd.
    if (this.fill > 0 || this.blocks === 0) await this.submit();
    this.finished = true;
    await this.tail;
    if (this.error !== undefined) throw this.error;
    return { digest: `sha256:${this.hash.digest('hex')}`, size: this.outSize, uncompressedSize: this.inSize };
  }

  /** Waits for work already started, so that no write is still running when the caller cleans up. */
  async settle(): Promise<void> {
    await this.tail.catch(() => undefined);
  }

  private async submit(): Promise<void> {
    const block = this.fill === BLOCK_SIZE ? this.block : this.block.slice(0, this.fill);
    const result = this.pool.compress(this.codec, block);
    result.catch(() => undefined); // observed in order below
    // A full block's buffer went to a worker; a partial one was copied, so its buffer is reused.
    if (block === this.block) this.block = this.pool.takeBlock(BLOCK_SIZE);
    this.fill = 0;
    const tap = this.tap;
    await this.enqueue(async () => this.emit(await result, tap));
  }

  /**
   * Queues one block's output after every earlier one (`write` runs once they are all out), then
   * applies backpressure: waits for the oldest once enough are in flight.
   */
  private async enqueue(write: () => Promise<void>): Promise<void> {
    this.blocks++;
    const done = this.tail.then(async () => {
      if (this.error === undefined) await write();
    });
    this.tail = done.catch((e: unknown) => {
      this.error ??= e;
    });
    this.emitted.push(this.tail);
    while (this.emitted.length >= this.maxBlocksInFlight) await this.emitted.shift();
    if (this.error !== undefined) throw this.error;
  }

  private async emit(bytes: Uint8Array, tap: ByteSink | undefined): Promise<void> {
    this.hash.update(bytes);
    this.outSize += bytes.length;
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (tap) await Promise.all([this.out.write(b), tap.write(b)]);
    else await this.out.write(b);
  }
}
