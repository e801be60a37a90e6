import { createReadStream } from 'node:fs';
import { holdTemp, releaseTemp } from '../../util/temp-paths.js';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StrataError } from '../../util/errors.js';
import type { Digest } from '../../image/digest.js';
import { isIndex, type Image, type ImageIndex } from '../../image/image.js';
import type { Layer } from '../../image/layer.js';
import { manifestOf, type SerializedManifest } from '../../image/manifest.js';
import { nodeManifest, visitBottomUp } from '../../image/walk.js';
import { MediaTypes, type Compression } from '../../image/media-types.js';
import { sha256Digest } from '../../image/digest.js';
import type { BlobWriter, ImageDestination } from '../types.js';
import { BlobUpload, Chunker, isTransient, RegistryClient, type RegistryOptions } from './client.js';
import { formatReference, parseRegistryReference, type RegistryReference } from './reference.js';
import { RegistryLayer } from './source.js';

const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * Pushes an image to a registry. Blobs go first (skipped when present, mounted when another
 * repository of the same registry has them, else uploaded); the manifest is PUT last, so a
 * push that fails half-way leaves every tag where it was.
 */
export class RegistryDestination implements ImageDestination {
  readonly name: string;
  readonly compression: Compression;
  /** Blobs known to be in the target repository (checked, mounted or uploaded by this push). */
  private readonly present = new Set<Digest>();
  private readonly uploads = new Set<BlobUpload>();
  private readonly spoolDirs = new Set<string>();
  private blobCount = 0;

  constructor(readonly reference: RegistryReference, readonly client: RegistryClient, private readonly opts: RegistryOptions) {
    this.name = `docker://${formatReference(reference)}`;
    this.compression = opts.compression ?? 'gzip';
  }

  get repository(): string {
    return this.reference.repository;
  }

  /** The blob is in the target repository already (a rebuilt layer the registry has): see ImageDestination. */
  async hasBlob(digest: Digest, size: number): Promise<(() => Promise<Readable>) | undefined> {
    if (!(await this.holds(digest))) return undefined;
    return () => this.client.getBlob(this.repository, digest, size, `layer ${digest} of ${this.name}`);
  }

  /** True when the target repository already has the blob (checked once, then remembered). */
  private async holds(digest: Digest): Promise<boolean> {
    if (this.present.has(digest)) return true;
    if ((await this.client.headBlob(this.repository, digest)) !== undefined) {
      this.client.countBlob('blobsSkipped');
      this.present.add(digest);
      return true;
    }
    return false;
  }

  async beginBlob(_expectedSize?: number): Promise<BlobWriter> {
    if (this.opts.blobWrites === 'spool') {
      this.blobCount++;
      const dir = await mkdtemp(join(this.opts.spoolDir ?? tmpdir(), 'strata-push-'));
      this.spoolDirs.add(dir);
      holdTemp(dir);
      return new SpoolingBlobWriter(this, dir, `new layer #${this.blobCount} for ${this.name}`, () => {
        this.spoolDirs.delete(dir);
        releaseTemp(dir);
      });
    }
    const upload = await this.client.startUpload(this.repository);
    this.uploads.add(upload);
    this.blobCount++;
    return new StreamingBlobWriter(this, upload, `new layer #${this.blobCount} for ${this.name}`, () => this.uploads.delete(upload));
  }

  /** Records a blob as present (used by writers once their upload completed). */
  markPresent(digest: Digest): void {
    this.present.add(digest);
  }

  async addLayer(layer: Layer): Promise<void> {
    const what = `layer ${layer.digest}`;
    if (await this.holds(layer.digest)) return;
    for (const from of this.mountCandidates(layer)) {
      if (await this.client.mountBlob(this.repository, layer.digest, from)) {
        this.present.add(layer.digest);
        return;
      }
    }
    for (let attempt = 0; ; attempt++) {
      try {
        if (layer.size >= 0 && layer.size <= this.client.chunkSize) {
          await this.client.uploadBuffer(this.repository, layer.digest, await readSmall(await layer.open(), layer.size, what), what);
        } else {
          await this.client.uploadStream(this.repository, layer.digest, await layer.open(), what);
        }
        break;
      } catch (e) {
        // The layer can be read again: one fresh session is worth a try after a lost one.
        if (attempt >= 1 || !isTransient(e)) throw e;
      }
    }
    this.present.add(layer.digest);
  }

