import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { Compression } from './media-types.js';

/**
 * A layer whose bytes exist somewhere (a built blob, a base image's blob, a registry blob).
 * Modelled on go-containerregistry's v1.Layer: digests are known up front, bytes are opened on
 * demand and streamed, never held whole.
 */
export interface Layer {
  /** sha256 of the uncompressed tar: what the config's rootfs.diff_ids lists. */
  readonly diffId: Digest;
  /** sha256 of the blob as stored and transferred (equals diffId when uncompressed). */
  readonly digest: Digest;
  /** Blob size in bytes. */
  readonly size: number;
  /** OCI media type of the blob. */
  readonly mediaType: string;
  readonly compression: Compression;
  /** Store paths the layer carries, when known (strata-built layers, or read back from history). */
  readonly storePaths?: readonly string[];
  /**
   * Annotations of the layer's descriptor in a manifest (the store path a package layer carries).
   * They describe the blob without being part of it: the digest is the same with or without them.
   */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Opens the blob bytes exactly as `digest` describes them. */
  open(): Promise<Readable>;
}

/**
 * The same blob with other descriptor-side facts (store paths, annotations): what a layer says
 * about itself changes, its bytes and digests do not. Layers may be class instances with getters,
 * so the fields are copied explicitly, never spread.
 */
export function describedAs(layer: Layer, facts: Pick<Layer, 'storePaths' | 'annotations'>): Layer {
  const storePaths = facts.storePaths ?? layer.storePaths;
  const annotations = facts.annotations ?? layer.annotations;
  return {
    diffId: layer.diffId,
    digest: layer.digest,
    size: layer.size,
    mediaType: layer.mediaType,
    compression: layer.compression,
    ...(storePaths ? { storePaths } : {}),
    ...(annotations ? { annotations } : {}),
    open: () => layer.open(),
  };
}
