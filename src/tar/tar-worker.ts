/**
 * Worker side of the tar writer (writer.ts): makes one layer tar at a time, filling shared slots
 * with ChunkFiller and hashing each slot right after filling it, while its bytes are still in
 * this core's cache (sha256 runs ~1.5x faster on hot data than on data another thread wrote).
 *
 * When the layer's destinations are files (FileRegion), the worker writes to them itself with
 * pwrite. A slot the main thread still needs (to write it out, or to hash it, see writer.ts) is
 * handed over through an Int32Array of states (0 free, 1 filled), so the worker can block on a
 * full ring with Atomics.wait: it has nothing else to do. The main thread reads `chunk` messages
 * in order and frees each slot once it is done with it. A job that needs neither never waits.
 *
 * A job that only copies raw runs of open files into file regions, unhashed (a trusted cached
 * layer going into an archive), is done in the kernel with copy_file_range where it can be
 * (src/util/copy-range.ts): its bytes never enter a slot.
 */
import { createHash } from 'node:crypto';
import { fstatSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { StrataError } from '../util/errors.js';
import { copyRangeSync } from '../util/copy-range.js';
import { ChunkFiller, type RawRun, type TarItem } from './chunk-filler.js';
import { targetFailed, writeToTargets, type Dropped } from './direct-targets.js';
import { ABORT, SLOT_STATE, type DirectTarget, type TarWorkerReply, type TarWorkerRequest } from './tar-worker-protocol.js';

let slots: Buffer[] = [];
let control: Int32Array | undefined;

/** The main thread asked to stop (its BlobWriter failed); it reports its own error. */
class Aborted extends Error {}


/**
 * The raw runs copied into every target in the kernel: the size copied, and targets given up.
 * Undefined when the kernel cannot copy them (nothing is lost: the caller then writes every byte
 * itself, at the same offsets).
 */
function kernelCopy(items: readonly TarItem[], targets: readonly DirectTarget[]): { size: number; dropped: Dropped[] } | undefined {
  const runs = items.filter((i): i is RawRun & { fd: number } => i.type === 'raw' && i.fd !== undefined);
  if (runs.length !== items.length || targets.length === 0) return undefined;
  // A source whose size changed is left to the filler, which reports it.
  if (runs.some((r) => fstatSync(r.fd).size !== r.sourceSize)) return undefined;
  const size = runs.reduce((n, r) => n + r.size, 0);
  const dropped: Dropped[] = [];
  for (const [i, t] of targets.entries()) {
    if (t.limit !== undefined && size > t.limit) return undefined;
    try {
      let at = t.offset;
      for (const r of runs) {
        if (!copyRangeSync(r.fd, r.offset, t.fd, at, r.size)) return undefined;
        at += r.size;
      }
    } catch (e) {
      targetFailed(t, i, e, dropped);
    }
  }
  return { size, dropped };
}

/** The job through the slots: filled, hashed, written to its targets, handed to the main thread where needed. */
function fill(id: number, filler: ChunkFiller, targets: DirectTarget[] | undefined, hashHere: boolean, noHash: boolean): { hex: string; size: number; dropped: Dropped[] } {
  const hash = createHash('sha256');
  const dropped: Dropped[] = [];
  let size = 0;
  const state = control!;
  let next = 0;
  while (!filler.done) {
    const at = SLOT_STATE + next;
    while (Atomics.load(state, at) !== 0 && Atomics.load(state, ABORT) === 0) Atomics.wait(state, at, 1);
    if (Atomics.load(state, ABORT) !== 0) throw new Aborted();
    const buf = slots[next]!;
    const len = filler.fill(buf);
    if (len === 0) continue; // a plain stream's end: nothing more came
    const bytes = buf.subarray(0, len);
    if (hashHere) hash.update(bytes);
    if (targets !== undefined) writeToTargets(targets, bytes, size, dropped);
    size += len;
    // Written (and hashed, or not to be) here: the slot is free again, nothing goes to the main thread.
    if (targets !== undefined && (hashHere || noHash)) continue;
    Atomics.store(state, at, 1);
    parentPort!.postMessage({ type: 'chunk', id, slot: next, len } satisfies TarWorkerReply);
    next = (next + 1) % slots.length;
  }
  return { hex: hashHere ? hash.digest('hex') : '', size, dropped };
}

function run(id: number, items: readonly TarItem[], mtime: number, tar: boolean, targets: DirectTarget[] | undefined, hashHere: boolean, noHash: boolean): void {
  const filler = new ChunkFiller(items, mtime, { tar });
  let reply: TarWorkerReply;
  try {
    // Unhashed raw runs going only to files: in the kernel where it can (no byte enters a slot).
    const copied = noHash && !tar && targets !== undefined ? kernelCopy(items, targets) : undefined;
    reply = { type: 'done', id, ...(copied ? { hex: '', ...copied } : fill(id, filler, targets, hashHere, noHash)) };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    reply = { type: 'error', id, message, strata: e instanceof StrataError };
  }
  // Closed before replying: once the caller hears the job ended, no descriptor of it is open.
  try {
    filler.close();
  } catch {
    // a close error changes nothing about the bytes already read
  }
  parentPort!.postMessage(reply satisfies TarWorkerReply);
}

parentPort?.on('message', (m: TarWorkerRequest) => {
  if (m.type === 'init') {
    slots = m.slots.map((s) => Buffer.from(s));
    control = new Int32Array(m.control);
  } else {
    run(m.id, m.items, m.mtime, m.tar, m.targets, m.hashHere && !m.noHash, m.noHash === true);
  }
});
