import type { ImageConfig, Platform } from './config.js';
import type { Digest } from './digest.js';
import type { Layer } from './layer.js';

/**
 * An image: exact config bytes plus its layers, bottom first. Transports write it and read it;
 * nothing here knows about any one archive format. The manifest is derived (see manifest.ts),
 * so the same Image gives the same manifest bytes in every format that carries one.
 */
export interface Image {
  readonly config: ImageConfig;
  /** The exact serialised config; its sha256 is `configDigest` (the Docker image ID). */
  readonly configBytes: Buffer;
  readonly configDigest: Digest;
  readonly layers: readonly Layer[];
  /** Annotations for the image manifest (strata records its layer assignment here too). */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A multi-platform index over several images. */
export interface ImageIndex {
  readonly manifests: readonly { image: Image; platform: Platform; annotations?: Record<string, string> }[];
}
