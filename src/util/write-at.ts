import { writeSync } from 'node:fs';

/** Writes all of `data` to `fd` at `position`, synchronously: a positional write may be short. */
export function writeAtSync(fd: number, data: Uint8Array, position: number): void {
  for (let done = 0; done < data.length;) done += writeSync(fd, data, done, data.length - done, position + done);
}
