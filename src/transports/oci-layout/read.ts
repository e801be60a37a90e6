import { createReadStream } from 'node:fs';
import { MAX_METADATA_BYTES, metadataTooLarge } from '../../image/limits.js';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CONTAINERD_NAME, parseAnnotations, parseDescriptor, REF_NAME, type Descriptor } from '../../image/descriptor.js';
import { digestHex, type Digest } from '../../image/digest.js';
import type { Image, ImageIndex } from '../../image/image.js';
import type { Layer } from '../../image/layer.js';
import { serializeIndex, type SerializedManifest } from '../../image/manifest.js';
import { compressionOfMediaType, isIndexMediaType, isManifestMediaType, MediaTypes, ociLayerMediaType, type Compression } from '../../image/media-types.js';
import type { Platform } from '../../image/platform.js';
import { StrataError } from '../../util/errors.js';
import { indexTarFile, openMember, readMember, readMemberHead, resolveMember, type TarIndex } from '../tar-index.js';
import { imageOf, type ImageSource, type RootSource } from '../types.js';
import { parseImageConfig, sniffCompression, verifyBytes, verifyingLayerStream } from '../verify.js';

/**
 * Reads an OCI image layout — a directory (`oci:DIR[:REF]`) or a tar of one
 * (`oci-archive:FILE[:REF]`) — into an Image. Every manifest, index and config is checked against
 * the digest and size of the descriptor that led to it; layers are checked as they are streamed.
 */


export interface OciReadOptions {
  /** Matches `org.opencontainers.image.ref.name` exactly. */
  readonly ref?: string;
  /** Which image of a multi-platform index to read (default linux/amd64). */
  readonly platform?: Platform;
}

/** Where blobs and the two top-level files of a layout come from. */
interface LayoutStore {
  /** For messages: `oci:DIR` or `oci-archive:FILE`. */
  readonly name: string;
  readFile(name: string): Promise<Buffer | undefined>;
  /** Blob size, or undefined when the blob is missing. */
  blobSize(d: Digest): Promise<number | undefined>;
  readBlob(d: Digest, limit: number): Promise<Buffer>;
  blobHead(d: Digest, n: number): Promise<Buffer>;
  openBlob(d: Digest): Readable;
}



