import { canonicalJsonBytes } from '../util/json.js';
import { sha256Digest, type Digest } from './digest.js';
import type { Image } from './image.js';
import { MediaTypes } from './media-types.js';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface SerializedManifest {
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly digest: Digest;
}

/** The OCI image manifest of an image, canonically serialised. */
export function ociManifest(image: Image): SerializedManifest {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: image.configDigest, size: image.configBytes.length },
    layers: image.layers.map((l): Descriptor => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    annotations: image.annotations && Object.keys(image.annotations).length > 0 ? { ...image.annotations } : undefined,
  };
  const bytes = canonicalJsonBytes(manifest);
  return { mediaType: MediaTypes.ociManifest, bytes, digest: sha256Digest(bytes) };
}

/** A descriptor pointing at a serialised manifest. */
export function manifestDescriptor(m: SerializedManifest, annotations?: Record<string, string>): Descriptor {
  return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, ...(annotations ? { annotations } : {}) };
}
