import { open, readFile, rm } from 'node:fs/promises';
import { holdTemp, releaseTemp } from '../../util/temp-paths.js';
import { StrataError } from '../../util/errors.js';

const WAIT_MS = 50;
const TIMEOUT_MS = 60_000;

/**
 * Runs `fn` holding an exclusive lock file (created with O_EXCL, holding our pid), so two strata
 * processes adding to one layout cannot lose each other's index.json entries. A lock whose
 * process is gone (killed mid-commit) is taken over; a live one is waited for, then named.
 */
export async function withLock<T>(lockFile: string, what: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      const fh = await open(lockFile, 'wx', 0o644);
      holdTemp(lockFile);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new StrataError(`${what}: cannot create lock ${lockFile}: ${(e as Error).message}`);
      if (await holderGone(lockFile)) {
        await rm(lockFile, { force: true });
        continue;
      }
      if (Date.now() - started > TIMEOUT_MS) throw new StrataError(`${what}: ${lockFile} is held by another strata process; remove it if none is running`);
      await new Promise((r) => setTimeout(r, WAIT_MS));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
    releaseTemp(lockFile);
  }
}

async function holderGone(lockFile: string): Promise<boolean> {
  const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
