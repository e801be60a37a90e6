/**
 * Reading a tar as a stream (a layer blob arriving from a registry or out of gunzip), one member
 * at a time, with its body streamed through and never held whole. It is the one stream reader:
 * scanning headers (storePathsInLayer), hashing contents (conflict checks) and rewriting layers
 * (imports at a path, squashes) all go through it.
 */
import { StrataError } from '../util/errors.js';
import { BLOCK } from './header.js';
import { decodeHeader, HeaderState, MAX_META, paddedSize, storedBodySize, typeOf, type MemberType, type RawHeader } from './read.js';

/** One member of a tar stream, its overrides (PAX, GNU long names) applied. */
export interface StreamMember {
  /** The header as stored (the name not yet normalised). */
  readonly header: RawHeader;
  readonly type: MemberType;
  /** The member's header blocks exactly as stored, extended headers (PAX, GNU long names) included. */
  readonly raw: Buffer;
  /** Byte offset of the member's header in the stream, for messages. */
  readonly offset: number;
  /** The body (`header.size` bytes for files, none otherwise); skipped if not read before the next member. */
  body(): AsyncIterable<Buffer>;
}

/** Pull-based reads over an async iterable of chunks. */
class Chunks {
  private buffered: Buffer[] = [];
  private length = 0;
  /** Stream offset of the first buffered byte. */
  offset = 0;
  private done = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** Buffers at least `n` bytes; false when the stream ends first. */
  async fill(n: number): Promise<boolean> {
    while (this.length < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.buffered.push(next.value);
        this.length += next.value.length;
      }
    }
    return this.length >= n;
  }

  /** Takes exactly `n` buffered bytes (call fill first). */
  take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.length);
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    this.offset += n;
    return all.subarray(0, n);
  }

  /** Up to `max` bytes, from what is buffered or the next chunk; empty at the end of the stream. */
  async some(max: number): Promise<Buffer> {
    if (this.length === 0 && !(await this.fill(1))) return Buffer.alloc(0);
    const first = this.buffered[0]!;
    const n = Math.min(max, first.length);
    const out = first.subarray(0, n);
    if (n === first.length) this.buffered.shift();
    else this.buffered[0] = first.subarray(n);
    this.length -= n;
    this.offset += n;
    return out;
  }

  /** Reads the rest of the stream, so that a verifying source gets to check its digest. */
  async drain(): Promise<void> {
    this.buffered = [];
    this.length = 0;
    while (!this.done) if ((await this.source.next()).done) this.done = true;
  }
}

/**
 * Yields every real member of a tar stream; PAX and GNU metadata members are applied, not
 * yielded. Reads the stream to its end, and throws a StrataError naming `what` (and the byte)
 * on a truncated or corrupt tar.
 */
export async function* readTarStream(input: AsyncIterable<Buffer>, what: string): AsyncGenerator<StreamMember> {
  const chunks = new Chunks(input[Symbol.asyncIterator]());
  const state = new HeaderState();
  const truncated = (): StrataError =>
    new StrataError(`${what}: truncated tar stream (ends at byte ${chunks.offset} without the end-of-archive marker)`);
  let blocks: Buffer[] = []; // the current member's header blocks, as stored
  for (;;) {
    const at = chunks.offset;
    const where = `${what} at byte ${at}`;
    if (!(await chunks.fill(BLOCK))) throw truncated();
    const block = chunks.take(BLOCK);
    const raw = decodeHeader(block, where);
    if (raw === undefined) break;
    blocks.push(block);
    if (HeaderState.isMeta(raw.typeflag)) {
      if (raw.size > MAX_META) throw new StrataError(`${where}: extended header of ${raw.size} bytes is too large`);
      const padded = paddedSize(raw.size);
      if (!(await chunks.fill(padded))) throw truncated();
      const data = chunks.take(padded);
      blocks.push(data);
      state.absorb(raw.typeflag, Buffer.from(data.subarray(0, raw.size)), where);
      continue;
    }
    // Usually one block, kept as the view it is (Chunks never reuses what it handed out).
    const stored = blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks);
    blocks = [];
    const header = state.finish(raw, where);
    let left = storedBodySize(header);
    const padding = paddedSize(left) - left;
    async function* body(): AsyncGenerator<Buffer> {
      while (left > 0) {
        const piece = await chunks.some(left);
        if (piece.length === 0) throw truncated();
        left -= piece.length;
        yield piece;
      }
    }
    yield { header, type: typeOf(header.typeflag), raw: stored, offset: at, body };
    // Whatever the consumer left of the body is skipped here, then the padding.
    while (left > 0) {
      const piece = await chunks.some(left);
      if (piece.length === 0) throw truncated();
      left -= piece.length;
    }
    if (padding > 0) {
      if (!(await chunks.fill(padding))) throw truncated();
      chunks.take(padding);
    }
  }
  await chunks.drain();
}

const ZEROS = Buffer.alloc(BLOCK);

/** A member's body as it is stored: its bytes, then the zeros that pad it to a whole block. */
export async function* paddedBody(m: StreamMember): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of m.body()) {
    n += chunk.length;
    yield chunk;
  }
  const pad = paddedSize(n) - n;
  if (pad > 0) yield ZEROS.subarray(0, pad);
}

/** One member as `scanTarStream` reports it. */
export interface ScannedEntry {
  readonly name: string;
  readonly type: MemberType;
  readonly size: number;
  readonly linkname?: string;
}

/** Walks a tar stream's headers, skipping bodies, calling `onEntry` for every real member. */
export async function scanTarStream(input: AsyncIterable<Buffer>, what: string, onEntry: (e: ScannedEntry) => void): Promise<void> {
  for await (const m of readTarStream(input, what)) {
    const h = m.header;
    const linked = m.type === 'symlink' || m.type === 'hardlink';
    onEntry({ name: h.name, type: m.type, size: h.size, ...(linked ? { linkname: h.linkname } : {}) });
  }
}
