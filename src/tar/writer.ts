/**
 * The layer tar writer: deterministic bytes, every file read once, the DiffID hashed as the
 * bytes stream past.
 *
 * Why it is shaped like this (design-notes §5): per-file stream setup, small writes and a
 * thread-pool round trip per small-file syscall are what make a naive tar pipeline 3x slower
 * than GNU tar. So each layer is made on a tar worker thread (tar-worker.ts) that reads the
 * store with plain blocking syscalls into 1 MiB shared slots (chunk-filler.ts) and hashes each
 * slot while it is hot in its core's cache; this thread only hands the filled slots to the
 * BlobWriter, in order, and frees each once written. Layers made at once run on workers of their
 * own, so reading and hashing use every core. Memory is bounded by workers x slots x 1 MiB,
 * whatever the size of the layer. A layer of at most 1 MiB is made here instead (writeInline):
 * workers boot on first need, so a warm rebuild that makes only small layers starts none.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Digest } from '../image/digest.js';
import type { BlobWriter, FileRegion } from '../transports/types.js';
import { StrataError } from '../util/errors.js';
import { ChunkFiller, type TarItem } from './chunk-filler.js';
import { writeToTargets, type Dropped } from './direct-targets.js';
import { END_OF_ARCHIVE, MAX_OCTAL_11, planHeader } from './header.js';
import { ABORT, SLOT_STATE, type TarWorkerReply, type TarWorkerRequest } from './tar-worker-protocol.js';

export type { RawRun, TarItem } from './chunk-filler.js';

export interface LayerTarOptions {
  /** mtime written on every header, in seconds since the epoch (already resolved by the caller). */
  mtime: number;
  /**
   * Files to write the tar to directly, from the worker, instead of through `out`: each gets
   * every byte, and `wrote(size)` (or `failed`, for a best-effort region that failed) at the end.
   */
  direct?: readonly FileRegion[];
  /**
   * false when this thread has heavy work of its own on the layer (compressing it, hashing the
   * compressed blob): the DiffID is then always hashed on the tar worker. Default true.
   */
  mayHashHere?: boolean;
  /** false: made on a tar worker even when small enough for this thread (tests compare the two). Default true. */
  inline?: boolean;
}

/** Exact byte size of the tar writeLayerTar produces for `entries`. */
export function tarSize(entries: readonly TarItem[]): number {
  let n = END_OF_ARCHIVE;
  for (const e of entries) {
    if (e.type === 'raw') {
      n += e.size;
      continue;
    }
    const p = planHeader(e);
    n += p.headerBytes + p.dataBytes;
  }
  return n;
}

/**
 * Writes `entries` (sorted, as finalizeEntries returns them) as a tar to `out` and returns its
 * sha256 (the layer's DiffID) and size. Does not close `out`: the caller may still compress.
 * Chunks are handed to `out.write` in order, at most SLOTS of them pending; when `out` releases
 * chunks once written (releasesChunks), it gets the shared slots themselves, otherwise copies.
 */
export async function writeLayerTar(entries: readonly TarItem[], opts: LayerTarOptions, out: BlobWriter): Promise<{ diffId: Digest; size: number }> {
  const { mtime } = opts;
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_11) {
    throw new StrataError(`mtime ${mtime} is not a whole number of seconds between 0 and ${MAX_OCTAL_11}`);
  }
  let bytes = 0;
  for (const e of entries) bytes += e.size;
  if (opts.inline !== false && bytes <= INLINE_MAX_BYTES && tarSize(entries) <= INLINE_MAX_BYTES) return writeInline(entries, mtime, out, opts.direct);
  const worker = await acquire(bytes);
  const onMain = opts.mayHashHere !== false && active === 0 && !mainHashTaken && bytes >= MAIN_HASH_MIN_BYTES;
  if (onMain) mainHashTaken = true;
  active++;
  try {
    return await worker.run(entries, { mtime, tar: true }, out, opts.direct, onMain ? 'main' : 'worker');
  } finally {
    active--;
    if (onMain) mainHashTaken = false;
    release(worker);
  }
}

/**
 * A layer this small (the customisation layer, a leaf of a few files) is made on this thread:
 * the same ChunkFiller and the same bytes, without waiting for a worker to boot (~40 ms, which a
 * warm rebuild that makes nothing else would spend idle) or handing slots back and forth.
 */
const INLINE_MAX_BYTES = 1 << 20;

async function writeInline(entries: readonly TarItem[], mtime: number, out: BlobWriter, direct: readonly FileRegion[] | undefined): Promise<{ diffId: Digest; size: number }> {
  const filler = new ChunkFiller(entries, mtime, { tar: true });
  const hash = createHash('sha256');
  const dropped: Dropped[] = [];
  let size = 0;
  try {
    while (!filler.done) {
      const buf = Buffer.allocUnsafe(INLINE_MAX_BYTES);
      const len = filler.fill(buf);
      if (len === 0) continue;
      const bytes = buf.subarray(0, len);
      hash.update(bytes);
      if (direct) writeToTargets(direct, bytes, size, dropped);
      else await out.write(bytes);
      size += len;
    }
  } finally {
    try {
      filler.close();
    } catch {
      // a close error changes nothing about the bytes already read
    }
  }
  if (direct) reportRegions(direct, dropped, size);
  return { diffId: `sha256:${hash.digest('hex')}`, size };
}

