import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { StrataError } from '../util/errors.js';

/**
 * Reading tar archives without extracting them. Base images can be several GB, so the outer
 * archive is indexed by reading its 512-byte headers only and seeking over member bodies;
 * a member is later streamed straight from its byte range. Layer tars (inside a blob, possibly
 * gzipped, so not seekable) are scanned as a stream by `scanTarStream`, with bodies skipped.
 */

export type MemberType = 'file' | 'hardlink' | 'symlink' | 'directory' | 'other';

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

const BLOCK = 512;
const WINDOW = 64 << 10;

/** A decoded header block, before PAX/GNU long-name overrides are applied. */
interface RawHeader {
  name: string;
  size: number;
  typeflag: string;
  linkname: string;
}

function readString(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

/** Numeric header fields are octal text, or big-endian base-256 when the top bit is set (GNU, for sizes >= 8 GiB). */
function readNumber(buf: Buffer, start: number, len: number): number {
  if (buf[start]! & 0x80) {
    let n = buf[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) n = n * 256 + buf[i]!;
    return n;
  }
  const s = readString(buf, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`bad octal field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function isZeroBlock(buf: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Decodes one header block; `where` names the position for errors. Returns undefined for a zero block. */
function decodeHeader(buf: Buffer, where: string): RawHeader | undefined {
  if (isZeroBlock(buf)) return undefined;
  // The checksum treats its own 8 bytes as spaces. Some old writers summed signed bytes: accept both.
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : buf[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  let stored: number;
  try {
    stored = readNumber(buf, 148, 8);
  } catch {
    stored = -1;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new StrataError(`${where}: not a tar header (bad checksum) — the archive is corrupt or not a tar file`);
  }
  let name = readString(buf, 0, 100);
  const magic = buf.toString('latin1', 257, 263);
  // ustar (POSIX, "ustar\0") keeps a path prefix; GNU ("ustar  ") uses those bytes for other fields.
  if (magic === 'ustar\u0000') {
    const prefix = readString(buf, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  let size: number;
  try {
    size = readNumber(buf, 124, 12);
  } catch (e) {
    throw new StrataError(`${where}: member ${JSON.stringify(name)} has a bad size field (${(e as Error).message})`);
  }
  const typeflag = buf.toString('latin1', 156, 157);
  return { name, size, typeflag, linkname: readString(buf, 157, 100) };
}

/** Parses a PAX extended header body into its records ("<len> <key>=<value>\n"). */
function parsePax(body: Buffer, where: string): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break;
    const space = body.indexOf(0x20, pos);
    const len = space === -1 ? NaN : parseInt(body.toString('latin1', pos, space), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > body.length) {
      throw new StrataError(`${where}: malformed PAX extended header`);
    }
    const record = body.toString('utf8', space + 1, pos + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

function typeOf(flag: string): MemberType {
  switch (flag) {
    case '0': case '\u0000': case '7': case '': return 'file';
    case '1': return 'hardlink';
    case '2': return 'symlink';
    case '5': return 'directory';
    default: return 'other';
  }
}

/** Strips `./` and `/` prefixes and trailing slashes; member names compare in this form. */
export function normalizeMemberName(name: string): string {
  let n = name;
  for (;;) {
    if (n.startsWith('./')) n = n.slice(2);
    else if (n.startsWith('/')) n = n.slice(1);
    else break;
  }
  while (n.endsWith('/')) n = n.slice(0, -1);
  return n === '.' ? '' : n;
}

/** Links, directories and devices carry no body whatever their size field says (as Go's archive/tar reads them). */
function storedBodySize(h: RawHeader): number {
  return '123456'.includes(h.typeflag) && h.typeflag !== '' ? 0 : h.size;
}

function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/**
 * Header bookkeeping shared by the file indexer and the stream scanner: PAX 'x'/'g' records and
 * GNU 'L'/'K' long names apply to the next real member.
 */
class HeaderState {
  private pax = new Map<string, string>();
  private longName: string | undefined;
  private longLink: string | undefined;

  /** Whether this header is metadata for the next one (its body must be read and fed to `absorb`). */
  static isMeta(flag: string): boolean {
    return flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K';
  }

  absorb(flag: string, body: Buffer, where: string): void {
    switch (flag) {
      case 'x': for (const [k, v] of parsePax(body, where)) this.pax.set(k, v); break;
      // Global records ('g', e.g. git archive's commit comment) are not applied, as Go's
      // archive/tar (what docker and skopeo read with) does not apply them either.
      case 'g': parsePax(body, where); break;
      case 'L': this.longName = readString(body, 0, body.length); break;
      case 'K': this.longLink = readString(body, 0, body.length); break;
    }
  }

  /** Applies pending overrides to a real member header and clears the per-member ones. */
  finish(h: RawHeader, where: string): RawHeader {
    const get = (k: string): string | undefined => this.pax.get(k);
    const name = get('path') ?? this.longName ?? h.name;
    const linkname = get('linkpath') ?? this.longLink ?? h.linkname;
    let size = h.size;
    const paxSize = get('size');
    if (paxSize !== undefined) {
      if (!/^\d+$/.test(paxSize)) throw new StrataError(`${where}: member ${JSON.stringify(name)} has a bad PAX size`);
      size = Number(paxSize);
    }
    this.pax = new Map();
    this.longName = undefined;
    this.longLink = undefined;
    return { name, size, typeflag: h.typeflag, linkname };
  }
}

/** Metadata bodies (PAX, GNU long names) are small; refuse absurd ones instead of allocating them. */
const MAX_META = 1 << 20;

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
export async function readMember(index: TarIndex, m: TarMember, limit = 64 << 20): Promise<Buffer> {
  if (m.size > limit) throw new StrataError(`${index.file}: member ${JSON.stringify(m.name)} is ${m.size} bytes, too large for metadata`);
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

/** One member as seen by `scanTarStream`. */
export interface ScannedEntry {
  readonly name: string;
  readonly type: MemberType;
  readonly size: number;
  readonly linkname?: string;
}

/**
 * Walks a tar stream's headers, skipping bodies, calling `onEntry` for every real member.
 * Reads the stream to its end (so a verifying source stream gets to check its digests), and
 * throws a StrataError naming `what` on a truncated or corrupt tar.
 */
export async function scanTarStream(input: AsyncIterable<Buffer>, what: string, onEntry: (e: ScannedEntry) => void): Promise<void> {
  const state = new HeaderState();
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let offset = 0; // stream offset of the first pending byte
  let skip = 0; // bytes still to discard (body + padding)
  let meta: { flag: string; size: number } | undefined; // a metadata body we must collect
  let ended = false;

  const take = (n: number): Buffer => {
    const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    pending = rest.length > 0 ? [rest] : [];
    pendingLen = rest.length;
    offset += n;
    return out;
  };

  for await (const chunk of input) {
    let c = chunk;
    if (ended) continue; // drain the rest (trailing zero blocks, padding) for verification
    if (skip > 0) {
      const s = Math.min(skip, c.length);
      skip -= s;
      offset += s;
      c = c.subarray(s);
      if (c.length === 0) continue;
    }
    pending.push(c);
    pendingLen += c.length;
    for (;;) {
      if (skip > 0) {
        const s = Math.min(skip, pendingLen);
        take(s);
        skip -= s;
        if (skip > 0) break;
      }
      if (meta !== undefined) {
        const need = paddedSize(meta.size);
        if (pendingLen < need) break;
        const body = take(need).subarray(0, meta.size);
        state.absorb(meta.flag, Buffer.from(body), `${what} at byte ${offset - need}`);
        meta = undefined;
        continue;
      }
      if (pendingLen < BLOCK) break;
      const where = `${what} at byte ${offset}`;
      const raw = decodeHeader(take(BLOCK), where);
      if (raw === undefined) {
        ended = true;
        break;
      }
      if (HeaderState.isMeta(raw.typeflag)) {
        if (raw.size > MAX_META) throw new StrataError(`${where}: extended header of ${raw.size} bytes is too large`);
        meta = { flag: raw.typeflag, size: raw.size };
        continue;
      }
      const h = state.finish(raw, where);
      const type = typeOf(h.typeflag);
      onEntry({ name: h.name, type, size: h.size, ...(type === 'symlink' || type === 'hardlink' ? { linkname: h.linkname } : {}) });
      skip = paddedSize(storedBodySize(h));
    }
  }
  if (!ended) throw new StrataError(`${what}: truncated tar stream (ends at byte ${offset + pendingLen} without the end-of-archive marker)`);
}
