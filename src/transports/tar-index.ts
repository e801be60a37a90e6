import { open, type FileHandle } from 'node:fs/promises';
import { MAX_METADATA_BYTES, metadataTooLarge } from '../image/limits.js';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { StrataError } from '../util/errors.js';
import { BLOCK } from '../tar/header.js';
import { decodeHeader, HeaderState, MAX_META, normalizeMemberName, paddedSize, storedBodySize, typeOf, type MemberType } from '../tar/read.js';

export { normalizeMemberName, type MemberType };

/**
 * Reading tar archives without extracting them. Base images can be several GB, so the outer
 * archive is indexed by reading its 512-byte headers only and seeking over member bodies;
 * a member is later streamed straight from its byte range. Layer tars (inside a blob, possibly
 * gzipped, so not seekable) are read as streams by src/tar/read-stream.ts.
 */

export interface TarMember {
  /** Normalised name: no leading `./` or `/`, no trailing `/`. */
  readonly name: string;
  readonly type: MemberType;
  /** Byte offset of the member body in the archive file. */
  readonly offset: number;
  readonly size: number;
  /** Target of a symlink or hardlink, as stored. */
  readonly linkname?: string;
}

export interface TarIndex {
  readonly file: string;
  /** Members by normalised name; when a name repeats, the last one wins (as extraction would). */
  readonly members: ReadonlyMap<string, TarMember>;
}

const WINDOW = 64 << 10;

/**
 * Indexes a tar file by reading headers and seeking over bodies. Throws a StrataError naming the
 * file on a truncated or corrupt archive, and on member names with `..` components.
 */
