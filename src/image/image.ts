import type { ImageConfig } from './config.js';
import type { Descriptor } from './descriptor.js';
import type { Digest } from './digest.js';
import type { Layer } from './layer.js';
import type { SerializedManifest } from './manifest.js';

/**
 * An image: exact config bytes plus its layers, bottom first. Transports write it and read it;
 * nothing here knows about any one archive format. A built image's manifest is derived (see
 * manifest.ts), so the same Image gives the same manifest bytes in every format that carries one;
 * an image read from a layout or a registry keeps the manifest it was read from, so a copy of it
 * keeps its digest (and a Docker schema 2 image stays Docker).
 */
export interface Image {
  readonly config: ImageConfig;
  /** The exact serialised config; its sha256 is `configDigest` (the Docker image ID). */
  readonly configBytes: Buffer;
  readonly configDigest: Digest;
  readonly layers: readonly Layer[];
  /** Annotations for the image manifest (strata records its layer assignment here too). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The exact manifest this image was read from; unset for images strata assembles. */
  readonly manifest?: SerializedManifest;
}

/**
 * An image index (OCI index or Docker manifest list), kept as the exact bytes it was read or
 * made from. Its children are descriptors that open lazily, each to an Image or a nested index.
 */
export interface ImageIndex {
  readonly manifest: SerializedManifest;
  readonly children: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
  /** Opens one of `children` (throws for a descriptor that is not one of them). */
  child(d: Descriptor): Promise<Image | ImageIndex>;
}

export function isIndex(node: Image | ImageIndex): node is ImageIndex {
  return 'children' in node;
}
