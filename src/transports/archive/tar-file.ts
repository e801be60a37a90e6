import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { tempBeside } from '../../util/output-path.js';
import { holdTemp, releaseTemp } from '../../util/temp-paths.js';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { TarEntry } from '../../tar/entry.js';
import { BLOCK, encodeHeader, planHeader, roundUpBlock, type DataAlignment } from '../../tar/header.js';
import { requireParent } from '../../util/output-path.js';
import { writeAtSync } from '../../util/write-at.js';

/** A member whose body has a reserved place in the archive; its header is written once named. */
export interface ReservedMember {
  readonly headerOffset: number;
  /** Header bytes reserved: one block, plus a PAX header when the size needs one (>= 8 GiB) or the data is aligned. */
  readonly headerBytes: number;
  readonly dataOffset: number;
  readonly size: number;
  /** The data starts at a multiple of BLOB_ALIGNMENT (a layer blob's member). */
  readonly aligned: boolean;
}

/**
 * Layer blobs start at a multiple of 4 KiB in the file, the block size of XFS and btrfs on
 * common machines. A blob copied from one such archive into another (a warm rebuild, whose cache
 * holds the previous output) then sits at block-aligned offsets in both, and copy_file_range
 * shares its blocks (a reflink) instead of copying them: the new archive costs only its changed
 * layers. Elsewhere (ext4) the kernel copies as before. The cost is at most 4.5 KiB of PAX
 * padding per layer.
 */
export const BLOB_ALIGNMENT = 4096;

/**
 * An image archive (docker-archive or OCI archive) written in place to a temporary file beside
 * the destination and renamed over it on commit.
 *
 * Why positional writes: a member's tar header holds its name and size, and the names of layer
 * members (`<v1id>/layer.tar`, `blobs/sha256/<digest>`) depend on digests known only after the
 * layer's bytes have streamed. Instead of spooling every layer to a temporary file and copying it
 * (writing each byte twice) or reading every store file twice (as nixpkgs does), we reserve the
 * header block and the body, stream the body into place, and write the header last. Member order
 * in the file is the order of `reserve()` calls, which callers keep deterministic.
 */
export class ArchiveFile {
  private end = 0;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly tempPath: string,
    readonly finalPath: string,
    private readonly mtime: number,
  ) {}

  static async create(finalPath: string, mtime: number): Promise<ArchiveFile> {
    await requireParent(finalPath);
    const tempPath = tempBeside(finalPath);
    const fh = await open(tempPath, 'wx', 0o644);
    holdTemp(tempPath);
    return new ArchiveFile(fh, tempPath, finalPath, mtime);
  }

  /** Reserves a header block plus a padded body of `size` bytes at the current end. */
  reserve(size: number): ReservedMember {
    return this.reserveMember(size, false);
  }

  /** Reserves a member for a layer blob: as reserve, with its data at a multiple of BLOB_ALIGNMENT. */
  reserveBlob(size: number): ReservedMember {
    return this.reserveMember(size, true);
  }

  private reserveMember(size: number, aligned: boolean): ReservedMember {
    const headerOffset = this.end;
    // Member names are ours and short (ustar holds them), so only the size and the offset decide the header's length.
    const headerBytes = planHeader(fileEntry('reserved', size), alignment(headerOffset, aligned)).headerBytes;
    const dataOffset = headerOffset + headerBytes;
    this.end = dataOffset + roundUpBlock(size);
    return { headerOffset, headerBytes, dataOffset, size, aligned };
  }

  /** The temporary file's descriptor, for writers on other threads (see FileRegion). */
  get fd(): number {
    return this.fh.fd;
  }

  writeAt(position: number, chunk: Buffer): Promise<void> {
    return writeFully(this.fh, chunk, position);
  }

  /** Names a reserved member by writing its header (the padding after its body is already zero). */
  async nameMember(m: ReservedMember, name: string): Promise<void> {
    await this.writeHeader(m, fileEntry(name, m.size));
  }

  /** The same deterministic header encoder as layer tars: one place decides every header byte. */
  private async writeHeader(m: ReservedMember, entry: TarEntry): Promise<void> {
    const plan = planHeader(entry, alignment(m.headerOffset, m.aligned));
    if (plan.headerBytes !== m.headerBytes) {
      throw new Error(`internal: header of ${entry.name} needs ${plan.headerBytes} bytes, ${m.headerBytes} were reserved`);
    }
    const buf = Buffer.alloc(plan.headerBytes);
    encodeHeader(entry, plan, this.mtime, buf, 0);
    this.writeSmall(m.headerOffset, buf);
  }

  /**
   * Headers and metadata files are written synchronously: an image has a few hundred of them,
   * each a block or two, and a write through the thread pool costs two thread wake-ups, more than
   * the write itself (about 50 ms per 100-layer docker-archive).
   */
  private writeSmall(position: number, data: Buffer): void {
    writeAtSync(this.fh.fd, data, position);
  }

  /** Appends a small regular file. */
  async addFile(name: string, data: Buffer): Promise<void> {
    const m = this.reserve(data.length);
    this.writeSmall(m.dataOffset, data);
    await this.nameMember(m, name);
  }

  async addDirectory(name: string): Promise<void> {
    await this.writeHeader(this.reserve(0), { name, type: 'directory', mode: 0o755, size: 0 });
  }

  async addSymlink(name: string, target: string): Promise<void> {
    await this.writeHeader(this.reserve(0), { name, type: 'symlink', mode: 0o777, size: 0, linkTarget: target });
  }

  /** Reads back a member's body (used to re-open a layer written into this archive). */
  openMember(m: ReservedMember): Readable {
    if (m.size === 0) return Readable.from([]);
    return createReadStream(this.closed ? this.finalPath : this.tempPath, { start: m.dataOffset, end: m.dataOffset + m.size - 1 });
  }

  /** Writes the two zero blocks that end a tar, and the padding that makes the body whole. */
  async commit(): Promise<void> {
    this.writeSmall(this.end, Buffer.alloc(2 * BLOCK));
    await this.fh.truncate(this.end + 2 * BLOCK);
    // No fsync: the rename makes the output appear whole or not at all, which is the promise a
    // build gives; durability across power loss is the filesystem's (as for tar and docker save).
    await this.fh.close();
    await rename(this.tempPath, this.finalPath);
    releaseTemp(this.tempPath);
    this.closed = true;
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
    await rm(this.tempPath, { force: true });
    releaseTemp(this.tempPath);
  }
}

function alignment(at: number, aligned: boolean): DataAlignment | undefined {
  return aligned ? { at, boundary: BLOB_ALIGNMENT } : undefined;
}

function fileEntry(name: string, size: number): TarEntry {
  return { name, type: 'file', mode: 0o644, size };
}

/** Writes all of `chunk` at `position`; a positional write may be short, so loop until done. */
export async function writeFully(fh: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}
