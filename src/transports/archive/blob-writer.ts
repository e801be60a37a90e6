import { createReadStream } from 'node:fs';
import { holdTemp, releaseTemp } from '../../util/temp-paths.js';
import { open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Digest } from '../../image/digest.js';
import type { BlobWriter } from '../types.js';
import { StrataError } from '../../util/errors.js';
import { copyTrustedOnWorker } from '../../tar/writer.js';
import { writeFully, type ArchiveFile, type ReservedMember } from './tar-file.js';

/** A blob streamed into a reserved member of an archive file. */
export interface PlacedBlob {
  member: ReservedMember;
  digest?: Digest;
}

/**
 * A BlobWriter that streams into a member reserved up front, so several layers can be produced
 * at once into one archive while the file's layout stays what the reservation order made it.
 */
export function reservedBlobWriter(archive: ArchiveFile, placed: PlacedBlob): BlobWriter {
  let written = 0;
  const { member } = placed;
  return {
    // Each write has reached the file when it resolves, so the producer may reuse the buffer.
    releasesChunks: true,
    acceptsConcurrentWrites: true,
    region: {
      fd: archive.fd,
      offset: member.dataOffset,
      path: archive.tempPath,
      limit: member.size,
      durable: { output: archive.finalPath },
      wrote: (size) => void (written += size),
    },
    // The member keeps its place and size; its bytes are simply written again.
    restart: async () => void (written = 0),
    async write(chunk: Buffer) {
      if (written + chunk.length > member.size) {
        throw new StrataError(`internal: blob grew past its reserved ${member.size} bytes`);
      }
      const at = member.dataOffset + written;
      written += chunk.length;
      await archive.writeAt(at, chunk);
    },
    async close(digest: Digest, size: number): Promise<() => Promise<Readable>> {
      if (size !== member.size || written !== size) {
        throw new StrataError(`internal: blob is ${written} bytes, ${member.size} were reserved`);
      }
      placed.digest = digest;
      return async () => archive.openMember(member);
    },
    async abort() {},
  };
}

/** Copies an existing blob (a base layer) into a freshly reserved member. */
export async function copyIntoArchive(archive: ArchiveFile, source: Readable, size: number, what: string): Promise<ReservedMember> {
  const member = archive.reserveBlob(size);
  await writeMember(archive, member, source, what);
  return member;
}

/**
 * Copies a finished spool into a freshly reserved member: in the kernel (a reflink where the
 * filesystem has them, the spool being beside the archive), else through user space.
 */
export async function placeSpool(archive: ArchiveFile, spool: string, size: number, what: string): Promise<ReservedMember> {
  const member = archive.reserveBlob(size);
  const fh = await open(spool, 'r');
  try {
    const region = { fd: archive.fd, offset: member.dataOffset, path: archive.tempPath, limit: size, wrote: () => {} };
    // The spool's bytes were hashed as they were written; they need no second look.
    const copied = await copyTrustedOnWorker({ fd: fh.fd, path: spool, size }, [region]).catch(() => undefined);
    if (copied !== size) await writeMember(archive, member, createReadStream(spool), what);
  } finally {
    await fh.close();
  }
  return member;
}

async function writeMember(archive: ArchiveFile, member: ReservedMember, source: Readable, what: string): Promise<void> {
  const size = member.size;
  let at = member.dataOffset;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    if (at + chunk.length > member.dataOffset + size) throw new StrataError(`${what}: more bytes than its declared size ${size}`);
    await archive.writeAt(at, chunk);
    at += chunk.length;
  }
  if (at !== member.dataOffset + size) throw new StrataError(`${what}: ${at - member.dataOffset} bytes, but its declared size is ${size}`);
}

/** A blob whose size was not known up front (a compressed layer), spooled until commit. */
export interface SpooledBlob {
  path: string;
  size?: number;
  digest?: Digest;
}

/**
 * Spools a blob of unknown size to a temporary file. Archives place it once it is finished and its
 * turn has come; that costs one extra write of the blob, which only compressed layers pay (their
 * size is unknown until the end). `settled` hears once whether the blob was finished (closed) or not.
 */
export async function spooledBlobWriter(path: string, spooled: SpooledBlob, settled: (finished: boolean) => void = () => {}): Promise<BlobWriter> {
  const fh = await open(path, 'wx', 0o600).catch((e: unknown) => {
    settled(false);
    throw e;
  });
  holdTemp(path);
  let written = 0;
  return {
    // Each write has reached the file when it resolves, so the producer may reuse the buffer.
    releasesChunks: true,
    acceptsConcurrentWrites: true,
    async write(chunk: Buffer) {
      // The position is claimed before awaiting: producers keep several writes in flight.
      const at = written;
      written += chunk.length;
      await writeFully(fh, chunk, at);
    },
    async close(digest: Digest, size: number) {
      try {
        await fh.close();
        if (size !== written) throw new StrataError(`internal: spooled ${written} bytes, producer says ${size}`);
      } catch (e) {
        settled(false);
        throw e;
      }
      spooled.size = size;
      spooled.digest = digest;
      settled(true);
      return async () => createReadStream(path);
    },
    async abort() {
      settled(false);
      await fh.close().catch(() => undefined);
      await rm(path, { force: true });
      releaseTemp(path);
    },
  };
}
