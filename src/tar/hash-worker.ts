/**
 * Worker side of ParallelHash (hasher.ts): sha256 of byte ranges of SharedArrayBuffers, one
 * hash per job id, updated in message order (a MessagePort delivers in order). Each update is
 * acknowledged so the producer can bound how many chunks wait here.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export type HashRequest =
  | { job: number; kind: 'update'; sab: SharedArrayBuffer; offset: number; length: number }
  | { job: number; kind: 'end' };
export type HashReply = { job: number; kind: 'ack' } | { job: number; kind: 'digest'; hex: string };

const hashes = new Map<number, Hash>();

parentPort?.on('message', (m: HashRequest) => {
  let h = hashes.get(m.job);
  if (h === undefined) hashes.set(m.job, (h = createHash('sha256')));
  if (m.kind === 'update') {
    h.update(new Uint8Array(m.sab, m.offset, m.length));
    parentPort!.postMessage({ job: m.job, kind: 'ack' } satisfies HashReply);
  } else {
    hashes.delete(m.job);
    parentPort!.postMessage({ job: m.job, kind: 'digest', hex: h.digest('hex') } satisfies HashReply);
  }
});
