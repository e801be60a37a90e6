/**
 * Writing a tar's bytes straight into file regions (FileRegion, as DirectTarget), shared by the
 * tar worker (tar-worker.ts) and the small layers the main thread makes itself (writer.ts), so
 * both treat a failing region alike: a required one fails the layer, a best-effort one (the
 * cache) is dropped and the rest go on.
 */
import { StrataError } from '../util/errors.js';
import { writeAtSync } from '../util/write-at.js';
import type { DirectTarget } from './tar-worker-protocol.js';

/** A target given up: a best-effort one that failed (the cache). */
export interface Dropped { target: number; message: string }

/** A write to target `i` failed: a required target fails the job, a best-effort one is dropped. */
export function targetFailed(t: DirectTarget, i: number, e: unknown, dropped: Dropped[]): void {
  const message = `cannot write ${t.path}: ${(e as Error).message}`;
  if (!t.bestEffort) throw new StrataError(message);
  dropped.push({ target: i, message });
}

/** Writes `bytes`, the tar's bytes from offset `at`, into every target not yet dropped. */
export function writeToTargets(targets: readonly DirectTarget[], bytes: Buffer, at: number, dropped: Dropped[]): void {
  for (const [i, t] of targets.entries()) {
    if (dropped.some((d) => d.target === i)) continue;
    try {
      if (t.limit !== undefined && at + bytes.length > t.limit) throw new Error(`internal: blob grew past its reserved ${t.limit} bytes`);
      writeAtSync(t.fd, bytes, t.offset + at);
    } catch (e) {
      targetFailed(t, i, e, dropped);
    }
  }
}
