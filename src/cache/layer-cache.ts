/**
 * The local layer cache: finished layer blobs keyed by the identity of their inputs, plus a
 * DiffID → compressed blob map (what containerd and buildkit keep), so a layer whose inputs did
 * not change is neither re-read, re-tarred, re-hashed nor recompressed.
 *
 * Layout (under <dir>/v1, one filesystem so renames are atomic):
 *   blobs/sha256/<hex>             blob bytes, immutable once published
 *   layers/<sha256(identity)>.json  { identity, diffId, digest, size, compression, uncompressedSize }
 *   diffids/<compression>/<hex>.json { diffId, digest, size }
 *   segments/<sha256(identity)>.json { identity, tar, compressed? }: where one store path's run of a
 *                                   layer tar (src/tar/segments.ts) and its compressed units are: a
 *                                   byte range of an uncompressed layer blob, or blobs of their own
 *   containers/<out>-<rand>         hard links to build outputs (a docker-archive, a layout's blob
 *                                   file) that hold uncompressed layer blobs: the cache reads them
 *                                   back from there instead of keeping copies of its own
 *   locations/<hex>.json             { digest, size, container, offset }: blob <hex> is a byte range
 *                                   of a container (consulted when blobs/ has no file for it)
 *   stamps/<hex>.json                { path, offset, stamp }: blob <hex> at `offset` of `path` was
 *                                   verified when the file had this device, inode, size, mtime and
 *                                   ctime (nanoseconds); while it still has them the blob is trusted
 *   tmp/                            files being written; renamed into place when complete
 *
 * Containers: an uncompressed layer written into an output file is not written a second time
 * for the cache (on this class of machine that second write costs as much as the whole build).
 * The output is hard-linked instead, and its layers located in it. The next build of the same
 * output locates every layer it has in its own new output, and retires the old link, so the
 * cache holds one copy of each output, not one per build. A container is never written to; a
 * user who changes the output in place changes the cache's bytes too, which verification finds.
 * Where the output cannot be linked (another filesystem), the layer is copied into blobs/.
 *
 * Safe with several builds on one cache: everything is written to a unique temporary file and
 * renamed into place, and two builds publishing the same entry publish the same bytes (outputs are
 * deterministic), so whichever rename lands last changes nothing. Readers never trust an entry
 * blindly: a blob is hashed before use, and a truncated or altered one is deleted and rebuilt —
 * unless its file still has the stamp it had when it was last verified (as git's index and
 * ccache trust an unchanged stat). Writing a file changes its ctime, which no one can set back,
 * so an edited blob is hashed again; `verify: true` (--verify-cache) hashes every blob.
 */
import { createHash, randomBytes } from 'node:crypto';
import { holdTemp } from '../util/temp-paths.js';
import { closeSync, fstatSync, openSync, read as fsRead, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { digestHex, isDigest, type Digest } from '../image/digest.js';
import type { Compression } from '../image/media-types.js';
import { StrataError } from '../util/errors.js';
import { canonicalJson, canonicalJsonBytes } from '../util/json.js';
import type { ByteSink } from '../compress/block-writer.js';
import { COMPRESSIONS } from '../compress/compression.js';
import type { FileRegion } from '../transports/types.js';
import { copyTrustedOnWorker, hashFileOnWorker } from '../tar/writer.js';

export { entriesIdentity, layerIdentityFromSegments, narHashOf, segmentIdentity, TAR_FORMAT_TAG, type IdentityTarOptions, type NarHashLookup, type ScannedRun } from './identity.js';

/** $XDG_CACHE_HOME/strata, or ~/.cache/strata (XDG says to ignore a relative XDG_CACHE_HOME). */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return xdg && isAbsolute(xdg) ? join(xdg, 'strata') : join(homedir(), '.cache', 'strata');
}

export interface CachedLayer {
  identity: string;
  diffId: Digest;
  /** Blob digest (equals diffId when uncompressed). */
  digest: Digest;
  size: number;
  compression: Compression;
  uncompressedSize: number;
}

export interface CacheStats {
  /** Identity lookups answered with a verified blob. */
  hits: number;
  /** Blobs used without being hashed, their file's stamp unchanged since they were verified. */
  trusted: number;
  /** Blobs hashed to verify them (alone, or while being copied). */
  hashed: number;
  misses: number;
  /** Entries found broken (bad index JSON, missing, truncated or altered blob) and dropped. */
  corrupt: number;
  /** Entries written. */
  published: number;
  /**
   * Cache reads or writes that failed (unreadable blob, disk full, ...). A cache never fails a
   * build: a failed read is a miss, a failed write leaves the entry unpublished.
   */
  errors: number;
}

