import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { StrataError } from '../util/errors.js';
import { scanTarStream } from '../tar/read-stream.js';
import type { Layer } from './layer.js';
import { compareBytes } from '../util/byte-order.js';

/**
 * The top-level store paths a layer carries: `<storeDir>/<name>` for every member named
 * `nix/store/<name>[/…]`, `/nix/store/…` or `./nix/store/…` (the spellings nixpkgs, strata and
 * GNU tar use). Reads the layer once, headers only, to its end — so a base layer's digests are
 * verified on the way. Whiteouts (`.wh.*`) delete rather than carry, and are left out.
 */
export async function storePathsInLayer(layer: Layer, storeDir: string, source?: string): Promise<string[]> {
  const what = `layer ${layer.digest}${source ? ` of ${source}` : ''}`;
  if (layer.storePaths !== undefined) return [...layer.storePaths].sort(compareBytes);
  if (layer.compression === 'zstd') throw new StrataError(`${what} is zstd-compressed, which strata cannot read yet`);
  const prefix = `${storeDir.replace(/^\/+/, '').replace(/\/+$/, '')}/`;
  const found = new Set<string>();
  const blob = await layer.open();
  let tar: Readable = blob;
  if (layer.compression === 'gzip') {
    const gunzip = createGunzip();
    // pipeline forwards errors (a digest mismatch from the verifying blob stream) to the gunzip end.
    pipeline(blob, gunzip, () => undefined);
    tar = gunzip;
  }
  try {
    await scanTarStream(tar, what, (e) => {
      let n = e.name;
      while (n.startsWith('./') || n.startsWith('/')) n = n.startsWith('/') ? n.slice(1) : n.slice(2);
      if (!n.startsWith(prefix)) return;
      const top = n.slice(prefix.length).split('/')[0]!;
      if (top === '' || top.startsWith('.wh.')) return;
      found.add(`/${prefix}${top}`);
    });
  } catch (e) {
    blob.destroy();
    if (e instanceof StrataError) throw e;
    // zlib fails before the verifying stream reaches the end of the blob, so say what its words mean.
    const corrupt = layer.compression === 'gzip' ? 'its gzip stream is corrupt (it cannot match its digest)' : 'cannot read its tar';
    throw new StrataError(`${what}: ${corrupt}: ${(e as Error).message}`, { cause: e });
  }
  return [...found].sort(compareBytes);
}
