import { releaseTemp } from '../../util/temp-paths.js';
import { rm } from 'node:fs/promises';
import type { Digest } from '../../image/digest.js';
import type { Layer } from '../../image/layer.js';
import type { Compression } from '../../image/media-types.js';
import { StrataError } from '../../util/errors.js';
import type { BlobWriter } from '../types.js';
import { copyIntoArchive, placeSpool, reservedBlobWriter, spooledBlobWriter, type PlacedBlob, type SpooledBlob } from './blob-writer.js';
import type { ArchiveFile, ReservedMember } from './tar-file.js';

export interface ArchiveDestinationOptions {
  /** mtime of the archive's own members (not of layer contents). */
  mtime: number;
  compression?: Compression;
}

/**
 * The blob half shared by both archive formats: new blobs stream into reserved members (or are
 * spooled when their size is unknown), base layers are copied in unchanged.
 *
 * Blobs are placed in the file in the order they were begun, whatever is known of their sizes:
 * the archive's bytes must not depend on which layers the cache had (a cached compressed layer's
 * size is known at once, a rebuilt one's only at its end, so placing each as soon as it could be
 * would order the members by cache state). A blob is therefore placed only once every blob begun
 * before it has its place: one of known size waits for the spooled blobs before it to finish, and
 * a spooled one is copied in as soon as it is finished and its turn has come.
 */
export class ArchiveBlobs {
  /** Every blob begun, in order: its place once it has one (undefined: aborted before it had). */
  private readonly order: Promise<PlacedBlob | undefined>[] = [];
  /** Settles when every blob begun so far is placed (rejects if one could not be). */
  private turn: Promise<unknown> = Promise.resolve();
  private readonly spools: string[] = [];
  private spoolCount = 0;
  /** A spool being copied in: abort waits for it, since a worker writes to the archive's descriptor, which abort closes. */
  private placing: Promise<unknown> = Promise.resolve();
  private aborted = false;

  constructor(readonly archive: ArchiveFile) {}

  async beginBlob(expectedSize?: number): Promise<BlobWriter> {
    if (expectedSize !== undefined) {
      const placed = await this.inTurn(() => ({ member: this.archive.reserveBlob(expectedSize) }));
      return reservedBlobWriter(this.archive, placed!);
    }
    const spooled: SpooledBlob = { path: `${this.archive.tempPath}.blob${this.spoolCount++}` };
    this.spools.push(spooled.path);
    let settle!: (finished: boolean) => void;
    const finished = new Promise<boolean>((resolve) => (settle = resolve));
    // An aborted spool (its layer failed) takes no place: the blobs after it are placed as usual,
    // and the failure is reported by the layer's own producer.
    void this.inTurn(async () => ((await finished) ? this.placeSpooled(spooled) : undefined));
    return spooledBlobWriter(spooled.path, spooled, settle);
  }

  async addLayer(layer: Layer): Promise<void> {
    await this.inTurn(async () => ({ member: await copyIntoArchive(this.archive, await layer.open(), layer.size, `layer ${layer.digest}`), digest: layer.digest }));
  }

  /** Runs `place` once every blob begun before has its place; blobs begun later wait for it. */
  private inTurn(place: () => PlacedBlob | undefined | Promise<PlacedBlob | undefined>): Promise<PlacedBlob | undefined> {
    const placed = this.turn.then(place);
    this.order.push(placed);
    this.turn = placed;
    // Seen by whoever waits next, or by placeAll; never an unhandled rejection meanwhile.
    placed.catch(() => {});
    return placed;
  }

  /** A finished spool copied into its place. The spool stays until commit: the layer may be read back from it. */
  private async placeSpooled(spooled: SpooledBlob): Promise<PlacedBlob | undefined> {
    if (this.aborted) return undefined;
    if (!spooled.digest || spooled.size === undefined) throw new StrataError('internal: a layer blob was never finished');
    const placing = placeSpool(this.archive, spooled.path, spooled.size, `layer ${spooled.digest}`);
    this.placing = placing.catch(() => {});
    return { member: await placing, digest: spooled.digest };
  }

  /**
   * Waits for every blob to be placed and maps each digest to the member holding its bytes. A
   * digest produced twice (two identical new layers) leaves a second reserved member: it is
   * returned in `duplicates` and must still be named, since an unnamed (zero) header would end the
   * tar there.
   */
  async placeAll(): Promise<{ byDigest: Map<Digest, ReservedMember>; duplicates: { digest: Digest; member: ReservedMember }[] }> {
    const byDigest = new Map<Digest, ReservedMember>();
    const duplicates: { digest: Digest; member: ReservedMember }[] = [];
    for (const placed of await Promise.all(this.order)) {
      if (placed?.digest === undefined) throw new StrataError('internal: a layer blob was never finished');
      const { digest, member } = placed;
      if (byDigest.has(digest)) duplicates.push({ digest, member });
      else byDigest.set(digest, member);
    }
    await this.removeSpools();
    return { byDigest, duplicates };
  }

  async abort(): Promise<void> {
    this.aborted = true;
    await this.placing;
    await this.archive.abort();
    await this.removeSpools();
  }

  private async removeSpools(): Promise<void> {
    await Promise.all(this.spools.splice(0).map((path) => rm(path, { force: true }).then(() => releaseTemp(path))));
  }
}
