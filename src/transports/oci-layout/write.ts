import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { canonicalJsonBytes } from '../../util/json.js';
import { digestHex } from '../../image/digest.js';
import type { Image } from '../../image/image.js';
import type { Layer } from '../../image/layer.js';
import { manifestDescriptor, ociManifest, type Descriptor } from '../../image/manifest.js';
import { MediaTypes } from '../../image/media-types.js';
import { parseTag } from '../../image/tag.js';
import { StrataError } from '../../util/errors.js';
import type { BlobWriter, ImageDestination } from '../types.js';
import { ArchiveFile, writeFully } from '../archive/tar-file.js';
import { ArchiveBlobs, type ArchiveDestinationOptions } from '../archive/archive-blobs.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

/** The small documents of an OCI layout for one image: everything but the layer blobs. */
export function layoutDocuments(image: Image, refs: readonly string[]) {
  const manifest = ociManifest(image);
  const tags = refs.map(parseTag);
  // One index entry per tag, as skopeo and Docker write them: `ref.name` holds the tag (what
  // `oci:DIR:TAG` matches), containerd's annotation the full name (what `docker load` names it).
  const manifests: Descriptor[] = tags.length === 0
    ? [manifestDescriptor(manifest)]
    : tags.map((t) => manifestDescriptor(manifest, { [REF_NAME]: t.tag, [CONTAINERD_NAME]: t.full }));
  const index = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests };
  return {
    ociLayout: canonicalJsonBytes({ imageLayoutVersion: MediaTypes.ociLayout }),
    index: canonicalJsonBytes(index),
    manifest,
  };
}

/**
 * An OCI image layout directory. It is assembled in a temporary directory beside the target and
 * renamed into place on commit, so a failed build leaves nothing; an existing layout at the
 * target is replaced (an existing non-layout directory is refused, never clobbered).
 */
export async function openOciDirectoryDestination(path: string, opts: { compression?: ArchiveDestinationOptions['compression'] } = {}): Promise<ImageDestination> {
  await refuseForeignDirectory(path);
  const temp = join(dirname(path), `.${basename(path)}.strata-${randomBytes(6).toString('hex')}.tmp`);
  const blobDir = join(temp, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  let n = 0;
  let committed = false;
  // Blobs re-opened after commit live under the final path.
  const blobPath = (hex: string) => join(committed ? path : temp, 'blobs', 'sha256', hex);

  return {
    name: `oci:${path}`,
    compression: opts.compression ?? 'none',
    async beginBlob(): Promise<BlobWriter> {
      const tmp = join(blobDir, `.incoming-${n++}`);
      const fh = await open(tmp, 'wx', 0o644);
      let written = 0;
      return {
        // Each write has reached the file when it resolves, so the producer may reuse the buffer.
        releasesChunks: true,
        acceptsConcurrentWrites: true,
        region: { fd: fh.fd, offset: 0, path: tmp, durable: { output: path }, wrote: (size) => void (written += size) },
        async restart() {
          written = 0;
          await fh.truncate(0);
        },
        async write(chunk) {
          // The position is claimed before awaiting: producers keep several writes in flight.
          const at = written;
          written += chunk.length;
          await writeFully(fh, chunk, at);
        },
        async close(digest, size) {
          await fh.close();
          if (size !== written) throw new StrataError(`internal: blob is ${written} bytes, producer says ${size}`);
          await rename(tmp, join(blobDir, digestHex(digest)));
          return async () => createReadStream(blobPath(digestHex(digest)));
        },
        async abort() {
          await fh.close().catch(() => undefined);
          await rm(tmp, { force: true });
        },
      };
    },
    async addLayer(layer: Layer) {
      const tmp = join(blobDir, `.incoming-${n++}`);
      await pipeline(await layer.open(), createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
      await rename(tmp, join(blobDir, digestHex(layer.digest)));
    },
    async commit(image, refs) {
      const docs = layoutDocuments(image, refs);
      await writeFile(join(blobDir, digestHex(image.configDigest)), image.configBytes);
      await writeFile(join(blobDir, digestHex(docs.manifest.digest)), docs.manifest.bytes);
      await writeFile(join(temp, 'oci-layout'), docs.ociLayout);
      await writeFile(join(temp, 'index.json'), docs.index);
      await replaceDirectory(temp, path);
      committed = true;
    },
    async abort() {
      await rm(temp, { recursive: true, force: true });
    },
  };
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
export async function openOciArchiveDestination(path: string, opts: ArchiveDestinationOptions): Promise<ImageDestination> {
  const blobs = new ArchiveBlobs(await ArchiveFile.create(path, opts.mtime));
  return {
    name: `oci-archive:${path}`,
    compression: opts.compression ?? 'none',
    beginBlob: (expectedSize) => blobs.beginBlob(expectedSize),
    addLayer: (layer) => blobs.addLayer(layer),
    async commit(image, refs) {
      const archive = blobs.archive;
      const { byDigest, duplicates } = await blobs.placeAll();
      // A duplicate carries the same bytes under the same name: extracting either gives the blob.
      for (const [digest, member] of [...byDigest, ...duplicates.map((d) => [d.digest, d.member] as const)]) {
        await archive.nameMember(member, `blobs/sha256/${digestHex(digest)}`);
      }
      const docs = layoutDocuments(image, refs);
      await archive.addFile(`blobs/sha256/${digestHex(image.configDigest)}`, image.configBytes);
      await archive.addFile(`blobs/sha256/${digestHex(docs.manifest.digest)}`, docs.manifest.bytes);
      await archive.addDirectory('blobs');
      await archive.addDirectory('blobs/sha256');
      await archive.addFile('oci-layout', docs.ociLayout);
      await archive.addFile('index.json', docs.index);
      await archive.commit();
    },
    abort: () => blobs.abort(),
  };
}
