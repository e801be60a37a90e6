/**
 * A store layer made run by run (src/tar/segments.ts): each store path's run of the tar is either
 * built from the store or, when the cache holds it, copied from the cache — its tar bytes feed the
 * DiffID (and are the blob when uncompressed) and its compressed units are copied, not recompressed.
 * So a layer shared by many paths, one of which changed, reads only the changed path's files.
 *
 * Compressed, every run starts a new unit (gzip member, zstd frame) whether it is cached or not,
 * cold build or warm, so the bytes never depend on what the cache held (a rebuild equals a cold build).
 */
import { copyPiece, pieceLength, type BlobChecks, type LayerCache, type PieceFile, type PieceWriter, type SegmentRecord } from '../cache/layer-cache.js';
import type { Digest } from '../image/digest.js';
import type { BlockCompressor, ByteSink } from '../compress/block-writer.js';
import type { TarEntry } from '../tar/entry.js';
import type { TarSegment } from '../tar/segments.js';
import type { TarItem } from '../tar/writer.js';
import { mapLimit } from '../util/map-limit.js';

/** One run of the layer, and how it is made this time. */
export interface PlannedRun {
  segment: TarSegment;
  /** Set when the run is copied from the cache: verified pieces. */
  reuse?: { tar: PieceFile; compressed?: PieceFile };
  /** Set when the run is built and should be recorded in the cache under this identity. */
  recordAs?: string;
}

/**
 * Plans the runs of a store layer: runs whose segment record is in the cache (with compressed
 * units when `compressed`) and whose pieces verify are reused; the rest are built and recorded.
 */
export async function planRuns(segments: readonly TarSegment[], identities: ReadonlyMap<string, string>, cache: LayerCache, compressed: boolean): Promise<PlannedRun[]> {
  const checked: BlobChecks = new Map();
  // Several at once: the pieces are hashed on the tar workers, as many at a time as there are.
  return mapLimit(segments, VERIFY_AT_ONCE, async (segment): Promise<PlannedRun> => {
    const identity = runIdentity(segment, identities);
    if (identity === undefined) return { segment };
    const rec = await cache.lookupSegment(identity);
    const reuse = rec ? await verifyRecord(rec, segment, cache, compressed, checked) : undefined;
    return reuse ? { segment, reuse } : { segment, recordAs: identity };
  });
}

/** Runs whose pieces are looked up and verified at once: enough to keep every tar worker busy. */
const VERIFY_AT_ONCE = 8;

/** The cache identity of a store path's run; undefined for the leading directories and the end. */
function runIdentity(segment: TarSegment, identities: ReadonlyMap<string, string>): string | undefined {
  return segment.storePath !== undefined ? identities.get(segment.storePath) : undefined;
}

async function verifyRecord(rec: SegmentRecord, segment: TarSegment, cache: LayerCache, compressed: boolean, checked: BlobChecks): Promise<PlannedRun['reuse']> {
  if (pieceLength(rec.tar) !== segment.end - segment.start || (compressed && rec.compressed === undefined)) return undefined;
  if (!compressed) {
    const tar = await cache.verifyPiece(rec.tar, rec.identity, checked);
    return tar && { tar };
  }
  const [tar, units] = await Promise.all([cache.verifyPiece(rec.tar, rec.identity, checked), cache.verifyPiece(rec.compressed!, rec.identity, checked)]);
  return tar && units ? { tar, compressed: units } : undefined;
}

/** The writer's input: entries of built runs, a raw run per reused one. */
export function tarItems(entries: readonly TarEntry[], runs: readonly PlannedRun[]): TarItem[] {
  const items: TarItem[] = [];
  for (const { segment, reuse } of runs) {
    if (reuse && segment.to > segment.from) {
      const { path, offset, length, fileSize } = reuse.tar;
      items.push({ type: 'raw', source: path, offset, size: length, sourceSize: fileSize, lastName: entries[segment.to - 1]!.name });
    } else {
      for (let i = segment.from; i < segment.to; i++) items.push(entries[i]!);
    }
  }
  return items;
}

