/**
 * The layer tar as a sequence of buffer fills: each `fill(buf)` writes the next bytes of the tar
 * (headers, file data, padding, the end-of-archive blocks) into `buf`, synchronously.
 *
 * It runs on a tar worker thread (tar-worker.ts), where blocking is what we want: a read through
 * the libuv thread pool costs two thread wake-ups per call (open, read, close: six per file),
 * more than the syscall itself for the small files a store is mostly made of, and on a machine
 * with few cores those wake-ups steal the CPU the hash needs. Synchronous reads on a thread of
 * our own cost the syscall and nothing else, as in GNU tar.
 *
 * Every file is opened once and read once. Sizes are checked against the scan: a file that grew,
 * shrank, disappeared or became a symlink since is reported by name, never written half.
 */
import { closeSync, fstatSync, lstatSync, openSync, readSync, constants as fsConstants } from 'node:fs';
import { StrataError } from '../util/errors.js';
import type { TarEntry } from './entry.js';
import { END_OF_ARCHIVE, encodeHeader, planHeader, type HeaderPlan } from './header.js';

/**
 * Bytes already in tar form, copied verbatim from `source` (a cached store-path run, see
 * segments.ts): `size` bytes at `offset`, a whole number of blocks. `sourceSize` is the whole
 * file's size, checked when it is opened. `lastName` is the name of the run's last entry, so the
 * order check goes on across it.
 */
export interface RawRun {
  type: 'raw';
  source: string;
  /**
   * A descriptor of `source` already open in this process (threads share descriptors), read
   * instead of opening the path again and left open: the caller verified that very inode.
   */
  fd?: number;
  offset: number;
  size: number;
  sourceSize: number;
  lastName: string;
}

export type TarItem = TarEntry | RawRun;

/** A file whose data spans several fills (or a raw run): opened once, closed after its last byte. */
interface OpenFile {
  fd: number;
  path: string;
  /** Where the item's bytes start in the file. */
  offset: number;
  size: number;
  /** Opened here, so closed here (a RawRun's own fd is the caller's). */
  owned: boolean;
}

export interface FillerOptions {
  /**
   * false: the items are raw runs of any length, copied back to back with no end-of-archive
   * blocks (a blob copied or hashed, not a tar). Default true.
   */
  tar?: boolean;
}

export class ChunkFiller {
  done = false;
  private i = 0;
  private prevName: Buffer | undefined;
  /** Current item's plan while its data is being placed. */
  private plan: HeaderPlan | undefined;
  private dataOff = 0;
  private file: OpenFile | undefined;

  private readonly tar: boolean;

  constructor(private readonly items: readonly TarItem[], private readonly mtime: number, opts: FillerOptions = {}) {
    this.tar = opts.tar ?? true;
    if (!this.tar && items.some((i) => i.type !== 'raw')) throw new Error('internal: a plain byte stream takes raw runs only');
  }

  /** Fills `buf` from its start with the next bytes of the tar; returns how many (whole blocks). */
  fill(buf: Buffer): number {
    const cap = buf.length - (buf.length % 512);
    let pos = 0;
    while (pos < cap && !this.done) {
      if (this.plan === undefined) {
        if (this.i === this.items.length) {
          if (!this.tar) {
            this.done = true;
            break;
          }
          if (pos + END_OF_ARCHIVE > cap) break;
          buf.fill(0, pos, pos + END_OF_ARCHIVE);
          pos += END_OF_ARCHIVE;
          this.done = true;
          break;
        }
        const item = this.items[this.i]!;
        if (item.type === 'raw') {
          if (this.tar && item.size % 512 !== 0) throw new Error(`internal: raw tar run of ${item.size} bytes is not whole blocks`);
          this.prevName = Buffer.from(item.lastName);
          if (item.size > 0) this.startData({ fullName: this.prevName, headerBytes: 0, dataBytes: item.size });
          else this.i++;
          continue;
        }
        const plan = planHeader(item);
        // Headers are never split across fills; a header group is at most a few KiB.
        if (pos + plan.headerBytes > cap) {
          if (pos === 0) throw new Error(`internal: a ${cap}-byte buffer cannot hold the headers of ${item.name}`);
          break;
        }
        this.check(item, plan);
        encodeHeader(item, plan, this.mtime, buf, pos);
        pos += plan.headerBytes;
        if (item.type === 'file' && item.size === 0 && item.source !== undefined) checkStillEmpty(item.source);
        if (plan.dataBytes > 0) this.startData(plan);
        else this.i++;
        continue;
      }
      // Data (padded to a block); the buffer and every header are block multiples, so pos is too.
      const take = Math.min(this.plan.dataBytes - this.dataOff, cap - pos);
      this.placeData(this.items[this.i]!, this.plan.dataBytes, take, buf, pos);
      pos += take;
      this.dataOff += take;
      if (this.dataOff === this.plan.dataBytes) {
        this.plan = undefined;
        this.i++;
      }
    }
    return pos;
  }