  /** Repositories of this registry that may hold the layer: its own origin first, then --mount-from. */
  private mountCandidates(layer: Layer): string[] {
    const out: string[] = [];
    if (layer instanceof RegistryLayer && layer.origin.apiHost === this.client.host && layer.origin.repository !== this.repository) {
      out.push(layer.origin.repository);
    }
    for (const repo of this.opts.mountFrom ?? []) if (repo !== this.repository && !out.includes(repo)) out.push(repo);
    return out;
  }

  /** Puts an image's layers and config where they are missing; returns the manifest to PUT. */
  private async pushBlobsOf(image: Image): Promise<SerializedManifest> {
    for (const layer of image.layers) if (!this.present.has(layer.digest)) await this.addLayer(layer);
    if (!(await this.holds(image.configDigest))) {
      if (sha256Digest(image.configBytes) !== image.configDigest) {
        throw new StrataError(`${this.name}: the image config bytes do not hash to its configDigest ${image.configDigest}`);
      }
      await this.client.uploadBuffer(this.repository, image.configDigest, image.configBytes, `config ${image.configDigest}`);
      this.present.add(image.configDigest);
    }
    return manifestOf(image);
  }

  /**
   * Uploads what is missing, then PUTs the root under every tag (the destination's own tag when
   * `refs` is empty). An index's children go first, each by its digest, nested indexes before
   * the index naming them, so the tag moves only once everything under it is there.
   */
  async commit(root: Image | ImageIndex, refs: readonly string[]): Promise<void> {
    const top = nodeManifest(root);
    await visitBottomUp(root, async (node, m) => {
      if (!isIndex(node)) await this.pushBlobsOf(node);
      if (m.digest !== top.digest) await this.client.putManifest(this.repository, m.digest, m.bytes, m.mediaType);
    });
    await this.putUnderRefs(top, refs);
  }

  private async putUnderRefs(m: SerializedManifest, refs: readonly string[]): Promise<void> {
    const targets = refs.length > 0 ? refs.map((r) => this.tagOf(r)) : [this.reference.tag ?? m.digest];
    if (this.reference.digest !== undefined && this.reference.digest !== m.digest) {
      throw new StrataError(`${this.name}: the image's manifest digest is ${m.digest}, not the digest named in the destination`);
    }
    for (const t of targets) await this.client.putManifest(this.repository, t, m.bytes, m.mediaType);
  }

  /** A tag (`1.4`) or a full reference that must name this registry and repository. */
  private tagOf(ref: string): string {
    if (TAG.test(ref)) return ref;
    const r = parseRegistryReference(ref);
    if (r.apiHost !== this.reference.apiHost || r.repository !== this.repository) {
      throw new StrataError(`cannot tag ${ref} while pushing to ${this.name}: tags must be in the same repository`);
    }
    return r.digest ?? r.tag ?? 'latest';
  }

  async abort(): Promise<void> {
    const open = [...this.uploads];
    this.uploads.clear();
    const dirs = [...this.spoolDirs];
    this.spoolDirs.clear();
    await Promise.all([...open.map((u) => u.cancel()), ...dirs.map((d) => rm(d, { recursive: true, force: true }).then(() => releaseTemp(d)))]);
  }
}

/**
 * Streams a new blob to the registry while it is produced: the bytes are cut into chunks, and
 * one chunk is PATCHed while the next fills, so the producer and the network overlap but
 * memory stays at two chunks.
 */
class StreamingBlobWriter implements BlobWriter {
  private readonly chunker: Chunker;
  private inflight: Promise<void> = Promise.resolve();
  private failure: unknown;
  private written = 0;

