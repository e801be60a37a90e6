/**
 * Keeps a layer cache under a size budget, as a CI runner's disk needs: the blobs and containers
 * (linked outputs holding blobs) used least recently go first (their mtime is their last use, see
 * LayerCache.markUsed), then every record that names a blob no longer there (a location whose
 * container is gone, an index record whose blob is), then temporary files a killed build left.
 *
 * Safe beside running builds: a build that finds a blob gone treats it as a miss and makes the
 * layer again; one already copying from it holds the open file; records are only ever written
 * after their blobs, so a record whose blob is missing is never one being published.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseLocation, type LayerCache } from './layer-cache.js';
import type { Digest } from '../image/digest.js';

export interface PruneResult {
  bytesBefore: number;
  bytesAfter: number;
  /** Blob files and containers removed and kept. */
  blobsRemoved: number;
  blobsKept: number;
  /** Records (locations, layers, diffids, segments, stamps) dropped because what they name is gone or they were unreadable. */
  recordsRemoved: number;
  tmpRemoved: number;
}

/** A temporary file untouched this long belongs to no running build (they write continuously). */
const STALE_TMP_MS = 60 * 60 * 1000;

export async function pruneCache(cache: LayerCache, maxBytes: number, now = Date.now()): Promise<PruneResult> {
  // Location records, read once: which container holds which blob, and a container's last use,
  // that of its newest record (a hit marks the record, not the output file) or its own mtime.
  // A record is read as lookups read it (parseLocation): one that they would drop is dropped here.
  const locations: { path: string; digest: Digest; container?: string }[] = [];
  const containerUse = new Map<string, number>();
  for (const name of await readdir(cache.dirs.locations).catch(() => [] as string[])) {
    const path = join(cache.dirs.locations, name);
    const digest: Digest = `sha256:${name.replace(/\.json$/, '')}`;
    const [raw, st] = await Promise.all([readFile(path, 'utf8').catch(() => undefined), stat(path).catch(() => undefined)]);
    const container = raw === undefined ? undefined : parseLocation(raw, digest)?.container;
    locations.push({ path, digest, ...(container !== undefined ? { container } : {}) });
    if (container !== undefined && st) containerUse.set(container, Math.max(containerUse.get(container) ?? 0, st.mtimeMs));
  }
  // Blob files and containers (linked outputs holding blobs) are what take the space.
  const files: { dir: string; name: string; size: number; mtimeMs: number }[] = [];
  for (const dir of [cache.dirs.blobs, cache.dirs.containers]) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st?.isFile()) files.push({ dir, name, size: st.size, mtimeMs: Math.max(st.mtimeMs, dir === cache.dirs.containers ? containerUse.get(name) ?? 0 : 0) });
    }
  }
  const bytesBefore = files.reduce((n, b) => n + b.size, 0);
  // Oldest use first; names break ties so the choice never depends on readdir order.
  files.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
  let total = bytesBefore;
  let removed = 0;
  const kept = new Set(files.map((f) => join(f.dir, f.name)));
  for (const f of files) {
    if (total <= maxBytes) break;
    await rm(join(f.dir, f.name), { force: true });
    kept.delete(join(f.dir, f.name));
    total -= f.size;
    removed++;
  }

  let recordsRemoved = 0;
  const drop = async (path: string): Promise<void> => {
    await rm(path, { force: true });
    recordsRemoved++;
  };
  // A blob is there if its file is, or a location record puts it in a container that is.
  const present = new Set<string>();
  for (const f of files) if (f.dir === cache.dirs.blobs && kept.has(join(f.dir, f.name))) present.add(`sha256:${f.name}`);
  // Asked of the disk, not of the listing: a running build may have linked a container since.
  const containers = new Map<string, Promise<boolean>>();
  const containerThere = (name: string): Promise<boolean> => {
    let there = containers.get(name);
    if (there === undefined) containers.set(name, (there = stat(join(cache.dirs.containers, name)).then((st) => st.isFile(), () => false)));
    return there;
  };
  for (const { path, digest, container } of locations) {
    if (container !== undefined && await containerThere(container)) present.add(digest);
    else await drop(path);
  }
  for (const dir of cache.dirs.records) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      // Layer and diffid records name `digest`; segment records name their pieces' digests.
      // (`gzip` is the older name of `compressed`, see lookupSegment.)
      const rec = await readJson(path) as { digest?: unknown; tar?: { digest?: unknown }; compressed?: { digest?: unknown }; gzip?: { digest?: unknown } } | undefined;
      const units = rec?.compressed ?? rec?.gzip;
      const named = rec === undefined ? [] : rec.tar !== undefined ? [rec.tar.digest, ...(units ? [units.digest] : [])] : [rec.digest];
      if (named.length === 0 || !named.every((d) => typeof d === 'string' && present.has(d))) await drop(path);
    }
  }
  // Stamps are named by their blob's digest: one whose blob is gone stamps nothing.
  for (const name of await readdir(cache.dirs.stamps).catch(() => [] as string[])) {
    if (!present.has(`sha256:${name.replace(/\.json$/, '')}`)) await drop(join(cache.dirs.stamps, name));
  }
  let tmpRemoved = 0;
  const tmpDir = cache.dirs.tmp;
  for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
    const st = await stat(join(tmpDir, name)).catch(() => undefined);
    if (st && now - st.mtimeMs > STALE_TMP_MS) {
      await rm(join(tmpDir, name), { force: true });
      tmpRemoved++;
    }
  }
  return { bytesBefore, bytesAfter: total, blobsRemoved: removed, blobsKept: files.length - removed, recordsRemoved, tmpRemoved };
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * "500M", "10G", "1.5GiB", "4096": bytes. K, M, G, T are powers of 1000 (as strata prints sizes),
 * Ki, Mi, Gi, Ti powers of 1024; a trailing B is optional.
 */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(i)?B?|B)?\s*$/i.exec(text);
  if (!m) return undefined;
  const power = m[2] ? 'KMGT'.indexOf(m[2].toUpperCase()) + 1 : 0;
  const bytes = Math.floor(Number(m[1]) * (m[3] ? 1024 : 1000) ** power);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