/**
 * A cached blob, open and of the right size but not yet trusted: the caller either has it hashed
 * (verify) and then copies it, or hashes it while copying (copyFileOnWorker) and reports what it
 * found (checked). Either way a blob that does not match is dropped, and the layer rebuilt.
 */
export interface CachedBlob {
  readonly fd: number;
  /** The file holding the blob: its own, or a container it is a range of. */
  readonly path: string;
  /** Where the blob starts in that file, and the file's whole size. */
  readonly offset: number;
  readonly fileSize: number;
  readonly size: number;
  /** Its file has the stamp it had when the blob was last verified: it need not be hashed again. */
  readonly trusted: boolean;
  /** The container it lies in (its name under containers/), when it is not a blob file of the cache's own. */
  readonly container?: string;
  /** Hashes the blob (on a tar worker) unless trusted: true when it matches; false once a bad entry is dropped. */
  verify(): Promise<boolean>;
  /** The digest the caller's own pass computed (undefined: it could not read it): true when it matches. */
  checked(digest: Digest | undefined): Promise<boolean>;
  /** Streams the blob into `out`, from the very inode that was verified. */
  copyTo(out: ByteSink & { releasesChunks?: boolean }): Promise<void>;
  /**
   * Copies the blob into a file region on a tar worker, unhashed (for a blob trusted or already
   * verified), in the kernel where it can be (a reflink where the filesystem has them): true when
   * every byte went; false when it could not (the region's place is then to be written again).
   */
  copyInto(region: FileRegion): Promise<boolean>;
  close(): Promise<void>;
}

/** A blob being written into the cache alongside the destination. */
export interface CacheBlobWriter extends ByteSink {
  /** Where a producer on another thread may write the blob itself (best effort: see FileRegion). */
  readonly region: FileRegion;
  /** Makes the blob and its index entries visible; false when the cache failed it. */
  publish(entry: CachedLayer): Promise<boolean>;
  discard(): Promise<void>;
}

/**
 * Bytes in blobs/sha256 that make a part of a layer (a store path's tar run, or its gzip
 * members): the whole blob `digest` of `size` bytes, or `length` bytes of it at `offset`. An
 * uncompressed layer's runs are ranges of the layer blob itself, so caching them costs no bytes.
 * The blob is verified whole (its sha256 is its name), once per build.
 */
export interface Piece {
  digest: Digest;
  size: number;
  offset?: number;
  length?: number;
}

/** A verified piece, ready to read: `length` bytes at `offset` of the file at `path`. */
export interface PieceFile {
  path: string;
  offset: number;
  length: number;
  /** Size of the whole file, which readers check so a file swapped underneath is noticed. */
  fileSize: number;
}

export const pieceLength = (p: Piece): number => p.length ?? p.size;

type BlobState = 'ok' | 'missing' | 'mismatch' | 'unreadable';
interface CheckedBlob { state: BlobState; loc: BlobLocation | undefined; fileSize: number }
/** Blobs already hashed while planning one layer, and what was found (see verifyPiece). */
export type BlobChecks = Map<string, Promise<CheckedBlob>>;

/** Where a blob's bytes are: from `offset` of the file at `path` (see locateBlob). */
export interface BlobLocation {
  path: string;
  offset: number;
  /** The location record that put it in a container, and the size it gives; undefined for a blob file of its own. */
  record?: string;
  size?: number;
}

/** A blob file of its own is exactly the blob; a container holds it somewhere inside. */
function fits(loc: BlobLocation, fileSize: number, size: number): boolean {
  return loc.record === undefined ? fileSize === size : loc.size === size && loc.offset + size <= fileSize;
}

/** Container names start with this digest of the output they hold: what retirement matches. */
function outputKey(output: string): string {
  return createHash('sha256').update(resolve(output)).digest('hex').slice(0, 16);
}

/** A container's name is `<outputKey>-<random>`; this is the output part. */
function containerOutputKey(name: string): string {
  const dash = name.indexOf('-');
  return dash < 0 ? name : name.slice(0, dash);
}

const CONTAINER_NAME = /^[0-9a-f]{16}-[0-9a-f]{16}$/;

