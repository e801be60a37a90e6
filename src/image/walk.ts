import type { Digest } from './digest.js';
import { isIndex, type Image, type ImageIndex } from './image.js';
import { manifestOf, type SerializedManifest } from './manifest.js';

/** The manifest a node is written and named by: an index's own bytes, an image's manifest. */
export function nodeManifest(node: Image | ImageIndex): SerializedManifest {
  return isIndex(node) ? node.manifest : manifestOf(node);
}

/**
 * Visits every node of a tree once (by manifest digest), children before the index that lists
 * them: the order a destination must write them in, so that nothing ever names a manifest that
 * is not there yet, and a failure part-way leaves no tag pointing at a half-written tree.
 */
export async function visitBottomUp(root: Image | ImageIndex, visit: (node: Image | ImageIndex, manifest: SerializedManifest) => Promise<void>): Promise<void> {
  const done = new Set<Digest>();
  const go = async (node: Image | ImageIndex): Promise<void> => {
    const m = nodeManifest(node);
    if (done.has(m.digest)) return;
    if (isIndex(node)) for (const d of node.children) await go(await node.child(d));
    await visit(node, m);
    done.add(m.digest);
  };
  await go(root);
}