function dirStore(dir: string): LayoutStore {
  const blobPath = (d: Digest): string => join(dir, 'blobs', 'sha256', digestHex(d));
  return {
    name: `oci:${dir}`,
    async readFile(name) {
      try {
        const s = await stat(join(dir, name));
        if (s.size > MAX_METADATA_BYTES) throw metadataTooLarge(`oci:${dir}: ${name}`, s.size);
        return await readFile(join(dir, name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        if (e instanceof StrataError) throw e;
        throw new StrataError(`oci:${dir}: cannot read ${name}: ${(e as Error).message}`, { cause: e });
      }
    },
    async blobSize(d) {
      try {
        const s = await stat(blobPath(d));
        return s.isFile() ? s.size : undefined;
      } catch {
        return undefined;
      }
    },
    async readBlob(d, limit) {
      const s = await stat(blobPath(d));
      if (s.size > limit) throw metadataTooLarge(`oci:${dir}: blob ${d}`, s.size, limit);
      return readFile(blobPath(d));
    },
    async blobHead(d, n) {
      const fh = await open(blobPath(d), 'r');
      try {
        const buf = Buffer.alloc(n);
        const { bytesRead } = await fh.read(buf, 0, n, 0);
        return buf.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
    },
    openBlob(d) {
      return createReadStream(blobPath(d), { highWaterMark: 1 << 20 });
    },
  };
}

function archiveStore(index: TarIndex): LayoutStore {
  const name = `oci-archive:${index.file}`;
  const blob = (d: Digest) => resolveMember(index, `blobs/sha256/${digestHex(d)}`, `blob ${d}`);
  return {
    name,
    async readFile(n) {
      return index.members.has(n) ? readMember(index, resolveMember(index, n, n)) : undefined;
    },
    async blobSize(d) {
      return index.members.has(`blobs/sha256/${digestHex(d)}`) ? blob(d).size : undefined;
    },
    async readBlob(d, limit) {
      return readMember(index, blob(d), limit);
    },
    async blobHead(d, n) {
      return readMemberHead(index, blob(d), n);
    },
    openBlob(d) {
      return openMember(index, blob(d));
    },
  };
}

function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new StrataError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new StrataError(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

class LayoutReader {
  constructor(private readonly store: LayoutStore) {}

  /** Reads a metadata blob and checks it against its descriptor. */
  async blob(d: Descriptor, what: string): Promise<Buffer> {
    // Refused from the descriptor alone: nothing that large is read, nor looked for.
    if (d.size > MAX_METADATA_BYTES) throw metadataTooLarge(`${this.store.name}: ${what} ${d.digest}`, d.size);
    const size = await this.store.blobSize(d.digest);
    if (size === undefined) throw new StrataError(`${this.store.name}: ${what} ${d.digest} is missing from blobs/sha256`);
    const bytes = await this.store.readBlob(d.digest, MAX_METADATA_BYTES);
    verifyBytes(bytes, d.digest, `${this.store.name}: ${what} ${d.digest}`, d.size);
    return bytes;
  }

  /**
   * The layout's root as it is: the entry `opts.ref` names (or the only entry), an image or an
   * index. Several entries under one name (one per platform) are read as an index over them.
   * `names` are the entries' `io.containerd.image.name`s, the full names containerd and podman
   * give an image they import from a layout.
   */
  async root(opts: OciReadOptions): Promise<{ root: Image | ImageIndex; names: string[] }> {
    const s = this.store;
    const layoutFile = await s.readFile('oci-layout');
    if (layoutFile === undefined) throw new StrataError(`${s.name}: no oci-layout file (not an OCI image layout)`);
    const layout = parseJsonObject(layoutFile, `${s.name}: oci-layout`);
    if (typeof layout['imageLayoutVersion'] !== 'string' || !layout['imageLayoutVersion'].startsWith('1.')) {
      throw new StrataError(`${s.name}: unsupported imageLayoutVersion ${JSON.stringify(layout['imageLayoutVersion'])}`);
    }
    const indexBytes = await s.readFile('index.json');
    if (indexBytes === undefined) throw new StrataError(`${s.name}: no index.json`);
    const top = this.descriptors(parseJsonObject(indexBytes, `${s.name}: index.json`), 'index.json');

    const refs = top.flatMap((d) => (d.annotations?.[REF_NAME] !== undefined ? [d.annotations[REF_NAME]] : []));
    const refList = refs.length === 0 ? '(no entry has an org.opencontainers.image.ref.name)' : refs.join(', ');
    let chosen: Descriptor[];
    if (opts.ref !== undefined) {
      chosen = top.filter((d) => d.annotations?.[REF_NAME] === opts.ref);
      if (chosen.length === 0) throw new StrataError(`${s.name}: no image named ${JSON.stringify(opts.ref)} in index.json — refs: ${refList}`);
    } else {
      if (top.length !== 1) {
        throw new StrataError(`${s.name}: index.json lists ${top.length} manifests; name one with ${s.name}:REF — refs: ${refList}`);
      }
      chosen = top;
    }
    const names = [...new Set(chosen.flatMap((d) => (d.annotations?.[CONTAINERD_NAME] !== undefined ? [d.annotations[CONTAINERD_NAME]] : [])))];
    if (chosen.length === 1) return { root: await this.node(chosen[0]!, 0), names };
    const synthetic = serializeIndex(chosen);
    return { root: this.indexOf(synthetic, chosen, 0), names };
  }

  private descriptors(obj: Record<string, unknown>, what: string): Descriptor[] {
    const list = obj['manifests'];
    if (!Array.isArray(list)) throw new StrataError(`${this.store.name}: ${what} has no "manifests" array`);
    return list.map((v, i) => parseDescriptor(v, `${this.store.name}: ${what} manifests[${i}]`, { mediaTypeOptional: true }));
  }

  /** Opens what a descriptor points at: an image, or an index whose children open the same way. */
  private async node(d: Descriptor, depth: number): Promise<Image | ImageIndex> {
    if (depth > 8) throw new StrataError(`${this.store.name}: image indexes nest more than 8 levels deep`);
    const bytes = await this.blob(d, isIndexMediaType(d.mediaType) ? 'index' : 'manifest');
    const obj = parseJsonObject(bytes, `${this.store.name}: blob ${d.digest}`);
    const declared = typeof obj['mediaType'] === 'string' ? obj['mediaType'] : d.mediaType;
    const isIdx = isIndexMediaType(declared) || (declared === '' && Array.isArray(obj['manifests']));
    if (isIdx) {
      const what = `index ${d.digest}`;
      const m: SerializedManifest = { mediaType: declared || MediaTypes.ociIndex, bytes, digest: d.digest };
      return this.indexOf(m, this.descriptors(obj, what), depth, parseAnnotations(obj['annotations'], `${this.store.name}: ${what} annotations`));
    }
    if (isManifestMediaType(declared) || (declared === '' && obj['config'] !== undefined && Array.isArray(obj['layers']))) {
      return this.readImage(d, obj, { mediaType: declared || MediaTypes.ociManifest, bytes, digest: d.digest });
    }
    throw new StrataError(`${this.store.name}: blob ${d.digest} (media type ${declared || 'unset'}) is neither an image manifest nor an index`);
  }

  private indexOf(manifest: SerializedManifest, children: Descriptor[], depth: number, annotations?: Record<string, string>): ImageIndex {
    return {
      manifest,
      children,
      ...(annotations ? { annotations } : {}),
      child: (c) => {
        if (!children.includes(c)) throw new StrataError(`internal: ${c.digest} is not a child of index ${manifest.digest}`);
        return this.node(c, depth + 1);
      },
    };
  }

  private async readImage(md: Descriptor, m: Record<string, unknown>, manifest: SerializedManifest): Promise<Image> {
    const s = this.store;
    const where = `${s.name} manifest ${md.digest}`;
    if (m['schemaVersion'] !== 2) throw new StrataError(`${where}: schemaVersion ${JSON.stringify(m['schemaVersion'])} is not supported (need 2)`);
    if (!Array.isArray(m['layers'])) throw new StrataError(`${where}: no "layers" array`);
    const configDesc = parseDescriptor(m['config'], `${where}: config`, { mediaTypeOptional: true });
    const configBytes = await this.blob(configDesc, 'config');
    const layerDescs = m['layers'].map((v, i) => parseDescriptor(v, `${where}: layers[${i}]`, { mediaTypeOptional: true }));
    const config = parseImageConfig(configBytes, `${where} (config ${configDesc.digest})`, layerDescs.length);

    const layers: Layer[] = [];
    for (const [i, d] of layerDescs.entries()) {
      const what = `layer ${i} (${d.digest}) of ${s.name}`;
      const mediaType = d.mediaType;
      const compression = compressionOfMediaType(mediaType);
      if (compression === undefined) throw new StrataError(`${what}: unsupported layer media type ${JSON.stringify(mediaType)}`);
      const size = await s.blobSize(d.digest);
      if (size === undefined) throw new StrataError(`${what}: blob is missing from blobs/sha256`);
      if (size !== d.size) throw new StrataError(`${what}: blob is ${size} bytes, the manifest says ${d.size}`);
      // Media types can lie (hand-made layouts); the bytes cannot.
      const sniffed = sniffCompression(await s.blobHead(d.digest, 4));
      if (sniffed !== compression) throw new StrataError(`${what}: media type ${mediaType} says ${compression} but the blob is ${sniffed === 'none' ? 'not compressed' : sniffed} (a mislabelled or corrupt blob)`);
      // Docker media types become their OCI equivalents; nondistributable types are kept.
      const ociType = mediaType.startsWith('application/vnd.oci.') ? mediaType : ociLayerMediaType(compression);
      layers.push(new LayoutLayer(s, config.rootfs.diff_ids[i]!, d.digest, d.size, ociType, compression, what, d.annotations));
    }
    const annotations = parseAnnotations(m['annotations'], `${where}: annotations`);
    return { config, configBytes, configDigest: configDesc.digest, layers, manifest, ...(annotations ? { annotations } : {}) };
  }
}

class LayoutLayer implements Layer {
  constructor(
    private readonly store: LayoutStore,
    readonly diffId: Digest,
    readonly digest: Digest,
    readonly size: number,
    readonly mediaType: string,
    readonly compression: Compression,
    private readonly what: string,
    readonly annotations?: Readonly<Record<string, string>>,
  ) {}

  async open(): Promise<Readable> {
    return verifyingLayerStream(this.store.openBlob(this.digest), {
      digest: this.digest, diffId: this.diffId, size: this.size, compression: this.compression, what: this.what,
    });
  }
}

/** The layout's root (image or index) as it is, without choosing a platform. */
export async function openOciLayoutRoot(dir: string, opts: OciReadOptions = {}): Promise<RootSource> {
  const { root, names } = await new LayoutReader(dirStore(dir)).root(opts);
  return { name: `oci:${dir}${opts.ref !== undefined ? `:${opts.ref}` : ''}`, root, ...(names.length > 0 ? { names } : {}), close: async () => undefined };
}

export async function openOciArchiveRoot(file: string, opts: OciReadOptions & { index?: TarIndex } = {}): Promise<RootSource> {
  const index = opts.index ?? (await indexTarFile(file));
  const { root, names } = await new LayoutReader(archiveStore(index)).root(opts);
  return { name: `oci-archive:${file}${opts.ref !== undefined ? `:${opts.ref}` : ''}`, root, ...(names.length > 0 ? { names } : {}), close: async () => undefined };
}

export async function openOciLayout(dir: string, opts: OciReadOptions = {}): Promise<ImageSource> {
  return imageOf(await openOciLayoutRoot(dir, opts), opts.platform);
}

export async function openOciArchive(file: string, opts: OciReadOptions & { index?: TarIndex } = {}): Promise<ImageSource> {
  return imageOf(await openOciArchiveRoot(file, opts), opts.platform);
}

/**
 * The ref names index.json lists (each once, in index order); none when DIR has no index.json yet.
 * For finding images by name (packages in a layout); opening one still goes through the reader.
 */
export async function layoutRefNames(dir: string): Promise<string[]> {
  const bytes = await dirStore(dir).readFile('index.json');
  if (bytes === undefined) return [];
  const list = parseJsonObject(bytes, `oci:${dir}: index.json`)['manifests'];
  if (!Array.isArray(list)) throw new StrataError(`oci:${dir}: index.json has no "manifests" array`);
  const names = list.map((v, i) => parseDescriptor(v, `oci:${dir}: index.json manifests[${i}]`, { mediaTypeOptional: true }).annotations?.[REF_NAME]);
  return [...new Set(names.filter((n): n is string => n !== undefined))];
}
