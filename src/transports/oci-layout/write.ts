import { closeSync, createReadStream, createWriteStream, ftruncate as fsFtruncate, openSync, statSync, write as fsWrite } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { canonicalJsonBytes } from '../../util/json.js';
import { CONTAINERD_NAME, parseDescriptor, REF_NAME, type Descriptor } from '../../image/descriptor.js';
import { digestHex, type Digest } from '../../image/digest.js';
import { isIndex, type Image, type ImageIndex } from '../../image/image.js';
import type { Layer } from '../../image/layer.js';
import { manifestDescriptor, serializeIndex, type SerializedManifest } from '../../image/manifest.js';
import { MediaTypes } from '../../image/media-types.js';
import { parseTag } from '../../image/tag.js';
import { nodeManifest, visitBottomUp } from '../../image/walk.js';
import { StrataError } from '../../util/errors.js';
import { isTempName, requireParent, tempBeside } from '../../util/output-path.js';
import type { BlobWriter, FileRegion, ImageDestination } from '../types.js';
import { ArchiveFile } from '../archive/tar-file.js';
import { ArchiveBlobs, type ArchiveDestinationOptions } from '../archive/archive-blobs.js';
import { withLock } from './lock.js';
import { holdTemp, releaseTemp } from '../../util/temp-paths.js';


export interface LayoutDestinationOptions {
  compression?: ArchiveDestinationOptions['compression'];
  /** `oci:DIR:REF`: the entry's `org.opencontainers.image.ref.name`; several give one entry each. */
  refNames?: readonly string[];
}

/**
 * The index.json entries naming a committed root. With a REF from the destination reference
 * (`oci:DIR:REF`) there is one entry under that name; otherwise one entry per tag, as skopeo and
 * Docker write them: `ref.name` holds the tag (what `oci:DIR:TAG` matches). containerd's
 * annotation holds the fully qualified name (`docker.io/library/app:1`), the only form
 * `docker load` of a containerd image store accepts as the image's name.
 */
export function layoutEntries(root: SerializedManifest, refs: readonly string[], refNames: readonly string[] = []): Descriptor[] {
  const tags = refs.map(parseTag);
  if (refNames.length > 0) {
    const containerd: Record<string, string> = tags[0] ? { [CONTAINERD_NAME]: tags[0].qualified } : {};
    return refNames.map((refName) => manifestDescriptor(root, { annotations: { [REF_NAME]: refName, ...containerd } }));
  }
  if (tags.length === 0) return [manifestDescriptor(root)];
  return tags.map((t) => manifestDescriptor(root, { annotations: { [REF_NAME]: t.tag, [CONTAINERD_NAME]: t.qualified } }));
}

const OCI_LAYOUT_FILE = canonicalJsonBytes({ imageLayoutVersion: MediaTypes.ociLayout });

/** Where a layout's blobs go: a directory (fresh or existing) or an archive. */
interface LayoutBlobs {
  addLayer(layer: Layer): Promise<void>;
  putBlob(digest: Digest, bytes: Buffer): Promise<void>;
}

/**
 * Puts a root and everything under it into a layout's blobs, bottom up: each image's layers (only
 * when `withLayers`: a freshly built image's layers are already there) and config, each manifest
 * and each index, every digest once.
 */
async function putTree(blobs: LayoutBlobs, root: Image | ImageIndex, withLayers: boolean): Promise<SerializedManifest> {
  const layers = new Set<Digest>();
  await visitBottomUp(root, async (node, manifest) => {
    if (!isIndex(node)) {
      if (withLayers) {
        for (const layer of node.layers) {
          if (layers.has(layer.digest)) continue;
          layers.add(layer.digest);
          await blobs.addLayer(layer);
        }
      }
      await blobs.putBlob(node.configDigest, node.configBytes);
    }
    await blobs.putBlob(manifest.digest, manifest.bytes);
  });
  return nodeManifest(root);
}

/**
 * Blob files written into `blobDir` under temporary names and renamed to their digest once
 * complete. `created` lists the digest names this writer added, so that an abort removes exactly
 * those.
 *
 * A blob whose name is already there: `keep` (a layout being added to, whose blobs are the
 * layout's own) leaves the file and drops the new copy, as skopeo does; `replace` (a layout
 * rebuilt in place) puts what this build made or checked over it — a same-named file is not
 * proof of its content — except where the blob adopted is that very file (the layer cache's
 * verified container), which is kept untouched: no link, no rename, its stamp unchanged.
 */
