/**
 * A block codec: how one block of a layer's uncompressed stream becomes one self-contained
 * compressed unit (a gzip member, a zstd frame). A compressed layer blob is these units back to
 * back, which both formats define as one valid stream (RFC 1952 §2.2, RFC 8878 §3.1), so the pool,
 * the streaming writer and the cache's per-run pieces are the same for every codec; only the
 * function that compresses one block differs.
 *
 * Reproducibility rests on each codec: its output for a block may depend on nothing but the
 * block's bytes. Its `formatTag` names everything that fixes those bytes (library and version,
 * level, block size) and is part of every compressed layer's cache identity.
 */
import { GZIP_FORMAT_TAG, loadMemberCompressor } from './deflate-block.js';
import { loadFrameCompressor, ZSTD_FORMAT_TAG } from './zstd-block.js';

/** Compressions that are made block by block. */
export type BlockCompression = 'gzip' | 'zstd';

/** Compresses one block into one self-contained unit. Synchronous: it runs on the thread that loaded it. */
export type BlockCompress = (block: Uint8Array) => Uint8Array;

export interface BlockCodec {
  /** The exact byte format of blobs this codec makes. */
  readonly formatTag: string;
  /** This thread's compressor, loaded once. */
  load(): Promise<BlockCompress>;
}

const CODECS: Record<BlockCompression, BlockCodec> = {
  gzip: { formatTag: GZIP_FORMAT_TAG, load: loadMemberCompressor },
  zstd: { formatTag: ZSTD_FORMAT_TAG, load: loadFrameCompressor },
};

export function blockCodec(c: BlockCompression): BlockCodec {
  return CODECS[c];
}
