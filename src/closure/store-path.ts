import { StrataError } from '../util/errors.js';

/** Characters Nix accepts in a store path name (libstore `checkName`). */
const NAME_CHAR = /^[A-Za-z0-9+\-._?=]$/;

export const DEFAULT_STORE_DIR = '/nix/store';

/**
 * Checks a store directory is an absolute, canonical path: every store path is checked against it
 * by plain string prefix, so `/nix//store` or `/nix/store/` would make every path look foreign.
 */
export function checkStoreDir(storeDir: unknown, source: string): string {
  if (typeof storeDir !== 'string') throw new StrataError(`${source}: storeDir must be a string, got ${JSON.stringify(storeDir)}`);
  const bad =
    !storeDir.startsWith('/') ||
    storeDir === '/' ||
    storeDir.endsWith('/') ||
    storeDir.includes('\0') ||
    storeDir.split('/').slice(1).some((c) => c === '' || c === '.' || c === '..');
  if (bad) throw new StrataError(`${source}: store directory ${JSON.stringify(storeDir)} is not an absolute canonical path (like /nix/store)`);
  return storeDir;
}

/**
 * Checks that `path` names a store object directly inside `storeDir` and that its name is one Nix
 * could have produced. A path that fails would either escape the store inside the image (`..`) or
 * never have come out of Nix, so the input is wrong, not merely unusual.
 */
export function checkStorePath(path: unknown, storeDir: string, source: string): string {
  if (typeof path !== 'string') throw new StrataError(`${source}: store path must be a string, got ${JSON.stringify(path)}`);
  const shown = JSON.stringify(path);
  const prefix = storeDir + '/';
  if (!path.startsWith(prefix)) throw new StrataError(`${source}: store path ${shown} is not inside the store directory ${storeDir}`);
  const name = path.slice(prefix.length);
  if (name.includes('/')) {
    const parts = name.split('/');
    if (parts.includes('..')) throw new StrataError(`${source}: store path ${shown} contains a '..' component`);
    if (parts.includes('.')) throw new StrataError(`${source}: store path ${shown} contains a '/./' component`);
    throw new StrataError(`${source}: store path ${shown} is not directly inside the store directory ${storeDir}`);
  }
  if (name === '') throw new StrataError(`${source}: store path ${shown} has an empty name`);
  if (name === '..') throw new StrataError(`${source}: store path ${shown} contains a '..' component`);
  if (name.startsWith('.')) throw new StrataError(`${source}: store path ${shown} has a name starting with '.', which Nix never allows`);
  for (const ch of name) {
    if (!NAME_CHAR.test(ch)) {
      throw new StrataError(`${source}: store path ${shown} contains the character ${JSON.stringify(ch)}, which Nix never allows in store path names (allowed: A-Z a-z 0-9 + - . _ ? =)`);
    }
  }
  return path;
}
