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

/** `block` is the request's buffer handed back, so the pool can reuse it instead of allocating. */
export type BlockResponse = { id: number; out: Uint8Array; block: Uint8Array } | { id: number; error: string };

parentPort?.on('message', (m: BlockRequest) => {
  let res: BlockResponse;
  try {
    const out = deflateBlock(m.block, m.dict, m.last);
    res = { id: m.id, out, block: m.block };
    const back = m.block.byteOffset === 0 && m.block.byteLength === m.block.buffer.byteLength ? [m.block.buffer as ArrayBuffer] : [];
    parentPort!.postMessage(res, [out.buffer as ArrayBuffer, ...back]);
  } catch (e) {
    res = { id: m.id, error: e instanceof Error ? e.stack ?? e.message : String(e) };
    parentPort!.postMessage(res);
  }
});
