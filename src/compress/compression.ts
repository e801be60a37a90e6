/**
 * Which layer compressions strata can produce reproducibly, and the tag that pins each one's
 * byte format (part of the layer cache key, so a format change can never serve stale blobs).
 */
import type { Compression } from '../image/media-types.js';
import { StrataError } from '../util/errors.js';
import { blockCodec, type BlockCodec } from './codec.js';

export const COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'zstd'];

/** Throws unless `c` names a compression (strata produces each of them byte-reproducibly). */
export function checkProducibleCompression(c: string, what = '--compress'): asserts c is Compression {
  if ((COMPRESSIONS as readonly string[]).includes(c)) return;
  throw new StrataError(`${what}: unknown compression ${JSON.stringify(c)} (expected none, gzip or zstd)`);
}

/** The codec that makes layers compressed with `c`; undefined for uncompressed layers. */
export function codecOf(c: Compression): BlockCodec | undefined {
  return c === 'none' ? undefined : blockCodec(c);
}

/** The exact byte format of layers produced with `c`. */
export function compressionFormatTag(c: Compression): string {
  checkProducibleCompression(c);
  return codecOf(c)?.formatTag ?? 'none';
}