class BlobFiles implements LayoutBlobs {
  private n = 0;
  readonly created = new Set<string>();
  private readonly tag = randomBytes(4).toString('hex');

  /** `readDir`: where finished blobs are read back from (a fresh layout's blobs move on commit). */
  constructor(readonly blobDir: string, private readonly durable: { output: string } | undefined, private readonly existing: 'keep' | 'replace', private readonly readDir: () => string = () => blobDir) {}

  private tempName(): string {
    const name = join(this.blobDir, `.incoming-${this.tag}-${this.n++}`);
    holdTemp(name);
    return name;
  }

  path(d: Digest): string {
    return join(this.blobDir, digestHex(d));
  }

  /** Whether the blob is there and need not be written: only when blobs already there are kept. */
  private async has(d: Digest, size: number): Promise<boolean> {
    if (this.existing === 'replace' && !this.created.has(digestHex(d))) return false;
    const st = await stat(this.path(d)).catch(() => undefined);
    return st !== undefined && st.isFile() && st.size === size;
  }

  /** Moves a finished temp file to its digest's name, or drops it when that blob is there to keep. */
  private async place(tmp: string, d: Digest): Promise<void> {
    const hex = digestHex(d);
    if (this.existing === 'keep' && !this.created.has(hex) && (await stat(this.path(d)).then((s) => s.isFile(), () => false))) {
      await rm(tmp, { force: true });
      releaseTemp(tmp);
      return;
    }
    // A name that was there before stays the layout's if this build fails: it holds the same blob.
    const isNew = this.existing === 'keep' || this.created.has(hex) || !(await stat(this.path(d)).then(() => true, () => false));
    await rename(tmp, this.path(d));
    releaseTemp(tmp);
    if (!isNew) return;
    // Until the commit names it, a new blob is as temporary as the file it came from.
    if (!this.created.has(hex)) holdTemp(this.path(d));
    this.created.add(hex);
  }

  /** The commit named every blob this writer added: they are the layout's now. */
  keep(): void {
    for (const hex of this.created) releaseTemp(join(this.blobDir, hex));
  }

  async begin(): Promise<BlobWriter> {
    const tmp = this.tempName();
    const durable = this.durable;
    // Opened on first need: a blob that turns out to be in place already never has a temp file.
    let fd: number | undefined;
    const file = (): number => (fd ??= openSync(tmp, 'wx', 0o644));
    const closeFile = () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    };
    let region: FileRegion | undefined;
    let written = 0;
    let adopted = false;
    let inPlace = false;
    return {
      // Each write has reached the file when it resolves, so the producer may reuse the buffer.
      releasesChunks: true,
      acceptsConcurrentWrites: true,
      get region(): FileRegion {
        return (region ??= { fd: file(), offset: 0, path: tmp, ...(durable ? { durable } : {}), wrote: (size) => void (written += size) });
      },
      async restart() {
        written = 0;
        await ftruncate(file(), 0);
      },
      // A blob file of the layout is its own file: a verified blob elsewhere on this filesystem
      // (the layer cache's, or the layout's previous build's) becomes it by a link, not a copy;
      // rebuilt in place, a blob whose file is already that one stays as it is.
      adopt: async (source, digest) => {
        const kept = this.existing === 'replace' && !this.created.has(digestHex(digest)) ? sameFile(source, this.path(digest)) : undefined;
        if (kept !== undefined) {
          inPlace = true;
          written = kept;
          return true;
        }
        const linked = `${tmp}.link`;
        if (!(await link(source, linked).then(() => true, () => false))) return false;
        closeFile();
        adopted = true;
        await rename(linked, tmp);
        written = (await stat(tmp)).size;
        return true;
      },
      async write(chunk) {
        // The position is claimed before awaiting: producers keep several writes in flight.
        const at = written;
        written += chunk.length;
        await writeAll(file(), chunk, at);
      },
      close: async (digest, size) => {
        if (size !== written) {
          closeFile();
          throw new StrataError(`internal: blob is ${written} bytes, producer says ${size}`);
        }
        if (inPlace) {
          releaseTemp(tmp);
        } else {
          if (!adopted) {
            file(); // an empty blob was never written to
            closeFile();
          }
          await this.place(tmp, digest);
        }
        return async () => createReadStream(join(this.readDir(), digestHex(digest)));
      },
      abort: async () => {
        closeFile();
        await rm(tmp, { force: true });
        releaseTemp(tmp);
      },
    };
  }

  async addLayer(layer: Layer): Promise<void> {
    if (await this.has(layer.digest, layer.size)) return;
    const tmp = this.tempName();
    try {
      await pipeline(await layer.open(), createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    } catch (e) {
      await rm(tmp, { force: true });
      releaseTemp(tmp);
      throw e;
    }
    await this.place(tmp, layer.digest);
  }

  async putBlob(digest: Digest, bytes: Buffer): Promise<void> {
    if (await this.has(digest, bytes.length)) return;
    const tmp = this.tempName();
    await writeFile(tmp, bytes, { flag: 'wx', mode: 0o644 });
    await this.place(tmp, digest);
  }

  async removeCreated(): Promise<void> {
    await Promise.all([...this.created].map((hex) => rm(join(this.blobDir, hex), { force: true }).then(() => releaseTemp(join(this.blobDir, hex)))));
    this.created.clear();
  }
}

