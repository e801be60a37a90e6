/**
 * sha256 computed on a worker thread, so hashing (~0.7 s per GB) overlaps with the main
 * thread's work (headers, small-file reads, handing chunks to the BlobWriter) instead of
 * adding to it. On a machine with two cores the main thread was the bottleneck of the writer;
 * moving the hash off it is the largest single saving.
 *
 * Each chunk is copied into one of a few reused SharedArrayBuffer slots (a 1 MiB memcpy is ~1/10
 * of hashing it). Sharing the producer's own buffers instead would leak: a buffer posted to a
 * worker stays referenced from the worker's heap until that heap is collected, which, with so
 * little allocation there, is almost never (RSS grew by the size of the layer). Reusing the
 * producer's buffers is not ours to decide: a BlobWriter may keep a chunk after its write
 * resolved. Slots, in contrast, are only ever read by the worker. One worker
 * serves every layer of the process (starting one costs tens of milliseconds); it is unref'd
 * whenever no hash is in progress, so it never keeps the process alive.
 */
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { HashReply, HashRequest } from './hash-worker.js';

interface Job {
  waiters: (() => void)[];
  /** One entry per posted update, in order: what to do when its ack arrives. */
  onAck: ((() => void) | undefined)[];
  outstanding: number;
  done?: (hex: string) => void;
  fail: (e: unknown) => void;
}

let worker: Worker | undefined;
let workerBroken = false;
const jobs = new Map<number, Job>();
let nextJob = 1;

function getWorker(): Worker | undefined {
  if (workerBroken) return undefined;
  if (worker) return worker;
  try {
    worker = new Worker(new URL('./hash-worker.js', import.meta.url));
  } catch {
    workerBroken = true;
    return undefined;
  }
  worker.unref();
  worker.on('message', (m: HashReply) => {
    const job = jobs.get(m.job);
    if (!job) return;
    if (m.kind === 'ack') {
      job.outstanding--;
      job.onAck.shift()?.();
      job.waiters.shift()?.();
    } else {
      jobs.delete(m.job);
      if (jobs.size === 0) worker?.unref();
      job.done?.(m.hex);
    }
  });
  const die = (e: unknown): void => {
    workerBroken = true;
    worker = undefined;
    for (const j of jobs.values()) j.fail(e instanceof Error ? e : new Error(`hash worker exited (${String(e)})`));
    jobs.clear();
  };
  worker.on('error', die);
  worker.on('exit', (code) => die(new Error(`hash worker exited with code ${code}`)));
  return worker;
}

const SLOT_SIZE = 1 << 20;
/**
 * Slots are shared by every hash of the process and reused forever: each SharedArrayBuffer
 * posted to the worker stays alive as long as the worker's heap references it, and that heap
 * is rarely collected, so fresh slots per layer would pile up (100 layers: +800 MB RSS).
 */
const freeSlots: SharedArrayBuffer[] = [];

/** sha256 of the bytes passed to update(), in order; at most `slots` MiB wait unhashed. */
export class ParallelHash {
  /** Slots this hash holds (posted or free); returned to freeSlots when the hash ends. */
  private readonly free: SharedArrayBuffer[] = [];
  private readonly busy: SharedArrayBuffer[] = [];
  private readonly id = nextJob++;
  private readonly w: Worker | undefined;
  private readonly inline: Hash | undefined;
  private readonly job: Job | undefined;
  private failure: unknown;

  constructor(private readonly slots = 8) {
    this.w = getWorker();
    if (this.w === undefined) {
      this.inline = createHash('sha256');
      return;
    }
    for (let i = 0; i < slots; i++) this.free.push(freeSlots.pop() ?? new SharedArrayBuffer(SLOT_SIZE));
    this.job = { waiters: [], onAck: [], outstanding: 0, fail: (e) => { this.failure = e; this.job!.waiters.splice(0).forEach((f) => f()); } };
    jobs.set(this.id, this.job);
    this.w.ref();
  }

  /** Queues `chunk` for hashing (copied: the caller may reuse it at once). */
  async update(chunk: Buffer): Promise<void> {
    if (this.inline) {
      this.inline.update(chunk);
      return;
    }
    const job = this.job!;
    for (let off = 0; off < chunk.length; off += SLOT_SIZE) {
      this.check();
      // Acks arrive in order, so the oldest busy slot is the one an ack frees.
      for (;;) {
        if (job.outstanding < this.busy.length) this.free.push(...this.busy.splice(0, this.busy.length - job.outstanding));
        if (this.free.length > 0 || this.failure !== undefined) break;
        await new Promise<void>((r) => job.waiters.push(r));
      }
      this.check();
      const slot = this.free.pop()!;
      const len = Math.min(SLOT_SIZE, chunk.length - off);
      new Uint8Array(slot, 0, len).set(chunk.subarray(off, off + len));
      this.busy.push(slot);
      job.outstanding++;
      job.onAck.push(undefined);
      this.w!.postMessage({ job: this.id, kind: 'update', sab: slot, offset: 0, length: len } satisfies HashRequest);
    }
  }

  /** True when updateInPlace is available (a worker runs). */
  get inPlace(): boolean {
    return this.inline === undefined;
  }

  /**
   * Queues a SharedArrayBuffer-backed chunk for hashing without copying it. The caller must not
   * change it before `hashed` resolves; the call itself resolves once few enough chunks wait.
   * The caller must also keep reusing such buffers rather than drop them: see freeSlots.
   */
  async updateInPlace(chunk: Buffer): Promise<{ hashed: Promise<void> }> {
    this.check();
    if (!(chunk.buffer instanceof SharedArrayBuffer)) throw new Error('updateInPlace needs a SharedArrayBuffer-backed chunk');
    const job = this.job!;
    let done!: () => void;
    const hashed = new Promise<void>((r) => (done = r));
    job.outstanding++;
    job.onAck.push(done);
    this.w!.postMessage({ job: this.id, kind: 'update', sab: chunk.buffer, offset: chunk.byteOffset, length: chunk.length } satisfies HashRequest);
    while (job.outstanding > this.slots && this.failure === undefined) await new Promise<void>((r) => job.waiters.push(r));
    this.check();
    return { hashed };
  }

  async digest(): Promise<string> {
    if (this.inline) return this.inline.digest('hex');
    this.check();
    const job = this.job!;
    return new Promise<string>((resolve, reject) => {
      job.done = (hex) => {
        this.releaseSlots();
        resolve(hex);
      };
      job.fail = reject;
      this.w!.postMessage({ job: this.id, kind: 'end' } satisfies HashRequest);
    });
  }

  /** Forgets an unfinished hash (the write failed). */
  discard(): void {
    if (this.inline || !jobs.has(this.id)) return;
    // Ending it on the worker frees its state; the reply is ignored.
    jobs.get(this.id)!.done = () => this.releaseSlots();
    this.w!.postMessage({ job: this.id, kind: 'end' } satisfies HashRequest);
  }

  /** Called once the worker has answered 'end': it has read every slot this hash posted. */
  private releaseSlots(): void {
    freeSlots.push(...this.free.splice(0), ...this.busy.splice(0));
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
