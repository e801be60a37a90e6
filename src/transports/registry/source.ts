import type { Readable } from 'node:stream';
import { MAX_METADATA_BYTES, metadataTooLarge } from '../../image/limits.js';
import { StrataError } from '../../util/errors.js';
import type { ImageConfig } from '../../image/config.js';
import { parseAnnotations, parseDescriptor } from '../../image/descriptor.js';
import { parseDigest, sha256Digest, type Digest } from '../../image/digest.js';
import type { Image, ImageIndex } from '../../image/image.js';
import type { Layer } from '../../image/layer.js';
import { compressionOfMediaType, isIndexMediaType, isManifestMediaType, ociLayerMediaType, type Compression } from '../../image/media-types.js';
import { formatPlatform, type Platform } from '../../image/platform.js';
import { resolveImage } from '../../image/select.js';
import type { ImageSource, RootSource } from '../types.js';
import { RegistryClient, type FetchedManifest, type RegistryOptions } from './client.js';
import { formatReference, manifestReference, parseRegistryReference, type RegistryReference } from './reference.js';

/** Where a registry layer lives, so a push to the same registry can mount it instead of copying. */
export interface BlobOrigin {
  readonly apiHost: string;
  readonly repository: string;
}

/** A layer of an image in a registry: digests known from manifest and config, bytes fetched only on open(). */
export class RegistryLayer implements Layer {
  readonly mediaType: string;

  constructor(
    private readonly client: RegistryClient,
    readonly origin: BlobOrigin,
    readonly digest: Digest,
    readonly diffId: Digest,
    readonly size: number,
    readonly compression: Compression,
    /** "layer 2 of docker://…", for errors. */
    readonly description: string,
    readonly annotations?: Readonly<Record<string, string>>,
  ) {
    // Layer.mediaType is the OCI type; a Docker schema 2 base gives the same bytes under another name.
    this.mediaType = ociLayerMediaType(compression);
  }

  open(): Promise<Readable> {
    return this.client.getBlob(this.origin.repository, this.digest, this.size, this.description);
  }
}

export class RegistrySource implements ImageSource {
  constructor(
    readonly name: string,
    readonly image: Image,
    readonly reference: RegistryReference,
    readonly client: RegistryClient,
  ) {}

  async close(): Promise<void> {
    // fetch keeps no per-source handles: layer streams not consumed are closed by their readers.
  }
}

/** What a registry reference names, as it is: an image or an index whose children are fetched on demand. */
export class RegistryRoot implements RootSource {
  constructor(
    readonly name: string,
    readonly root: Image | ImageIndex,
    readonly reference: RegistryReference,
    readonly client: RegistryClient,
  ) {}

  /** The reference it was read by, with the tag a pull would use. */
  get names(): readonly string[] {
    const r = this.reference;
    return [formatReference(r.tag === undefined && r.digest === undefined ? { ...r, tag: 'latest' } : r)];
  }

  async close(): Promise<void> {}
}

const MAX_DEPTH = 8;

/** Reads the root a reference names: its manifest or index now (digest checked), children lazily. */
export async function openRegistryRoot(ref: string, opts: RegistryOptions = {}): Promise<RegistryRoot> {
  const r = parseRegistryReference(ref);
  const name = `docker://${formatReference(r)}`;
  const client = new RegistryClient(r.apiHost, r.registry, r.repository, opts);
  const m = await client.getManifest(r.repository, manifestReference(r), name);
  return new RegistryRoot(name, await nodeOf(client, r, m, name, 0), r, client);
}

/** Reads an image from a registry: manifest (through an index if needed) and config now, layers lazily. */
export async function openRegistrySource(ref: string, opts: RegistryOptions & { platform?: Platform } = {}): Promise<RegistrySource> {
  const root = await openRegistryRoot(ref, opts);
  const image = await resolveImage(root.root, opts.platform, root.name);
  return new RegistrySource(root.name, image, root.reference, root.client);
}