/**
 * The size of the file `a` when `b` names the same file (a hard link of it: same device and
 * inode), else undefined. Synchronous, as the cache's metadata calls are: one per kept blob.
 */
function sameFile(a: string, b: string): number | undefined {
  const x = statSync(a, { throwIfNoEntry: false });
  const y = statSync(b, { throwIfNoEntry: false });
  return x !== undefined && y !== undefined && x.isFile() && x.dev === y.dev && x.ino === y.ino ? x.size : undefined;
}

/** Writes all of `chunk` at `position` of `fd`. */
async function writeAll(fd: number, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) done += await writeAt(fd, chunk, done, chunk.length - done, position + done);
}

const writeAt = (fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> =>
  new Promise((res, rej) => fsWrite(fd, buf, off, len, pos, (e, n) => (e ? rej(e) : res(n))));
const ftruncate = (fd: number, len: number): Promise<void> => new Promise((res, rej) => fsFtruncate(fd, len, (e) => (e ? rej(e) : res())));

/**
 * An OCI image layout directory as the build's whole output (`-o DIR --format oci`): index.json
 * names exactly this build's root afterwards.
 *
 * A new directory is assembled in a temporary directory beside the target and renamed into place
 * on commit, so a failed build leaves nothing. An existing layout is rebuilt in place, as `umoci
 * gc` would leave it: new blobs go into its blobs/ under temporary names (blobs it already holds
 * as the layer cache's verified files stay as they are, unread and untouched), index.json is
 * replaced atomically (temp file, rename) under the layout's lock, and then the blobs that
 * nothing the new index reaches any more are removed. Until that rename the layout is exactly
 * what it was, and an abort removes every file this build added. An existing non-layout
 * directory is refused, never clobbered.
 */
export async function openOciDirectoryDestination(path: string, opts: LayoutDestinationOptions = {}): Promise<ImageDestination> {
  await refuseForeignDirectory(path);
  await requireParent(path);
  if (await stat(join(path, 'oci-layout')).then((s) => s.isFile(), () => false)) return rebuildLayoutInPlace(path, opts);
  const temp = tempBeside(path);
  const blobDir = join(temp, 'blobs', 'sha256');
  holdTemp(temp);
  await mkdir(blobDir, { recursive: true });
  let committed = false;
  const blobs = new BlobFiles(blobDir, { output: path }, 'keep', () => join(committed ? path : temp, 'blobs', 'sha256'));
  return layoutDestination(`oci:${path}`, opts, blobs, {
    async name(root, manifest, refs) {
      await writeFile(join(temp, 'oci-layout'), OCI_LAYOUT_FILE);
      await writeFile(join(temp, 'index.json'), serializeIndex(layoutEntries(manifest, refs, opts.refNames)).bytes);
      await replaceDirectory(temp, path);
      committed = true;
      blobs.keep();
      releaseTemp(temp);
    },
    async abort() {
      await rm(temp, { recursive: true, force: true });
      releaseTemp(temp);
    },
  });
}

/**
 * A destination over a layout's blob files: layers go into `blobs`; commit puts the root's
 * configs and manifests there too, then `ends.name` writes what names the root (the commit).
 */
function layoutDestination(
  name: string,
  opts: LayoutDestinationOptions,
  blobs: BlobFiles,
  ends: { name(root: Image | ImageIndex, manifest: SerializedManifest, refs: readonly string[]): Promise<void>; abort(): Promise<void> },
): ImageDestination {
  return {
    name,
    compression: opts.compression ?? 'none',
    beginBlob: () => blobs.begin(),
    addLayer: (layer) => blobs.addLayer(layer),
    async commit(root, refs) {
      await ends.name(root, await putTree(blobs, root, isIndex(root)), refs);
    },
    abort: () => ends.abort(),
  };
}

/** The existing layout at `path`, rebuilt in place (see openOciDirectoryDestination). */
async function rebuildLayoutInPlace(path: string, opts: LayoutDestinationOptions): Promise<ImageDestination> {
  const blobDir = join(path, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  const blobs = new BlobFiles(blobDir, { output: path }, 'replace');
  return layoutDestination(`oci:${path}`, opts, blobs, {
    async name(root, manifest, refs) {
      await withLock(join(path, 'index.json.lock'), `oci:${path}`, async () => {
        await replaceFile(join(path, 'oci-layout'), OCI_LAYOUT_FILE);
        await replaceFile(join(path, 'index.json'), serializeIndex(layoutEntries(manifest, refs, opts.refNames)).bytes);
        blobs.keep();
        // The new index is the layout now: what it does not reach goes. Temporary names are
        // other writers' blobs in the making and stay; a blob another writer has placed but not
        // yet named in index.json goes too, as under umoci gc: `-o DIR` owns the whole layout
        // (`oci:DIR:REF` adds to one).
        const reachable = new Set((await treeDigests(root)).map(digestHex));
        const names = await readdir(blobDir);
        await Promise.all(names.filter((name) => !name.startsWith('.') && !reachable.has(name)).map((name) => rm(join(blobDir, name), { force: true })));
      });
    },
    abort: () => blobs.removeCreated(),
  });
}

/** Every blob digest under a root: each image's layers and config, each manifest and index. */
async function treeDigests(root: Image | ImageIndex): Promise<Digest[]> {
  const out: Digest[] = [];
  await visitBottomUp(root, async (node, manifest) => {
    out.push(manifest.digest);
    if (!isIndex(node)) out.push(node.configDigest, ...node.layers.map((l) => l.digest));
  });
  return out;
}

/** Writes `bytes` to `file` atomically: a temporary file beside it, renamed over it. */
async function replaceFile(file: string, bytes: Buffer): Promise<void> {
  const tmp = tempBeside(file);
  holdTemp(tmp);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
    releaseTemp(tmp);
  }
}

/**
 * `-o oci:DIR[:REF]`: adds to the layout at DIR (made when missing), as skopeo copy does. Blobs
 * go straight into DIR under temporary names (blobs already there are reused); commit adds the
 * root's entries to index.json under a lock, replacing any entry of the same ref name, and writes
 * it atomically (temp file, rename). Until then nothing names the new blobs, and an abort removes
 * every file this destination added, so a failure leaves DIR as it was.
 */
export async function openOciLayoutAppendDestination(path: string, opts: LayoutDestinationOptions = {}): Promise<ImageDestination> {
  await requireParent(path);
  const existed = await stat(path).then((s) => {
    if (!s.isDirectory()) throw new StrataError(`oci:${path}: exists and is not a directory; an OCI layout is a directory`);
    return true;
  }, () => false);
  if (existed) {
    const entries = await readdir(path);
    // A directory holding only blobs/ (and the oci-layout file being written) is a layout another
    // strata is making at this moment.
    if (entries.some((e) => e !== 'oci-layout' && e !== 'blobs' && !isTempName(e)) && !entries.includes('oci-layout')) {
      throw new StrataError(`oci:${path}: directory is not empty and not an OCI layout; refusing to add to it`);
    }
    if (entries.includes('index.json')) await readLayoutIndex(path);
  }
  const blobDir = join(path, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  // oci-layout first, so that a concurrent strata adding to the same new directory sees a layout.
  if (!(await stat(join(path, 'oci-layout')).then(() => true, () => false))) await replaceFile(join(path, 'oci-layout'), OCI_LAYOUT_FILE);
  const blobs = new BlobFiles(blobDir, undefined, 'keep');

  return layoutDestination(`oci:${path}${opts.refNames?.length ? `:${opts.refNames[0]}` : ''}`, opts, blobs, {
    async name(_root, manifest, refs) {
      const added = layoutEntries(manifest, refs, opts.refNames);
      await withLock(join(path, 'index.json.lock'), `oci:${path}`, async () => {
        const current = await readLayoutIndex(path);
        const names = new Set(added.map((d) => d.annotations?.[REF_NAME]).filter((n) => n !== undefined));
        const kept = current.filter((d) => {
          const name = d.annotations?.[REF_NAME];
          // A name moves to the new root; an unnamed entry of the same root is not listed twice.
          return name !== undefined ? !names.has(name) : !(d.digest === manifest.digest && added.some((a) => a.annotations?.[REF_NAME] === undefined));
        });
        await replaceFile(join(path, 'index.json'), serializeIndex([...kept, ...added]).bytes);
      });
      blobs.keep();
    },
    async abort() {
      await blobs.removeCreated();
      // A directory this destination made goes too, unless something else has since used it.
      if (!existed && !(await stat(join(path, 'index.json')).then(() => true, () => false)) && (await readdir(blobDir).catch(() => [])).length === 0) {
        await rm(path, { recursive: true, force: true });
      }
    },
  });
}

/** The entries of DIR/index.json, or none when there is no index.json yet; a corrupt one is an error naming it. */
async function readLayoutIndex(dir: string): Promise<Descriptor[]> {
  const file = join(dir, 'index.json');
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new StrataError(`${file}: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new StrataError(`${file} is not valid JSON (${(e as Error).message}); the layout was left unchanged`);
  }
  const list = (v as { manifests?: unknown } | null)?.manifests;
  if (v === null || typeof v !== 'object' || !Array.isArray(list)) throw new StrataError(`${file} has no "manifests" array; the layout was left unchanged`);
  return list.map((d, i) => parseDescriptor(d, `${file} manifests[${i}]`));
}

async function refuseForeignDirectory(path: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw new StrataError(`output ${path} exists and is not a directory; an OCI layout is a directory`);
  const entries = await readdir(path);
  if (entries.length > 0 && !entries.includes('oci-layout')) {
    throw new StrataError(`output directory ${path} is not empty and not an OCI layout; refusing to replace it`);
  }
}

async function replaceDirectory(fresh: string, target: string): Promise<void> {
  const old = `${fresh}.old`;
  const hadOld = await stat(target).then(() => true, () => false);
  if (hadOld) await rename(target, old);
  await rename(fresh, target);
  if (hadOld) await rm(old, { recursive: true, force: true });
}

/** An OCI image layout as a single tar (`oci-archive:`), written in place like a docker-archive. */
export async function openOciArchiveDestination(path: string, opts: ArchiveDestinationOptions & LayoutDestinationOptions): Promise<ImageDestination> {
  const blobs = new ArchiveBlobs(await ArchiveFile.create(path, opts.mtime));
  const small = new Map<Digest, Buffer>();
  return {
    name: `oci-archive:${path}`,
    compression: opts.compression ?? 'none',
    beginBlob: (expectedSize) => blobs.beginBlob(expectedSize),
    addLayer: (layer) => blobs.addLayer(layer),
    async commit(root, refs) {
      const manifest = await putTree({ addLayer: (l) => blobs.addLayer(l), putBlob: async (d, b) => void small.set(d, b) }, root, isIndex(root));
      const archive = blobs.archive;
      const { byDigest, duplicates } = await blobs.placeAll();
      // A duplicate carries the same bytes under the same name: extracting either gives the blob.
      for (const [digest, member] of [...byDigest, ...duplicates.map((d) => [d.digest, d.member] as const)]) {
        await archive.nameMember(member, `blobs/sha256/${digestHex(digest)}`);
      }
      // Configs first, then manifests bottom up, as a built image's archive always had them.
      for (const [digest, bytes] of small) await archive.addFile(`blobs/sha256/${digestHex(digest)}`, bytes);
      await archive.addDirectory('blobs');
      await archive.addDirectory('blobs/sha256');
      await archive.addFile('oci-layout', OCI_LAYOUT_FILE);
      await archive.addFile('index.json', serializeIndex(layoutEntries(manifest, refs, opts.refNames)).bytes);
      await archive.commit();
    },
    abort: () => blobs.abort(),
  };
}
