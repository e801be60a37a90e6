import type { Readable } from 'node:stream';
import type { Digest } from '../image/digest.js';
import type { Image, ImageIndex } from '../image/image.js';
import type { Platform } from '../image/platform.js';
import { resolveImage } from '../image/select.js';
import type { Layer } from '../image/layer.js';
import type { Compression } from '../image/media-types.js';

/**
 * Where a freshly produced blob goes while it is being produced. Bytes arrive in order;
 * the producer hashes them and reports the digest at the end, so a destination never has to
 * re-read what it was given.
 */
export interface BlobWriter {
  write(chunk: Buffer): Promise<void>;
  /**
   * Optional promise that `write` is done with `chunk` once its promise resolves (the bytes were
   * written out or copied), so the producer may refill the same buffer. Leave unset when chunks
   * (or views of them) are kept past that point; the producer then allocates a fresh buffer for
   * every chunk, which costs page faults and garbage-collector pressure.
   */
  readonly releasesChunks?: boolean;
  /**
   * Optional promise that several writes may be in flight at once: each chunk lands at the
   * place its call order gives it. Unset, producers wait for each write before the next.
   */
  readonly acceptsConcurrentWrites?: boolean;
  /**
   * Optional: the file region the blob's bytes go to, for a producer on another thread (a tar
   * worker) to write with pwrite itself instead of passing each chunk through this thread. Such a
   * producer writes every byte there, in place of write(), then calls `region.wrote(size)`.
   */
  readonly region?: FileRegion;
  /**
   * Optional, with `region`: forgets every byte written so far, so the blob can be written again
   * from its first byte (a cached layer copied in while being hashed, whose hash then did not
   * match, is made afresh into the same place).
   */
  restart?(): Promise<void>;
  /**
   * Optional: makes the blob the file at `file` (its whole content, blob `digest`, already
   * verified) without copying it — a hard link, or nothing at all where the destination's blob
   * already is that very file. False when that cannot be done (another filesystem); the caller
   * then writes the bytes as usual. Called before any write, and followed by close().
   */
  adopt?(file: string, digest: Digest): Promise<boolean>;
  /** Ends the blob. Returns how to read it back (for a second output, a cache, or a test). */
  close(digest: Digest, size: number): Promise<() => Promise<Readable>>;
  abort(): Promise<void>;
}

/** Bytes [0, n) of a blob go to `fd` at [offset, offset + n). */
export interface FileRegion {
  fd: number;
  offset: number;
  /** The file, for messages. */
  path: string;
  /** Bytes beyond this would overrun what the file has room for (a reserved archive member). */
  limit?: number;
  /** A failed write drops this region instead of failing the build (the cache). */
  bestEffort?: boolean;
  /**
   * Set when the file becomes the build's output (an archive, a layout's blob) and so outlives
   * the build: a layer cache may hard-link the file and read the blob back from it later instead
   * of writing a copy of its own. `output` names the output (a path), so that the next build of
   * the same output replaces the link.
   */
  durable?: { output: string };
  /** Called once the producer wrote `size` bytes into the region. */
  wrote(size: number): void;
  /** Called instead of `wrote` when a best-effort region's write failed. */
  failed?(error: Error): void;
}

/**
 * One output: docker-archive, OCI layout (dir or tar), or a registry.
 * A destination is written in three steps — blobs (new layers streamed in, existing layers
 * copied or mounted), then `commit` with the finished root, which makes it visible atomically
 * (rename, or manifest PUT last). `abort` removes every trace of a failed build.
 *
 * The root is an Image or an ImageIndex. For an image, commit writes its config and manifest;
 * its layers are the ones given through beginBlob/addLayer. For an index, commit writes the whole
 * tree under it, every child's blobs and manifests before the index, so a destination can take
 * images read from anywhere (blobs are copied, mounted or skipped where already present). A
 * destination that cannot hold an index (docker-archive) refuses it with a StrataError.
 */
export interface ImageDestination {
  /** Human-readable name for messages, e.g. `docker-archive:out.tar`. */
  readonly name: string;
  /** Layer compression this destination wants for new layers. */
  readonly compression: Compression;
  /** Starts a new layer blob; `expectedSize` is given when known in advance (uncompressed tars). */
  beginBlob(expectedSize?: number): Promise<BlobWriter>;
  /**
   * Optional: when the destination already holds blob `digest` of `size` bytes (a registry
   * answering HEAD), how to read it back; undefined when it does not. A producer that knows a
   * layer's digest before making it (from the layer cache) asks first, and for a blob that is
   * there neither reads nor sends a byte. Destinations whose output must hold every blob itself
   * (archives, layouts) leave it unset.
   */
  hasBlob?(digest: Digest, size: number): Promise<(() => Promise<Readable>) | undefined>;
  /** Adds an existing layer (from a base image) without changing its bytes. */
  addLayer(layer: Layer): Promise<void>;
  /** `refs`: names for the root (`--tag`); a destination reference's own name adds to them. */
  commit(root: Image | ImageIndex, refs: readonly string[]): Promise<void>;
  abort(): Promise<void>;
}

/** An image read from an archive, a layout or a registry. */
export interface ImageSource {
  readonly name: string;
  readonly image: Image;
  /** The names the source records for the image (see RootSource.names). */
  readonly names?: readonly string[];
  /** Releases file handles or connections. */
  close(): Promise<void>;
}

/** What a reference names, as it is: an image, or an index whose children open lazily. */
export interface RootSource {
  readonly name: string;
  readonly root: Image | ImageIndex;
  /**
   * The names the source records for what it holds, fully qualified (`docker.io/library/app:1`):
   * a docker-archive entry's RepoTags, an OCI index entry's `io.containerd.image.name`, the
   * reference a registry image was read by. Unset when it records none.
   */
  readonly names?: readonly string[];
  close(): Promise<void>;
}

/** The image a root source stands for on `platform` (the one platform matcher decides). */
export async function imageOf(source: RootSource, platform: Platform | undefined): Promise<ImageSource> {
  try {
    const image = await resolveImage(source.root, platform, source.name);
    return { name: source.name, image, ...(source.names ? { names: source.names } : {}), close: () => source.close() };
  } catch (e) {
    await source.close();
    throw e;
  }
}