  constructor(private readonly dest: RegistryDestination, private readonly upload: BlobUpload, private readonly what: string, private readonly done: () => void) {
    this.chunker = new Chunker(dest.client.chunkSize);
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  async write(chunk: Buffer): Promise<void> {
    this.check();
    this.written += chunk.length;
    for (const full of this.chunker.add(chunk)) {
      await this.inflight;
      this.check();
      this.inflight = this.upload.patch(full, this.what).catch((e: unknown) => { this.failure = e; });
    }
  }

  async close(digest: Digest, size: number): Promise<() => Promise<Readable>> {
    await this.inflight;
    this.check();
    if (size !== this.written) throw new StrataError(`${this.what}: closed with size ${size} but ${this.written} bytes were written`);
    try {
      await this.upload.finish(digest, this.chunker.flush(), `${this.what} (${digest})`);
    } catch (e) {
      await this.upload.cancel();
      throw e;
    } finally {
      this.done();
    }
    this.dest.markPresent(digest);
    const { client, repository } = this.dest;
    return () => client.getBlob(repository, digest, size, `layer ${digest} of ${this.dest.name}`);
  }

  async abort(): Promise<void> {
    await this.inflight;
    this.done();
    await this.upload.cancel();
  }
}

/**
 * `blobWrites: 'spool'`: the blob goes to a private temporary file while it is produced; at
 * close, when its digest is known, the registry is asked first, so a layer it already has (the
 * same layer rebuilt byte for byte) costs a HEAD instead of its whole size. The price is one
 * local write and read of each new layer, far cheaper than sending it over the network again.
 */
class SpoolingBlobWriter implements BlobWriter {
  private readonly file: string;
  private fd: FileHandle | undefined;
  private written = 0;

  constructor(private readonly dest: RegistryDestination, private readonly dir: string, private readonly what: string, private readonly done: () => void) {
    this.file = join(dir, 'blob');
  }

  async write(chunk: Buffer): Promise<void> {
    this.fd ??= await open(this.file, 'w');
    await this.fd.write(chunk);
    this.written += chunk.length;
  }

  async close(digest: Digest, size: number): Promise<() => Promise<Readable>> {
    try {
      if (!this.fd) this.fd = await open(this.file, 'w');
      await this.fd.close();
      this.fd = undefined;
      if (size !== this.written) throw new StrataError(`${this.what}: closed with size ${size} but ${this.written} bytes were written`);
      const file = this.file;
      await this.dest.addLayer({
        digest, diffId: digest, size, mediaType: MediaTypes.ociLayer, compression: 'none',
        open: async () => createReadStream(file, { highWaterMark: 1024 * 1024 }),
      });
    } finally {
      await this.cleanup();
    }
    const { client, repository } = this.dest;
    return () => client.getBlob(repository, digest, size, `layer ${digest} of ${this.dest.name}`);
  }

  async abort(): Promise<void> {
    await this.cleanup();
  }

  private async cleanup(): Promise<void> {
    await this.fd?.close().catch(() => undefined);
    this.fd = undefined;
    await rm(this.dir, { recursive: true, force: true });
    // Released only once gone, so an interrupt until then still removes it.
    this.done();
  }
}

/** Reads a stream known to be at most `size` bytes (small layers go up in one request). */
async function readSmall(stream: Readable, size: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    n += b.length;
    if (n > size) {
      stream.destroy();
      throw new StrataError(`${what}: its bytes are longer than its recorded size ${size}`);
    }
    parts.push(b);
  }
  return Buffer.concat(parts, n);
}

/**
 * Opens a push to `ref` (`docker://host/repo:tag` or `host/repo:tag`). The registry is contacted
 * at once, so an unknown host, missing TLS or wrong credentials fail before any layer is built.
 */
export async function openRegistryDestination(ref: string, opts: RegistryOptions = {}): Promise<RegistryDestination> {
  const r = parseRegistryReference(ref);
  const client = new RegistryClient(r.apiHost, r.registry, r.repository, opts);
  await client.ping();
  return new RegistryDestination(r, client, opts);
}
