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

/**
 * Throws unless strata can produce `c` byte-reproducibly. zstd cannot be, today: there is no
 * pinned pure-JS zstd encoder among our dependencies, and node:zlib's zstd (Node >= 22.15 only)
 * is the bundled native libzstd, whose output may change with any Node release and is not
 * available at all on Node 20.
 */
export function checkProducibleCompression(c: string, what = '--compress'): asserts c is ProducibleCompression {
  if (c === 'none' || c === 'gzip') return;
  if (c === 'zstd') {
    throw new StrataError(
      `${what} zstd: strata cannot produce reproducible zstd layers — no pinned pure-JavaScript zstd encoder is available, ` +
        `and node:zlib's zstd (Node >= 22.15 only) is native libzstd whose output may change between Node releases; use gzip or none`,
    );
  }
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
