/**
 * tar-split (vbatts/tar-split), the record containers-storage keeps beside each layer so it can
 * give the layer's exact tar back — `podman save` and `podman push` reassemble it from the files
 * in diff/ and this record, and fail ("Digest did not match") without it. The record is NDJSON:
 * for each member, the raw bytes read before its body (the previous padding, extended headers,
 * its header) as a segment, then the member with the CRC-64 (ISO) of its body; at the end the
 * bytes after the last body, whatever trails the end-of-archive marker, and one empty segment —
 * what the packer podman 4.3.1 writes gives for the same tar, checked here.
 */
import { BLOCK } from '../../tar/header.js';
import { decodeHeader, HeaderState, MAX_META, paddedSize, storedBodySize } from '../../tar/read.js';
import { StrataError } from '../../util/errors.js';
import { goJson } from './records.js';

type State =
  | { kind: 'header' }
  | { kind: 'meta'; flag: string; size: number; left: number; data: Buffer[] }
  | { kind: 'body'; name: string; size: number; left: number; crc: Crc64 }
  | { kind: 'padding'; left: number }
  | { kind: 'eof'; left: number }
  | { kind: 'trailer' };

/** A tar-split packer fed the tar's bytes as they stream past; `finish` gives the record. */
export class TarSplitter {
  private readonly lines: Buffer[] = [];
  private position = 0;
  private segment: Buffer[] = [];
  private readonly trailer: Buffer[] = [];
  private held = Buffer.alloc(0);
  private state: State = { kind: 'header' };
  private readonly headers = new HeaderState();
  private offset = 0;

  constructor(private readonly what: string) {}

  feed(chunk: Buffer): void {
    let data = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = Buffer.alloc(0);
    while (data.length > 0) {
      const s = this.state;
      if (s.kind === 'trailer') {
        this.trailer.push(Buffer.from(data));
        return;
      }
      if (s.kind === 'header') {
        if (data.length < BLOCK) {
          this.held = Buffer.from(data);
          return;
        }
        this.header(Buffer.from(data.subarray(0, BLOCK)));
        data = data.subarray(BLOCK);
        this.offset += BLOCK;
        continue;
      }
      const n = Math.min(s.left, data.length);
      const piece = data.subarray(0, n);
      data = data.subarray(n);
      this.offset += n;
      s.left -= n;
      if (s.kind === 'body') s.crc.update(piece);
      else if (s.kind === 'meta') s.data.push(Buffer.from(piece));
      else this.segment.push(Buffer.from(piece));
      if (s.left === 0) this.done(s);
    }
  }

  /** The NDJSON record. Throws if the tar ended before its end-of-archive marker. */
  finish(): Buffer {
    if (this.state.kind !== 'trailer') throw new StrataError(`${this.what}: the tar ends at byte ${this.offset + this.held.length} without its end-of-archive marker`);
    if (this.trailer.length > 0) this.emitSegment(Buffer.concat(this.trailer));
    this.emitSegment(Buffer.alloc(0));
    return Buffer.concat(this.lines);
  }

  private header(block: Buffer): void {
    const where = `${this.what} at byte ${this.offset}`;
    this.segment.push(block);
    const raw = decodeHeader(block, where);
    if (raw === undefined) {
      // The zero block and the one after it, as Go's reader takes them, close the last segment.
      this.state = { kind: 'eof', left: BLOCK };
      return;
    }
    if (HeaderState.isMeta(raw.typeflag)) {
      if (raw.size > MAX_META) throw new StrataError(`${where}: extended header of ${raw.size} bytes is too large`);
      this.state = { kind: 'meta', flag: raw.typeflag, size: raw.size, left: paddedSize(raw.size), data: [] };
      if (raw.size === 0) this.done(this.state);
      return;
    }
    const h = this.headers.finish(raw, where);
    this.emitSegment(Buffer.concat(this.segment));
    this.segment = [];
    const size = storedBodySize(h);
    this.state = { kind: 'body', name: h.name, size, left: size, crc: new Crc64() };
    if (size === 0) this.done(this.state);
  }

  private done(s: State): void {
    switch (s.kind) {
      case 'meta': {
        const body = Buffer.concat(s.data);
        this.segment.push(body);
        this.headers.absorb(s.flag, body.subarray(0, s.size), `${this.what} at byte ${this.offset}`);
        this.state = { kind: 'header' };
        return;
      }
      case 'body': {
        this.lines.push(goJson({ type: 1, name: s.name, ...(s.size > 0 ? { size: s.size } : {}), payload: s.size > 0 ? s.crc.digest().toString('base64') : null, position: this.position++ }), NEWLINE);
        const pad = paddedSize(s.size) - s.size;
        this.state = pad > 0 ? { kind: 'padding', left: pad } : { kind: 'header' };
        return;
      }
      case 'eof':
        this.emitSegment(Buffer.concat(this.segment));
        this.segment = [];
        this.state = { kind: 'trailer' };
        return;
      default:
        this.state = { kind: 'header' };
    }
  }

  private emitSegment(bytes: Buffer): void {
    this.lines.push(goJson({ type: 2, payload: bytes.toString('base64'), position: this.position++ }), NEWLINE);
  }
}

const NEWLINE = Buffer.from('\n');

// CRC-64 with the ISO polynomial, reflected, as Go's hash/crc64 computes it (crc64.ISO), in two
// 32-bit halves: JavaScript bit operations are 32-bit.
const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let k = 0; k < 8; k++) {
    const odd = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi >>>= 1;
    if (odd) hi = (hi ^ 0xd8000000) >>> 0;
  }
  TABLE_HI[i] = hi;
  TABLE_LO[i] = lo;
}

export class Crc64 {
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(data: Uint8Array): void {
    let hi = this.hi;
    let lo = this.lo;
    for (let i = 0; i < data.length; i++) {
      const t = (lo ^ data[i]!) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ TABLE_LO[t]!) >>> 0;
      hi = ((hi >>> 8) ^ TABLE_HI[t]!) >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
  }

  /** The 8 bytes of the sum, big-endian, as Go's Hash.Sum appends them. */
  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE((this.hi ^ 0xffffffff) >>> 0, 0);
    out.writeUInt32BE((this.lo ^ 0xffffffff) >>> 0, 4);
    return out;
  }
}
