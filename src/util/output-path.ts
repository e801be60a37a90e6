import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StrataError } from './errors.js';

/**
 * Outputs are written under a temporary name beside their final path, so a missing parent
 * directory would surface as ENOENT on a name the user never gave: name the user's path instead.
 */
export async function requireParent(path: string): Promise<void> {
  const parent = dirname(path);
  const st = await stat(parent).catch(() => undefined);
  if (!st) throw new StrataError(`output ${path}: parent directory ${parent} does not exist`);
  if (!st.isDirectory()) throw new StrataError(`output ${path}: ${parent} is not a directory`);
}

/**
 * A fresh temporary name beside `finalPath` (`.NAME.strata-<random>.tmp` in the same directory):
 * on the same filesystem, so the finished file is renamed into place in one step, and hidden.
 */
export function tempBeside(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.strata-${randomBytes(6).toString('hex')}.tmp`);
}

const TEMP_NAME = /^\..+\.strata-[0-9a-f]{12}\.tmp$/;

/** Whether a directory entry is a name tempBeside gives (another strata's file being written). */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}
