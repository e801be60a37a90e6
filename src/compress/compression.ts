/**
 * Which layer compressions strata can produce reproducibly, and the tag that pins each one's
 * byte format (part of the layer cache key, so a format change can never serve stale blobs).
 */
import type { Compression } from '../image/media-types.js';
import { StrataError } from '../util/errors.js';
import { blockCodec, type BlockCodec, type BlockCompression } from './codec.js';

export const COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'zstd'];

/** A compression strata can produce: none, or one made block by block. */
export type ProducibleCompression = 'none' | BlockCompression;

/** Throws unless `c` is a compression strata can produce byte-reproducibly (all of them, now). */
export function checkProducibleCompression(c: string, what = '--compress'): asserts c is ProducibleCompression {
  if (c === 'none' || c === 'gzip' || c === 'zstd') return;
  throw new StrataError(`${what}: unknown compression ${JSON.stringify(c)} (expected none, gzip or zstd)`);
}

/** The codec that makes layers compressed with `c`; undefined for uncompressed layers. */
export function codecOf(c: ProducibleCompression): BlockCodec | undefined {
  return c === 'none' ? undefined : blockCodec(c);
}

/** The exact byte format of layers produced with `c`. */
export function compressionFormatTag(c: Compression): string {
  checkProducibleCompression(c);
  return codecOf(c)?.formatTag ?? 'none';
}