/**
 * Records where each store path's run now is in an uncompressed layer blob just cached (digest
 * `blob`, `size` bytes): a range of it, so the record costs no copy. Reused runs are recorded
 * again, pointing at the newest blob.
 */
export async function recordRunsInBlob(runs: readonly PlannedRun[], identities: ReadonlyMap<string, string>, cache: LayerCache, blob: Digest, size: number): Promise<void> {
  for (const { segment } of runs) {
    const identity = runIdentity(segment, identities);
    if (identity === undefined) continue;
    await cache.publishSegment({ identity, tar: { digest: blob, size, offset: segment.start, length: segment.end - segment.start } });
  }
}

/**
 * Sits between the tar writer and the block compressor of a store layer: cuts the tar stream at run
 * boundaries, starts a unit at each, swaps reused runs' bytes for their cached units, and records
 * built runs' tar bytes and units as cache pieces. Writes are applied in call order.
 */
export class RunRouter implements ByteSink {
  private index = 0;
  private offset = 0;
  private chain: Promise<void> = Promise.resolve();
  private started = false;
  private tarPiece: PieceWriter | undefined;
  /** Pieces of built runs, finished once the whole layer is through. */
  private readonly recorded: { identity: string; tar: PieceWriter; compressed: PieceWriter }[] = [];

  constructor(
    private readonly runs: readonly PlannedRun[],
    private readonly compressor: BlockCompressor,
    private readonly cache: LayerCache | undefined,
  ) {}

  write(chunk: Buffer): Promise<void> {
    const p = this.chain.then(() => this.route(chunk));
    this.chain = p;
    return p;
  }

  /** After the tar writer and the compressor are done: publishes the built runs' records. */
  async publish(): Promise<void> {
    await this.chain;
    for (const r of this.recorded) {
      const tar = await r.tar.finish();
      const compressed = await r.compressed.finish();
      if (tar && compressed) await this.cache!.publishSegment({ identity: r.identity, tar, compressed });
    }
  }

  async discard(): Promise<void> {
    await this.chain.catch(() => undefined);
    for (const r of this.recorded) {
      await r.tar.discard();
      await r.compressed.discard();
    }
  }

  private async route(chunk: Buffer): Promise<void> {
    if (!this.started) {
      this.started = true;
      await this.startRun();
    }
    let at = 0;
    while (at < chunk.length) {
      const run = this.runs[this.index];
      if (run === undefined) throw new Error('internal: tar longer than its runs');
      const take = Math.min(chunk.length - at, run.segment.end - this.offset);
      const part = chunk.subarray(at, at + take);
      if (!run.reuse) {
        await this.tarPiece?.write(part);
        await this.compressor.write(part);
      } // else: a reused run's tar bytes only feed the DiffID; its units were inserted instead
      at += take;
      this.offset += take;
      if (this.offset === run.segment.end) {
        this.index++;
        if (this.index < this.runs.length) await this.startRun();
      }
    }
  }

  private async startRun(): Promise<void> {
    const run = this.runs[this.index]!;
    this.tarPiece = undefined;
    await this.compressor.boundary();
    this.compressor.setTap(undefined);
    if (run.reuse?.compressed) {
      const units = run.reuse.compressed;
      await this.compressor.insertCompressed(run.segment.end - run.segment.start, (emit) => copyPiece(units, { write: emit }));
      return;
    }
    if (run.recordAs !== undefined && this.cache) {
      const tar = await this.cache.beginPiece();
      const units = await this.cache.beginPiece();
      if (tar && units) {
        this.tarPiece = tar;
        this.compressor.setTap(units);
        this.recorded.push({ identity: run.recordAs, tar, compressed: units });
      } else {
        await tar?.discard();
        await units?.discard();
      }
    }
  }
}
