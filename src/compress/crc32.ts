/**
 * CRC-32 (IEEE 802.3, the gzip trailer's checksum). It is a mathematical function: every correct
 * implementation gives the same value, so using node:zlib's (SIMD-accelerated on some CPUs) is no
 * threat to reproducibility. The table-driven fallback serves Node < 20.15, which lacks
 * zlib.crc32, and lets tests compare both (STRATA_PURE_CRC32=1 forces it).
 */
import * as zlib from 'node:zlib';

type Crc32Fn = (data: Uint8Array, value?: number) => number;

const native = (zlib as unknown as { crc32?: Crc32Fn }).crc32;

/** Slice-by-8 tables: table k maps a byte seen k positions earlier. */
const TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[0]![n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[0]![n]!;
    for (let k = 1; k < 8; k++) {
      c = t[0]![c & 0xff]! ^ (c >>> 8);
      t[k]![n] = c >>> 0;
    }
  }
  return t;
})();

/** Portable CRC-32, continuing from `value` (the CRC of the bytes before `data`). */
export function crc32Portable(data: Uint8Array, value = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let c = ~value >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c = t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]!
      ^ t3[data[i + 4]!]! ^ t2[data[i + 5]!]! ^ t1[data[i + 6]!]! ^ t0[data[i + 7]!]!;
  }
  for (; i < n; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const useNative = native !== undefined && process.env.STRATA_PURE_CRC32 !== '1';

/** CRC-32 of `data`, continuing from `value`. */
export function crc32(data: Uint8Array, value = 0): number {
  return useNative ? native!(data, value) >>> 0 : crc32Portable(data, value);
}

/** Which implementation `crc32` uses (reported by tests and the benchmark). */
export const crc32Implementation: 'node:zlib' | 'portable' = useNative ? 'node:zlib' : 'portable';
