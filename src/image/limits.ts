/**
 * How much image metadata strata reads, at most, before refusing it: untrusted JSON is never read
 * whole however large it claims to be. The figures are containerd's (4 MiB for a manifest, an
 * index or a config); a docker-archive's manifest.json is a list of a few hundred bytes per image.
 */
import { StrataError } from '../util/errors.js';

export const MAX_METADATA_BYTES = 4 << 20;
export const MAX_ARCHIVE_MANIFEST_BYTES = 1 << 20;

/** The error for `what` being `size` bytes (or more) when `limit` is the most strata reads. */
export function metadataTooLarge(what: string, size: number, limit = MAX_METADATA_BYTES): StrataError {
  const mib = (n: number) => `${(n / (1 << 20)).toFixed(n % (1 << 20) === 0 ? 0 : 1)} MiB`;
  return new StrataError(`${what} is ${size} bytes, more than the ${mib(limit)} strata reads of image metadata; it is not a real manifest, index or config`);
}
