/**
 * The layer tar writer: deterministic bytes, every file read once, the DiffID hashed as the
 * bytes stream past.
 *
 * Why it is shaped like this (design-notes §5): per-file stream setup and small writes are what
 * make a naive tar pipeline 3x slower than GNU tar. So the tar byte stream is cut into ~1 MiB
 * chunks planned ahead of time. Planning a chunk encodes the headers that fall in it (cheap,
 * synchronous), reads small files straight into it (inline: see readSmallFileSync) and turns
 * larger file data into positional reads into the chunk's buffer on the libuv thread pool.
 * Several chunks are in flight at once; finished chunks go, in order, to the hash (on a worker
 * thread, see hasher.ts) and to the BlobWriter. Memory is bounded by (chunks in flight +
 * writes in flight + hash slots) x 1 MiB, whatever the size of the layer.
 *
 * Measured on a 2-core VM with the synthetic 840 MB closure (bench/build.ts): hashing on the
 * main thread made that thread the bottleneck (~1.6x GNU tar); a thread-pool round trip per
 * small-file syscall cost more than the syscall. Both are why the design is not the obvious one.
 */
import { close, closeSync, fstat, fstatSync, lstatSync, open, openSync, read, readSync, constants as fsConstants } from 'node:fs';
import type { Digest } from '../image/digest.js';
import type { BlobWriter } from '../transports/types.js';
import { StrataError } from '../util/errors.js';
import type { TarEntry } from './entry.js';
import { ParallelHash } from './hasher.js';
import { END_OF_ARCHIVE, MAX_OCTAL_11, encodeHeader, planHeader, type HeaderPlan } from './header.js';

/**
 * Bytes already in tar form, copied verbatim from `source` (a cached store-path run, see
 * segments.ts): `size` bytes at `offset`, a whole number of blocks. `sourceSize` is the whole
 * file's size, checked when it is opened. `lastName` is the name of the run's last entry, so the
 * order check goes on across it.
 */
export interface RawRun {
  type: 'raw';
  source: string;
  offset: number;
  size: number;
  sourceSize: number;
  lastName: string;
}

export type TarItem = TarEntry | RawRun;

export interface LayerTarOptions {
  /** mtime written on every header, in seconds since the epoch (already resolved by the caller). */
  mtime: number;
}

/** Target chunk size: large enough that per-chunk costs vanish, small enough to bound memory. */
const CHUNK = 1 << 20;
/** Chunks being read at once: enough to keep the thread pool busy across many small files. */
const CHUNKS_IN_FLIGHT = 6;
/** BlobWriter writes left pending before we wait for the oldest. */
const WRITES_IN_FLIGHT = 4;
/** Files up to this size (padded) are read synchronously; see readSmallFileSync. */
const SYNC_READ_MAX = 64 * 1024;
/** File reads queued on the thread pool at once (the pool has 4 threads by default). */
const FILE_TASKS = 16;

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
 */
export async function writeLayerTar(entries: readonly TarItem[], opts: LayerTarOptions, out: BlobWriter): Promise<{ diffId: Digest; size: number }> {
  const { mtime } = opts;
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_11) {
    throw new StrataError(`mtime ${mtime} is not a whole number of seconds between 0 and ${MAX_OCTAL_11}`);
  }
  const hash = new ParallelHash();
  // Buffers are recycled only when the writer promises not to keep them (see releasesChunks).
  // Recycled buffers can then also be shared memory that the hash worker reads in place,
  // which saves copying every byte once more on the main thread.
  const recycling = out.releasesChunks === true;
  const inPlace = recycling && hash.inPlace;
  const planner = new Planner(entries, mtime, recycling ? (inPlace ? sharedChunks : plainChunks) : undefined);
  const chunks: Chunk[] = [];
  const writes: Promise<void>[] = [];
  let size = 0;
  try {
    for (;;) {
      while (chunks.length < CHUNKS_IN_FLIGHT && !planner.done) chunks.push(planner.next());
      const c = chunks.shift();
      if (c === undefined) break;
      await c.ready;
      const bytes = c.len === c.buf.length ? c.buf : c.buf.subarray(0, c.len);
      let hashed: Promise<void> | undefined;
      if (inPlace) ({ hashed } = await hash.updateInPlace(bytes));
      else await hash.update(bytes);
      size += bytes.length;
      const w = out.write(bytes);
      if (recycling) void Promise.all([w, hashed]).then(() => planner.release(c.buf), () => {});
      w.catch(() => {}); // observed below, in order; this only keeps a later rejection "handled"
      writes.push(w);
      if (writes.length >= WRITES_IN_FLIGHT) await writes.shift();
    }
    for (const w of writes.splice(0)) await w;
  } catch (e) {
    hash.discard();
    planner.abort();
    // Let every read settle before returning, so no file descriptor outlives the call.
    // (pending also covers reads of a chunk whose planning threw half-way.)
    await Promise.allSettled([...planner.pending]);
    await Promise.allSettled(writes);
    await planner.closeAll();
    throw e;
  }
  return { diffId: `sha256:${await hash.digest()}`, size };
}

