/**
 * Produces a build's new layers: concurrently, from the layer cache where possible, compressed
 * with a reproducible block codec when asked, streamed into the destination in job order.
 *
 * Output never depends on scheduling: a layer's bytes depend only on its entries, mtime and
 * compression (compressed blocks sit at fixed offsets, see src/compress), and every
 * `dest.beginBlob` happens in job order, since archive destinations lay blobs out in that order.
 * Memory stays bounded: `concurrency` layers at a time, each holding a few 1 MiB tar chunks and
 * at most 2×workers+1 compression blocks; no layer is ever held whole.
 */
import { availableParallelism } from 'node:os';
import { entriesIdentity, type CachedBlob, type CachedLayer, type CacheBlobWriter, type LayerCache } from '../cache/layer-cache.js';
import { CompressPool } from '../compress/block-pool.js';
import { BlockCompressor, type ByteSink } from '../compress/block-writer.js';
import { checkProducibleCompression } from '../compress/compression.js';
import type { Digest } from '../image/digest.js';
import { StrataError } from '../util/errors.js';
import type { Layer } from '../image/layer.js';
import { ociLayerMediaType, type Compression } from '../image/media-types.js';
import type { TarEntry } from '../tar/entry.js';
import { posix } from 'node:path';
import { storePathSegments, type TarSegment } from '../tar/segments.js';
import { copyFileOnWorker, tarSize, writeLayerTar, type TarItem } from '../tar/writer.js';
import { planRuns, recordRunsInBlob, RunRouter, tarItems, type PlannedRun } from './segmented-layer.js';
import type { BlobWriter, ImageDestination } from '../transports/types.js';

export interface LayerJob {
  /** Finalized entries (as storeLayerEntries / finalizeEntries return them). */
  entries: readonly TarEntry[];
  storePaths?: readonly string[];
  /**
   * Content identity for the cache (layerIdentity for store layers). Without one, and with a
   * cache, the identity is derived from the entries (entriesIdentity: header fields, content
   * hashes and an lstat signature per source file).
   */
  identity?: string;
  /**
   * Store path → segment identity (segmentIdentity), for layers of several store paths: their
   * runs are cached one by one, so one changed path does not make the others be read again.
   */
  segmentIdentities?: ReadonlyMap<string, string>;
  /** The entries cut at store-path boundaries (storePathSegments), when the job's maker has them. */
  segments?: readonly TarSegment[];
}

/**
 * A job known by its cache identity before any file is read (every store path has a NAR hash):
 * `scan` reads the store for the full job, and is called only when the cache cannot supply the
 * layer.
 */
export interface IdentifiedJob {
  identity: string;
  storePaths: readonly string[];
  scan(): Promise<LayerJob>;
}

/**
 * A job, or a function that makes it when its turn comes: a build scans each layer's files only
 * when the layer is about to be made, so scanning overlaps with making the layers before it.
 */
export type LayerJobSource = LayerJob | IdentifiedJob | (() => Promise<LayerJob | IdentifiedJob>);

/** What a finished layer takes from its job. */
type JobName = Pick<LayerJob, 'storePaths'>;

/** What produceLayers did; pass an object to have it filled (tests and the benchmark read it). */
export interface ProduceStats {
  /** Job indexes built from their sources. */
  built: number[];
  /** Job indexes copied from the cache. */
  fromCache: number[];
  /** Every source file read while building (the tar writer reads each exactly once). */
  filesRead: string[];
  /** Uncompressed tar bytes produced. */
  bytesTarred: number;
}

export interface ProduceOptions {
  mtime: number;
  compression: Compression;
  /** undefined = --no-cache. */
  cache?: LayerCache;
  /** Layers produced at once; default os.availableParallelism(). */
  concurrency?: number;
  /** Compression worker threads (compressed layers only); default = concurrency. 0 compresses on the main thread. */
  workers?: number;
  stats?: ProduceStats;
}

/** Scanned uncompressed layers waiting for a tar worker: at most this many, holding at most this many entries. */
const MAX_AHEAD_LAYERS = 64;
const MAX_AHEAD_ENTRIES = 100_000;

/** ProduceOptions, plus what one produceLayers call collects on its way. */
interface RunOptions extends ProduceOptions {
  containers: Set<string>;
}

export function newProduceStats(): ProduceStats {
  return { built: [], fromCache: [], filesRead: [], bytesTarred: 0 };
}

