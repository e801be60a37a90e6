/**
 * Worker thread body: compresses blocks handed over by CompressPool, each with the codec its
 * request names. Stateless per message, so any worker can take any block; the output depends only
 * on the codec and the block (see codec.ts).
 */
import { parentPort } from 'node:worker_threads';
import { blockCodec, type BlockCompression } from './codec.js';

export interface BlockRequest {
  id: number;
  codec: BlockCompression;
  block: Uint8Array;
}

/** `block` is the request's buffer handed back, so the pool can reuse it instead of allocating. */
export type BlockResponse = { id: number; out: Uint8Array; block: Uint8Array } | { id: number; error: string };

parentPort?.on('message', (m: BlockRequest) => {
  blockCodec(m.codec).load().then((compress) => {
    const out = compress(m.block);
    const res: BlockResponse = { id: m.id, out, block: m.block };
    const back = m.block.byteOffset === 0 && m.block.byteLength === m.block.buffer.byteLength ? [m.block.buffer as ArrayBuffer] : [];
    parentPort!.postMessage(res, [out.buffer as ArrayBuffer, ...back]);
  }).catch((e: unknown) => {
    const res: BlockResponse = { id: m.id, error: e instanceof Error ? e.stack ?? e.message : String(e) };
    parentPort!.postMessage(res);
  });
});
