/**
 * Copies in the kernel: `copy_file_range(2)` through a small native helper (src/native), so
 * unchanged bytes move page cache to page cache — or share extents, on filesystems that reflink —
 * without passing through JavaScript. The helper is built at `npm ci` where a compiler is
 * available; where it is not, or the two files cannot be copied between (another filesystem, a
 * kernel without the call), `copyRangeSync` says so and the caller copies through user space.
 * STRATA_NO_KERNEL_COPY=1 turns it off (tests compare both ways).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

type CopyRange = (fdIn: number, offIn: number, fdOut: number, offOut: number, length: number) => number;

let helper: CopyRange | null | undefined;

function load(): CopyRange | null {
  if (process.env.STRATA_NO_KERNEL_COPY === '1' || process.platform !== 'linux') return null;
  // dist/src/util → the package root → src/native/build/Release (where node-gyp put it).
  const path = fileURLToPath(new URL('../../../src/native/build/Release/copy_range.node', import.meta.url));
  try {
    return (createRequire(import.meta.url)(path) as { copyRange: CopyRange }).copyRange;
  } catch {
    return null;
  }
}

/** Whether kernel copies are available at all in this process. */
export function kernelCopyAvailable(): boolean {
  return (helper ??= load()) !== null;
}

/**
 * Copies `length` bytes of `fdIn` at `offIn` to `fdOut` at `offOut` in the kernel. Returns false,
 * having copied nothing, when it cannot (no helper, or the kernel refuses this pair of files);
 * throws on a real I/O error or a source shorter than asked.
 */
export function copyRangeSync(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): boolean {
  const copy = (helper ??= load());
  if (copy === null) return false;
  if (length === 0) return true;
  const n = copy(fdIn, offIn, fdOut, offOut, length);
  if (n < 0) return false;
  if (n !== length) throw new Error(`copy_file_range: copied ${n} of ${length} bytes (the source is shorter)`);
  return true;
}