/** Produces every job's layer into `dest`; the result is in job order. */
export async function produceLayers(jobs: readonly LayerJobSource[], dest: ImageDestination, opts: ProduceOptions): Promise<Layer[]> {
  const compression = opts.compression;
  checkProducibleCompression(compression);
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? availableParallelism()));
  const workers = Math.max(0, Math.floor(opts.workers ?? concurrency));
  let pool: CompressPool | undefined;
  // Created on first need: a build served wholly from the cache starts no threads.
  const getPool = (): CompressPool => (pool ??= new CompressPool(workers));

  // beginBlob strictly in job order: job i begins only after job i-1 has begun.
  const begun: Promise<unknown>[] = [];
  const results: Promise<Layer>[] = [];
  let failed = false;
  let next = 0;
  const running = new Set<Promise<unknown>>();
  // A job's source runs (its layer is scanned, on this thread) one job ahead: once job i has
  // begun, job i+1 is prepared, so it is ready when a tar worker comes free.
  const prepared = new Map<number, Promise<LayerJob | IdentifiedJob>>();
  const prepare = (i: number): Promise<LayerJob | IdentifiedJob> => {
    let p = prepared.get(i);
    if (p === undefined) {
      const source = jobs[i]!;
      p = typeof source === 'function' ? source() : Promise.resolve(source);
      p.catch(() => {}); // seen when job i runs; a build that failed first never looks
      prepared.set(i, p);
    }
    return p;
  };

  // The cache containers this build's layers went into (see containerFor).
  const containers = new Set<string>();
  const run: RunOptions = { ...opts, containers };
  // Uncompressed layers have their size, and so their place in the output, as soon as they are
  // scanned: they are scanned ahead and queue for the tar workers, which take the largest first
  // (writer.ts), so a big layer late in the plan does not finish alone at the end. The entries
  // held ahead are bounded, not the number of layers.
  const ahead = compression === 'none';
  let heldEntries = 0;
  const full = (): boolean => running.size >= concurrency && (!ahead || running.size >= MAX_AHEAD_LAYERS || heldEntries >= MAX_AHEAD_ENTRIES);

  try {
    while (next < jobs.length) {
      while (full()) await Promise.race(running);
      if (failed) break;
      const i = next++;
      let signalBegun!: () => void;
      begun[i] = new Promise<void>((r) => (signalBegun = r));
      const after = i === 0 ? Promise.resolve() : begun[i - 1]!;
      const p = produceOne(i, prepare(i), dest, run, compression, getPool, async (size) => {
        await after;
        try {
          return await dest.beginBlob(size);
        } finally {
          signalBegun();
          // After this job has handed its layer to a worker (a few microtasks on).
          if (i + 1 < jobs.length) setImmediate(() => void (failed || prepare(i + 1)));
        }
      });
      // A job that fails before beginning, or needs no blob at all (the destination had it), must
      // still release the jobs queued behind it.
      p.then(signalBegun, () => {
        failed = true;
        signalBegun();
      });
      results.push(p);
      let held = 0;
      if (ahead) void prepare(i).then((job) => void (heldEntries += held = 'entries' in job ? job.entries.length : 0), () => {});
      const tracked = p.then(() => undefined, () => undefined).finally(() => {
        heldEntries -= held;
        running.delete(tracked);
      });
      running.add(tracked);
      // Ahead, the next layer is scanned only once this one has its place (and so a worker to wait
      // for), and after a turn of the event loop: workers that finished get their next layer first.
      if (ahead) {
        await begun[i];
        await new Promise(setImmediate);
      }
    }
    // Every started job settles before we return or throw: no write may outlive this call.
    const settled = await Promise.allSettled(results);
    const firstError = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (firstError) throw firstError.reason;
    // Every layer is located in this build's output now: earlier copies of it can go.
    await opts.cache?.retireReplacedContainers(containers);
    return settled.map((s) => (s as PromiseFulfilledResult<Layer>).value);
  } finally {
    await pool?.close();
  }
}

