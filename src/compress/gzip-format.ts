/**
 * The gzip member framing (RFC 1952) around strata's deflate stream. Every byte that could carry
 * host state is fixed: MTIME 0, no FNAME/FCOMMENT/FEXTRA, XFL 0, OS 255 ("unknown", what Go's
 * compress/gzip — and so most registry layers — write). zlib would put the host OS there.
 */
export const GZIP_HEADER: Buffer = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);

/** CRC-32 and ISIZE (length mod 2^32), little-endian. */
export function gzipTrailer(crc: number, size: number): Buffer {
  const t = Buffer.alloc(8);
  t.writeUInt32LE(crc >>> 0, 0);
  t.writeUInt32LE(size % 0x1_0000_0000, 4);
  return t;
}
