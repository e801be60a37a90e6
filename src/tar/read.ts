/**
 * Decoding tar headers: the one reader of ustar, GNU and PAX headers, shared by the archive
 * indexer (transports/tar-index.ts, which seeks over bodies in a file) and the stream reader
 * (read-stream.ts, which reads layer tars as they arrive).
 */
import { StrataError } from '../util/errors.js';
import { BLOCK } from './header.js';

export type MemberType = 'file' | 'hardlink' | 'symlink' | 'directory' | 'char' | 'block' | 'fifo' | 'other';

/** A decoded header block, before PAX/GNU long-name overrides are applied. */
export interface RawHeader {
  name: string;
  size: number;
  typeflag: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** PAX records other than the ones applied to the fields above, raw, in the order they came. */
  pax?: ReadonlyMap<string, Buffer>;
}

export function readString(buf: Buffer, start: number, len: number): string {
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
export function decodeHeader(buf: Buffer, where: string): RawHeader | undefined {
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
  const field = (label: string, start: number, len: number): number => {
    try {
      return readNumber(buf, start, len);
    } catch (e) {
      throw new StrataError(`${where}: member ${JSON.stringify(name)} has a bad ${label} field (${(e as Error).message})`);
    }
  };
  const hasUstarFields = magic.startsWith('ustar');
  return {
    name,
    size: field('size', 124, 12),
    typeflag: buf.toString('latin1', 156, 157),
    linkname: readString(buf, 157, 100),
    mode: field('mode', 100, 8) & 0o7777,
    uid: field('uid', 108, 8),
    gid: field('gid', 116, 8),
    mtime: field('mtime', 136, 12),
    uname: hasUstarFields ? readString(buf, 265, 32) : '',
    gname: hasUstarFields ? readString(buf, 297, 32) : '',
    devmajor: hasUstarFields ? field('devmajor', 329, 8) : 0,
    devminor: hasUstarFields ? field('devminor', 337, 8) : 0,
  };
}

/** Parses a PAX extended header body into its records ("<len> <key>=<value>\n"), values raw. */
function parsePax(body: Buffer, where: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break;
    const space = body.indexOf(0x20, pos);
    const len = space === -1 ? NaN : parseInt(body.toString('latin1', pos, space), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > body.length || space >= pos + len) {
      throw new StrataError(`${where}: malformed PAX extended header`);
    }
    const record = body.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d /* '=' */);
    if (eq > 0) out.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

export function typeOf(flag: string): MemberType {
  switch (flag) {
    case '0': case '\u0000': case '7': case '': return 'file';
    case '1': return 'hardlink';
    case '2': return 'symlink';
    case '3': return 'char';
    case '4': return 'block';
    case '5': return 'directory';
    case '6': return 'fifo';
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

/**
 * A member name normalised, refused when it has a `..` component or a NUL: such a name points
 * outside the place the layer is unpacked at (moby CVE-2014-6407/9356).
 */
export function checkMemberName(name: string, what: string, field = 'member'): string {
  const n = normalizeMemberName(name);
  if (n.split('/').includes('..') || n.includes('\0')) {
    throw new StrataError(`${what}: ${field} ${JSON.stringify(name)} has a '..' component: it would escape the image path it is placed at`);
  }
  return n;
}

/** Links, directories and devices carry no body whatever their size field says (as Go's archive/tar reads them). */
export function storedBodySize(h: RawHeader): number {
  return '123456'.includes(h.typeflag) && h.typeflag !== '' ? 0 : h.size;
}

export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** Metadata bodies (PAX, GNU long names) are small; refuse absurd ones instead of allocating them. */
export const MAX_META = 1 << 20;

/** PAX keys that override a header field; every other record is carried in `RawHeader.pax`. */
const APPLIED = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime']);

/**
 * Header bookkeeping shared by the file indexer and the stream reader: PAX 'x'/'g' records and
 * GNU 'L'/'K' long names apply to the next real member.
 */
export class HeaderState {
  private pax = new Map<string, Buffer>();
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
    const text = (k: string): string | undefined => this.pax.get(k)?.toString('utf8');
    const name = text('path') ?? this.longName ?? h.name;
    const whole = (k: string, fallback: number): number => {
      const v = text(k);
      if (v === undefined) return fallback;
      if (!/^\d+$/.test(v)) throw new StrataError(`${where}: member ${JSON.stringify(name)} has a bad PAX ${k}`);
      return Number(v);
    };
    const mtime = text('mtime');
    const rest = new Map([...this.pax].filter(([k]) => !APPLIED.has(k)));
    const out: RawHeader = {
      ...h,
      name,
      linkname: text('linkpath') ?? this.longLink ?? h.linkname,
      size: whole('size', h.size),
      uid: whole('uid', h.uid),
      gid: whole('gid', h.gid),
      uname: text('uname') ?? h.uname,
      gname: text('gname') ?? h.gname,
      // Sub-second PAX times keep their whole seconds; strata writes whole seconds only.
      mtime: mtime !== undefined && /^-?\d+(\.\d+)?$/.test(mtime) ? Math.trunc(Number(mtime)) : h.mtime,
      ...(rest.size > 0 ? { pax: rest } : {}),
    };
    this.pax = new Map();
    this.longName = undefined;
    this.longLink = undefined;
    return out;
  }
}
