import { canonicalJsonBytes } from '../util/json.js';
import { descriptorJson, type Descriptor } from './descriptor.js';
import { sha256Digest, type Digest } from './digest.js';
import type { Image } from './image.js';
import { MediaTypes } from './media-types.js';
import type { Platform } from './platform.js';

/** A manifest or index as bytes: what is written, pushed, and hashed to name it. */
export interface SerializedManifest {
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly digest: Digest;
}

export function serialized(mediaType: string, bytes: Buffer): SerializedManifest {
  return { mediaType, bytes, digest: sha256Digest(bytes) };
}

/** The manifest an image is written with: the one it was read from, else its OCI manifest. */
export function manifestOf(image: Image): SerializedManifest {
  return image.manifest ?? ociManifest(image);
}

/** The OCI image manifest of an image, canonically serialised. */
export function ociManifest(image: Image): SerializedManifest {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: descriptorJson({ mediaType: MediaTypes.ociConfig, digest: image.configDigest, size: image.configBytes.length }),
    layers: image.layers.map((l) => descriptorJson({ mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.annotations ? { annotations: l.annotations } : {}) })),
    annotations: image.annotations && Object.keys(image.annotations).length > 0 ? { ...image.annotations } : undefined,
  };
  return serialized(MediaTypes.ociManifest, canonicalJsonBytes(manifest));
}

/**
 * An index over `children`, canonically serialised (sorted keys, no whitespace), children in the
 * order given: the same children give the same index digest on every machine. The one index
 * serialiser: layouts' index.json, `strata index` and registry pushes all use it.
 */
export function serializeIndex(children: readonly Descriptor[], opts: { mediaType?: string; annotations?: Readonly<Record<string, string>> } = {}): SerializedManifest {
  const mediaType = opts.mediaType ?? MediaTypes.ociIndex;
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map(descriptorJson),
    annotations: opts.annotations && Object.keys(opts.annotations).length > 0 ? { ...opts.annotations } : undefined,
  };
  return serialized(mediaType, canonicalJsonBytes(index));
}

/** A descriptor pointing at a serialised manifest or index. */
export function manifestDescriptor(m: SerializedManifest, extra: { annotations?: Readonly<Record<string, string>>; platform?: Platform } = {}): Descriptor {
  return {
    mediaType: m.mediaType,
    digest: m.digest,
    size: m.bytes.length,
    ...(extra.platform ? { platform: extra.platform } : {}),
    ...(extra.annotations && Object.keys(extra.annotations).length > 0 ? { annotations: extra.annotations } : {}),
  };
}
