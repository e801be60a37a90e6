import { StrataError } from '../../util/errors.js';

/**
 * ustar headers for the members of an image archive (manifest.json, `<v1id>/layer.tar`,
 * `blobs/sha256/<hex>`): short ASCII names we choose ourselves, so no PAX is ever needed.
 * Sizes past ustar's 8 GiB octal limit use the base-256 form Go's archive/tar (docker,
 * containers/image) reads.
 */
export interface OuterMember {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  size: number;
  mode: number;
  mtime: number;
  linkTarget?: string;
}

const TYPEFLAG = { file: '0', directory: '5', symlink: '2' } as const;

export function encodeOuterHeader(m: OuterMember): Buffer {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(m.name) > 100) throw new StrataError(`internal: archive member name too long: ${m.name}`);
  h.write(m.name, 0, 100, 'utf8');
  octal(h, 100, 8, m.mode);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  if (m.size < 0o77777777777) octal(h, 124, 12, m.size);
  else base256(h, 124, 12, m.size);
  octal(h, 136, 12, m.mtime);
  h.write(TYPEFLAG[m.type], 156, 1, 'ascii');
  if (m.linkTarget) h.write(m.linkTarget, 157, 100, 'utf8');
  h.write('ustar\u000000', 257, 8, 'ascii');
  h.write('root', 265, 32, 'ascii');
  h.write('root', 297, 32, 'ascii');
  octal(h, 329, 8, 0);
  octal(h, 337, 8, 0);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'ascii');
  return h;
}

function octal(h: Buffer, offset: number, width: number, value: number): void {
  h.write(value.toString(8).padStart(width - 1, '0') + '\u0000', offset, width, 'ascii');
}

function base256(h: Buffer, offset: number, width: number, value: number): void {
  let v = BigInt(value);
  for (let i = offset + width - 1; i > offset; i--) {
    h[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  h[offset] = 0x80;
}
