/**
 * Keeps a layer cache under a size budget, as a CI runner's disk needs: the blobs used least
 * recently go first (a blob's mtime is its last use, see LayerCache.markUsed), then every index
 * record that names a blob no longer there, then temporary files a killed build left behind.
 *
 * Safe beside running builds: a build that finds a blob gone treats it as a miss and makes the
 * layer again; one already copying from it holds the open file; records are only ever written
 * after their blobs, so a record whose blob is missing is never one being published.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayerCache } from './layer-cache.js';

export interface PruneResult {
  bytesBefore: number;
  bytesAfter: number;
  blobsRemoved: number;
  blobsKept: number;
  /** Index records (layers, diffids, segments) dropped because a blob they name is gone or they were unreadable. */
  recordsRemoved: number;
  tmpRemoved: number;
}

/** A temporary file untouched this long belongs to no running build (they write continuously). */
const STALE_TMP_MS = 60 * 60 * 1000;

export async function pruneCache(cache: LayerCache, maxBytes: number, now = Date.now()): Promise<PruneResult> {
  const blobDir = cache.dirs.blobs;
  const blobs: { name: string; size: number; mtimeMs: number }[] = [];
  for (const name of await readdir(blobDir)) {
    const st = await stat(join(blobDir, name)).catch(() => undefined);
    if (st?.isFile()) blobs.push({ name, size: st.size, mtimeMs: st.mtimeMs });
  }
  const bytesBefore = blobs.reduce((n, b) => n + b.size, 0);
  // Oldest use first; names break ties so the choice never depends on readdir order.
  blobs.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
  let total = bytesBefore;
  let removed = 0;
  for (const b of blobs) {
    if (total <= maxBytes) break;
    await rm(join(blobDir, b.name), { force: true });
    total -= b.size;
    removed++;
  }
  const present = async (digest: unknown): Promise<boolean> => {
    if (typeof digest !== 'string' || !digest.startsWith('sha256:')) return false;
    return (await stat(join(blobDir, digest.slice(7))).catch(() => undefined))?.isFile() === true;
  };
  let recordsRemoved = 0;
  for (const dir of cache.dirs.records) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      let keep = false;
      try {
        // Layer and diffid records name `digest`; segment records name their pieces' digests.
        const rec = JSON.parse(await readFile(path, 'utf8')) as { digest?: unknown; tar?: { digest?: unknown }; gzip?: { digest?: unknown } };
        const named = rec.tar !== undefined ? [rec.tar.digest, ...(rec.gzip ? [rec.gzip.digest] : [])] : [rec.digest];
        keep = (await Promise.all(named.map(present))).every(Boolean);
      } catch {
        keep = false;
      }
      if (!keep) {
        await rm(path, { force: true });
        recordsRemoved++;
      }
    }
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
  return { bytesBefore, bytesAfter: total, blobsRemoved: removed, blobsKept: blobs.length - removed, recordsRemoved, tmpRemoved };
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
