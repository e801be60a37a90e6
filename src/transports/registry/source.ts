import type { Readable } from 'node:stream';
import { StrataError } from '../../util/errors.js';
import type { ImageConfig, Platform } from '../../image/config.js';
import { isDigest, parseDigest, sha256Digest, type Digest } from '../../image/digest.js';
import type { Image } from '../../image/image.js';
import type { Layer } from '../../image/layer.js';
import { compressionOfMediaType, MediaTypes, ociLayerMediaType, type Compression } from '../../image/media-types.js';
import type { ImageSource } from '../types.js';
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
    /** Digest of the image manifest that was read (for an index: of the chosen platform's manifest). */
    readonly manifestDigest: Digest,
    readonly client: RegistryClient,
  ) {}

  async close(): Promise<void> {
    // fetch keeps no per-source handles: layer streams not consumed are closed by their readers.
  }
}

const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

/** Reads an image from a registry: manifest (through an index if needed) and config now, layers lazily. */
export async function openRegistrySource(ref: string, opts: RegistryOptions = {}): Promise<RegistrySource> {
  const r = parseRegistryReference(ref);
  const name = `docker://${formatReference(r)}`;
  const client = new RegistryClient(r.apiHost, r.registry, r.repository, opts);
  let m = await client.getManifest(r.repository, manifestReference(r), name);
  if (m.mediaType === MediaTypes.ociIndex || m.mediaType === MediaTypes.dockerManifestList || Array.isArray(m.json.manifests)) {
    const platform = opts.platform ?? DEFAULT_PLATFORM;
    const chosen = choosePlatform(m, platform, name);
    m = await client.getManifest(r.repository, chosen, `${name} (${formatPlatform(platform)})`);
  }
  if (m.mediaType !== MediaTypes.ociManifest && m.mediaType !== MediaTypes.dockerManifest) {
    throw new StrataError(`${name}: unsupported manifest media type ${JSON.stringify(m.mediaType)} (expected an OCI or Docker schema 2 image manifest)`);
  }

  const config = descriptorOf(m.json.config, `${name}: manifest "config"`);
  const layers = m.json.layers;
  if (!Array.isArray(layers)) throw new StrataError(`${name}: the registry returned a malformed manifest ("layers" is not an array)`);
  const layerDescs = layers.map((l, i) => descriptorOf(l, `${name}: manifest layers[${i}]`));

  // Configs are small (kilobytes): read whole, checked against the manifest's digest.
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
    return new RegistryLayer(client, origin, d.digest, parseDigest(diffIds[i], `${name}: config rootfs.diff_ids[${i}]`), d.size, compression, what);
  });

  const annotations = m.json.annotations && typeof m.json.annotations === 'object' ? (m.json.annotations as Record<string, string>) : undefined;
  const image: Image = {
    config: imageConfig,
    configBytes,
    configDigest: config.digest,
    layers: imageLayers,
    ...(annotations ? { annotations } : {}),
  };
  return new RegistrySource(name, image, r, m.digest, client);
}

function descriptorOf(v: unknown, what: string): { mediaType: string; digest: Digest; size: number } {
  if (v === null || typeof v !== 'object') throw new StrataError(`${what} is missing or not an object (malformed manifest)`);
  const d = v as Record<string, unknown>;
  if (!isDigest(d.digest)) throw new StrataError(`${what}: digest ${JSON.stringify(d.digest)} is not a sha256 digest (malformed manifest)`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw new StrataError(`${what}: size ${JSON.stringify(d.size)} is not a byte count (malformed manifest)`);
  if (typeof d.mediaType !== 'string') throw new StrataError(`${what}: mediaType is missing (malformed manifest)`);
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The manifest digest an index lists for `platform` (variant compared only when asked for). */
function choosePlatform(index: FetchedManifest, platform: Platform, name: string): Digest {
  const list = index.json.manifests;
  if (!Array.isArray(list)) throw new StrataError(`${name}: the registry returned a malformed index ("manifests" is not an array)`);
  const offered: string[] = [];
  for (const [i, e] of list.entries()) {
    const entry = e as { digest?: unknown; platform?: Partial<Platform> };
    const p = entry.platform;
    if (!p) continue;
    offered.push(formatPlatform({ os: p.os ?? '?', architecture: p.architecture ?? '?', ...(p.variant ? { variant: p.variant } : {}) }));
    if (p.os === platform.os && p.architecture === platform.architecture && (platform.variant === undefined || p.variant === platform.variant)) {
      return parseDigest(entry.digest, `${name}: index manifests[${i}].digest`);
    }
  }
  throw new StrataError(`${name}: no image for platform ${formatPlatform(platform)} in its index (it has: ${offered.join(', ') || 'none'})`);
}
