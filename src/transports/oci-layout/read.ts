import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Platform } from '../../image/config.js';
import { digestHex, parseDigest, type Digest } from '../../image/digest.js';
import type { Image } from '../../image/image.js';
import type { Layer } from '../../image/layer.js';
import { compressionOfMediaType, MediaTypes, ociLayerMediaType, type Compression } from '../../image/media-types.js';
import { StrataError } from '../../util/errors.js';
import { indexTarFile, openMember, readMember, readMemberHead, resolveMember, type TarIndex } from '../tar-index.js';
import type { ImageSource } from '../types.js';
import { parseImageConfig, sniffCompression, verifyBytes, verifyingLayerStream, zstdUnsupported } from '../verify.js';

/**
 * Reads an OCI image layout — a directory (`oci:DIR[:REF]`) or a tar of one
 * (`oci-archive:FILE[:REF]`) — into an Image. Every manifest, index and config is checked against
 * the digest and size of the descriptor that led to it; layers are checked as they are streamed.
 */

const REF_NAME = 'org.opencontainers.image.ref.name';
const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

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

const METADATA_LIMIT = 16 << 20;

function dirStore(dir: string): LayoutStore {
  const blobPath = (d: Digest): string => join(dir, 'blobs', 'sha256', digestHex(d));
  return {
    name: `oci:${dir}`,
    async readFile(name) {
      try {
        return await readFile(join(dir, name));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
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
      if (s.size > limit) throw new StrataError(`oci:${dir}: blob ${d} is ${s.size} bytes, too large for metadata`);
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

interface Descriptor {
  mediaType?: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

function parseDescriptor(v: unknown, what: string): Descriptor {
  if (v === null || typeof v !== 'object') throw new StrataError(`${what}: not a descriptor object`);
  const o = v as Record<string, unknown>;
  const digest = parseDigest(o['digest'], `${what}: digest`);
  if (typeof o['size'] !== 'number' || !Number.isSafeInteger(o['size']) || o['size'] < 0) {
    throw new StrataError(`${what}: bad size ${JSON.stringify(o['size'])}`);
  }
  const d: Descriptor = { digest, size: o['size'] };
  if (typeof o['mediaType'] === 'string') d.mediaType = o['mediaType'];
  if (o['annotations'] !== null && typeof o['annotations'] === 'object') d.annotations = o['annotations'] as Record<string, string>;
  const p = o['platform'] as Record<string, unknown> | undefined;
  if (p !== null && typeof p === 'object' && typeof p['os'] === 'string' && typeof p['architecture'] === 'string') {
    d.platform = { os: p['os'], architecture: p['architecture'], ...(typeof p['variant'] === 'string' ? { variant: p['variant'] } : {}) };
  }
  return d;
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

function formatPlatform(p: Platform | undefined): string {
  return p === undefined ? 'unknown platform' : `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Variant defaults as containerd normalises them, so `arm64` matches `arm64/v8`. */
function defaultVariant(arch: string): string | undefined {
  return arch === 'arm64' ? 'v8' : arch === 'arm' ? 'v7' : undefined;
}

function platformMatches(have: Platform, want: Platform): boolean {
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant === undefined) return true;
  return (have.variant ?? defaultVariant(have.architecture)) === want.variant;
}

const INDEX_TYPES = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MediaTypes.ociManifest, MediaTypes.dockerManifest]);

class LayoutReader {
  constructor(private readonly store: LayoutStore) {}

  /** Reads a metadata blob and checks it against its descriptor. */
  async blob(d: Descriptor, what: string): Promise<Buffer> {
    const size = await this.store.blobSize(d.digest);
    if (size === undefined) throw new StrataError(`${this.store.name}: ${what} ${d.digest} is missing from blobs/sha256`);
    const bytes = await this.store.readBlob(d.digest, METADATA_LIMIT);
    verifyBytes(bytes, d.digest, `${this.store.name}: ${what} ${d.digest}`, d.size);
    return bytes;
  }

  async read(opts: OciReadOptions): Promise<Image> {
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
    const want = opts.platform ?? DEFAULT_PLATFORM;
    // One image manifest chosen by name is used as it is; an index (or several entries sharing a
    // name) is resolved by platform.
    let manifest: Descriptor;
    if (chosen.length === 1 && (await this.kind(chosen[0]!)) === 'manifest') {
      manifest = chosen[0]!;
    } else {
      manifest = await this.pickPlatform(chosen, want, 0);
    }
    return this.readImage(manifest);
  }

  private descriptors(obj: Record<string, unknown>, what: string): Descriptor[] {
    const list = obj['manifests'];
    if (!Array.isArray(list)) throw new StrataError(`${this.store.name}: ${what} has no "manifests" array`);
    return list.map((v, i) => parseDescriptor(v, `${this.store.name}: ${what} manifests[${i}]`));
  }

  /** Whether a descriptor leads to an index or an image manifest (reads it when mediaType is absent). */
  private async kind(d: Descriptor): Promise<'index' | 'manifest'> {
    if (d.mediaType !== undefined && INDEX_TYPES.has(d.mediaType)) return 'index';
    if (d.mediaType !== undefined && MANIFEST_TYPES.has(d.mediaType)) return 'manifest';
    const obj = parseJsonObject(await this.blob(d, 'manifest'), `${this.store.name}: blob ${d.digest}`);
    if (typeof obj['mediaType'] === 'string' && INDEX_TYPES.has(obj['mediaType'])) return 'index';
    if (Array.isArray(obj['manifests'])) return 'index';
    if (obj['config'] !== undefined && Array.isArray(obj['layers'])) return 'manifest';
    throw new StrataError(`${this.store.name}: blob ${d.digest} (media type ${d.mediaType ?? 'unset'}) is neither an image manifest nor an index`);
  }

  /** Flattens indexes (nested ones too) to image manifests and picks the one for `want`. */
  private async pickPlatform(entries: readonly Descriptor[], want: Platform, depth: number): Promise<Descriptor> {
    const seen: string[] = [];
    const found = await this.collect(entries, want, depth, seen);
    if (found === undefined) {
      throw new StrataError(`${this.store.name}: no image for platform ${formatPlatform(want)} — available: ${seen.length ? seen.join(', ') : '(none)'}`);
    }
    return found;
  }

  private async collect(entries: readonly Descriptor[], want: Platform, depth: number, seen: string[]): Promise<Descriptor | undefined> {
    if (depth > 8) throw new StrataError(`${this.store.name}: image indexes nest more than 8 levels deep`);
    for (const d of entries) {
      if ((await this.kind(d)) === 'index') {
        if (d.platform !== undefined && !platformMatches(d.platform, want)) {
          seen.push(formatPlatform(d.platform));
          continue;
        }
        const sub = parseJsonObject(await this.blob(d, 'index'), `${this.store.name}: index ${d.digest}`);
        const hit = await this.collect(this.descriptors(sub, `index ${d.digest}`), want, depth + 1, seen);
        if (hit !== undefined) return hit;
        continue;
      }
      // Descriptors without a platform (skopeo writes none) are judged by their config.
      const p = d.platform ?? (await this.configPlatform(d));
      seen.push(formatPlatform(p));
      if (p !== undefined && platformMatches(p, want)) return d;
    }
    return undefined;
  }

  private async configPlatform(d: Descriptor): Promise<Platform | undefined> {
    const m = parseJsonObject(await this.blob(d, 'manifest'), `${this.store.name}: manifest ${d.digest}`);
    const cd = parseDescriptor(m['config'], `${this.store.name}: manifest ${d.digest} config`);
    const c = parseJsonObject(await this.blob(cd, 'config'), `${this.store.name}: config ${cd.digest}`);
    if (typeof c['os'] !== 'string' || typeof c['architecture'] !== 'string') return undefined;
    return { os: c['os'], architecture: c['architecture'], ...(typeof c['variant'] === 'string' ? { variant: c['variant'] } : {}) };
  }

  private async readImage(md: Descriptor): Promise<Image> {
    const s = this.store;
    const where = `${s.name} manifest ${md.digest}`;
    const m = parseJsonObject(await this.blob(md, 'manifest'), where);
    if (m['schemaVersion'] !== 2) throw new StrataError(`${where}: schemaVersion ${JSON.stringify(m['schemaVersion'])} is not supported (need 2)`);
    if (!Array.isArray(m['layers'])) throw new StrataError(`${where}: no "layers" array`);
    const configDesc = parseDescriptor(m['config'], `${where}: config`);
    const configBytes = await this.blob(configDesc, 'config');
    const layerDescs = m['layers'].map((v, i) => parseDescriptor(v, `${where}: layers[${i}]`));
    const config = parseImageConfig(configBytes, `${where} (config ${configDesc.digest})`, layerDescs.length);

    const layers: Layer[] = [];
    for (const [i, d] of layerDescs.entries()) {
      const what = `layer ${i} (${d.digest}) of ${s.name}`;
      const mediaType = d.mediaType ?? '';
      const compression = compressionOfMediaType(mediaType);
      if (compression === undefined) throw new StrataError(`${what}: unsupported layer media type ${JSON.stringify(mediaType)}`);
      if (compression === 'zstd') throw zstdUnsupported(what);
      const size = await s.blobSize(d.digest);
      if (size === undefined) throw new StrataError(`${what}: blob is missing from blobs/sha256`);
      if (size !== d.size) throw new StrataError(`${what}: blob is ${size} bytes, the manifest says ${d.size}`);
      // Media types can lie (hand-made layouts); the bytes cannot.
      const sniffed = sniffCompression(await s.blobHead(d.digest, 4));
      if (sniffed === 'zstd') throw zstdUnsupported(what);
      if (sniffed !== compression) throw new StrataError(`${what}: media type ${mediaType} says ${compression} but the blob is ${sniffed === 'none' ? 'not compressed' : sniffed}`);
      // Docker media types become their OCI equivalents; nondistributable types are kept.
      const ociType = mediaType.startsWith('application/vnd.oci.') ? mediaType : ociLayerMediaType(compression);
      layers.push(new LayoutLayer(s, config.rootfs.diff_ids[i]!, d.digest, d.size, ociType, compression, what));
    }
    const annotations = m['annotations'] !== null && typeof m['annotations'] === 'object' ? (m['annotations'] as Record<string, string>) : undefined;
    return { config, configBytes, configDigest: configDesc.digest, layers, ...(annotations ? { annotations } : {}) };
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
  ) {}

  async open(): Promise<Readable> {
    return verifyingLayerStream(this.store.openBlob(this.digest), {
      digest: this.digest, diffId: this.diffId, size: this.size, compression: this.compression, what: this.what,
    });
  }
}

export async function openOciLayout(dir: string, opts: OciReadOptions = {}): Promise<ImageSource> {
  const image = await new LayoutReader(dirStore(dir)).read(opts);
  return { name: `oci:${dir}${opts.ref !== undefined ? `:${opts.ref}` : ''}`, image, close: async () => undefined };
}

export async function openOciArchive(file: string, opts: OciReadOptions & { index?: TarIndex } = {}): Promise<ImageSource> {
  const index = opts.index ?? (await indexTarFile(file));
  const image = await new LayoutReader(archiveStore(index)).read(opts);
  return { name: `oci-archive:${file}${opts.ref !== undefined ? `:${opts.ref}` : ''}`, image, close: async () => undefined };
}
