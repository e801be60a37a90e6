/**
 * A store layer's job for produceLayers: its entries, scanned, and — when a cache will be asked —
 * its cache identities, made from that same scan (one walk of the store serves both).
 */
import { layerIdentityFromSegments, narHashOf, segmentIdentity, type NarHashLookup } from '../cache/layer-cache.js';
import { ownershipKey, ownStoreEntries, type StoreOwnership } from '../tar/ownership.js';
import type { Compression } from '../image/media-types.js';
import { storeLayerEntries, type FileStamps } from '../tar/scan.js';
import { storePathSegments } from '../tar/segments.js';
import type { LayerJob } from './produce-layers.js';

export interface StoreLayerJobOptions {
  /** Logical store directory, as in the closure. */
  storeDir: string;
  /** Physical root the store paths are read under. */
  storeRoot: string;
  mtime: number;
  compression: Compression;
  /** Compute cache identities (only worth it with a cache). */
  identities: boolean;
  /** NAR hashes (a closure's paths map): a path that has one is identified by it. */
  narHashes?: NarHashLookup;
  /** Owners and --perms modes for the layer's entries. */
  ownership?: StoreOwnership;
}

export async function storeLayerJob(storePaths: readonly string[], opts: StoreLayerJobOptions): Promise<LayerJob> {
  if (!opts.identities) return { entries: [...ownStoreEntries(await storeLayerEntries(opts.storeDir, opts.storeRoot, storePaths), opts.ownership)], storePaths };
  // Stamps identify only paths without a NAR hash; a real Nix closure has one for every path.
  const stamps: FileStamps = new Map();
  const stamped = storePaths.some((p) => narHashOf(opts.narHashes, p) === undefined);
  const entries = [...ownStoreEntries(await storeLayerEntries(opts.storeDir, opts.storeRoot, storePaths, stamped ? stamps : undefined), opts.ownership)];
  const segments = storePathSegments(entries, opts.storeDir, storePaths);
  const key = ownershipKey(opts.ownership);
  const tar = { mtime: opts.mtime, storeDir: opts.storeDir, ...(key ? { ownership: key } : {}) };
  const ids = new Map<string, string>();
  for (const seg of segments) {
    if (seg.storePath === undefined) continue;
    ids.set(seg.storePath, segmentIdentity(seg.storePath, opts.narHashes, { entries: entries.slice(seg.from, seg.to), stamps }, tar, opts.compression));
  }
  return {
    entries,
    storePaths,
    segments,
    identity: layerIdentityFromSegments(storePaths.map((p) => ids.get(p)!)),
    segmentIdentities: ids,
  };
}