async function nodeOf(client: RegistryClient, r: RegistryReference, m: FetchedManifest, name: string, depth: number): Promise<Image | ImageIndex> {
  if (isIndexMediaType(m.mediaType) || Array.isArray(m.json.manifests)) {
    if (depth >= MAX_DEPTH) throw new StrataError(`${name}: image indexes nest more than ${MAX_DEPTH} levels deep`);
    const list = m.json.manifests;
    if (!Array.isArray(list)) throw new StrataError(`${name}: the registry returned a malformed index ("manifests" is not an array)`);
    const children = list.map((d, i) => parseDescriptor(d, `${name}: index manifests[${i}]`));
    const annotations = parseAnnotations(m.json.annotations, `${name}: index annotations`);
    return {
      manifest: { mediaType: m.mediaType, bytes: m.bytes, digest: m.digest },
      children,
      ...(annotations ? { annotations } : {}),
      async child(d) {
        if (!children.includes(d)) throw new StrataError(`internal: ${d.digest} is not a child of ${name}`);
        const what = `${name}@${d.digest}${d.platform ? ` (${formatPlatform(d.platform)})` : ''}`;
        return nodeOf(client, r, await client.getManifest(r.repository, d.digest, what), what, depth + 1);
      },
    };
  }
  return imageOf(client, r, m, name);
}

async function imageOf(client: RegistryClient, r: RegistryReference, m: FetchedManifest, name: string): Promise<Image> {
  if (!isManifestMediaType(m.mediaType)) {
    throw new StrataError(`${name}: unsupported manifest media type ${JSON.stringify(m.mediaType)} (expected an OCI or Docker schema 2 image manifest)`);
  }
  const config = parseDescriptor(m.json.config, `${name}: manifest "config"`);
  const layers = m.json.layers;
  if (!Array.isArray(layers)) throw new StrataError(`${name}: the registry returned a malformed manifest ("layers" is not an array)`);
  const layerDescs = layers.map((l, i) => parseDescriptor(l, `${name}: manifest layers[${i}]`));

  // Configs are small (kilobytes): read whole, checked against the manifest's digest.
  if (config.size > MAX_METADATA_BYTES) throw metadataTooLarge(`${name}: the config ${config.digest}`, config.size);
  const configStream = await client.getBlob(r.repository, config.digest, config.size, `config of ${name}`);
  const chunks: Buffer[] = [];
  for await (const c of configStream) chunks.push(c as Buffer);
  const configBytes = Buffer.concat(chunks);
  if (sha256Digest(configBytes) !== config.digest) throw new StrataError(`${name}: config blob does not hash to ${config.digest}`);
  let imageConfig: ImageConfig;
  try {
    imageConfig = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  } catch (e) {
    throw new StrataError(`${name}: config ${config.digest} is not valid JSON: ${(e as Error).message}`);
  }
  const diffIds = imageConfig?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds)) throw new StrataError(`${name}: config ${config.digest} has no rootfs.diff_ids array`);
  if (diffIds.length !== layerDescs.length) {
    throw new StrataError(`${name}: config lists ${diffIds.length} diff_ids but the manifest has ${layerDescs.length} layers`);
  }

  const origin: BlobOrigin = { apiHost: r.apiHost, repository: r.repository };
  const imageLayers = layerDescs.map((d, i) => {
    const what = `layer ${i + 1}/${layerDescs.length} (${d.digest}) of ${name}`;
    const compression = compressionOfMediaType(d.mediaType);
    if (compression === undefined) throw new StrataError(`${name}: ${what} has media type ${JSON.stringify(d.mediaType)}, which is not a layer type strata can read`);
    return new RegistryLayer(client, origin, d.digest, parseDigest(diffIds[i], `${name}: config rootfs.diff_ids[${i}]`), d.size, compression, what, d.annotations);
  });

  const annotations = parseAnnotations(m.json.annotations, `${name}: manifest annotations`);
  const image: Image = {
    config: imageConfig,
    configBytes,
    configDigest: config.digest,
    layers: imageLayers,
    manifest: { mediaType: m.mediaType, bytes: m.bytes, digest: m.digest },
    ...(annotations ? { annotations } : {}),
  };
  return image;
}