/**
 * Recycled chunk buffers, kept across layers. Shared ones must never be dropped while the
 * process lives: once posted to the hash worker, a SharedArrayBuffer stays referenced from the
 * worker's (rarely collected) heap, so dropping and reallocating would grow memory per layer.
 */
const sharedChunks: Buffer[] = [];
const plainChunks: Buffer[] = [];
/** Enough for a few layers written at once; any excess is left to the garbage collector. */
const POOL_MAX = 64;

interface Chunk {
  buf: Buffer;
  len: number;
  ready: Promise<void>;
}

/** A file whose data spans several chunks: opened once, closed after its last piece. */
interface SharedFile {
  path: string;
  size: number;
  fd?: Promise<number>;
  /** Padded bytes not yet read into a chunk. */
  left: number;
  closed: boolean;
}

class Planner {
  done = false;
  private i = 0;
  private prevName: Buffer | undefined;
  /** Current entry's plan while its data is being placed into chunks. */
  private plan: HeaderPlan | undefined;
  private dataOff = 0;
  private shared: SharedFile | undefined;
  private readonly open = new Set<SharedFile>();
  /** Every read not yet settled, so a failed write can wait for all of them before returning. */
  readonly pending = new Set<Promise<void>>();
  private readonly limiter = new Limiter(FILE_TASKS);
  private aborted = false;

  /** `pool`: where recycled chunk buffers come from and go back to; undefined: always fresh. */
  constructor(private readonly entries: readonly TarItem[], private readonly mtime: number, private readonly pool?: Buffer[]) {}

  abort(): void {
    this.aborted = true;
  }

