import { createHash } from 'node:crypto';
import { checkProducibleCompression } from '../compress/compression.js';
import type { CompressPool } from '../compress/block-pool.js';
import { BlockCompressor } from '../compress/block-writer.js';
import type { Digest } from '../image/digest.js';
import type { Layer } from '../image/layer.js';
import { ociLayerMediaType, type Compression } from '../image/media-types.js';
import type { ImageDestination } from '../transports/types.js';
import { RUN_START, type TarRuns } from '../tar/segments.js';

/**
 * Makes one layer blob in `dest` from tar bytes that arrive as a stream (a layer being rewritten
 * from another image): the DiffID is hashed as the bytes pass, they are compressed with a
 * reproducible block codec when asked, and nothing is held whole. Where the stream marks a run
 * (RUN_START), a compressed layer starts a unit, as a layer built from the store does at each
 * store path. The size is not known ahead, so archive destinations spool the blob. On failure the
 * blob is aborted and the error rethrown. `pool` compresses; it is the caller's, so several layers
 * share its threads.
 */
export async function produceStreamedLayer(tar: TarRuns, dest: ImageDestination, compression: Compression, pool: () => CompressPool): Promise<Layer> {
  checkProducibleCompression(compression);
  const writer = await dest.beginBlob();
  const compressor = compression === 'none' ? undefined : new BlockCompressor(writer, pool(), compression);
  try {
    const diff = createHash('sha256');
    let tarSize = 0;
    for await (const chunk of tar) {
      if (chunk === RUN_START) {
        await compressor?.boundary();
        continue;
      }
      diff.update(chunk);
      tarSize += chunk.length;
      // Chunks are fresh views the rewriter never reuses, so the writer may keep them.
      await (compressor ?? writer).write(chunk);
    }
    const diffId: Digest = `sha256:${diff.digest('hex')}`;
    const { digest, size } = compressor ? await compressor.finish() : { digest: diffId, size: tarSize };
    const open = await writer.close(digest, size);
    return { diffId, digest, size, mediaType: ociLayerMediaType(compression), compression, open };
  } catch (e) {
    await compressor?.settle();
    await writer.abort();
    throw e;
  }
}
