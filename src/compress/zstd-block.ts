/**
 * One block of a zstd layer: `BLOCK_SIZE` bytes of the uncompressed stream (less for the last
 * block, or where the caller marks a boundary) compressed into one complete zstd frame. A layer
 * blob is these frames back to back, which RFC 8878 §3.1 defines as one zstd stream: every reader
 * of layers (klauspost/compress in containerd and containers/image, libzstd in zstd(1), fzstd
 * and node:zlib here) decodes all frames in turn; zstd:chunked layers rely on exactly this.
 *
 * Why this is reproducible (design-notes §6), as for gzip (deflate-block.ts): the encoder is
 * libzstd 1.5.7 compiled to WebAssembly by strata's own recipe (zstd-wasm/build.sh: Debian 12's
 * clang 14 for wasm32-wasi, single-threaded, no assembly, no SIMD, bulk memory), and the
 * module's bytes are pinned: it is committed beside the recipe, which rebuilds it byte for byte
 * (test/compress/zstd-wasm-build.test.ts), and its sha256 is checked before it is used. It
 * imports nothing. WebAssembly integer code means the same on every CPU and in every engine
 * tier, so neither the CPU nor the Node release can change the bytes (test/compress/cross-node.test.ts
 * checks Node 20 against 22, without CPU extensions and on the baseline compiler). A frame
 * depends on exactly (block bytes, level): ZSTD_compressCCtx's defaults give a header with the
 * content size and no checksum or dictionary ID (the blob digest covers integrity). One context
 * is kept per thread; a one-shot compression carries nothing from one frame to the next.
 * ZSTD_FORMAT_TAG names every constant that fixes the bytes, and the layer cache keys on it.
 *
 * Why strata builds it: the prebuilt module of the @bokuweb/zstd-wasm package, used before, makes
 * the same frames (test/compress/zstd.test.ts compares them) but, built for size, compresses at
 * ~90 MB/s per core here against this -O3 build's ~140.
 *
 * Why level 3 and 1 MiB frames: 3 is zstd's own default, about 3.4 times libdeflate's gzip -6
 * per core here at a smaller size (bench/build-issue6.ts prints both); a frame per 1 MiB lets
 * the pool spread one layer over every core, and costs about 1 % in size against one long frame.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BLOCK_SIZE } from './block-size.js';
import type { BlockCompress } from './codec.js';

export const ZSTD_LEVEL = 3;
/** The libzstd release the module is built from (checked against the module's own ZSTD_versionNumber). */
const LIBZSTD_VERSION = 10507;
/** sha256 of zstd-wasm/zstd.wasm, as zstd-wasm/build.sh makes it. */
export const ZSTD_WASM_SHA256 = 'b4f017c6f2c73786a803965ca0ca5ecd85fd7da3be989f5d4bfe6362285a5ce6';
/** Identifies the exact byte format; part of every zstd layer's cache identity (see GZIP_FORMAT_TAG). */
export const ZSTD_FORMAT_TAG = `zstd/libzstd-1.5.7-wasm-${ZSTD_WASM_SHA256.slice(0, 16)}/level${ZSTD_LEVEL}/frames${BLOCK_SIZE}/store-path-runs`;

/** The module: dist/src/compress → the package root → src/compress/zstd-wasm (as copy-range.ts finds its addon). */
export function zstdWasmPath(): string {
  return fileURLToPath(new URL('../../../src/compress/zstd-wasm/zstd.wasm', import.meta.url));
}

/** What strata needs of the WebAssembly global (the DOM library, which types it, is not in tsconfig). */
declare const WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: object } }> };

interface ZstdExports {
  memory: { buffer: ArrayBuffer };
  malloc(n: number): number;
  ZSTD_versionNumber(): number;
  ZSTD_compressBound(n: number): number;
  ZSTD_createCCtx(): number;
  ZSTD_compressCCtx(cctx: number, dst: number, cap: number, src: number, n: number, level: number): number;
  ZSTD_isError(code: number): number;
}

let loading: Promise<BlockCompress> | undefined;

/** The frame compressor of this thread, loaded once (the WebAssembly module is ~500 KB). */
export function loadFrameCompressor(): Promise<BlockCompress> {
  return (loading ??= load());
}

async function load(): Promise<BlockCompress> {
  const path = zstdWasmPath();
  const bytes = readFileSync(path);
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== ZSTD_WASM_SHA256) {
    throw new Error(`${path} has sha256 ${digest}, but strata's zstd bytes are pinned to ${ZSTD_WASM_SHA256}: reinstall strata, or rebuild it with src/compress/zstd-wasm/build.sh`);
  }
  const { instance } = await WebAssembly.instantiate(bytes, {});
  const m = instance.exports as unknown as ZstdExports;
  if (m.ZSTD_versionNumber() !== LIBZSTD_VERSION) throw new Error(`internal: ${path} is libzstd ${m.ZSTD_versionNumber()}, not ${LIBZSTD_VERSION}`);
  const cctx = m.ZSTD_createCCtx();
  const bound = m.ZSTD_compressBound(BLOCK_SIZE);
  const inPtr = m.malloc(BLOCK_SIZE);
  const outPtr = m.malloc(bound);
  if (cctx === 0 || inPtr === 0 || outPtr === 0) throw new Error('zstd: out of WebAssembly memory');
  return (block) => {
    if (block.length > BLOCK_SIZE) throw new Error(`internal: zstd block of ${block.length} bytes exceeds ${BLOCK_SIZE}`);
    // The view is made afresh each call: growing WebAssembly memory replaces the buffer.
    new Uint8Array(m.memory.buffer).set(block, inPtr);
    const n = m.ZSTD_compressCCtx(cctx, outPtr, bound, inPtr, block.length, ZSTD_LEVEL);
    if (m.ZSTD_isError(n)) throw new Error(`zstd: compression failed (code ${n})`);
    return new Uint8Array(m.memory.buffer).slice(outPtr, outPtr + n);
  };
}