/** A location record's fields, when it is well-formed and about `digest` (what lookups and prune accept). */
export function parseLocation(raw: string, digest: Digest): { container: string; offset: number; size: number } | undefined {
  try {
    const v = JSON.parse(raw) as { digest?: unknown; size?: unknown; container?: unknown; offset?: unknown };
    const count = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
    if (v.digest === digest && count(v.size) && count(v.offset) && typeof v.container === 'string' && CONTAINER_NAME.test(v.container)) {
      return { container: v.container, offset: v.offset, size: v.size };
    }
  } catch {
    // fall through: corrupt
  }
  return undefined;
}

/**
 * One store path's run of a layer tar, cached so that a layer whose other paths changed can be
 * made again without reading this path's files: its tar bytes (for the DiffID, and the blob
 * itself when uncompressed) and, for compressed layers, the units compressed from them (which
 * codec is part of the identity).
 */
export interface SegmentRecord {
  identity: string;
  tar: Piece;
  compressed?: Piece;
}

/** A piece being written; finish() hashes nothing more, renames it into place and names it. */
export interface PieceWriter extends ByteSink {
  /** The stored piece, or undefined when the cache failed it (never fails the build). */
  finish(): Promise<Piece | undefined>;
  discard(): Promise<void>;
}

const IO_CHUNK = 1 << 20;

export class LayerCache {
  readonly stats: CacheStats = { hits: 0, trusted: 0, hashed: 0, misses: 0, corrupt: 0, published: 0, errors: 0 };
  /** <dir>/v1: the layout described at the top of this file. */
  readonly root: string;
  /** Its directories: blobs, the index records that name blobs, and temporary files. */
  readonly dirs: { blobs: string; containers: string; locations: string; stamps: string; records: readonly string[]; tmp: string };
  /** Files this instance linked as containers, and the names it gave them (see adoptContainer). */
  private readonly adopted = new Map<string, Promise<string | undefined>>();
  /** Blobs this instance verified, used or placed in containers: stamped again once the build's output is complete (stampUsed). */
  private readonly used = new Map<Digest, BlobLocation>();
  /** The stamp records this instance read or wrote, by blob: stampUsed compares against them without reading them again. */
  private readonly stampRecords = new Map<Digest, string>();

  /** `verifyAll` (--verify-cache): every blob is hashed before use, and no record is taken on trust. */
  private constructor(readonly dir: string, readonly verifyAll: boolean) {
    // Absolute: stamps and containers are recorded by path, and the same cache named relatively
    // from another working directory (or absolutely) must find them as the same files.
    this.root = join(resolve(dir), 'v1');
    this.dirs = {
      blobs: join(this.root, 'blobs', 'sha256'),
      containers: join(this.root, 'containers'),
      locations: join(this.root, 'locations'),
      stamps: join(this.root, 'stamps'),
      records: ['layers', 'segments', ...COMPRESSIONS.map((c) => join('diffids', c))].map((d) => join(this.root, d)),
      tmp: join(this.root, 'tmp'),
    };
  }

  static async open(dir: string, opts: CacheOptions = {}): Promise<LayerCache> {
    const c = new LayerCache(dir, opts.verify ?? false);
    try {
      await Promise.all([c.dirs.blobs, c.dirs.containers, c.dirs.locations, c.dirs.stamps, ...c.dirs.records, c.dirs.tmp].map((d) => mkdir(d, { recursive: true })));
    } catch (e) {
      throw new StrataError(`cannot use cache directory ${dir}: ${(e as Error).message}`, { cause: e });
    }
    return c;
  }

  blobPath(digest: Digest): string {
    return join(this.dirs.blobs, digestHex(digest));
  }

  private layerPath(identity: string): string {
    return join(this.root, 'layers', `${createHash('sha256').update(identity).digest('hex')}.json`);
  }

  private diffIdPath(diffId: Digest, compression: Compression): string {
    return join(this.root, 'diffids', compression, `${digestHex(diffId)}.json`);
  }

  /** The index entry for `identity`, if there is a well-formed one (its blob is not checked yet). */
  async lookup(identity: string): Promise<CachedLayer | undefined> {
    const raw = readRecord(this.layerPath(identity));
    if (raw === undefined) return undefined;
    const entry = parseEntry(raw);
    if (entry === undefined || entry.identity !== identity) {
      this.stats.corrupt++;
      await rm(this.layerPath(identity), { force: true });
      return undefined;
    }
    return entry;
  }

