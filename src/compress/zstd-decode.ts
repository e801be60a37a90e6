/**
 * Streaming zstd decoding for layers strata reads (base images, images to stack or embed):
 * fzstd, a pure-JavaScript decoder, behind a walker of the zstd framing (RFC 8878 §3.1) that
 * bounds what a hostile blob can cost.
 *
 * Why a walker: fzstd allocates each frame's window as its header declares (up to 2 GiB) and
 * decodes everything it is given in one synchronous call. The walker reads the frame and block
 * headers as they pass, so it refuses a window above libzstd's own default limit before fzstd
 * sees the frame, and it hands fzstd at most MAX_BLOCKS_PER_STEP blocks at a time — a block
 * decodes to at most 128 KiB, so one step never makes more than 8 MiB, however small the input
 * that claims it (a run-length block is 4 bytes). Callers take the output step by step
 * (`steps`), so an async consumer applies backpressure between steps.
 */
import { Decompress } from 'fzstd';

/** libzstd's ZSTD_WINDOWLOG_LIMIT_DEFAULT (2^27): what zstd(1) decodes without --memory. */
export const MAX_WINDOW = 1 << 27;
/** Blocks given to fzstd per step (each decodes to ≤ 128 KiB, RFC 8878 §3.1.1.2.4). */
const MAX_BLOCKS_PER_STEP = 64;

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

/** A zstd stream that cannot be decoded; the message says why, for callers to name the blob. */
export class ZstdError extends Error {}

type Walk =
  | { at: 'magic' }
  | { at: 'descriptor' }
  | { at: 'header'; fhd: number; need: number }
  | { at: 'skippable' }
  | { at: 'skip'; left: number; then: Walk }
  | { at: 'block'; checksum: boolean };

/** Bytes each state reads before it can move on ('skip' reads as many as it skips). */
function headerBytes(s: Exclude<Walk, { at: 'skip' }>): number {
  switch (s.at) {
    case 'magic': return 4;
    case 'descriptor': return 1;
    case 'header': return s.need;
    case 'skippable': return 4;
    case 'block': return 3;
  }
}

function le(h: readonly number[], from: number, n: number): number {
  let v = 0;
  for (let b = n - 1; b >= 0; b--) v = v * 256 + h[from + b]!;
  return v;
}

/**
 * Follows the framing of a zstd stream without decoding it: where frames and blocks start, and
 * each frame's declared window.
 */
class FrameWalker {
  private state: Walk = { at: 'magic' };
  /** Bytes of a header that arrived split across chunks. */
  private held: number[] = [];

  /** True between frames: the stream may end here. */
  get atFrameBoundary(): boolean {
    return this.state.at === 'magic' && this.held.length === 0;
  }

  /**
   * Walks `chunk` from `from` and returns where the step that starts there should end: before
   * the block header that would make more than `maxBlocks`, or at the end of the chunk.
   */
  advance(chunk: Uint8Array, from: number, maxBlocks: number): number {
    let i = from;
    let blocks = 0;
    while (i < chunk.length) {
      const s = this.state;
      if (s.at === 'skip') {
        const take = Math.min(s.left, chunk.length - i);
        i += take;
        s.left -= take;
        if (s.left === 0) this.state = s.then;
        continue;
      }
      if (s.at === 'block' && this.held.length === 0 && blocks === maxBlocks && i > from) return i;
      const need = headerBytes(s);
      while (this.held.length < need && i < chunk.length) this.held.push(chunk[i++]!);
      if (this.held.length < need) return i;
      const h = this.held;
      this.held = [];
      if (s.at === 'block') blocks++;
      this.state = next(s, h);
    }
    return i;
  }
}

