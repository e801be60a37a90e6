/**
 * Cache identities: a digest of everything a layer's bytes depend on. Two builds that compute
 * the same identity produce the same blob, so the second may take the first one's from the cache.
 *
 * What goes in: the tar format and compression format tags (a change to either writer must miss),
 * the tar options (mtime, store directory), and per store path its content identity — the NAR
 * hash when the closure gives one (Nix guarantees a store path with that hash has that content),
 * otherwise what the layer's scan saw: every entry's header fields and, per file, a stamp of
 * mtime, ctime and inode (src/tar/scan.ts FileStamps), so a file changed in any ordinary way
 * changes the identity, without a second walk of the store.
 */
import { createHash, type Hash } from 'node:crypto';
import { lstatSync, type BigIntStats } from 'node:fs';
import type { StorePathInfo } from '../closure/types.js';
import { compressionFormatTag } from '../compress/compression.js';
import type { Compression } from '../image/media-types.js';
import type { TarEntry } from '../tar/entry.js';
import { StrataError } from '../util/errors.js';

/**
 * Version of the bytes src/tar/writer.ts and src/tar/scan.ts produce for given inputs. Bump it
 * whenever either changes its output (header fields, modes, entry order, padding): cached layers
 * from the old writer then stop matching.
 */
export const TAR_FORMAT_TAG = 'strata-tar/1';

export interface IdentityTarOptions {
  /** mtime written on every header. */
  mtime: number;
  /** Logical store directory (`/nix/store`): the names inside the layer. */
  storeDir: string;
  /** The store layers' ownership rules (ownershipKey), when the user set any. */
  ownership?: string;
}

/** NAR hashes by store path: a closure's `paths` map, or a map to hash strings. */
export type NarHashLookup = ReadonlyMap<string, StorePathInfo | string | undefined>;

/** The NAR hash the lookup gives for a store path, if any: then nothing on disk identifies it. */
export function narHashOf(narHashes: NarHashLookup | undefined, storePath: string): string | undefined {
  const info = narHashes?.get(storePath);
  return (typeof info === 'string' ? info : info?.narHash) || undefined;
}

/** A store layer's identity from its store paths' segment identities (layer order). */
export function layerIdentityFromSegments(segmentIdentities: readonly string[]): string {
  const h = createHash('sha256');
  field(h, 'store-layer');
  for (const id of segmentIdentities) field(h, id);
  return `sha256:${h.digest('hex')}`;
}

/** What the scan of a layer saw of one store path: its run of entries, and the layer's file stamps. */
export interface ScannedRun {
  entries: readonly TarEntry[];
  stamps: ReadonlyMap<string, string>;
}

/**
 * Identity of one store path's run in a layer tar (src/tar/segments.ts): the path, its content
 * (narHash, or else the scanned entries and file stamps), and everything else that shapes the
 * run's bytes and its gzip members.
 */
export function segmentIdentity(storePath: string, narHashes: NarHashLookup | undefined, scanned: ScannedRun, tar: IdentityTarOptions, compression: Compression): string {
  const h = createHash('sha256');
  field(h, 'store-segment');
  field(h, TAR_FORMAT_TAG);
  field(h, compressionFormatTag(compression));
  field(h, String(tar.mtime));
  field(h, tar.storeDir);
  // Owners and --perms modes change the bytes whatever the content: part of the key even by NAR hash.
  if (tar.ownership) field(h, `ownership ${tar.ownership}`);
  field(h, storePath);
  const narHash = narHashOf(narHashes, storePath);
  if (narHash) {
    field(h, `nar:${narHash}`);
    return `sha256:${h.digest('hex')}`;
  }
  // One string, hashed once: a run may hold thousands of entries.
  let listing = '';
  for (const e of scanned.entries) {
    listing += headerFields(e);
    if (e.source !== undefined) {
      const stamp = scanned.stamps.get(e.source);
      if (stamp === undefined) throw new Error(`internal: no stamp for ${e.source}; scan the layer with stamps`);
      listing += ` @ ${stamp}`;
    }
    listing += '\n';
  }
  field(h, 'scanned');
  field(h, listing);
  return `sha256:${h.digest('hex')}`;
}

/**
 * Identity of an arbitrary layer from its finished entry list (the customisation layer, or any
 * job the caller gave no identity): every header field, generated contents by hash, and an
 * lstat signature of each source file.
 */
export function entriesIdentity(entries: readonly TarEntry[], mtime: number, compression: Compression): string {
  const h = createHash('sha256');
  field(h, 'entries');
  field(h, TAR_FORMAT_TAG);
  field(h, compressionFormatTag(compression));
  field(h, String(mtime));
  for (const e of entries) {
    field(h, headerFields(e));
    if (e.content !== undefined) field(h, `content ${createHash('sha256').update(e.content).digest('hex')}`);
    else if (e.source !== undefined) {
      field(h, `source ${e.source}`);
      field(h, statSignature(lstatOrThrow(e.source)));
    }
  }
  return `sha256:${h.digest('hex')}`;
}

/** What an entry's tar header holds besides the fixed fields (names quoted: they may hold anything). */
function headerFields(e: TarEntry): string {
  const link = e.linkTarget !== undefined ? ` -> ${JSON.stringify(e.linkTarget)}` : '';
  const owner = e.owner ? ` owner ${e.owner.uid}:${e.owner.gid}:${JSON.stringify(e.owner.uname)}:${JSON.stringify(e.owner.gname)}` : '';
  return `${e.type} ${e.mode.toString(8)} ${e.size} ${JSON.stringify(e.name)}${link}${owner}`;
}

/** Length-prefixed, so no two different field lists hash the same. */
function field(h: Hash, s: string): void {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  h.update(len);
  h.update(b);
}

function statSignature(st: BigIntStats): string {
  return `${st.mode.toString(8)} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino}`;
}

function lstatOrThrow(path: string): BigIntStats {
  try {
    return lstatSync(path, { bigint: true });
  } catch (e) {
    throw new StrataError(`cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}