export async function indexTarFile(file: string): Promise<TarIndex> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new StrataError(`cannot open ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const fileSize = (await fh.stat()).size;
    const members = new Map<string, TarMember>();
    const state = new HeaderState();
    // A read-ahead window: archives of many small members cost one read per window instead of
    // one per header, while a large body is skipped by moving the window past it (a seek).
    const window = Buffer.alloc(WINDOW);
    let winStart = 0;
    let winLen = 0;
    const readAt = async (at: number, len: number): Promise<Buffer> => {
      if (at < winStart || at + len > winStart + winLen) {
        const want = Math.max(len, WINDOW);
        const buf = want === WINDOW ? window : Buffer.alloc(want);
        const { bytesRead } = await fh.read(buf, 0, want, at);
        if (buf !== window) return buf.subarray(0, Math.min(bytesRead, len));
        winStart = at;
        winLen = bytesRead;
      }
      const off = at - winStart;
      return window.subarray(off, Math.min(off + len, winLen));
    };
    let pos = 0;
    for (;;) {
      const where = `${file} at byte ${pos}`;
      const block = await readAt(pos, BLOCK);
      const bytesRead = block.length;
      if (bytesRead === 0) {
        throw new StrataError(`${file}: truncated tar archive (ends at byte ${pos} without the end-of-archive marker)`);
      }
      if (bytesRead < BLOCK) throw new StrataError(`${file}: truncated tar archive (partial header at byte ${pos})`);
      const raw = decodeHeader(block, where);
      if (raw === undefined) {
        // The end marker is two zero blocks; a lone zero block followed by EOF is common enough
        // (some writers stop there) and still proves the archive was not cut mid-member.
        break;
      }
      const bodyStart = pos + BLOCK;
      const isMeta = HeaderState.isMeta(raw.typeflag);
      const h = isMeta ? raw : state.finish(raw, where);
      const bodySize = isMeta ? raw.size : storedBodySize(h);
      if (bodyStart + bodySize > fileSize) {
        throw new StrataError(`${file}: truncated tar archive (member ${JSON.stringify(h.name)} needs ${bodySize} bytes at byte ${bodyStart}, file has ${fileSize})`);
      }
      pos = bodyStart + paddedSize(bodySize);
      if (isMeta) {
        if (raw.size > MAX_META) throw new StrataError(`${where}: extended header of ${raw.size} bytes is too large`);
        state.absorb(raw.typeflag, Buffer.from(await readAt(bodyStart, raw.size)), where);
        continue;
      }
      const name = normalizeMemberName(h.name);
      if (name.split('/').includes('..')) {
        throw new StrataError(`${file}: member ${JSON.stringify(h.name)} has a '..' component`);
      }
      const type = typeOf(h.typeflag);
      // GNU tar writes a file named twice as a hardlink to itself; the first copy is the content.
      if (type === 'hardlink' && normalizeMemberName(h.linkname) === name && members.has(name)) continue;
      members.set(name, {
        name,
        type,
        offset: bodyStart,
        size: type === 'file' ? h.size : 0,
        ...(type === 'symlink' || type === 'hardlink' ? { linkname: h.linkname } : {}),
      });
    }
    return { file, members };
  } finally {
    await fh.close();
  }
}

/** Joins an archive-relative directory and a relative path, returning undefined if `..` leaves the archive. */
function resolveWithin(dir: string, rel: string): string | undefined {
  const parts = dir === '' ? [] : dir.split('/');
  for (const p of rel.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else {
      parts.push(p);
    }
  }
  return parts.join('/');
}

/**
 * Finds the regular file a name refers to, following one symlink (relative, within the archive)
 * or a hardlink (named from the archive root). `what` says who asked, for errors.
 */
export function resolveMember(index: TarIndex, name: string, what: string): TarMember {
  const key = normalizeMemberName(name);
  const m = index.members.get(key);
  if (m === undefined) throw new StrataError(`${index.file}: ${what} names ${JSON.stringify(name)}, which is not in the archive`);
  if (m.type === 'file') return m;
  let targetName: string | undefined;
  if (m.type === 'symlink') {
    const link = m.linkname ?? '';
    if (link.startsWith('/')) {
      throw new StrataError(`${index.file}: ${what}: member ${JSON.stringify(key)} is a symlink to the absolute path ${JSON.stringify(link)}, outside the archive`);
    }
    const slash = key.lastIndexOf('/');
    targetName = resolveWithin(slash === -1 ? '' : key.slice(0, slash), link);
    if (targetName === undefined) {
      throw new StrataError(`${index.file}: ${what}: member ${JSON.stringify(key)} is a symlink to ${JSON.stringify(link)}, which escapes the archive`);
    }
  } else if (m.type === 'hardlink') {
    targetName = resolveWithin('', m.linkname ?? '');
    if (targetName === undefined) {
      throw new StrataError(`${index.file}: ${what}: member ${JSON.stringify(key)} is a hardlink to ${JSON.stringify(m.linkname)}, which escapes the archive`);
    }
  } else {
    throw new StrataError(`${index.file}: ${what}: member ${JSON.stringify(key)} is a ${m.type}, not a regular file`);
  }
  const t = index.members.get(targetName);
  if (t === undefined) {
    throw new StrataError(`${index.file}: ${what}: member ${JSON.stringify(key)} links to ${JSON.stringify(targetName)}, which is not in the archive`);
  }
  if (t.type !== 'file') {
    throw new StrataError(`${index.file}: ${what}: member ${JSON.stringify(key)} links to ${JSON.stringify(targetName)}, which is a ${t.type} (only one level of links is followed)`);
  }
  return t;
}

/** Streams a member's body straight from the archive file. */
export function openMember(index: TarIndex, m: TarMember): Readable {
  if (m.size === 0) return Readable.from([]);
  return createReadStream(index.file, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
}

/** Reads a small member (a config, a manifest) whole. */
export async function readMember(index: TarIndex, m: TarMember, limit = MAX_METADATA_BYTES): Promise<Buffer> {
  if (m.size > limit) throw metadataTooLarge(`${index.file}: member ${JSON.stringify(m.name)}`, m.size, limit);
  const fh = await open(index.file, 'r');
  try {
    const buf = Buffer.alloc(m.size);
    const { bytesRead } = await fh.read(buf, 0, m.size, m.offset);
    if (bytesRead !== m.size) throw new StrataError(`${index.file}: member ${JSON.stringify(m.name)} is truncated`);
    return buf;
  } finally {
    await fh.close();
  }
}

/** Reads the first `n` bytes of a member (for magic-number sniffing). */
export async function readMemberHead(index: TarIndex, m: TarMember, n: number): Promise<Buffer> {
  const fh = await open(index.file, 'r');
  try {
    const len = Math.min(n, m.size);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, m.offset);
    return buf;
  } finally {
    await fh.close();
  }
}