/** The state after `s` has read its header bytes `h` (RFC 8878 §3.1.1). */
function next(s: Exclude<Walk, { at: 'skip' }>, h: number[]): Walk {
  switch (s.at) {
    case 'magic': {
      const magic = le(h, 0, 4);
      if (magic === ZSTD_MAGIC) return { at: 'descriptor' };
      if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) return { at: 'skippable' };
      throw new ZstdError('not a zstd frame (bad magic number)');
    }
    case 'skippable': {
      const len = le(h, 0, 4);
      return len === 0 ? { at: 'magic' } : { at: 'skip', left: len, then: { at: 'magic' } };
    }
    case 'descriptor': {
      const fhd = h[0]!;
      if (fhd & 0x08) throw new ZstdError('a frame header has its reserved bit set');
      return { at: 'header', fhd, need: headerLength(fhd) };
    }
    case 'header': {
      const window = windowSize(s.fhd, h);
      if (window > MAX_WINDOW) {
        throw new ZstdError(`a frame declares a ${Math.ceil(window / 2 ** 20)} MiB window, above the ${MAX_WINDOW / 2 ** 20} MiB zstd decoders accept by default`);
      }
      return { at: 'block', checksum: ((s.fhd >> 2) & 1) === 1 };
    }
    case 'block': {
      const v = le(h, 0, 3);
      const last = (v & 1) === 1;
      const type = (v >> 1) & 3;
      if (type === 3) throw new ZstdError('a block has the reserved block type');
      // A run-length block's body is its one byte, whatever size it stands for.
      const body = type === 1 ? 1 : Math.floor(v / 8);
      const after: Walk = !last ? { at: 'block', checksum: s.checksum } : s.checksum ? { at: 'skip', left: 4, then: { at: 'magic' } } : { at: 'magic' };
      return body > 0 ? { at: 'skip', left: body, then: after } : after;
    }
  }
}

/** Bytes after the frame header descriptor: window descriptor?, dictionary ID?, content size? */
function headerLength(fhd: number): number {
  const single = (fhd >> 5) & 1;
  return (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + [single, 2, 4, 8][fhd >> 6]!;
}

/** The window a frame declares: from its window descriptor, or its content size when single-segment. */
function windowSize(fhd: number, h: readonly number[]): number {
  if (((fhd >> 5) & 1) === 0) {
    const wd = h[0]!;
    const base = 2 ** (10 + (wd >> 3));
    return base + (base / 8) * (wd & 7);
  }
  const fcsBytes = [1, 2, 4, 8][fhd >> 6]!;
  const size = le(h, [0, 1, 2, 4][fhd & 3]!, fcsBytes);
  return fcsBytes === 2 ? size + 256 : size;
}

/**
 * A zstd stream decoder: `steps(chunk)` yields the decoded bytes of a chunk in bounded steps;
 * `end()` checks the stream did not stop inside a frame. Throws ZstdError on anything malformed.
 */
export class ZstdDecoder {
  private readonly walker = new FrameWalker();
  private readonly inner: Decompress;
  private out: Uint8Array[] = [];
  private seenFrame = false;

  constructor() {
    this.inner = new Decompress((data) => {
      if (data.length > 0) this.out.push(data);
    });
  }

  *steps(chunk: Uint8Array): Generator<Uint8Array> {
    let at = 0;
    while (at < chunk.length) {
      const end = this.walker.advance(chunk, at, MAX_BLOCKS_PER_STEP);
      this.seenFrame = true;
      this.decode(chunk.subarray(at, end), false);
      at = end;
      yield* this.drain();
    }
  }

  end(): Generator<Uint8Array> {
    if (!this.seenFrame) throw new ZstdError('empty stream (no zstd frame)');
    if (!this.walker.atFrameBoundary) throw new ZstdError('stream ends inside a frame (truncated)');
    this.decode(new Uint8Array(0), true);
    return this.drain();
  }

  private decode(part: Uint8Array, final: boolean): void {
    try {
      this.inner.push(part, final);
    } catch (e) {
      throw new ZstdError(`corrupt zstd data: ${(e as Error).message}`);
    }
  }

  private *drain(): Generator<Uint8Array> {
    const out = this.out;
    this.out = [];
    yield* out;
  }
}

/** Decodes a zstd stream as it is read; errors are ZstdError. */
export async function* zstdDecoded(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const dec = new ZstdDecoder();
  for await (const chunk of source) {
    for (const out of dec.steps(chunk)) yield Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }
  for (const out of dec.end()) yield Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