async function produceOne(
  index: number,
  source: Promise<LayerJob | IdentifiedJob>,
  dest: ImageDestination,
  opts: RunOptions,
  compression: Compression,
  getPool: () => CompressPool,
  begin: (size?: number) => Promise<BlobWriter>,
): Promise<Layer> {
  const job = await source;
  const cache = opts.cache;
  // A job known by identity alone (IdentifiedJob), or one already scanned.
  const known = 'scan' in job ? job : undefined;
  const scanned = 'scan' in job ? undefined : job;
  const identity = cache ? job.identity ?? entriesIdentity(scanned!.entries, opts.mtime, compression) : undefined;
  // Every layer made rather than copied was a miss, whatever the reason. A job known by identity
  // alone is scanned now: the store is read only for a layer the cache could not supply.
  const make = async (into = begin): Promise<Layer> => {
    if (cache) cache.stats.misses++;
    const full = scanned ?? (await known!.scan());
    // A cached uncompressed layer found corrupt is made again into the place reserved for it. A
    // job known by NAR hash had its size from the cache record; files that no longer match their
    // NAR hash cannot fill that place.
    if (known && into !== begin && compression === 'none' && entry !== undefined) {
      const size = layerTarSize(full);
      if (size !== entry.size) {
        throw new StrataError(`store paths ${known.storePaths.join(', ')}: the files under the store root no longer match their NAR hashes (the cached layer is ${entry.size} bytes, the files make ${size}); fix the store or build with --no-cache`);
      }
    }
    return build(index, full, identity, opts, compression, getPool, into);
  };
  const entry = cache && identity !== undefined ? await cache.lookup(identity) : undefined;
  // An uncompressed layer's size is known from its scanned entries: an entry that disagrees is not
  // it. Unscanned (by NAR hash), the identity alone says which blob it is, as for a compressed one.
  const usable = entry !== undefined && entry.compression === compression && (compression !== 'none' || scanned === undefined || entry.size === layerTarSize(scanned));
  // A destination that already has the very blob (a registry, for a rebuilt image it was pushed
  // before) takes it as it is: the cache's record says which blob, the registry holds its bytes.
  // --verify-cache takes no record on trust, so it reads and hashes the blob as ever.
  const held = usable && dest.hasBlob && !cache!.verifyAll ? await dest.hasBlob(entry.digest, entry.size) : undefined;
  if (held) {
    cache!.stats.hits++;
    opts.stats?.fromCache.push(index);
    return layerOf(entry!.diffId, entry!.digest, entry!.size, entry!.compression, job, held);
  }
  const blob = usable ? await cache!.openBlob(entry) : undefined;
  if (!blob) return make();
  try {
    return compression === 'none' ? await copyUncompressed(index, job, entry!, blob, cache!, opts.containers, begin, make, opts.stats) : await copyVerified(index, job, entry!, blob, begin, make, opts.stats);
  } finally {
    await blob.close();
  }
}

/** The size of a scanned job's uncompressed tar: the end of its last segment, when it was cut into them. */
function layerTarSize(job: LayerJob): number {
  return job.segments?.at(-1)?.end ?? tarSize(job.entries);
}

/**
 * A cached uncompressed layer, copied in one pass: a tar worker reads the blob once, writing it
 * into the destination's file and hashing it as it goes. The layer's size is its entries' size,
 * so the destination's place is the same whatever happens; if the hash does not match, the entry
 * is dropped and the layer made afresh into that same place. Destinations that cannot take bytes
 * back (a registry upload) get the blob verified first.
 */
async function copyUncompressed(index: number, job: JobName, entry: CachedLayer, blob: CachedBlob, cache: LayerCache, containers: Set<string>, begin: (size?: number) => Promise<BlobWriter>, make: (into: () => Promise<BlobWriter>) => Promise<Layer>, stats?: ProduceStats): Promise<Layer> {
  const writer = await begin(entry.size);
  const again = async (): Promise<BlobWriter> => writer;
  if (await adopted(blob, entry.digest, writer)) {
    // The output's file is now the container's: that container must outlive this build's retiring.
    if (blob.container) containers.add(blob.container);
    return finish(index, job, entry, writer, stats);
  }
  if (writer.region && writer.restart) {
    // A trusted blob (its file's stamp is the one it was verified with) is copied without being
    // hashed; any other is hashed by the worker as it copies exactly entry.size bytes, and a
    // failure reads as "could not check".
    const file = { fd: blob.fd, path: blob.path, size: blob.fileSize };
    const good = blob.trusted
      ? (await blob.copyInto(writer.region)) && (await blob.verify())
      : await blob.checked((await copyFileOnWorker(file, [writer.region], blob.offset, blob.size).catch(() => undefined))?.digest);
    if (!good) {
      await writer.restart();
      return make(again);
    }
    // Found in this output from now on, so the output it came from can be retired. Linked before
    // the writer closes: an OCI layout renames its blob file then.
    const container = await containerFor(cache, writer, 'none', containers);
    if (container) await cache.placeInContainer(entry.digest, entry.size, container.name, container.offset);
    return finish(index, job, entry, writer, stats);
  }
  if (!(await blob.verify())) return make(again);
  await blob.copyTo(writer);
  return finish(index, job, entry, writer, stats);
}