/** Tells each direct region how its layer went: `wrote(size)`, or `failed` for one given up. */
function reportRegions(direct: readonly FileRegion[], dropped: readonly Dropped[], size: number): void {
  direct.forEach((r, i) => {
    const drop = dropped.find((d) => d.target === i);
    if (drop) r.failed?.(new Error(drop.message));
    else r.wrote(size);
  });
}

/**
 * sha256 of `length` bytes at `offset` of an open file (`size` bytes, checked), computed on a
 * tar worker: cache blobs are verified off this thread, several at once, while it goes on
 * scanning. `fd` stays open (the caller goes on to copy from the inode it verified).
 */
export async function hashFileOnWorker(file: { fd: number; path: string; size: number }, offset = 0, length = file.size - offset): Promise<Digest> {
  return (await copyFileOnWorker(file, [], offset, length)).digest;
}

/**
 * Copies `length` bytes at `offset` of an open file into `regions` on a tar worker, hashing them
 * as they pass: one read of the source for both. A best-effort region that fails is dropped (its
 * `failed` is called), a required one fails the copy.
 */
export async function copyFileOnWorker(file: { fd: number; path: string; size: number }, regions: readonly FileRegion[], offset = 0, length = file.size - offset): Promise<{ digest: Digest; size: number }> {
  const { diffId, size } = await copyRunOnWorker(file, regions, offset, length, 'worker');
  return { digest: diffId, size };
}

/**
 * Copies bytes as copyFileOnWorker does, without hashing them: for a blob already trusted (its
 * file's stamp unchanged since it was verified), whose digest is known. Returns the size copied.
 */
export async function copyTrustedOnWorker(file: { fd: number; path: string; size: number }, regions: readonly FileRegion[], offset = 0, length = file.size - offset): Promise<number> {
  return (await copyRunOnWorker(file, regions, offset, length, 'none')).size;
}

/** A range of an open file, as one raw run, through a tar worker into `regions`. */
async function copyRunOnWorker(file: { fd: number; path: string; size: number }, regions: readonly FileRegion[], offset: number, length: number, hashing: 'worker' | 'none'): Promise<{ diffId: Digest; size: number }> {
  const run: TarItem = { type: 'raw', source: file.path, fd: file.fd, offset, size: length, sourceSize: file.size, lastName: '' };
  const worker = await acquire(length);
  try {
    return await worker.run([run], { mtime: 0, tar: false }, NO_OUTPUT, regions, hashing);
  } finally {
    release(worker);
  }
}

/** The BlobWriter of a job whose bytes all go to direct regions (never called). */
const NO_OUTPUT: BlobWriter = {
  write: () => Promise.reject(new Error('internal: a direct job wrote to its BlobWriter')),
  close: () => Promise.reject(new Error('internal: a direct job closed its BlobWriter')),
  abort: async () => {},
};

/** Slots per worker: enough to keep writes overlapping; each is 1 MiB. */
const SLOTS = 8;
const SLOT_SIZE = 1 << 20;
/**
 * Where a layer is hashed. On its tar worker, as the slot is filled, is cheapest (hot data) and
 * spreads hashing over the workers when several layers are made at once; but it makes each
 * worker read, hash and write one after another. So a large layer that starts alone is hashed
 * here instead, overlapping with its worker's reads and writes, and takes about as long as its
 * I/O, not I/O plus hash. (Measured on the 2-core bench: a single 877 MB layer 1.61 -> 1.27 s;
 * for 100 layers made two at a time, hashing on the workers stays ~0.09 s faster.)
 */
const MAIN_HASH_MIN_BYTES = 32 << 20;
let mainHashTaken = false;
/** Layers being made right now (by any worker). */
let active = 0;

/**
 * A tar worker with its slots and their states. Slots are allocated once per worker and reused for
 * every layer: a SharedArrayBuffer posted to a worker stays referenced from the worker's heap,
 * which is rarely collected, so fresh slots per layer would pile up in RSS.
 */
class TarWorker {
  dead = false;
  private readonly worker: Worker;
  private readonly slots: Buffer[] = [];
  private readonly control: Int32Array;
  private onReply: ((m: TarWorkerReply) => void) | undefined;
  private onDeath: ((e: Error) => void) | undefined;
  private static nextJob = 1;

