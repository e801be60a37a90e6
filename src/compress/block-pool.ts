/**
 * A fixed set of worker threads that compress blocks, each with the codec its request names
 * (pigz's model, for any block codec). One pool serves every layer of a build, so one large layer
 * can use every core and several small ones share them.
 *
 * `size: 0` compresses on the calling thread instead: same function, same bytes (tests compare
 * the two), useful where threads are unwanted.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { blockCodec, type BlockCompression } from './codec.js';
import { BLOCK_SIZE } from './block-size.js';
import type { BlockRequest, BlockResponse } from './block-worker.js';

interface Pending {
  resolve(out: Uint8Array): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  busy: number;
}

export class CompressPool {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly queue: { req: BlockRequest; transfer: ArrayBuffer[] }[] = [];
  private nextId = 0;
  private failed: Error | undefined;
  /** Full-size block buffers back from workers, reused by takeBlock (less garbage, lower RSS). */
  private readonly spare: Uint8Array[] = [];
  private closed = false;

  /** Blocks sent to one worker before it answers: two keeps it busy while its answer travels back. */
  private static readonly PER_WORKER = 2;

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      // Spelled from dist/src (one directory up): the same file from this module and from the CLI bundle (src/cli/bundle.mjs).
      const worker = new Worker(new URL('../compress/block-worker.js', import.meta.url));
      const slot: Slot = { worker, busy: 0 };
      worker.on('message', (m: BlockResponse) => this.answer(slot, m));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`compression worker exited unexpectedly (code ${code})`));
      });
      // Idle workers must not keep a finished CLI alive.
      worker.unref();
      this.slots.push(slot);
    }
  }

  /**
   * Compresses one block with `codec`. `block` is transferred to the worker when it owns its
   * whole ArrayBuffer (the caller must not touch it afterwards).
   */
  compress(codec: BlockCompression, block: Uint8Array): Promise<Uint8Array> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.size === 0) {
      return blockCodec(codec).load().then((compress) => {
        const out = compress(block);
        // Compressed synchronously: the block's buffer is free again at once.
        if (block.length === BLOCK_SIZE && this.spare.length < 2) this.spare.push(block);
        return out;
      });
    }
    const id = this.nextId++;
    const req: BlockRequest = { id, codec, block };
    const transfer: ArrayBuffer[] = [];
    if (block.byteOffset === 0 && block.byteLength === block.buffer.byteLength) transfer.push(block.buffer as ArrayBuffer);
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.queue.push({ req, transfer });
      this.dispatch();
    });
  }

  /** A BLOCK_SIZE buffer for the next block: a recycled one when available. */
  takeBlock(size: number): Uint8Array {
    const b = this.spare.pop();
    return b !== undefined && b.length === size ? b : new Uint8Array(size);
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let best: Slot | undefined;
      for (const s of this.slots) if (s.busy < CompressPool.PER_WORKER && (best === undefined || s.busy < best.busy)) best = s;
      if (best === undefined) return;
      const { req, transfer } = this.queue.shift()!;
      best.busy++;
      if (best.busy === 1) best.worker.ref(); // work outstanding: keep the process alive for it
      best.worker.postMessage(req, transfer);
    }
  }

  private answer(slot: Slot, m: BlockResponse): void {
    slot.busy--;
    if (slot.busy === 0) slot.worker.unref();
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    if ('error' in m) {
      p?.reject(new Error(`compression worker failed: ${m.error}`));
    } else {
      if (m.block.length === BLOCK_SIZE && this.spare.length < this.size * 2 + 2) this.spare.push(m.block);
      p?.resolve(m.out);
    }
    this.dispatch();
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const p of this.pending.values()) p.reject(this.failed);
    this.pending.clear();
    this.queue.length = 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/** A pool started on first need and shared by every layer of one build, then closed once. */
export function lazyCompressPool(): { get: () => CompressPool; close: () => Promise<void> } {
  let pool: CompressPool | undefined;
  return {
    get: () => (pool ??= new CompressPool(Math.max(1, availableParallelism()))),
    close: async () => pool?.close(),
  };
}