/**
 * A cached compressed layer: verified first (on a tar worker), then copied. Its destination is
 * begun only once the blob is known good, since an archive reserves exactly the cached size.
 */
async function copyVerified(index: number, job: JobName, entry: CachedLayer, blob: CachedBlob, begin: (size?: number) => Promise<BlobWriter>, make: () => Promise<Layer>, stats?: ProduceStats): Promise<Layer> {
  if (!(await blob.verify())) return make();
  const writer = await begin(entry.size);
  if (await adopted(blob, entry.digest, writer, true)) return finish(index, job, entry, writer, stats);
  // Into an archive's file: copied in the kernel, which shares the blocks where the filesystem
  // can (XFS, btrfs: archives align blobs for this). If that fails, the place is written again.
  if (writer.region && writer.restart) {
    if (await blob.copyInto(writer.region)) return finish(index, job, entry, writer, stats);
    await writer.restart();
  }
  await blob.copyTo(writer).catch(async (e: unknown) => {
    await writer.abort();
    throw e;
  });
  return finish(index, job, entry, writer, stats);
}

/**
 * A trusted cached blob that is a whole file of its own becomes the destination's blob by a link
 * where the destination can take one (an OCI layout directory): no byte read, hashed or written.
 */
async function adopted(blob: CachedBlob, digest: Digest, writer: BlobWriter, verified = false): Promise<boolean> {
  if (!blob.trusted || !writer.adopt || blob.offset !== 0 || blob.fileSize !== blob.size) return false;
  if (!verified && !(await blob.verify())) return false;
  return writer.adopt(blob.path, digest);
}

