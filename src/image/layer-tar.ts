import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { StrataError } from '../util/errors.js';
import type { Layer } from './layer.js';

/**
 * A layer's uncompressed tar, streamed: the blob is opened (and verified against its digest as
 * it is read, by the transport), gunzipped when it is gzip, and handed on in chunks. Errors name
 * `what`; a consumer that stops early releases the blob.
 */
export async function* layerTar(layer: Layer, what: string): AsyncGenerator<Buffer> {
  if (layer.compression === 'zstd') throw new StrataError(`${what} is zstd-compressed, which strata cannot read yet`);
  const blob = await layer.open();
  let tar: AsyncIterable<Buffer> = blob;
  if (layer.compression === 'gzip') {
    const gunzip = createGunzip();
    // pipeline forwards errors (a digest mismatch from the verifying blob stream) to the gunzip end.
    pipeline(blob, gunzip, () => undefined);
    tar = gunzip;
  }
  try {
    for await (const chunk of tar) yield chunk as Buffer;
  } catch (e) {
    if (e instanceof StrataError) throw e;
    // zlib fails before the verifying stream reaches the end of the blob, so say what its words mean.
    const corrupt = layer.compression === 'gzip' ? 'its gzip stream is corrupt (it cannot match its digest)' : 'cannot read its tar';
    throw new StrataError(`${what}: ${corrupt}: ${(e as Error).message}`, { cause: e });
  } finally {
    blob.destroy();
  }
}
