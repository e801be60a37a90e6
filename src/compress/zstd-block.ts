/**
 * One block of a zstd layer: `BLOCK_SIZE` bytes of the uncompressed stream (less for the last
 * block, or where the caller marks a boundary) compressed into one complete zstd frame. A layer
 * blob is these frames back to back, which RFC 8878 §3.1 defines as one zstd stream: every reader
 * of layers (klauspost/compress in containerd and containers/image, libzstd in zstd(1), fzstd
 * and node:zlib here) decodes all frames in turn; zstd:chunked layers rely on exactly this.
 *
 * Why this is reproducible (design-notes §6), as for gzip (deflate-block.ts): the encoder is
 * libzstd compiled to WebAssembly, shipped inside the `@bokuweb/zstd-wasm` npm package pinned
 * exactly (package.json and the lockfile's integrity hash fix the .wasm bytes). The module uses
 * no SIMD and WebAssembly integer code means the same on every CPU and in every engine tier, so
 * neither the CPU nor the Node release can change the bytes (test/compress/cross-node.test.ts
 * checks Node 20 against 22, without CPU extensions and on the baseline compiler). A frame
 * depends on exactly (block bytes, level): ZSTD_compress's defaults give a header with the
 * content size and no checksum or dictionary ID (the blob digest covers integrity). One context
 * is kept per thread; a one-shot compression carries nothing from one frame to the next.
 * ZSTD_FORMAT_TAG names every constant that fixes the bytes, and the layer cache keys on it.
 *
 * Why level 3 and 1 MiB frames: 3 is zstd's own default, about three times libdeflate's gzip -6
 * per core here at a smaller size (bench/build-issue6.ts prints both); a frame per 1 MiB lets
 * the pool spread one layer over every core, and costs about 1 % in size against one long frame.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { compileFunction } from 'node:vm';
import { BLOCK_SIZE } from './block-size.js';
import type { BlockCompress } from './codec.js';
import { pinnedPackage } from './pinned.js';

export const ZSTD_LEVEL = 3;
/** The exact `@bokuweb/zstd-wasm` npm package whose .wasm makes the bytes. */
export const ZSTD_WASM_PACKAGE_VERSION = '0.0.27';
/** Identifies the exact byte format; part of every zstd layer's cache identity (see GZIP_FORMAT_TAG). */
export const ZSTD_FORMAT_TAG = `zstd/zstd-wasm-${ZSTD_WASM_PACKAGE_VERSION}/level${ZSTD_LEVEL}/frames${BLOCK_SIZE}/store-path-runs`;

interface ZstdModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _ZSTD_compressBound(n: number): number;
  _ZSTD_createCCtx(): number;
  _ZSTD_compress_usingDict(cctx: number, dst: number, cap: number, src: number, n: number, dict: number, dictSize: number, level: number): number;
  _ZSTD_isError(code: number): number;
}

let loading: Promise<BlockCompress> | undefined;

/** The frame compressor of this thread, loaded once (the WebAssembly module is ~250 KB). */
export function loadFrameCompressor(): Promise<BlockCompress> {
  return (loading ??= load());
}

async function load(): Promise<BlockCompress> {
  // The package exports only its entry (dist/common/index.node.js); its files are found beside it.
  const { entry } = pinnedPackage('@bokuweb/zstd-wasm', ZSTD_WASM_PACKAGE_VERSION, 'zstd', 2);
  // The package's own compress() allocates a fresh context and two buffers per call, and its one
  // shared Emscripten module is instantiated again by every init() anyone in the process calls,
  // which would leave pointers into the old instance. So strata runs the package's glue as a
  // private module of its own (it requires nothing) and keeps one context and two buffers.
  const glue = join(dirname(entry), 'zstd.js');
  const exports: { Module?: ZstdModule & { init(wasm: Buffer): void; onRuntimeInitialized?: () => void } } = {};
  compileFunction(readFileSync(glue, 'utf8'), ['exports'], { filename: glue })(exports);
  const m = exports.Module!;
  await new Promise<void>((resolve) => {
    m.onRuntimeInitialized = resolve;
    m.init(readFileSync(join(dirname(entry), 'zstd.wasm')));
  });
  const cctx = m._ZSTD_createCCtx();
  const bound = m._ZSTD_compressBound(BLOCK_SIZE);
  const inPtr = m._malloc(BLOCK_SIZE);
  const outPtr = m._malloc(bound);
  if (cctx === 0 || inPtr === 0 || outPtr === 0) throw new Error('zstd: out of WebAssembly memory');
  return (block) => {
    if (block.length > BLOCK_SIZE) throw new Error(`internal: zstd block of ${block.length} bytes exceeds ${BLOCK_SIZE}`);
    // HEAPU8 is read afresh each call: growing WebAssembly memory replaces the view.
    m.HEAPU8.set(block, inPtr);
    const n = m._ZSTD_compress_usingDict(cctx, outPtr, bound, inPtr, block.length, 0, 0, ZSTD_LEVEL);
    if (m._ZSTD_isError(n)) throw new Error(`zstd: compression failed (code ${n})`);
    return m.HEAPU8.slice(outPtr, outPtr + n);
  };
}
