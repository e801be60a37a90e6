import { StrataError } from '../util/errors.js';
import type { Descriptor } from './descriptor.js';
import type { Image, ImageIndex } from './image.js';
import { manifestDescriptor, serializeIndex } from './manifest.js';
import type { Platform } from './platform.js';
import { nodeManifest } from './walk.js';

/** One child of an index being made: its descriptor, and how to open what it points at. */
export interface IndexChild {
  readonly descriptor: Descriptor;
  open(): Promise<Image | ImageIndex>;
}

/** A child for a node at hand, its descriptor made from the node's own manifest bytes. */
export function childOf(node: Image | ImageIndex, extra: { platform?: Platform; annotations?: Readonly<Record<string, string>> } = {}): IndexChild {
  return { descriptor: manifestDescriptor(nodeManifest(node), extra), open: async () => node };
}

/** The children of an existing index, as they stand (descriptors kept, nodes opened lazily). */
export function childrenOf(index: ImageIndex): IndexChild[] {
  return index.children.map((d) => ({ descriptor: d, open: () => index.child(d) }));
}

/**
 * An index over `children`, in the order given, canonically serialised: the same children give
 * the same bytes (and digest) on every machine. Each child keeps its own manifest bytes, so its
 * digest, and any signature over it, holds in the new index.
 */
export function makeIndex(children: readonly IndexChild[], opts: { mediaType?: string; annotations?: Readonly<Record<string, string>> } = {}): ImageIndex {
  const byDescriptor = new Map(children.map((c) => [c.descriptor, c] as const));
  return {
    manifest: serializeIndex(children.map((c) => c.descriptor), opts),
    children: children.map((c) => c.descriptor),
    ...(opts.annotations && Object.keys(opts.annotations).length > 0 ? { annotations: opts.annotations } : {}),
    async child(d) {
      const c = byDescriptor.get(d);
      if (c === undefined) throw new StrataError(`internal: ${d.digest} is not a child of this index`);
      return c.open();
    },
  };
}
