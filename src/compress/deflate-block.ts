/**
 * pigz-style block deflate: the uncompressed stream is cut at fixed offsets into BLOCK_SIZE
 * blocks; each block is deflated on its own, primed with the 32 KiB before it as a dictionary,
 * and (except the last) ended with a sync flush — an empty stored block, which leaves the output
 * on a byte boundary. Concatenated, the blocks form one valid raw deflate stream.
 *
 * Why this is reproducible (design-notes §6): the deflater is fflate 0.8.2, pinned exactly in
 * package.json, pure JavaScript (no CPU-dependent code path, no native zlib), and its output is
 * a function of exactly (block bytes, dictionary bytes, last?, level, mem). Block boundaries are
 * offsets of the uncompressed stream, never read or write sizes, so nothing about scheduling,
 * worker count or I/O reaches the bytes. Changing any constant here changes layer bytes: bump
 * GZIP_FORMAT_TAG with it (the layer cache keys on the tag).
 */
import { Deflate } from 'fflate';

/** Uncompressed bytes per independently deflated block (pigz uses 128 KiB; fewer, larger hand-offs suit workers). */
export const BLOCK_SIZE = 1 << 20;
/** Deflate's window: the dictionary carried from one block into the next. */
export const DICT_SIZE = 32 * 1024;
/**
 * fflate level 4: on binaries and text it compresses about as well as `gzip -6` (zlib) while
 * running ~35% faster than fflate's own level 6 (measured here: ratio 0.355 vs zlib -6 0.351).
 */
export const GZIP_LEVEL = 4;
/** fflate's hash table size, 2^(12+mem) entries; fixed (fflate would otherwise pick it from the input length). */
export const GZIP_MEM = 8;
/** Identifies the exact byte format; part of every gzip layer's cache identity. */
export const GZIP_FORMAT_TAG = `gzip/fflate-0.8.2/level${GZIP_LEVEL}/mem${GZIP_MEM}/block${BLOCK_SIZE}/os255`;

/** The end of a sync flush after the pending bits: an empty, non-final stored block's LEN/NLEN. */
const STORED_EMPTY_LEN = [0x00, 0x00, 0xff, 0xff];

/**
 * Deflates one block. `dict` is the (up to) 32 KiB of uncompressed data that precedes the block;
 * `last` ends the deflate stream (BFINAL). A non-last block's output ends on a byte boundary.
 */
export function deflateBlock(block: Uint8Array, dict: Uint8Array | undefined, last: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  const opts = dict && dict.length > 0 ? { level: GZIP_LEVEL, mem: GZIP_MEM, dictionary: dict } as const : { level: GZIP_LEVEL, mem: GZIP_MEM } as const;
  const d = new Deflate(opts, (chunk) => parts.push(chunk));
  if (last) {
    d.push(block, true);
    return concat(parts, []);
  }
  d.push(block, false);
  d.flush();
  // fflate keeps the last, partly filled byte back between pushes: its state field `r` holds
  // (bits used in that byte) | (byte << 3). It is read here rather than via an API because
  // fflate has no sync flush; the exact pin and the golden-digest test guard this.
  const r = (d as unknown as { s: { r?: number } }).s.r ?? 0;
  const bits = r & 7;
  const pending = (r >>> 3) & 0xff;
  // Three zero bits (BFINAL=0, BTYPE=00 stored) follow the pending bits, then padding to a byte.
  const tail = bits + 3 <= 8 ? [pending] : [pending, 0];
  return concat(parts, [...tail, ...STORED_EMPTY_LEN]);
}

function concat(parts: Uint8Array[], tail: number[]): Uint8Array {
  let n = tail.length;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  out.set(tail, at);
  return out;
}