  /** The compressed blob recorded for a DiffID, if any (verify it with openVerified before use). */
  async lookupDiffId(diffId: Digest, compression: Compression): Promise<{ digest: Digest; size: number } | undefined> {
    const raw = readRecord(this.diffIdPath(diffId, compression));
    if (raw === undefined) return undefined;
    try {
      const v = JSON.parse(raw) as { diffId?: unknown; digest?: unknown; size?: unknown };
      if (v.diffId === diffId && isDigest(v.digest) && Number.isSafeInteger(v.size)) return { digest: v.digest, size: v.size as number };
    } catch {
      // fall through: treated as absent
    }
    return undefined;
  }

  /**
   * Where blob `digest` is: its own file in blobs/, else the range a location record gives in a
   * container. Only found, not checked: callers check the size of what they open, and hash it.
   */
  async locateBlob(digest: Digest): Promise<BlobLocation | undefined> {
    const own = this.blobPath(digest);
    // Metadata on the per-blob path is read synchronously, as records are: a few microseconds,
    // against a thread-pool round trip and an event-loop turn for each asynchronous call.
    if (statSync(own, { throwIfNoEntry: false })?.isFile()) return { path: own, offset: 0 };
    const record = this.locationPath(digest);
    const raw = readRecord(record);
    if (raw === undefined) return undefined;
    const loc = parseLocation(raw, digest);
    if (loc === undefined) {
      this.stats.corrupt++;
      await rm(record, { force: true });
      return undefined;
    }
    return { path: join(this.dirs.containers, loc.container), offset: loc.offset, record, size: loc.size };
  }

  private locationPath(digest: Digest): string {
    return join(this.dirs.locations, `${digestHex(digest)}.json`);
  }

