/**
 * One block of a gzip layer: `BLOCK_SIZE` bytes of the uncompressed stream (less for the last
 * block, or where the caller marks a boundary) compressed into one complete gzip member —
 * header, raw deflate, CRC-32 and length. A layer blob is these members back to back, which
 * RFC 1952 §2.2 defines as one gzip file: every reader of layers (Go's compress/gzip in Docker,
 * containerd and the registries' tools, klauspost/pgzip in containers/image, GNU gzip,
 * node:zlib) decompresses all members in turn, and eStargz layers rely on exactly this.
 *
 * Why this is reproducible (design-notes §6): the deflater is libdeflate compiled to
 * WebAssembly, shipped inside the `libdeflate` npm package pinned exactly (package.json and the
 * lockfile's integrity hash fix the .wasm bytes). WebAssembly integer code has one meaning on
 * every CPU and in every engine tier, so there is no CPU-dependent code path and Node releases
 * cannot change the output; the gzip header libdeflate writes is fixed (MTIME 0, OS 255).
 * A member depends on exactly (block bytes, level), so block boundaries — offsets of the
 * uncompressed stream and caller-given boundaries — are the only other input, and scheduling,
 * worker count or I/O chunking cannot reach the bytes. Changing any constant here changes layer
 * bytes: GZIP_FORMAT_TAG names them all, and the layer cache keys on it.
 *
 * Why libdeflate and independent members rather than one deflate stream: libdeflate is
 * whole-buffer only (no preset dictionary, no sync flush), and in WebAssembly it deflates 2–4×
 * faster than pure-JavaScript deflaters at a better ratio (bench/build-issue6.ts prints it).
 * Without a dictionary carried between 1 MiB blocks the output grows by well under 1 %.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BLOCK_SIZE } from './block-size.js';
import type { BlockCompress } from './codec.js';
import { pinnedPackage } from './pinned.js';

/** libdeflate level 6: the ratio of `gzip -6` (the default of gzip and pigz), at about twice pigz's speed per core. */
export const GZIP_LEVEL = 6;
/** The exact `libdeflate` npm package whose .wasm makes the bytes. */
export const LIBDEFLATE_PACKAGE_VERSION = '0.1.0';
/**
 * Identifies the exact byte format; part of every gzip layer's cache identity. `store-path-runs`:
 * in store layers a member also starts at each store path's run (src/builder/segmented-layer.ts).
 */
export const GZIP_FORMAT_TAG = `gzip/libdeflate-wasm-${LIBDEFLATE_PACKAGE_VERSION}/level${GZIP_LEVEL}/members${BLOCK_SIZE}/store-path-runs`;


interface LibdeflateModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _libdeflate_alloc_compressor(level: number): number;
  _libdeflate_gzip_compress_bound(c: number, n: number): number;
  _libdeflate_gzip_compress(c: number, inPtr: number, inLen: number, outPtr: number, outMax: number): number;
}

let loading: Promise<BlockCompress> | undefined;

/** The member compressor of this thread, loaded once (the WebAssembly module is ~90 KB). */
export function loadMemberCompressor(): Promise<BlockCompress> {
  return (loading ??= load());
}

async function load(): Promise<BlockCompress> {
  // The package exports only its whole-buffer wrapper, which allocates a compressor and two
  // buffers per call; the Emscripten module beside it lets us keep them for every block.
  const pkgDir = pinnedPackage('libdeflate', LIBDEFLATE_PACKAGE_VERSION, 'gzip').root;
  const glue = (await import(pathToFileURL(join(pkgDir, 'dist', 'libdeflate.wasm.mjs')).href)) as { default: () => LibdeflateModule };
  const m = glue.default();
  const compressor = m._libdeflate_alloc_compressor(GZIP_LEVEL);
  const bound = m._libdeflate_gzip_compress_bound(compressor, BLOCK_SIZE);
  const inPtr = m._malloc(BLOCK_SIZE);
  const outPtr = m._malloc(bound);
  if (compressor === 0 || inPtr === 0 || outPtr === 0) throw new Error('libdeflate: out of WebAssembly memory');
  return (block) => {
    if (block.length > BLOCK_SIZE) throw new Error(`internal: gzip block of ${block.length} bytes exceeds ${BLOCK_SIZE}`);
    // HEAPU8 is read afresh each call: growing WebAssembly memory replaces the view.
    m.HEAPU8.set(block, inPtr);
    const n = m._libdeflate_gzip_compress(compressor, inPtr, block.length, outPtr, bound);
    if (n === 0) throw new Error('libdeflate: gzip member did not fit its bound');
    return m.HEAPU8.slice(outPtr, outPtr + n);
  };
}
