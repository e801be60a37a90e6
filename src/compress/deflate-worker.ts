/**
 * Worker thread body: deflates blocks handed over by DeflatePool. Stateless per message, so any
 * worker can take any block; the output depends only on the message (see deflate-block.ts).
 */
import { parentPort } from 'node:worker_threads';
import { deflateBlock } from './deflate-block.js';

export interface BlockRequest {
  id: number;
  block: Uint8Array;
  dict?: Uint8Array;
  last: boolean;
}

export type BlockResponse = { id: number; out: Uint8Array } | { id: number; error: string };

parentPort?.on('message', (m: BlockRequest) => {
  let res: BlockResponse;
  try {
    const out = deflateBlock(m.block, m.dict, m.last);
    res = { id: m.id, out };
    parentPort!.postMessage(res, [out.buffer as ArrayBuffer]);
  } catch (e) {
    res = { id: m.id, error: e instanceof Error ? e.stack ?? e.message : String(e) };
    parentPort!.postMessage(res);
  }
});
