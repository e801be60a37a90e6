/**
 * A store layer's tar cut at store-path boundaries. Entries are sorted bytewise and every store
 * path is `<storeDir>/<32-char hash>-<name>` with a distinct hash, so each store path's entries
 * form one contiguous run, and the layer tar is: the store directory's parents, then one run per
 * store path, then the end-of-archive blocks. Each run's bytes depend only on that path's files
 * (and the mtime), which is what lets the cache keep them per store path and reuse them in any
 * layer that holds the path, and what lets a compressed layer start a unit (gzip member, zstd frame) at each run (src/compress/codec.ts).
 */
import type { TarEntry } from './entry.js';
import { END_OF_ARCHIVE, planHeader } from './header.js';

export interface TarSegment {
  /** The store path whose entries these are; undefined for the leading directories and the end. */
  storePath?: string;
  /** Byte range in the layer tar. */
  start: number;
  end: number;
  /** Entry index range [from, to). */
  from: number;
  to: number;
}

/**
 * The segments of the tar writeLayerTar makes of `entries` (a store layer's entries, as
 * storeLayerEntries returns them): they cover the whole tar, in order.
 */
/** A store directory as tar members name it: `/nix/store` → `nix/store/`. */
export function storeMemberPrefix(storeDir: string): string {
  return storeDir.replace(/^\/+|\/+$/g, '') + '/';
}

/**
 * The store path a normalised member name is or lies in, as a member name (`nix/store/<hash>-x`
 * for `nix/store/<hash>-x/bin/sh`); undefined outside the store directory (`prefix`, from
 * storeMemberPrefix). What cuts a store layer into runs, and what finds the paths a layer carries.
 */
export function storePathMember(name: string, prefix: string): string | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const slash = name.indexOf('/', prefix.length);
  return slash < 0 ? name : name.slice(0, slash);
}

export function storePathSegments(entries: readonly TarEntry[], storeDir: string, storePaths: readonly string[]): TarSegment[] {
  const prefix = storeMemberPrefix(storeDir);
  const wanted = new Set(storePaths);
  const segments: TarSegment[] = [];
  const seen = new Set<string>();
  let offset = 0;
  let current: TarSegment | undefined;
  for (let i = 0; i < entries.length; i++) {
    const top = storePathMember(entries[i]!.name, prefix);
    const candidate = top === undefined ? undefined : `/${top}`;
    const storePath = candidate !== undefined && wanted.has(candidate) ? candidate : undefined;
    if (current === undefined || current.storePath !== storePath) {
      if (storePath !== undefined) {
        if (seen.has(storePath)) throw new Error(`internal: entries of ${storePath} are not contiguous`);
        seen.add(storePath);
      }
      current = { ...(storePath !== undefined ? { storePath } : {}), start: offset, end: offset, from: i, to: i };
      segments.push(current);
    }
    const plan = planHeader(entries[i]!);
    offset += plan.headerBytes + plan.dataBytes;
    current.end = offset;
    current.to = i + 1;
  }
  segments.push({ start: offset, end: offset + END_OF_ARCHIVE, from: entries.length, to: entries.length });
  return segments;
}

/**
 * In a tar stream, where a new run starts: the gzip of a store layer starts a member there, as it
 * does at every segment of a layer built from the store, so a layer made from a stream of runs
 * (published layers merged) compresses to the same bytes as the same layer built.
 */
export const RUN_START: unique symbol = Symbol('tar run start');

/** Tar bytes, with the places where runs start marked. */
export type TarRuns = AsyncIterable<Buffer | typeof RUN_START>;
