/**
 * Tar members made from values rather than read from disk or another tar: the directories a
 * rewrite places layers under, and small metadata files (an image store's JSON, its link files).
 * Every one is owned by root and takes the mtime it is given, so its bytes depend on nothing else.
 */
import { BLOCK, encodeFields, roundUpBlock, type HeaderFields } from './header.js';

const ROOT = { uid: 0, gid: 0, uname: 'root', gname: 'root', devmajor: 0, devminor: 0 } as const;

export function directoryFields(name: string, mtime: number, mode = 0o755): HeaderFields {
  return { ...ROOT, name, typeflag: '5', mode, mtime, size: 0 };
}

export function directoryMember(name: string, mtime: number, mode = 0o755): Buffer {
  return encodeFields(directoryFields(name, mtime, mode));
}

/** A regular file's header and body, padded to the block. */
export function fileMember(name: string, body: Buffer, mtime: number, mode = 0o644): Buffer {
  const header = encodeFields({ ...ROOT, name, typeflag: '0', mode, mtime, size: body.length });
  const out = Buffer.alloc(header.length + roundUpBlock(body.length));
  header.copy(out, 0);
  body.copy(out, header.length);
  return out;
}

export function symlinkMember(name: string, target: string, mtime: number): Buffer {
  return encodeFields({ ...ROOT, name, typeflag: '2', mode: 0o777, mtime, size: 0, linkname: target });
}

export { BLOCK };
