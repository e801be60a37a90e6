import { createReadStream } from 'node:fs';
import { releaseTemp } from '../../util/temp-paths.js';
import { rm } from 'node:fs/promises';
import type { Digest } from '../../image/digest.js';
import type { Layer } from '../../image/layer.js';
import type { Compression } from '../../image/media-types.js';
import { StrataError } from '../../util/errors.js';
import type { BlobWriter } from '../types.js';
import { copyIntoArchive, reservedBlobWriter, spooledBlobWriter, type PlacedBlob, type SpooledBlob } from './blob-writer.js';
import type { ArchiveFile, ReservedMember } from './tar-file.js';

export interface ArchiveDestinationOptions {
  /** mtime of the archive's own members (not of layer contents). */
  mtime: number;
  compression?: Compression;
}

type Slot = { kind: 'placed'; placed: PlacedBlob } | { kind: 'spooled'; spooled: SpooledBlob };

/**
 * The blob half shared by both archive formats: new blobs stream into reserved members (or are
 * spooled when their size is unknown), base layers are copied in unchanged. `placeAll` finishes
 * the spooled ones and maps each digest to the member holding its bytes.
 */
export class ArchiveBlobs {
  private readonly slots: Slot[] = [];
  private spoolCount = 0;

  constructor(readonly archive: ArchiveFile) {}

  async beginBlob(expectedSize?: number): Promise<BlobWriter> {
    if (expectedSize !== undefined) {
      const placed: PlacedBlob = { member: this.archive.reserveBlob(expectedSize) };
      this.slots.push({ kind: 'placed', placed });
      return reservedBlobWriter(this.archive, placed);
    }
    const spooled: SpooledBlob = { path: `${this.archive.tempPath}.blob${this.spoolCount++}` };
    this.slots.push({ kind: 'spooled', spooled });
    return spooledBlobWriter(spooled.path, spooled);
  }

  async addLayer(layer: Layer): Promise<void> {
    const member = await copyIntoArchive(this.archive, await layer.open(), layer.size, `layer ${layer.digest}`);
    this.slots.push({ kind: 'placed', placed: { member, digest: layer.digest } });
  }

  /**
   * Places spooled blobs and maps each digest to the member holding its bytes. A digest produced
   * twice (two identical new layers) leaves a second reserved member: it is returned in
   * `duplicates` and must still be named, since an unnamed (zero) header would end the tar there.
   */
  async placeAll(): Promise<{ byDigest: Map<Digest, ReservedMember>; duplicates: { digest: Digest; member: ReservedMember }[] }> {
    const byDigest = new Map<Digest, ReservedMember>();
    const duplicates: { digest: Digest; member: ReservedMember }[] = [];
    for (const slot of this.slots) {
      if (slot.kind === 'spooled') {
        const { spooled } = slot;
        if (!spooled.digest || spooled.size === undefined) throw new StrataError('internal: a layer blob was never finished');
        const member = await copyIntoArchive(this.archive, createReadStream(spooled.path), spooled.size, `layer ${spooled.digest}`);
        await rm(spooled.path, { force: true });
        releaseTemp(spooled.path);
        if (!byDigest.has(spooled.digest)) byDigest.set(spooled.digest, member);
      } else {
        const { digest, member } = slot.placed;
        if (!digest) throw new StrataError('internal: a layer blob was never finished');
        if (byDigest.has(digest)) duplicates.push({ digest, member });
        else byDigest.set(digest, member);
      }
    }
    return { byDigest, duplicates };
  }

  async abort(): Promise<void> {
    await this.archive.abort();
    await Promise.all(this.slots.map((s) => (s.kind === 'spooled' ? rm(s.spooled.path, { force: true }).then(() => releaseTemp(s.spooled.path)) : undefined)));
  }
}

