/**
 * A tiny, independent tar reader for the tests: it decodes what the bytes say (ustar fields,
 * PAX records, checksums) without sharing any code with src/tar, so a bug in the writer's
 * encoding cannot hide behind the same bug in the check.
 */
import type { BlobWriter } from '../../src/transports/types.js';

export interface ParsedMember {
  name: string; // PAX path if present, else prefix/name
  ustarName: string;
  ustarPrefix: string;
  type: string; // typeflag character
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  size: number;
  linkname: string;
  magic: string;
  devmajor: string;
  devminor: string;
  pax?: Record<string, string>;
  /** Raw PAX extended header member (its own name), when one preceded this member. */
  paxHeaderName?: string;
  paxKeysInOrder?: string[];
  data: Buffer;
  offset: number;
}

function str(b: Buffer, off: number, len: number): string {
  const field = b.subarray(off, off + len);
  const nul = field.indexOf(0);
  return (nul === -1 ? field : field.subarray(0, nul)).toString('utf8');
}

function octal(b: Buffer, off: number, len: number): number {
  const s = str(b, off, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

export function parseTar(tar: Buffer): { members: ParsedMember[]; endOffset: number } {
  const members: ParsedMember[] = [];
  let off = 0;
  let pending: { records: Record<string, string>; keys: string[]; name: string } | undefined;
  for (;;) {
    if (off + 512 > tar.length) throw new Error(`truncated tar at ${off}`);
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) {
      const second = tar.subarray(off + 512, off + 1024);
      if (second.length !== 512 || !second.every((x) => x === 0)) throw new Error('missing second end block');
      return { members, endOffset: off + 1024 };
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== octal(h, 148, 8)) throw new Error(`bad checksum at ${off}`);
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156]!);
    const dataStart = off + 512;
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const body = tar.subarray(dataStart, dataStart + size);
      const records: Record<string, string> = {};
      const keys: string[] = [];
      let p = 0;
      while (p < body.length) {
        const sp = body.indexOf(0x20, p);
        const len = parseInt(body.subarray(p, sp).toString(), 10);
        const rec = body.subarray(sp + 1, p + len - 1).toString('utf8');
        if (body[p + len - 1] !== 0x0a) throw new Error('PAX record not newline-terminated');
        const eq = rec.indexOf('=');
        records[rec.slice(0, eq)] = rec.slice(eq + 1);
        keys.push(rec.slice(0, eq));
        p += len;
      }
      pending = { records, keys, name: str(h, 0, 100) };
      off = dataStart + padded;
      continue;
    }
    const ustarName = str(h, 0, 100);
    const ustarPrefix = str(h, 345, 155);
    const realSize = pending?.records.size !== undefined ? Number(pending.records.size) : size;
    const m: ParsedMember = {
      name: pending?.records.path ?? (ustarPrefix ? `${ustarPrefix}/${ustarName}` : ustarName),
      ustarName,
      ustarPrefix,
      type,
      mode: octal(h, 100, 8),
      uid: octal(h, 108, 8),
      gid: octal(h, 116, 8),
      uname: str(h, 265, 32),
      gname: str(h, 297, 32),
      mtime: octal(h, 136, 12),
      size: realSize,
      linkname: pending?.records.linkpath ?? str(h, 157, 100),
      magic: h.subarray(257, 265).toString('latin1'),
      devmajor: h.subarray(329, 337).toString('latin1'),
      devminor: h.subarray(337, 345).toString('latin1'),
      data: tar.subarray(dataStart, dataStart + realSize),
      offset: off,
    };
    if (pending) {
      m.pax = pending.records;
      m.paxKeysInOrder = pending.keys;
      m.paxHeaderName = pending.name;
    }
    const realPadded = Math.ceil(realSize / 512) * 512;
    const padding = tar.subarray(dataStart + realSize, dataStart + realPadded);
    if (!padding.every((x) => x === 0)) throw new Error(`non-zero padding after ${m.name}`);
    members.push(m);
    pending = undefined;
    off = dataStart + realPadded;
  }
}

/**
 * A BlobWriter that copies what it is given (so it would notice a producer that reuses a buffer
 * too early) and can resolve writes late. Records how many writes were pending at once.
 */
export function collectingWriter(opts: { delayMs?: () => number; releasesChunks?: boolean } = {}): BlobWriter & { bytes(): Buffer; maxPending: number; closed: boolean; buffersSeen: Set<ArrayBufferLike> } {
  const parts: Buffer[] = [];
  let pending = 0;
  let calls = 0;
  const w = {
    maxPending: 0,
    closed: false,
    releasesChunks: opts.releasesChunks,
    buffersSeen: new Set<ArrayBufferLike>(),
    bytes: () => Buffer.concat(parts),
    async write(chunk: Buffer): Promise<void> {
      const idx = calls++; // order of calls is the order of bytes, whenever each write resolves
      pending++;
      w.maxPending = Math.max(w.maxPending, pending);
      const copy = Buffer.from(chunk);
      w.buffersSeen.add(chunk.buffer);
      const delay = opts.delayMs?.() ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      // Compare at resolution time: if the producer reused the buffer meanwhile, we notice.
      if (!copy.equals(chunk)) throw new Error('producer changed a chunk before its write resolved');
      parts[idx] = copy;
      pending--;
    },
    async close(): Promise<never> {
      w.closed = true;
      throw new Error('writeLayerTar must not close the BlobWriter');
    },
    async abort(): Promise<void> {},
  };
  return w;
}
