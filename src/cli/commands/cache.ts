import { defaultCacheDir, openLayerCache } from '../../cache/layer-cache.js';
import { parseSize, pruneCache } from '../../cache/prune.js';
import { StrataError } from '../../util/errors.js';
import { humanSize } from './shared.js';

export interface CachePruneArgs {
  'max-size': string;
  'cache-dir'?: string;
  json: boolean;
}

export async function runCachePrune(args: CachePruneArgs): Promise<number> {
  const maxBytes = parseSize(args['max-size']);
  if (maxBytes === undefined) throw new StrataError(`--max-size ${JSON.stringify(args['max-size'])}: not a size (e.g. 4096, 500M, 10G, 2GiB)`);
  const dir = args['cache-dir'] ?? defaultCacheDir();
  const r = await pruneCache(await openLayerCache(dir), maxBytes);
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ cacheDir: dir, maxBytes, ...r }, null, 2)}\n`);
  } else {
    process.stdout.write(`${dir}: ${humanSize(r.bytesBefore)} -> ${humanSize(r.bytesAfter)} (budget ${humanSize(maxBytes)}); `
      + `removed ${r.blobsRemoved} blobs, kept ${r.blobsKept}; ${r.recordsRemoved} stale records, ${r.tmpRemoved} stale temporary files\n`);
  }
  return 0;
}