  /** Takes back a chunk buffer the BlobWriter (and the hash) are done with. */
  release(buf: Buffer): void {
    if (this.pool && this.pool.length < POOL_MAX) this.pool.push(buf);
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.open].map(async (s) => {
      if (!s.closed && s.fd !== undefined) {
        s.closed = true;
        const fd = await s.fd.catch(() => -1);
        if (fd >= 0) await closeFd(fd);
      }
    }));
  }

  /** Fills one chunk: headers now, file data as reads started on the pool. */
  next(): Chunk {
    const buf = this.pool?.pop() ?? (this.pool === sharedChunks ? Buffer.from(new SharedArrayBuffer(CHUNK)) : Buffer.allocUnsafeSlow(CHUNK));
    const tasks: Promise<void>[] = [];
    let pos = 0;
    while (pos < CHUNK) {
      if (this.plan === undefined) {
        if (this.i === this.entries.length) {
          if (pos + END_OF_ARCHIVE > CHUNK) break;
          buf.fill(0, pos, pos + END_OF_ARCHIVE);
          pos += END_OF_ARCHIVE;
          this.done = true;
          break;
        }
        const entry = this.entries[this.i]!;
        if (entry.type === 'raw') {
          if (entry.size % 512 !== 0) throw new Error(`internal: raw tar run of ${entry.size} bytes is not whole blocks`);
          this.prevName = Buffer.from(entry.lastName);
          if (entry.size > 0) {
            this.plan = { fullName: this.prevName, headerBytes: 0, dataBytes: entry.size };
            this.dataOff = 0;
          } else {
            this.i++;
          }
          continue;
        }
        const plan = planHeader(entry);
        // Headers are never split across chunks; a header group is at most a few KiB.
        if (pos + plan.headerBytes > CHUNK) break;
        this.check(entry, plan);
        encodeHeader(entry, plan, this.mtime, buf, pos);
        pos += plan.headerBytes;
        if (entry.type === 'file' && entry.size === 0 && entry.source !== undefined) checkStillEmpty(entry.source);
        if (plan.dataBytes > 0) {
          this.plan = plan;
          this.dataOff = 0;
        } else {
          this.i++;
        }
        continue;
      }
      // File data (padded to a block); CHUNK and every header are block multiples, so pos is too.
      const entry = this.entries[this.i]!;
      const take = Math.min(this.plan.dataBytes - this.dataOff, CHUNK - pos);
      const task = this.placeData(entry, this.plan.dataBytes, this.dataOff, take, buf, pos);
      if (task) {
        tasks.push(task);
        this.pending.add(task);
        const forget = (): void => void this.pending.delete(task);
        task.then(forget, forget);
      }
      pos += take;
      this.dataOff += take;
      if (this.dataOff === this.plan.dataBytes) {
        this.plan = undefined;
        this.shared = undefined;
        this.i++;
      }
    }
    const ready = tasks.length === 0 ? Promise.resolve() : tasks.length === 1 ? tasks[0]!.then(() => {}) : Promise.all(tasks).then(() => {});
    ready.catch(() => {}); // awaited in order by writeLayerTar; avoid "unhandled" while earlier chunks are awaited
    return { buf, len: pos, ready };
  }

  /** Sorted order is what makes the output reproducible, so it is checked, not assumed. */
  private check(entry: TarEntry, plan: HeaderPlan): void {
    const name = plan.fullName.subarray(0, entry.type === 'directory' ? plan.fullName.length - 1 : plan.fullName.length);
    if (this.prevName !== undefined && Buffer.compare(this.prevName, name) >= 0) {
      throw new Error(`tar entries are not sorted or not unique: ${JSON.stringify(entry.name)} follows ${JSON.stringify(this.prevName.toString())} (use finalizeEntries)`);
    }
    this.prevName = name;
    if (entry.type !== 'file' && entry.type !== 'directory' && entry.type !== 'symlink') {
      throw new StrataError(`${entry.name}: unsupported entry type ${JSON.stringify(entry.type)}`);
    }
    if (entry.type === 'symlink' && !entry.linkTarget) throw new StrataError(`${entry.name}: symlink without a target`);
    if (entry.type === 'file') {
      if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new StrataError(`${entry.name}: invalid size ${entry.size}`);
      if (entry.content !== undefined && entry.content.length !== entry.size) {
        throw new StrataError(`${entry.name}: content is ${entry.content.length} bytes but size says ${entry.size}`);
      }
      if (entry.content === undefined && entry.source === undefined && entry.size !== 0) {
        throw new StrataError(`${entry.name}: a file of ${entry.size} bytes needs a source or content`);
      }
    }
  }

  /** Puts file bytes [off, off+take) (take includes the padding of the last piece) at buf[pos..]. */
  private placeData(entry: TarEntry | RawRun, padded: number, off: number, take: number, buf: Buffer, pos: number): Promise<void> | undefined {
    const size = entry.size;
    const fileBytes = Math.max(0, Math.min(take, size - off));
    if (entry.type !== 'raw' && (entry.content !== undefined || entry.source === undefined)) {
      if (fileBytes > 0) Buffer.from(entry.content!.buffer, entry.content!.byteOffset + off, fileBytes).copy(buf, pos);
      buf.fill(0, pos + fileBytes, pos + take);
      return undefined;
    }
    const path = entry.source!;
    if (entry.type !== 'raw' && off === 0 && take === padded) {
      if (padded <= SYNC_READ_MAX) {
        readSmallFileSync(path, size, buf, pos, padded);
        return undefined;
      }
      return this.limiter.run(() => (this.aborted ? Promise.resolve() : readWholeFile(path, size, buf, pos, padded)));
    }
    // A file read piece by piece (it spans chunks), or a raw run, which is a range of its file.
    const [fileOffset, fileSize] = entry.type === 'raw' ? [entry.offset, entry.sourceSize] : [0, size];
    let shared = this.shared;
    if (shared === undefined) {
      this.shared = shared = { path, size: fileSize, left: padded, closed: false };
      this.open.add(shared);
    }
    const s = shared;
    return this.limiter.run(async () => {
      if (this.aborted) return;
      // Opened by whichever piece runs first, so the open, too, respects the limiter.
      const fd = await (s.fd ??= openChecked(path, fileSize));
      if (fileBytes > 0) {
        const got = await readFull(fd, buf, pos, fileBytes, fileOffset + off, fileBytes);
        if (got !== fileBytes) throw changedSize(path, fileSize);
      }
      buf.fill(0, pos + fileBytes, pos + take);
      s.left -= take;
      if (s.left === 0 && !s.closed) {
        s.closed = true;
        this.open.delete(s);
        await closeFd(fd);
      }
    });
  }
}

function changedSize(path: string, size: number, now?: number): StrataError {
  return new StrataError(`${path} changed while the layer was being written (it was ${size} bytes when scanned${now === undefined ? '' : `, now ${now}`})`);
}

