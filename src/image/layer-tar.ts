import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { zstdDecoded } from '../compress/zstd-decode.js';
import { StrataError } from '../util/errors.js';
import type { Layer } from './layer.js';

/**
 * A layer's uncompressed tar, streamed: the blob is opened (and verified against its digest as
 * it is read, by the transport), decompressed when it is gzip or zstd, and handed on in chunks.
 * Errors name `what`; a consumer that stops early releases the blob.
 */
export async function* layerTar(layer: Layer, what: string): AsyncGenerator<Buffer> {
  const blob = await layer.open();
  let tar: AsyncIterable<Buffer> = blob;
  if (layer.compression === 'gzip') {
    const gunzip = createGunzip();
    // pipeline forwards errors (a digest mismatch from the verifying blob stream) to the gunzip end.
    pipeline(blob, gunzip, () => undefined);
    tar = gunzip;
  } else if (layer.compression === 'zstd') {
    tar = zstdDecoded(blob);
  }
  try {
    for await (const chunk of tar) yield chunk as Buffer;
  } catch (e) {
    if (e instanceof StrataError) throw e;
    // The decoder fails before the verifying stream reaches the end of the blob, so say what its words mean.
    const corrupt = layer.compression === 'none' ? 'cannot read its tar' : `its ${layer.compression} stream is corrupt (it cannot match its digest)`;
    throw new StrataError(`${what}: ${corrupt}: ${(e as Error).message}`, { cause: e });
  } finally {
    blob.destroy();
  }
}