  /** Closes a file a failure left open. */
  close(): void {
    if (this.file !== undefined) {
      const { fd, owned } = this.file;
      this.file = undefined;
      if (owned) closeSync(fd);
    }
  }

  private startData(plan: HeaderPlan): void {
    this.plan = plan;
    this.dataOff = 0;
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

  /** Puts the item's data bytes [dataOff, dataOff+take) (take includes padding) at buf[pos..]. */
  private placeData(item: TarItem, padded: number, take: number, buf: Buffer, pos: number): void {
    const off = this.dataOff;
    const fileBytes = Math.max(0, Math.min(take, item.size - off));
    if (item.type !== 'raw' && (item.content !== undefined || item.source === undefined)) {
      if (fileBytes > 0) Buffer.from(item.content!.buffer, item.content!.byteOffset + off, fileBytes).copy(buf, pos);
      buf.fill(0, pos + fileBytes, pos + take);
      return;
    }
    if (item.type !== 'raw' && off === 0 && take === padded) {
      readWholeFile(item.source!, item.size, buf, pos, padded);
      return;
    }
    // A file read piece by piece (it spans fills), or a raw run, which is a range of its file.
    const file = (this.file ??= item.type === 'raw'
      ? { ...openRaw(item), path: item.source, offset: item.offset, size: item.sourceSize }
      : { fd: openChecked(item.source!, item.size), owned: true, path: item.source!, offset: 0, size: item.size });
    if (fileBytes > 0 && readFull(file.fd, file.path, buf, pos, fileBytes, file.offset + off, fileBytes) !== fileBytes) {
      throw changedSize(file.path, file.size);
    }
    buf.fill(0, pos + fileBytes, pos + take);
    if (off + take === padded) this.close();
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
function readWholeFile(path: string, size: number, buf: Buffer, pos: number, padded: number): void {
  const fd = openFd(path);
  try {
    const probe = padded > size;
    if (!probe) {
      const now = fstatSize(fd, path);
      if (now !== size) throw changedSize(path, size, now);
    }
    if (readFull(fd, path, buf, pos, probe ? size + 1 : size, 0, size) !== size) throw changedSize(path, size);
    buf.fill(0, pos + size, pos + padded);
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

/** A raw run's file: its own descriptor (size still checked) or one opened here. */
function openRaw(run: RawRun): { fd: number; owned: boolean } {
  if (run.fd === undefined) return { fd: openChecked(run.source, run.sourceSize), owned: true };
  const now = fstatSize(run.fd, run.source);
  if (now !== run.sourceSize) throw changedSize(run.source, run.sourceSize, now);
  return { fd: run.fd, owned: false };
}

function openChecked(path: string, size: number): number {
  const fd = openFd(path);
  let now: number;
  try {
    now = fstatSize(fd, path);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (now !== size) {
    closeSync(fd);
    throw changedSize(path, size, now);
  }
  return fd;
}

/**
 * Reads up to `want` bytes at `position`, looping over short reads until at least `need` bytes
 * arrived or the file ended. A short read of a regular file means end of file, so reading stops
 * once `need` is met without a further call.
 */
function readFull(fd: number, path: string, buf: Buffer, pos: number, want: number, position: number, need: number): number {
  let got = 0;
  try {
    while (got < need) {
      const n = readSync(fd, buf, pos + got, want - got, position + got);
      if (n === 0) break;
      got += n;
    }
  } catch (e) {
    throw ioError(path, e as NodeJS.ErrnoException);
  }
  return got;
}

// O_NOATIME would avoid touching atimes, but fails with EPERM on files we do not own.
const OPEN_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0);

function openFd(path: string): number {
  try {
    return openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw ioError(path, e as NodeJS.ErrnoException);
  }
}

function fstatSize(fd: number, path: string): number {
  try {
    return fstatSync(fd).size;
  } catch (e) {
    throw ioError(path, e as NodeJS.ErrnoException);
  }
}

function ioError(path: string, e: NodeJS.ErrnoException): StrataError {
  if (e.code === 'ENOENT') return new StrataError(`${path} disappeared while the layer was being written`, { cause: e });
  if (e.code === 'ELOOP') return new StrataError(`${path} became a symlink while the layer was being written`, { cause: e });
  return new StrataError(`cannot read ${path}: ${e.message}`, { cause: e });
}