  /**
   * Opens the blob of `entry`, checking its size, for the caller to verify (see CachedBlob).
   * A missing or wrongly sized blob drops the entry and returns undefined, so the caller rebuilds.
   */
  async openBlob(entry: { identity?: string; digest: Digest; size: number }): Promise<CachedBlob | undefined> {
    const loc = await this.locateBlob(entry.digest);
    if (loc === undefined) return this.dropCorrupt(entry);
    const { path, offset } = loc;
    // Opened synchronously, like the metadata calls around it (see locateBlob).
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return this.dropCorrupt(entry, loc);
    }
    let fileSize: number;
    try {
      fileSize = fstatSync(fd).size;
      if (!fits(loc, fileSize, entry.size)) {
        closeSync(fd);
        return this.dropCorrupt(entry, loc);
      }
    } catch {
      closeQuietly(fd);
      this.stats.errors++;
      return undefined;
    }
    const trusted = this.isTrusted(entry.digest, loc, fd);
    const accept = async (digest: Digest | undefined): Promise<boolean> => {
      if (digest === entry.digest) {
        this.stats.hits++;
        await this.markUsed(loc);
        // A trusted blob's stamp is the one on record already; stampUsed takes it again after commit.
        if (!trusted) await this.stamp(entry.digest, loc, fd);
        this.used.set(entry.digest, loc);
        return true;
      }
      // Unreadable is not proof of corruption (EIO, a permission change): a miss, the entry kept.
      if (digest === undefined) this.stats.errors++;
      else await this.dropCorrupt(entry, loc);
      return false;
    };
    // The caller hashed it (alone, or while copying it).
    const checked = async (digest: Digest | undefined): Promise<boolean> => {
      this.stats.hashed++;
      return accept(digest);
    };
    return {
      fd,
      path,
      offset,
      fileSize,
      size: entry.size,
      trusted,
      ...(loc.record !== undefined ? { container: basename(path) } : {}),
      verify: async () => {
        if (trusted) {
          this.stats.trusted++;
          return accept(entry.digest);
        }
        return checked(await hashFileOnWorker({ fd, path, size: fileSize }, offset, entry.size).catch(() => undefined));
      },
      checked,
      copyTo: (out) => copyFile(fd, entry.size, out, path, offset),
      copyInto: async (region) => (await copyTrustedOnWorker({ fd, path, size: fileSize }, [region], offset, entry.size).catch(() => undefined)) === entry.size,
      close: async () => closeSync(fd),
    };
  }

  /**
   * Hashes a blob: 'ok' when size and sha256 match, else what went wrong. Unreadable is not
   * proof of corruption (EIO, a permission change).
   */
  private async checkBlob(digest: Digest, size: number, loc: BlobLocation | undefined): Promise<CheckedBlob> {
    const result = (state: BlobState, fileSize = -1): CheckedBlob => ({ state, loc, fileSize });
    if (loc === undefined) return result('missing');
    let fd: number;
    try {
      fd = openSync(loc.path, 'r');
    } catch {
      return result('missing');
    }
    try {
      // Hashed on a tar worker: blobs verify in parallel, off the thread that scans the store.
      const fileSize = fstatSync(fd).size;
      if (!fits(loc, fileSize, size)) return result('mismatch');
      const trusted = this.isTrusted(digest, loc, fd);
      if (trusted) this.stats.trusted++;
      else this.stats.hashed++;
      const ok = trusted || (await hashFileOnWorker({ fd, path: loc.path, size: fileSize }, loc.offset, size)) === digest;
      if (ok) {
        await this.markUsed(loc);
        await this.stamp(digest, loc, fd);
        this.used.set(digest, loc);
      }
      // A piece's reader checks the file's size again: its whole size, as it was when hashed.
      return ok ? result('ok', fileSize) : result('mismatch');
    } catch {
      return result('unreadable');
    } finally {
      closeQuietly(fd);
    }
  }

  /**
   * A blob file's mtime is when a build last used it (or wrote it): what `pruneCache` keeps the
   * newest of. A blob in a container marks its location record instead: the container is the
   * user's output file, whose times are not ours to change. Best effort: a read-only cache is
   * still a cache.
   */
  private async markUsed(loc: BlobLocation): Promise<void> {
    const now = new Date();
    try {
      utimesSync(loc.record ?? loc.path, now, now);
    } catch {
      // best effort (see above)
    }
  }

  private stampPath(digest: Digest): string {
    return join(this.dirs.stamps, `${digestHex(digest)}.json`);
  }

  /** Whether the open file `fd` still has the stamp recorded when blob `digest` in it was verified. */
  private isTrusted(digest: Digest, loc: BlobLocation, fd: number): boolean {
    if (this.verifyAll) return false;
    const raw = readRecord(this.stampPath(digest));
    if (raw === undefined) return false;
    this.stampRecords.set(digest, raw);
    try {
      const rec = JSON.parse(raw) as { path?: unknown; offset?: unknown; stamp?: unknown };
      return rec.path === loc.path && rec.offset === loc.offset && rec.stamp === fileStamp(fstatSync(fd, { bigint: true }));
    } catch {
      return false;
    }
  }

  /** Records the stamp of the file holding blob `digest`, just verified (best effort); a record that already says so is left as it is. */
  private async stamp(digest: Digest, loc: BlobLocation, fd?: number): Promise<void> {
    try {
      const st = fd !== undefined ? fstatSync(fd, { bigint: true }) : statSync(loc.path, { bigint: true });
      const record = canonicalJson({ path: loc.path, offset: loc.offset, stamp: fileStamp(st) });
      if ((this.stampRecords.get(digest) ?? readRecord(this.stampPath(digest))) === record) return;
      await this.writeAtomic(this.stampPath(digest), JSON.parse(record));
      this.stampRecords.set(digest, record);
    } catch {
      // An unstamped blob is hashed next time: slower, never wrong.
    }
  }

  /**
   * Stamps again every blob this build verified, trusted or placed in a container, once its
   * output is complete (committed): they were hashed as they were made, copied or checked, and
   * linking them into the output (or removing the previous output) changed their files' ctime.
   * Nothing writes an output after its commit but its user, whose write changes the stamp.
   */
  async stampUsed(): Promise<void> {
    const used = [...this.used];
    this.used.clear();
    for (const [digest, loc] of used) await this.stamp(digest, loc);
  }

  /**
   * Forgets a bad blob: its own file, or its location record (a container holds other blobs,
   * and is somebody's output: it is never changed).
   */
  private async forgetBlob(digest: Digest, loc: BlobLocation | undefined): Promise<void> {
    await rm(loc?.record ?? this.blobPath(digest), { force: true });
  }

  private async dropCorrupt(entry: { identity?: string; digest: Digest }, loc?: BlobLocation): Promise<undefined> {
    this.stats.corrupt++;
    // The blob may be shared by several identities; removing it makes them all miss and rebuild,
    // which republishes good bytes. A concurrent build that already verified its open copy is
    // unaffected (it holds the old inode).
    await this.forgetBlob(entry.digest, loc);
    if (entry.identity !== undefined) await rm(this.layerPath(entry.identity), { force: true });
    return undefined;
  }

  /**
   * Hard-links `file`, which becomes the output `output` (FileRegion.durable), into containers/,
   * once per file. Undefined when it cannot be linked (another filesystem, no permission): the
   * caller then writes the blob into the cache as a copy (beginBlob).
   */
  adoptContainer(file: string, output: string): Promise<string | undefined> {
    let adopted = this.adopted.get(file);
    if (adopted === undefined) {
      const name = `${outputKey(output)}-${randomBytes(8).toString('hex')}`;
      adopted = link(file, join(this.dirs.containers, name)).then(() => name, () => undefined);
      this.adopted.set(file, adopted);
    }
    return adopted;
  }

  /** Records that blob `digest` is `size` bytes at `offset` of container `name`. */
  async placeInContainer(digest: Digest, size: number, name: string, offset: number): Promise<boolean> {
    try {
      await this.writeAtomic(this.locationPath(digest), { digest, size, container: name, offset });
      this.used.set(digest, { path: join(this.dirs.containers, name), offset });
      return true;
    } catch {
      this.stats.errors++;
      return false;
    }
  }

  /** Publishes a layer whose blob lies in container `name` at `offset` (see adoptContainer). */
  async publishInContainer(entry: CachedLayer, name: string, offset: number): Promise<boolean> {
    if (!(await this.placeInContainer(entry.digest, entry.size, name, offset))) return false;
    return this.indexLayer(entry).then(() => true, () => (this.stats.errors++, false));
  }

  /**
   * Removes the containers of earlier builds of the outputs that the containers `current` (one
   * build's) hold: every layer that build made or copied is located in its own output now. Blobs
   * only an old output had are lost with it, as they are from the output itself. Called once the
   * build's layers are all done.
   */
  async retireReplacedContainers(current: ReadonlySet<string>): Promise<void> {
    if (current.size === 0) return;
    const keys = new Set([...current].map(containerOutputKey));
    const names = await readdir(this.dirs.containers).catch(() => [] as string[]);
    for (const n of names) {
      if (!current.has(n) && keys.has(containerOutputKey(n))) await rm(join(this.dirs.containers, n), { force: true }).catch(() => undefined);
    }
  }

  /**
   * Starts writing a blob into the cache's tmp directory. Best effort: after any failure (disk
   * full, cache directory removed) the writer swallows further writes and publish does nothing,
   * so the build goes on without the cache entry. Undefined when not even the file can be made.
   */
  async beginBlob(): Promise<CacheBlobWriter | undefined> {
    const opened = await this.openTemp('blob');
    if (!opened) return undefined;
    const { tmp, fh } = opened;
    let written = 0;
    let broken = false;
    let closed = false;
    const breakOff = (): void => {
      if (!broken) this.stats.errors++;
      broken = true;
    };
    const closeOnce = async () => {
      if (!closed) {
        closed = true;
        await fh.close();
      }
    };
    return {
      region: { fd: fh.fd, offset: 0, path: tmp, bestEffort: true, wrote: (size) => void (written += size), failed: breakOff },
      write: async (chunk) => {
        // The position is taken before awaiting: writes may overlap, each has its own place.
        const at = written;
        written += chunk.length;
        if (broken) return;
        await fh.write(chunk, 0, chunk.length, at).catch(breakOff);
      },
      publish: async (entry) => {
        await closeOnce().catch(breakOff);
        if (broken || written !== entry.size) {
          await rm(tmp, { force: true }).catch(() => undefined);
          if (!broken) throw new Error(`internal: cached blob is ${written} bytes, entry says ${entry.size}`);
          return false;
        }
        try {
          // Rename over an existing blob of this digest: it is either identical or corrupt.
          await rename(tmp, this.blobPath(entry.digest));
          // Hashed as it was written: trusted until its file changes.
          await this.stamp(entry.digest, { path: this.blobPath(entry.digest), offset: 0 });
          this.used.set(entry.digest, { path: this.blobPath(entry.digest), offset: 0 });
          await this.indexLayer(entry);
          return true;
        } catch {
          breakOff();
          await rm(tmp, { force: true }).catch(() => undefined);
          return false;
        }
      },
      discard: async () => {
        await closeOnce().catch(() => undefined);
        await rm(tmp, { force: true });
      },
    };
  }

  /** The DiffID map and the layer's index entry, once its blob is in place. */
  private async indexLayer(entry: CachedLayer): Promise<void> {
    await this.writeAtomic(this.diffIdPath(entry.diffId, entry.compression), { diffId: entry.diffId, digest: entry.digest, size: entry.size });
    // The index entry last: it is what lookups find, and its blob is in place by now.
    await this.writeAtomic(this.layerPath(entry.identity), entry);
    this.stats.published++;
  }

  private segmentPath(identity: string): string {
    return join(this.root, 'segments', `${createHash('sha256').update(identity).digest('hex')}.json`);
  }

  /** The segment record of `identity`, if a well-formed one exists (pieces not checked yet). */
  async lookupSegment(identity: string): Promise<SegmentRecord | undefined> {
    const raw = readRecord(this.segmentPath(identity));
    if (raw === undefined) return undefined;
    let rec: SegmentRecord | undefined;
    try {
      // `gzip` is what strata 0.1.0 called `compressed` (gzip was its only codec): those records stay usable.
      const v = JSON.parse(raw) as Partial<SegmentRecord> & { gzip?: Piece };
      const compressed = v.compressed ?? v.gzip;
      if (v.identity === identity && isPiece(v.tar) && (compressed === undefined || isPiece(compressed))) rec = { identity, tar: v.tar, ...(compressed ? { compressed } : {}) };
    } catch {
      // fall through: corrupt
    }
    if (rec === undefined) {
      this.stats.corrupt++;
      await rm(this.segmentPath(identity), { force: true });
    }
    return rec;
  }

  /**
   * Verifies a piece's blob and returns where to read it. Pieces checked with one `checked` map
   * (one layer's) hash a blob they share once: the runs of an uncompressed layer are ranges of
   * one blob. A mismatch deletes the blob so it is rebuilt; a missing or bad blob drops the
   * segment record, if named; unreadable counts as a miss.
   */
  async verifyPiece(piece: Piece, segmentIdentity?: string, checked: BlobChecks = new Map()): Promise<PieceFile | undefined> {
    const offset = piece.offset ?? 0;
    const length = pieceLength(piece);
    const inRange = offset + length <= piece.size;
    const found = inRange ? await this.verifyBlobOnce(piece.digest, piece.size, checked) : undefined;
    const state = found?.state ?? 'missing';
    if (state === 'ok') return { path: found!.loc!.path, offset: found!.loc!.offset + offset, length, fileSize: found!.fileSize };
    if (state !== 'unreadable' && segmentIdentity !== undefined) await rm(this.segmentPath(segmentIdentity), { force: true });
    return undefined;
  }

  private verifyBlobOnce(digest: Digest, size: number, checked: BlobChecks): Promise<CheckedBlob> {
    const key = `${digest} ${size}`;
    let state = checked.get(key);
    if (state === undefined) {
      state = (async () => {
        const loc = await this.locateBlob(digest);
        const found = await this.checkBlob(digest, size, loc);
        if (found.state === 'unreadable') this.stats.errors++;
        if (found.state === 'mismatch') {
          this.stats.corrupt++;
          await this.forgetBlob(digest, loc);
        }
        return found;
      })();
      checked.set(key, state);
    }
    return state;
  }

  /** Starts a piece; undefined when the cache cannot take one (the build goes on without). */
  async beginPiece(): Promise<PieceWriter | undefined> {
    const opened = await this.openTemp('piece');
    if (!opened) return undefined;
    const { tmp, fh } = opened;
    const hash = createHash('sha256');
    let size = 0;
    let broken = false;
    return {
      // Called in order, each awaited before the next: the position is simply the running size.
      write: async (chunk) => {
        hash.update(chunk);
        const at = size;
        size += chunk.length;
        if (!broken) await fh.write(chunk, 0, chunk.length, at).catch(() => void (broken = true));
      },
      finish: async () => {
        await fh.close().catch(() => void (broken = true));
        const piece: Piece = { digest: `sha256:${hash.digest('hex')}`, size };
        try {
          if (broken) throw new Error('write failed');
          await rename(tmp, this.blobPath(piece.digest));
          const loc = { path: this.blobPath(piece.digest), offset: 0 };
          await this.stamp(piece.digest, loc);
          this.used.set(piece.digest, loc);
          return piece;
        } catch {
          this.stats.errors++;
          await rm(tmp, { force: true }).catch(() => undefined);
          return undefined;
        }
      },
      discard: async () => {
        await fh.close().catch(() => undefined);
        await rm(tmp, { force: true }).catch(() => undefined);
      },
    };
  }

  /** Records a segment whose pieces are in place (best effort, like every cache write). */
  async publishSegment(rec: SegmentRecord): Promise<void> {
    await this.writeAtomic(this.segmentPath(rec.identity), rec).catch(() => void this.stats.errors++);
  }

  /** A new file in tmp/ for a blob or piece; undefined (counted as an error) when it cannot be made. */
  private async openTemp(kind: string): Promise<{ tmp: string; fh: FileHandle } | undefined> {
    const tmp = this.tmpPath(kind);
    const fh = await open(tmp, 'wx', 0o644).catch(() => undefined);
    if (!fh) this.stats.errors++;
    // Held until renamed into place or removed; an interrupt removes it (prune would, later).
    else holdTemp(tmp);
    return fh && { tmp, fh };
  }

  /** Unique among processes (pid), instances (a random tag) and calls (a counter). */
  private tmpPath(kind: string): string {
    return join(this.dirs.tmp, `${kind}-${process.pid}-${this.tmpTag}-${this.tmpCount++}`);
  }

  private readonly tmpTag = randomBytes(6).toString('hex');
  private tmpCount = 0;

  /**
   * Records are a few hundred bytes, and a build writes several per layer: synchronously, as a
   * write through the thread pool costs two thread wake-ups per call, more than the write itself.
   */
  private async writeAtomic(path: string, value: unknown): Promise<void> {
    const tmp = this.tmpPath('json');
    writeFileSync(tmp, canonicalJsonBytes(value), { flag: 'wx', mode: 0o644 });
    renameSync(tmp, path);
  }
}