  constructor() {
    const slots = Array.from({ length: SLOTS }, () => new SharedArrayBuffer(SLOT_SIZE));
    const control = new SharedArrayBuffer(4 * (SLOT_STATE + SLOTS));
    this.slots = slots.map((s) => Buffer.from(s));
    this.control = new Int32Array(control);
    // Spelled from dist/src (one directory up): the same file from this module and from the CLI bundle (src/cli/bundle.mjs).
    this.worker = new Worker(new URL('../tar/tar-worker.js', import.meta.url));
    this.worker.postMessage({ type: 'init', slots, control } satisfies TarWorkerRequest);
    this.worker.on('message', (m: TarWorkerReply) => this.onReply?.(m));
    const die = (e: Error): void => {
      if (this.dead) return;
      this.dead = true;
      this.onDeath?.(e);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`tar worker exited with code ${code}`)));
    this.worker.unref();
  }

  unref(): void {
    this.worker.unref();
  }

  /**
   * Runs one layer; `hashing`: which thread hashes it (see MAIN_HASH_MIN_BYTES), or none (a
   * trusted copy into direct regions: the digest returned is then meaningless).
   */
  run(items: readonly TarItem[], framing: { mtime: number; tar: boolean }, out: BlobWriter, direct: readonly FileRegion[] | undefined, hashing: 'main' | 'worker' | 'none'): Promise<{ diffId: Digest; size: number }> {
    const hashOnMain = hashing === 'main';
    const id = TarWorker.nextJob++;
    const control = this.control;
    const recycling = out.releasesChunks === true;
    for (let i = 0; i < SLOT_STATE + SLOTS; i++) Atomics.store(control, i, 0);
    const free = (slot: number): void => {
      Atomics.store(control, SLOT_STATE + slot, 0);
      Atomics.notify(control, SLOT_STATE + slot);
    };
    const writes = new Set<Promise<void>>();
    const hash = hashOnMain ? createHash('sha256') : undefined;
    let writeError: { error: unknown } | undefined;
    return new Promise((resolve, reject) => {
      // Every write settles before the job does: no write may outlive the call, and no slot of
      // this job may be freed once the worker has moved on to the next one.
      const settle = (outcome: () => void): void => {
        this.onReply = undefined;
        this.onDeath = undefined;
        void Promise.allSettled([...writes]).then(outcome);
      };
      this.onReply = (m) => {
        if (m.id !== id) return;
        if (m.type === 'chunk') {
          if (writeError) return; // the worker stops at its next slot
          const view = this.slots[m.slot]!.subarray(0, m.len);
          hash?.update(view);
          if (direct) return free(m.slot); // already in the files
          let w: Promise<void>;
          try {
            w = out.write(recycling ? view : Buffer.from(view));
          } catch (e) {
            w = Promise.reject(e);
          }
          const done = w.then(() => free(m.slot), (e: unknown) => {
            if (writeError) return;
            writeError = { error: e };
            // Wake the worker wherever it waits; it sees the flag and ends the job.
            Atomics.store(control, ABORT, 1);
            for (let i = 0; i < SLOTS; i++) Atomics.notify(control, SLOT_STATE + i);
          });
          writes.add(done);
          void done.finally(() => writes.delete(done));
        } else if (m.type === 'done') {
          settle(() => {
            if (writeError) return reject(writeError.error);
            if (direct) reportRegions(direct, m.dropped, m.size);
            resolve({ diffId: `sha256:${hash ? hash.digest('hex') : m.hex}`, size: m.size });
          });
        } else {
          settle(() => reject(writeError ? writeError.error : m.strata ? new StrataError(m.message) : new Error(m.message)));
        }
      };
      this.onDeath = (e) => settle(() => reject(writeError ? writeError.error : e));
      this.worker.ref();
      const targets = direct?.map(({ fd, offset, path, limit, bestEffort }) => ({ fd, offset, path, ...(limit !== undefined ? { limit } : {}), ...(bestEffort ? { bestEffort } : {}) }));
      this.worker.postMessage({ type: 'job', id, items, ...framing, hashHere: hash === undefined, ...(hashing === 'none' ? { noHash: true } : {}), ...(targets ? { targets } : {}) } satisfies TarWorkerRequest);
    });
  }
}

/**
 * The workers of the process: one per layer being made at once, up to the number of cores,
 * started on first need and kept (unref'd, so they never hold the process open).
 */
const idle: TarWorker[] = [];
/** Jobs waiting for a worker, largest first. */
const waiting: { bytes: number; resolve: (w: TarWorker) => void }[] = [];
let started = 0;
const MAX_WORKERS = Math.max(1, availableParallelism());

/**
 * A free worker for a job of `bytes` bytes. When every worker is busy, the largest waiting job
 * goes next (equal ones in arrival order): the longest layers start first, so the build does not
 * end on one worker finishing a big layer while the others sit idle. Only the order in which
 * layers are made changes, never their bytes or their place in the output.
 */
async function acquire(bytes: number): Promise<TarWorker> {
  for (let w = idle.pop(); w !== undefined; w = idle.pop()) if (!w.dead) return w;
  if (started < MAX_WORKERS) {
    started++;
    return new TarWorker();
  }
  return new Promise((resolve) => {
    let at = waiting.length;
    while (at > 0 && waiting[at - 1]!.bytes < bytes) at--;
    waiting.splice(at, 0, { bytes, resolve });
  });
}

function release(w: TarWorker): void {
  if (w.dead) {
    started--;
    const next = waiting.shift();
    if (next) {
      started++;
      next.resolve(new TarWorker());
    }
    return;
  }
  const next = waiting.shift();
  if (next) next.resolve(w);
  else {
    w.unref();
    idle.push(w);
  }
}
