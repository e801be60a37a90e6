/**
 * Progress of a destination being written, reported as it happens: a decorator over any
 * ImageDestination that counts the layers added and the bytes of new blobs as they are written.
 * It changes nothing that is written; what to show, and where, is the caller's (the CLI's).
 */
import type { Digest } from '../image/digest.js';
import type { Layer } from '../image/layer.js';
import type { BlobWriter, ImageDestination } from './types.js';

export interface ProgressSink {
  /** A blob finished (new or carried): its size, and the running totals. */
  layer(done: { layers: number; bytes: number; size: number }): void;
  /** Bytes of a new blob being written (called often; the sink throttles). */
  bytes(total: number): void;
  /** The image was committed (or the destination aborted): the last report. */
  end(committed: boolean): void;
}

export function withProgress(dest: ImageDestination, sink: ProgressSink): ImageDestination {
  let layers = 0;
  let bytes = 0;
  const finished = (size: number) => {
    layers += 1;
    sink.layer({ layers, bytes, size });
  };
  return {
    name: dest.name,
    compression: dest.compression,
    async beginBlob(expectedSize?: number): Promise<BlobWriter> {
      const w = await dest.beginBlob(expectedSize);
      let mine = 0;
      const count = (n: number) => {
        mine += n;
        bytes += n;
        sink.bytes(bytes);
      };
      // Region producers write on their own thread: their bytes are counted when they report them.
      const region = w.region ? { ...w.region, wrote: (size: number) => { count(size); w.region!.wrote(size); } } : undefined;
      return {
        ...(w.releasesChunks ? { releasesChunks: w.releasesChunks } : {}),
        ...(w.acceptsConcurrentWrites ? { acceptsConcurrentWrites: w.acceptsConcurrentWrites } : {}),
        ...(region ? { region } : {}),
        ...(w.restart ? { restart: async () => { bytes -= mine; mine = 0; await w.restart!(); } } : {}),
        ...(w.adopt ? { adopt: (file: string, digest: Digest) => w.adopt!(file, digest) } : {}),
        async write(chunk) {
          await w.write(chunk);
          count(chunk.length);
        },
        async close(digest, size) {
          const open = await w.close(digest, size);
          if (mine < size) count(size - mine); // adopted or copied in without writes
          finished(size);
          return open;
        },
        abort: () => w.abort(),
      };
    },
    // A blob the destination already holds is a layer done, like one added.
    ...(dest.hasBlob
      ? {
          async hasBlob(digest: Digest, size: number) {
            const held = await dest.hasBlob!(digest, size);
            if (held) {
              bytes += size;
              finished(size);
            }
            return held;
          },
        }
      : {}),
    async addLayer(layer: Layer): Promise<void> {
      await dest.addLayer(layer);
      bytes += layer.size;
      finished(layer.size);
    },
    async commit(root, refs) {
      await dest.commit(root, refs);
      sink.end(true);
    },
    async abort() {
      await dest.abort();
      sink.end(false);
    },
  };
}
