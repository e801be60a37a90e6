/**
 * A store layer's job for produceLayers: its entries, scanned, and — when a cache will be asked —
 * its cache identities, made from that same scan (one walk of the store serves both).
 */
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { layerIdentityFromSegments, narHashOf, segmentIdentity, type IdentityTarOptions, type NarHashLookup } from '../cache/layer-cache.js';
import { ownershipKey, ownStoreEntries, type StoreOwnership } from '../tar/ownership.js';
import type { Compression } from '../image/media-types.js';
import { storeLayerEntries, type FileStamps } from '../tar/scan.js';
import { storePathSegments } from '../tar/segments.js';
import type { IdentifiedJob, LayerJob } from './produce-layers.js';

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

/**
 * The job of a store layer. When every path has a NAR hash, its cache identity is known without
 * reading a file, so the job is an IdentifiedJob: the store is scanned only if the cache cannot
 * supply the layer (a warm rebuild of a real Nix closure reads no directory at all).
 */
export async function storeLayerJob(storePaths: readonly string[], opts: StoreLayerJobOptions): Promise<LayerJob | IdentifiedJob> {
  // One lstat per path, not per file: a path missing under --store-root is still an error naming
  // it (the scan reports it), cache or not.
  if (opts.identities && storePaths.every((p) => narHashOf(opts.narHashes, p) !== undefined) && allPresent(storePaths, opts.storeRoot)) {
    const tar = identityTarOptions(opts);
    const unscanned = { entries: [], stamps: new Map<string, string>() };
    const identity = layerIdentityFromSegments(storePaths.map((p) => segmentIdentity(p, opts.narHashes, unscanned, tar, opts.compression)));
    return { identity, storePaths, scan: () => scannedStoreLayerJob(storePaths, opts) };
  }
  return scannedStoreLayerJob(storePaths, opts);
}

/**
 * Whether every path is there under storeRoot. Any failure, not only ENOENT, means "scan it": the
 * scan reports the error, naming the path. Synchronous because a promised lstat costs ~0.1 ms of
 * JavaScript each (request, promise, stats object): 20 ms of a 0.4 s warm rebuild for 184 paths,
 * where lstatSync of a path that is there costs a few microseconds.
 */
function allPresent(storePaths: readonly string[], storeRoot: string): boolean {
  try {
    return storePaths.every((p) => lstatSync(join(storeRoot, p), { throwIfNoEntry: false }) !== undefined);
  } catch {
    return false;
  }
}

/** What of the tar options a segment identity covers. */
function identityTarOptions(opts: StoreLayerJobOptions): IdentityTarOptions {
  const key = ownershipKey(opts.ownership);
  return { mtime: opts.mtime, storeDir: opts.storeDir, ...(key ? { ownership: key } : {}) };
}

/** The job with its entries scanned from the store (and, with a cache, its identities from that scan). */
async function scannedStoreLayerJob(storePaths: readonly string[], opts: StoreLayerJobOptions): Promise<LayerJob> {
  if (!opts.identities) return { entries: [...ownStoreEntries(await storeLayerEntries(opts.storeDir, opts.storeRoot, storePaths), opts.ownership)], storePaths };
  // Stamps identify only paths without a NAR hash; a real Nix closure has one for every path.
  const stamps: FileStamps = new Map();
  const stamped = storePaths.some((p) => narHashOf(opts.narHashes, p) === undefined);
  const entries = [...ownStoreEntries(await storeLayerEntries(opts.storeDir, opts.storeRoot, storePaths, stamped ? stamps : undefined), opts.ownership)];
  const segments = storePathSegments(entries, opts.storeDir, storePaths);
  const tar = identityTarOptions(opts);
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
