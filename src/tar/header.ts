/**
 * ustar header encoding, written by hand: it is a few dozen byte copies per entry, far cheaper
 * than a general tar library's per-entry streams, and every field is under our control, which
 * is what byte-reproducibility needs (no defaults from the host or the clock).
 *
 * Layout (POSIX ustar): name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8]
 * typeflag[1] linkname[100] magic[6] version[2] uname[32] gname[32] devmajor[8] devminor[8]
 * prefix[155] pad[12].
 *
 * A PAX extended header ('x') is written only when ustar cannot hold the name (even after the
 * prefix/name split), the link target, or the size, or when an archive aligns the member's data
 * (a padding `comment` record). Its own name is a constant and its records are sorted by key, so
 * it leaks nothing (GNU tar would put a pid in the name).
 */
import type { TarEntry } from './entry.js';

export const BLOCK = 512;
/** Two zero blocks end a tar. We write no further record padding: a fixed, minimal trailer. */
export const END_OF_ARCHIVE = 2 * BLOCK;
/** The constant name of every PAX extended header entry. */
export const PAX_HEADER_NAME = '././@PaxHeader';

export const MAX_OCTAL_11 = 0o77777777777; // largest value an 11-digit octal field holds (8 GiB - 1)

export function roundUpBlock(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** What an entry's header needs, computed once and shared by tarSize and the writer. */
export interface HeaderPlan {
  /** Bytes of the name as written: UTF-8, with a trailing '/' for directories. */
  fullName: Buffer;
  /** ustar name and prefix fields when the name fits ustar, else undefined (PAX path). */
  ustarName?: Buffer;
  ustarPrefix?: Buffer;
  linkTarget?: Buffer;
  /** Encoded PAX records (already sorted), or undefined when ustar suffices. */
  pax?: Buffer;
  /** Total header bytes: PAX header + padded PAX data + the ustar header. */
  headerBytes: number;
  /** Data bytes including padding to a block boundary. */
  dataBytes: number;
}

/**
 * Splits a name into ustar prefix/name at a '/', or returns undefined. Of the valid splits the
 * one with the shortest prefix is taken (as GNU tar does); any fixed rule would be reproducible.
 */
function splitUstar(full: Buffer): { name: Buffer; prefix?: Buffer } | undefined {
  const len = full.length;
  if (len <= 100) return { name: full };
  // name part = full[i+1..], must be 1..100 bytes; prefix = full[0..i), at most 155 bytes.
  for (let i = Math.max(0, len - 101); i <= 155 && i < len - 1; i++) {
    if (full[i] === 0x2f /* '/' */) return { prefix: full.subarray(0, i), name: full.subarray(i + 1) };
  }
  return undefined;
}

/** One PAX record: "<len> <key>=<value>\n", where <len> counts the whole record itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = 1 + Buffer.byteLength(key) + 1 + value.length + 1; // ' ' key '=' value '\n'
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

/**
 * Where a member's data must begin: at a multiple of `boundary`, its header starting at `at`.
 * Archive writers align layer blobs to filesystem blocks so that a later build can share their
 * blocks (copy_file_range reflinks block-aligned ranges on XFS and btrfs); see tar-file.ts.
 */
export interface DataAlignment {
  at: number;
  boundary: number;
}

/** The shortest PAX record ("NN comment=\n" is 12 bytes) plus slack for its length's digits. */
const MIN_PAD_RECORD = 16;

/**
 * A PAX `comment` record (POSIX: "ignored by the format-reading utility") whose length makes the
 * PAX data `rest` + it fill whole blocks up to where the aligned data must start. Its text is
 * constant, so the header depends only on the offset, as every other header byte does.
 */
function padRecord(rest: number, a: DataAlignment): Buffer {
  let data = roundUpBlock(rest + MIN_PAD_RECORD);
  // Header = PAX header block + PAX data + the ustar block; the data follows it.
  while ((a.at + 2 * BLOCK + data) % a.boundary !== 0) data += BLOCK;
  const length = data - rest;
  // "<length> comment=<value>\n": the value fills what the record's frame leaves.
  const valueLength = length - String(length).length - ' comment=\n'.length;
  const value = Buffer.alloc(valueLength, ' ');
  value.write(PAD_TEXT.slice(0, valueLength));
  const record = paxRecord('comment', value);
  if (record.length !== length) throw new Error(`internal: padding record is ${record.length} bytes, not ${length}`);
  return record;
}

const PAD_TEXT = 'strata: aligns the next member to a filesystem block';

export function planHeader(entry: TarEntry, align?: DataAlignment): HeaderPlan {
  const fullName = Buffer.from(entry.type === 'directory' ? `${entry.name}/` : entry.name, 'utf8');
  const split = splitUstar(fullName);
  const linkTarget = entry.type === 'symlink' ? Buffer.from(entry.linkTarget ?? '', 'utf8') : undefined;
  const size = entry.type === 'file' ? entry.size : 0;

  // Records in key order: comment < linkpath < path < size.
  const records: Buffer[] = [];
  if (linkTarget !== undefined && linkTarget.length > 100) records.push(paxRecord('linkpath', linkTarget));
  if (split === undefined) records.push(paxRecord('path', fullName));
  if (size > MAX_OCTAL_11) records.push(paxRecord('size', Buffer.from(String(size))));
  if (align) records.unshift(padRecord(records.reduce((n, r) => n + r.length, 0), align));
  const pax = records.length > 0 ? Buffer.concat(records) : undefined;

  const plan: HeaderPlan = {
    fullName,
    headerBytes: BLOCK + (pax ? BLOCK + roundUpBlock(pax.length) : 0),
    dataBytes: roundUpBlock(size),
  };
  if (split) {
    plan.ustarName = split.name;
    if (split.prefix) plan.ustarPrefix = split.prefix;
  }
  if (linkTarget !== undefined) plan.linkTarget = linkTarget;
  if (pax) plan.pax = pax;
  return plan;
}

/** Writes `value` as zero-padded octal of `digits` digits followed by NUL. */
function writeOctal(buf: Buffer, off: number, digits: number, value: number): void {
  const s = value.toString(8);
  // Callers guarantee the value fits; padStart never truncates, so check rather than corrupt.
  if (s.length > digits) throw new Error(`tar: ${value} does not fit ${digits} octal digits`);
  buf.write(s.padStart(digits, '0'), off, digits, 'latin1');
  buf[off + digits] = 0;
}

/** Longest prefix of `b` of at most `max` bytes that does not cut a UTF-8 sequence. */
function utf8Truncate(b: Buffer, max: number): Buffer {
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

/** The ustar fields of one header block; owner and device default to root and 0. */
interface UstarFields {
  name: Buffer;
  prefix?: Buffer;
  mode: number;
  size: number;
  mtime: number;
  type: string;
  link?: Buffer;
  uid?: number;
  gid?: number;
  uname?: Buffer;
  gname?: Buffer;
  devmajor?: number;
  devminor?: number;
}

const ROOT = Buffer.from('root');

function writeUstar(buf: Buffer, off: number, f: UstarFields): void {
  buf.fill(0, off, off + BLOCK);
  f.name.copy(buf, off, 0, Math.min(100, f.name.length));
  writeOctal(buf, off + 100, 7, f.mode);
  writeOctal(buf, off + 108, 7, f.uid ?? 0);
  writeOctal(buf, off + 116, 7, f.gid ?? 0);
  writeOctal(buf, off + 124, 11, f.size);
  writeOctal(buf, off + 136, 11, f.mtime);
  buf.write('        ', off + 148, 8, 'latin1'); // checksum is computed with this field as spaces
  buf.write(f.type, off + 156, 1, 'latin1');
  if (f.link) f.link.copy(buf, off + 157, 0, Math.min(100, f.link.length));
  buf.write('ustar\u000000', off + 257, 8, 'latin1');
  (f.uname ?? ROOT).copy(buf, off + 265, 0, 32);
  (f.gname ?? ROOT).copy(buf, off + 297, 0, 32);
  writeOctal(buf, off + 329, 7, f.devmajor ?? 0);
  writeOctal(buf, off + 337, 7, f.devminor ?? 0);
  if (f.prefix) f.prefix.copy(buf, off + 345, 0, Math.min(155, f.prefix.length));
  let sum = 0;
  for (let i = off; i < off + BLOCK; i++) sum += buf[i]!;
  writeOctal(buf, off + 148, 6, sum);
  buf[off + 155] = 0x20; // "nnnnnn\0 ": the traditional checksum terminator
}

const TYPEFLAG = { file: '0', directory: '5', symlink: '2' } as const;

/**
 * Writes the header bytes of `entry` (PAX header + its padded data when needed, then the ustar
 * header) at `buf[off..off+plan.headerBytes)`. `mtime` is already validated by the caller.
 */
export function encodeHeader(entry: TarEntry, plan: HeaderPlan, mtime: number, buf: Buffer, off: number): void {
  const size = entry.type === 'file' ? entry.size : 0;
  if (plan.pax) {
    writeUstar(buf, off, { name: Buffer.from(PAX_HEADER_NAME), mode: 0o644, size: plan.pax.length, mtime, type: 'x' });
    off += BLOCK;
    const padded = roundUpBlock(plan.pax.length);
    plan.pax.copy(buf, off);
    buf.fill(0, off + plan.pax.length, off + padded);
    off += padded;
  }
  // When PAX carries the path, the ustar name holds a truncated stand-in for old readers;
  // it is derived from the name alone, so it is as reproducible as the rest.
  const name = plan.ustarName ?? utf8Truncate(plan.fullName, 100);
  const link = plan.linkTarget === undefined ? undefined : utf8Truncate(plan.linkTarget, 100);
  writeUstar(buf, off, {
    name,
    ...(plan.ustarPrefix ? { prefix: plan.ustarPrefix } : {}),
    mode: entry.mode & 0o7777,
    size: size > MAX_OCTAL_11 ? 0 : size,
    mtime,
    type: TYPEFLAG[entry.type],
    ...(link ? { link } : {}),
    ...(entry.owner ? { uid: entry.owner.uid, gid: entry.owner.gid, uname: Buffer.from(entry.owner.uname), gname: Buffer.from(entry.owner.gname) } : {}),
  });
}

/**
 * Every field of a member carried over from another tar (a layer imported at a path, or
 * squashed): owner, times, devices and PAX records are kept as they came.
 */
export interface HeaderFields {
  /** Normalised name: no leading '/' or './', no trailing '/'. */
  name: string;
  /** ustar typeflag: '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' directory, '6' fifo. */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  /** Body bytes (files only). */
  size: number;
  linkname?: string;
  devmajor: number;
  devminor: number;
  /** PAX records to carry (xattrs and the like); path, linkpath and size are derived, not taken from here. */
  pax?: ReadonlyMap<string, Buffer>;
}

const MAX_OCTAL_7 = 0o7777777;

/**
 * The header bytes of a carried-over member: a PAX header when a field does not fit ustar or
 * records are carried (records sorted by key, under the constant name), then the ustar block.
 */
export function encodeFields(h: HeaderFields): Buffer {
  const fullName = Buffer.from(h.typeflag === '5' ? `${h.name}/` : h.name, 'utf8');
  const split = splitUstar(fullName);
  const link = h.linkname !== undefined && h.linkname !== '' ? Buffer.from(h.linkname, 'utf8') : undefined;
  const uname = Buffer.from(h.uname, 'utf8');
  const gname = Buffer.from(h.gname, 'utf8');
  const records = new Map<string, Buffer>(h.pax ?? []);
  for (const k of ['path', 'linkpath', 'size']) records.delete(k);
  if (split === undefined) records.set('path', fullName);
  if (link !== undefined && link.length > 100) records.set('linkpath', link);
  if (h.size > MAX_OCTAL_11) records.set('size', Buffer.from(String(h.size)));
  const fits7 = (n: number) => Number.isSafeInteger(n) && n >= 0 && n <= MAX_OCTAL_7;
  if (!fits7(h.uid)) records.set('uid', Buffer.from(String(h.uid)));
  if (!fits7(h.gid)) records.set('gid', Buffer.from(String(h.gid)));
  if (uname.length > 32) records.set('uname', uname);
  if (gname.length > 32) records.set('gname', gname);
  const mtimeFits = Number.isSafeInteger(h.mtime) && h.mtime >= 0 && h.mtime <= MAX_OCTAL_11;
  if (!mtimeFits) records.set('mtime', Buffer.from(String(h.mtime)));
  const keys = [...records.keys()].sort();
  const pax = keys.length > 0 ? Buffer.concat(keys.map((k) => paxRecord(k, records.get(k)!))) : undefined;

  const out = Buffer.alloc(BLOCK + (pax ? BLOCK + roundUpBlock(pax.length) : 0));
  let off = 0;
  if (pax) {
    writeUstar(out, 0, { name: Buffer.from(PAX_HEADER_NAME), mode: 0o644, size: pax.length, mtime: mtimeFits ? h.mtime : 0, type: 'x' });
    pax.copy(out, BLOCK);
    off = BLOCK + roundUpBlock(pax.length);
  }
  writeUstar(out, off, {
    name: split?.name ?? utf8Truncate(fullName, 100),
    ...(split?.prefix ? { prefix: split.prefix } : {}),
    mode: h.mode & 0o7777,
    size: h.size > MAX_OCTAL_11 ? 0 : h.size,
    mtime: mtimeFits ? h.mtime : 0,
    type: h.typeflag,
    ...(link ? { link: utf8Truncate(link, 100) } : {}),
    uid: fits7(h.uid) ? h.uid : 0,
    gid: fits7(h.gid) ? h.gid : 0,
    uname: utf8Truncate(uname, 32),
    gname: utf8Truncate(gname, 32),
    devmajor: fits7(h.devmajor) ? h.devmajor : 0,
    devminor: fits7(h.devminor) ? h.devminor : 0,
  });
  return out;
}
