/**
 * Temporary files and directories this process made and has not yet renamed into place or
 * removed: what an interrupt must clean up. Every writer holds a temporary path from the moment
 * it creates it until it renames or removes it; on SIGINT or SIGTERM the CLI removes whatever is
 * still held, so an interrupted build leaves neither a partial output nor a stray temp file.
 * Synchronous on purpose: it runs from a signal handler, just before the process exits.
 */
import { rmSync } from 'node:fs';

const held = new Set<string>();

export function holdTemp(path: string): void {
  held.add(path);
}

/** The path was renamed into place or removed: no longer ours to clean up. */
export function releaseTemp(path: string): void {
  held.delete(path);
}

/** Removes every held path (newest first, so files go before the directories that hold them); returns how many. */
export function removeHeldTemps(): number {
  const paths = [...held].reverse();
  held.clear();
  for (const p of paths) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // Best effort: the process is exiting.
    }
  }
  return paths.length;
}

/** How many paths are held (for tests). */
export function heldTempCount(): number {
  return held.size;
}