export interface CacheOptions {
  /** Hash every blob before use, trusting no stamp (`--verify-cache`). */
  readonly verify?: boolean;
}

export function openLayerCache(dir: string, opts: CacheOptions = {}): Promise<LayerCache> {
  return LayerCache.open(dir, opts);
}

/** What changes whenever a file's bytes change: device, inode, size, and mtime and ctime in nanoseconds. */
function fileStamp(st: import('node:fs').BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** A record's text, or undefined when there is none (or it cannot be read: a miss). Read synchronously, as written (writeAtomic). */
function readRecord(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function isPiece(v: unknown): v is Piece {
  const p = v as Partial<Piece> | undefined;
  const count = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;
  return typeof p === 'object' && p !== null && isDigest(p.digest) && count(p.size)
    && (p.offset === undefined || count(p.offset)) && (p.length === undefined || count(p.length));
}

function parseEntry(raw: string): CachedLayer | undefined {
  try {
    const v = JSON.parse(raw) as Record<string, unknown>;
    const ok = typeof v.identity === 'string' && isDigest(v.diffId) && isDigest(v.digest) && Number.isSafeInteger(v.size)
      && Number.isSafeInteger(v.uncompressedSize) && typeof v.compression === 'string' && (COMPRESSIONS as readonly string[]).includes(v.compression);
    if (!ok) return undefined;
    return {
      identity: v.identity as string,
      diffId: v.diffId as Digest,
      digest: v.digest as Digest,
      size: v.size as number,
      compression: v.compression as Compression,
      uncompressedSize: v.uncompressedSize as number,
    };
  } catch {
    return undefined;
  }
}

/** Streams a verified piece into `out`. */
export async function copyPiece(piece: PieceFile, out: ByteSink & { releasesChunks?: boolean }): Promise<void> {
  const fd = openSync(piece.path, 'r');
  try {
    await copyFile(fd, piece.length, out, piece.path, piece.offset);
  } finally {
    closeSync(fd);
  }
}

/** Reads into `buf` at `position` of `fd`: how many bytes came. */
const readAt = (fd: number, buf: Buffer, position: number): Promise<number> =>
  new Promise((res, rej) => fsRead(fd, buf, 0, buf.length, position, (e, n) => (e ? rej(e) : res(n))));

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed, or EIO on close: nothing was written through it
  }
}

/**
 * Copies `size` bytes, reading the next chunk while the previous one is written. Two buffers
 * alternate when the sink releases chunks once written; otherwise each chunk is fresh.
 */
async function copyFile(fd: number, size: number, out: ByteSink & { releasesChunks?: boolean }, path: string, from = 0): Promise<void> {
  let pos = 0;
  let pending: Promise<void> | undefined;
  const pair = out.releasesChunks === true ? [Buffer.allocUnsafe(IO_CHUNK), Buffer.allocUnsafe(IO_CHUNK)] : undefined;
  let turn = 0;
  while (pos < size) {
    const want = Math.min(IO_CHUNK, size - pos);
    const buf = pair ? pair[turn++ & 1]!.subarray(0, want) : Buffer.allocUnsafe(want);
    const bytesRead = await readAt(fd, buf, from + pos);
    if (bytesRead === 0) throw new StrataError(`cached blob ${path} shrank while it was being copied`);
    if (pending) await pending;
    pending = out.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  if (pending) await pending;
}
