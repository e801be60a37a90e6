/**
 * The messages and shared state between writer.ts (main thread) and tar-worker.ts: kept apart so
 * that neither side loads the other's module.
 */
import type { TarItem } from './chunk-filler.js';

/** A file region the worker writes the tar to itself (FileRegion, without its callbacks). */
export interface DirectTarget {
  fd: number;
  offset: number;
  path: string;
  limit?: number;
  bestEffort?: boolean;
}

export type TarWorkerRequest =
  | { type: 'init'; slots: SharedArrayBuffer[]; control: SharedArrayBuffer }
  /** `tar: false`: the items are raw runs copied back to back (ChunkFiller's plain byte stream). */
  | { type: 'job'; id: number; items: readonly TarItem[]; mtime: number; tar: boolean; targets?: DirectTarget[]; hashHere: boolean; noHash?: boolean };

export type TarWorkerReply =
  | { type: 'chunk'; id: number; slot: number; len: number }
  | { type: 'done'; id: number; hex: string; size: number; dropped: { target: number; message: string }[] }
  | { type: 'error'; id: number; message: string; strata: boolean };

/** control[ABORT] is set by the main thread to stop the current job at the next slot. */
export const ABORT = 0;
/** control[SLOT_STATE + i] is slot i's state. */
export const SLOT_STATE = 1;