async function finish(index: number, job: JobName, entry: CachedLayer, writer: BlobWriter, stats?: ProduceStats): Promise<Layer> {
  try {
    const open = await writer.close(entry.digest, entry.size);
    stats?.fromCache.push(index);
    return layerOf(entry.diffId, entry.digest, entry.size, entry.compression, job, open);
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

async function build(
  index: number,
  job: LayerJob,
  identity: string | undefined,
  opts: RunOptions,
  compression: Compression,
  getPool: () => CompressPool,
  begin: (size?: number) => Promise<BlobWriter>,
): Promise<Layer> {
  // Store layers are made run by run (segmented-layer.ts) where runs matter: a compressed layer
  // starts a unit at each store path, and with a cache, runs of paths that did not change are
  // reused. An uncompressed layer's runs are ranges of its cached blob (free to record), so every
  // such layer takes part; compressed runs are pieces of their own, kept only for layers of several paths.
  // Without either, the plain path: the destination's writes overlap instead of going through
  // the router one by one.
  let runs: PlannedRun[] | undefined;
  const paths = job.storePaths ?? [];
  const ids = opts.cache !== undefined ? job.segmentIdentities : undefined;
  const reusable = ids !== undefined && (compression === 'none' || paths.length > 1);
  if (paths.length > 0 && (compression !== 'none' || reusable)) {
    const segments = job.segments ?? storePathSegments(job.entries, posix.dirname(paths[0]!), paths);
    runs = reusable ? await planRuns(segments, ids, opts.cache!, compression !== 'none') : segments.map((segment) => ({ segment }));
  }
  const items: readonly TarItem[] = runs ? tarItems(job.entries, runs) : job.entries;
  const tarBytes = tarSize(items);
  // Uncompressed blobs have a known size, so archives can reserve their place and write in place;
  // compressed ones do not, and are spooled by the destination.
  const writer = await begin(compression === 'none' ? tarBytes : undefined);
  let cacheWriter: CacheBlobWriter | undefined;
  let compressor: BlockCompressor | undefined;
  let router: RunRouter | undefined;
  try {
    // An uncompressed layer written into the output is cached as a place in it (a container),
    // not as a second copy; other layers, or an output the cache cannot link, get a copy.
    const container = identity !== undefined ? await containerFor(opts.cache, writer, compression, opts.containers) : undefined;
    if (opts.cache && identity !== undefined && !container) cacheWriter = await opts.cache.beginBlob();
    const out = tee(writer, cacheWriter);
    if (compression !== 'none') compressor = new BlockCompressor(out, getPool(), compression);
    // The router is for compressed runs; uncompressed runs need no cutting (they are ranges of the blob).
    if (runs && compressor) router = new RunRouter(runs, compressor, opts.cache);
    const tarSink: BlobWriter = {
      write: (chunk) => (router ?? compressor ?? out).write(chunk),
      // The compressor copies every chunk into its blocks before the write resolves; the cache
      // file is written before it resolves too; so chunks are free once the destination says so.
      releasesChunks: compressor !== undefined || writer.releasesChunks === true,
      close: () => Promise.reject(new Error('internal: the tar writer does not close its output')),
      abort: async () => {},
    };
    // An uncompressed layer going only to files is written by the tar worker itself (pwrite),
    // its bytes never crossing to this thread.
    const direct = !compressor && writer.region !== undefined ? [writer.region, ...(cacheWriter ? [cacheWriter.region] : [])] : undefined;
    // Compressed, this thread hashes and routes the compressed stream: the worker hashes the tar.
    const tarOpts = { mtime: opts.mtime, mayHashHere: compressor === undefined, ...(direct ? { direct } : {}) };
    const { diffId, size: tarred } = await writeLayerTar(items, tarOpts, tarSink);
    let digest: Digest = diffId;
    let size = tarred;
    if (compressor) ({ digest, size } = await compressor.finish());
    const open = await writer.close(digest, size);
    await router?.publish();
    if (opts.cache && identity !== undefined && (cacheWriter || container)) {
      const entry = { identity, diffId, digest, size, compression, uncompressedSize: tarred };
      const published = container ? await opts.cache.publishInContainer(entry, container.name, container.offset) : await cacheWriter!.publish(entry);
      if (published && runs && !compressor && ids) await recordRunsInBlob(runs, ids, opts.cache, digest, size);
    }
    if (opts.stats) {
      opts.stats.built.push(index);
      opts.stats.bytesTarred += tarred;
      for (const e of items) if (e.type === 'file' && e.source !== undefined && e.size > 0) opts.stats.filesRead.push(e.source);
    }
    return layerOf(diffId, digest, size, compression, job, open);
  } catch (e) {
    await compressor?.settle();
    await router?.discard();
    await writer.abort();
    await cacheWriter?.discard();
    throw e;
  }
}

/**
 * The cache container an uncompressed layer's destination file can be (see
 * LayerCache.adoptContainer): the file and the layer's place in it, when the file is the build's
 * output and the cache could link it.
 */
async function containerFor(cache: LayerCache | undefined, writer: BlobWriter, compression: Compression, used: Set<string>): Promise<{ name: string; offset: number } | undefined> {
  const region = writer.region;
  if (cache === undefined || compression !== 'none' || region?.durable === undefined) return undefined;
  const name = await cache.adoptContainer(region.path, region.durable.output);
  if (name === undefined) return undefined;
  used.add(name);
  return { name, offset: region.offset };
}

/**
 * Writes every chunk to `a` and (if given) `b`, the cache, which places writes by call order.
 * When `a` promises the same (every file-backed destination does), writes overlap and the tar
 * writer's reads and hashing run ahead of them; otherwise (a registry upload) they go one at a
 * time, since a sink that took its position after awaiting would put two chunks in one place.
 */
function tee(a: BlobWriter, b: ByteSink | undefined): ByteSink {
  if (a.acceptsConcurrentWrites === true) {
    return { write: async (chunk) => void (await (b ? Promise.all([a.write(chunk), b.write(chunk)]) : a.write(chunk))) };
  }
  let last: Promise<unknown> = Promise.resolve();
  return {
    write(chunk) {
      const next = last.then(async () => {
        if (b) await Promise.all([a.write(chunk), b.write(chunk)]);
        else await a.write(chunk);
      });
      // After a failure every later write fails too (the chain stays rejected), never half-applies.
      last = next;
      return next;
    },
  };
}

function layerOf(diffId: Digest, digest: Digest, size: number, compression: Compression, job: JobName, open: Layer['open']): Layer {
  return {
    diffId,
    digest,
    size,
    mediaType: ociLayerMediaType(compression),
    compression,
    ...(job.storePaths ? { storePaths: job.storePaths } : {}),
    open,
  };
}
