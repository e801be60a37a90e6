/**
 * Which layer compressions strata can produce reproducibly, and the tag that pins each one's
 * byte format (part of the layer cache key, so a format change can never serve stale blobs).
 */
import type { Compression } from '../image/media-types.js';
import { StrataError } from '../util/errors.js';
import { GZIP_FORMAT_TAG } from './deflate-block.js';

export const COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'zstd'];

/**
 * Throws unless strata can produce `c` byte-reproducibly. zstd cannot be, today: there is no
 * pinned pure-JS zstd encoder among our dependencies, and node:zlib's zstd (Node >= 22.15 only)
 * is the bundled native libzstd, whose output may change with any Node release and is not
 * available at all on Node 20.
 */
export function checkProducibleCompression(c: string, what = '--compress'): asserts c is 'none' | 'gzip' {
  if (c === 'none' || c === 'gzip') return;
  if (c === 'zstd') {
    throw new StrataError(
      `${what} zstd: strata cannot produce reproducible zstd layers — no pinned pure-JavaScript zstd encoder is available, ` +
        `and node:zlib's zstd (Node >= 22.15 only) is native libzstd whose output may change between Node releases; use gzip or none`,
    );
  }
  throw new StrataError(`${what}: unknown compression ${JSON.stringify(c)} (expected none, gzip or zstd)`);
}

/** The exact byte format of layers produced with `c`. */
export function compressionFormatTag(c: Compression): string {
  checkProducibleCompression(c);
  return c === 'gzip' ? GZIP_FORMAT_TAG : 'none';
}
