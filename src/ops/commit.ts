import { isIndex, type Image, type ImageIndex } from '../image/image.js';
import type { ImageDestination } from '../transports/types.js';

/** Commits a root to a destination, aborting it (which removes what it wrote) on any failure. */
export async function commitTo(dest: ImageDestination, root: Image | ImageIndex, refs: readonly string[]): Promise<void> {
  try {
    if (!isIndex(root)) for (const layer of root.layers) await dest.addLayer(layer);
    await dest.commit(root, refs);
  } catch (e) {
    await dest.abort();
    throw e;
  }
}
