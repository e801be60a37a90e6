import { posix } from 'node:path';
import { StrataError } from '../util/errors.js';

/**
 * An absolute path inside the image (`/opt/tool`) as the tar name it is written under
 * (`opt/tool`), for every flag that names one (--add, --symlink, --remove, an import's DEST).
 * Relative paths, `..` components and NUL are refused, naming `flag`; the root (`/`, name '')
 * only where `allowRoot` says it is a place (an image imported at `/`), not a file to replace.
 */
export function imagePath(p: string, flag: string, opts: { allowRoot?: boolean } = {}): string {
  if (!p.startsWith('/')) throw new StrataError(`${flag}: ${JSON.stringify(p)} is not an absolute image path`);
  if (p.split('/').includes('..')) throw new StrataError(`${flag}: ${JSON.stringify(p)}: '..' is not allowed in image paths`);
  if (p.includes('\0')) throw new StrataError(`${flag}: ${JSON.stringify(p)}: NUL is not allowed in image paths`);
  const name = posix.normalize(p).replace(/^\/+/, '').replace(/\/+$/, '');
  const root = name === '' || name === '.';
  if (root && !opts.allowRoot) throw new StrataError(`${flag}: ${JSON.stringify(p)}: cannot target the image root`);
  return root ? '' : name;
}
