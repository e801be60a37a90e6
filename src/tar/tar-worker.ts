/**
 * Worker side of the tar writer (writer.ts): makes one layer tar at a time, filling shared slots
 * with ChunkFiller and hashing each slot right after filling it, while its bytes are still in
 * this core's cache (sha256 runs ~1.5x faster on hot data than on data another thread wrote).
 *
 * Slots are handed over through an Int32Array of states (0 free, 1 filled) so the worker can
 * block on a full ring with Atomics.wait: it has nothing else to do. The main thread posts each
 * job and reads `chunk` messages in order; it frees a slot once the slot's bytes were written.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { StrataError } from '../util/errors.js';
import { ChunkFiller, type TarItem } from './chunk-filler.js';

export type TarWorkerRequest =
  | { type: 'init'; slots: SharedArrayBuffer[]; control: SharedArrayBuffer }
  | { type: 'job'; id: number; items: readonly TarItem[]; mtime: number };

export type TarWorkerReply =
  | { type: 'chunk'; id: number; slot: number; len: number }
  | { type: 'done'; id: number; hex: string; size: number }
  | { type: 'error'; id: number; message: string; strata: boolean; aborted: boolean };

/** control[ABORT] is set by the main thread to stop the current job at the next slot. */
export const ABORT = 0;
/** control[SLOT_STATE + i] is slot i's state. */
export const SLOT_STATE = 1;

let slots: Buffer[] = [];
let control: Int32Array | undefined;

class Aborted extends Error {}

function run(id: number, items: readonly TarItem[], mtime: number): void {
  const state = control!;
  const filler = new ChunkFiller(items, mtime);
  const hash = createHash('sha256');
  let size = 0;
  let next = 0;
  try {
    while (!filler.done) {
      const at = SLOT_STATE + next;
      while (Atomics.load(state, at) !== 0 && Atomics.load(state, ABORT) === 0) Atomics.wait(state, at, 1);
      if (Atomics.load(state, ABORT) !== 0) throw new Aborted();
      const buf = slots[next]!;
      const len = filler.fill(buf);
      hash.update(buf.subarray(0, len));
      size += len;
      Atomics.store(state, at, 1);
      parentPort!.postMessage({ type: 'chunk', id, slot: next, len } satisfies TarWorkerReply);
      next = (next + 1) % slots.length;
    }
    parentPort!.postMessage({ type: 'done', id, hex: hash.digest('hex'), size } satisfies TarWorkerReply);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    parentPort!.postMessage({ type: 'error', id, message, strata: e instanceof StrataError, aborted: e instanceof Aborted } satisfies TarWorkerReply);
  } finally {
    filler.close();
  }
}

parentPort?.on('message', (m: TarWorkerRequest) => {
  if (m.type === 'init') {
    slots = m.slots.map((s) => Buffer.from(s));
    control = new Int32Array(m.control);
  } else {
    run(m.id, m.items, m.mtime);
  }
});