/**
 * Reads a whole file into buf[pos..pos+padded), zero-filling the padding. Growth is detected
 * without an extra stat when the padding has room: asking for one byte more than expected
 * returns that byte only if the file grew. Files that end on a block boundary get an fstat.
 */
async function readWholeFile(path: string, size: number, buf: Buffer, pos: number, padded: number): Promise<void> {
  const fd = await openFd(path);
  try {
    const probe = padded > size;
    if (!probe) {
      const now = await fstatSize(fd, path);
      if (now !== size) throw changedSize(path, size, now);
    }
    const got = await readFull(fd, buf, pos, probe ? size + 1 : size, 0, size);
    if (got !== size) throw changedSize(path, size);
    buf.fill(0, pos + size, pos + padded);
  } finally {
    await closeFd(fd);
  }
}

/**
 * Small files are read synchronously on the main thread, while the chunk is planned. A trip
 * through the thread pool costs two thread wake-ups per call (open, read, close: six per
 * file); for a file of a few KiB that is far more than the read itself, and on a machine with
 * few cores those wake-ups steal the CPU that hashing needs. Large files, whose cost is the
 * copy and not the call, go through the pool and overlap with hashing. The longest the event
 * loop is held is one chunk's worth of small files (about a millisecond on a warm cache).
 */
function readSmallFileSync(path: string, size: number, buf: Buffer, pos: number, padded: number): void {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw ioError(path, e as NodeJS.ErrnoException);
  }
  try {
    const probe = padded > size;
    if (!probe) {
      const now = fstatSync(fd).size;
      if (now !== size) throw changedSize(path, size, now);
    }
    // As in readWholeFile: one byte more than expected shows growth; a short read means EOF.
    const want = probe ? size + 1 : size;
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, pos + got, want - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got !== size) throw changedSize(path, size);
    buf.fill(0, pos + size, pos + padded);
  } catch (e) {
    if (e instanceof StrataError) throw e;
    throw ioError(path, e as NodeJS.ErrnoException);
  } finally {
    closeSync(fd);
  }
}

/** An empty file has nothing to read; one lstat proves it is still an empty regular file. */
function checkStillEmpty(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    throw ioError(path, e as NodeJS.ErrnoException);
  }
  if (!st.isFile() || st.size !== 0) throw changedSize(path, 0, st.size);
}

async function openChecked(path: string, size: number): Promise<number> {
  const fd = await openFd(path);
  const now = await fstatSize(fd, path).catch(async (e: unknown) => {
    await closeFd(fd);
    throw e;
  });
  if (now !== size) {
    await closeFd(fd);
    throw changedSize(path, size, now);
  }
  return fd;
}

/**
 * Reads up to `want` bytes at `position`, looping over short reads until at least `need` bytes
 * arrived or the file ended. A short read of a regular file means end of file, so reading stops
 * once `need` is met without a further call.
 */
async function readFull(fd: number, buf: Buffer, pos: number, want: number, position: number, need: number): Promise<number> {
  let got = 0;
  while (got < need) {
    const n = await new Promise<number>((res, rej) => read(fd, buf, pos + got, want - got, position + got, (e, b) => (e ? rej(e) : res(b))));
    if (n === 0) break;
    got += n;
  }
  return got;
}

// O_NOATIME would avoid touching atimes, but fails with EPERM on files we do not own.
const OPEN_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0);

function openFd(path: string): Promise<number> {
  return new Promise((res, rej) => open(path, OPEN_FLAGS, (e, fd) => (e ? rej(ioError(path, e)) : res(fd))));
}

function fstatSize(fd: number, path: string): Promise<number> {
  return new Promise((res, rej) => fstat(fd, (e, s) => (e ? rej(ioError(path, e)) : res(s.size))));
}

function closeFd(fd: number): Promise<void> {
  return new Promise((res) => close(fd, () => res()));
}

function ioError(path: string, e: NodeJS.ErrnoException): StrataError {
  if (e.code === 'ENOENT') return new StrataError(`${path} disappeared while the layer was being written`, { cause: e });
  if (e.code === 'ELOOP') return new StrataError(`${path} became a symlink while the layer was being written`, { cause: e });
  return new StrataError(`cannot read ${path}: ${e.message}`, { cause: e });
}

/** A FIFO concurrency limit: tasks start in the order they were queued (chunk order). */
class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly max: number) {}

  run(fn: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const start = (): void => {
        this.active++;
        fn().then(resolve, reject).finally(() => {
          this.active--;
          this.queue.shift()?.();
        });
      };
      if (this.active < this.max) start();
      else this.queue.push(start);
    });
  }
}
