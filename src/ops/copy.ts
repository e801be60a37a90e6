import { isIndex } from '../image/image.js';
import { withProgress, type ProgressSink } from '../transports/progress.js';
import { nodeManifest } from '../image/walk.js';
import type { Platform } from '../image/platform.js';
import { resolveImage } from '../image/select.js';
import { openImageDestination } from '../transports/open-destination.js';
import { openImageRoot } from '../transports/open-source.js';
import type { RegistryOptions } from '../transports/registry/client.js';
import { commitTo } from './commit.js';

export interface CopyOptions {
  /** Copy only this platform's image of a multi-platform source (default: the whole root). */
  readonly platform?: Platform;
  /** Extra names for the copy (tags in the destination repository). */
  readonly tags?: readonly string[];
  readonly registry?: RegistryOptions;
  readonly mtime?: number;
  /** Told of each blob and of the bytes as they are written. */
  readonly progress?: ProgressSink;
}

/**
 * Copies what `src` names to `dest`, as crane copy does: an image or a whole index, every
 * manifest and config byte for byte, so digests (and signatures over them) hold; blobs the
 * destination has are skipped, blobs in another repository of the same registry mounted.
 */
export async function copy(src: string, dest: string, opts: CopyOptions = {}): Promise<{ destination: string; digest: string; layers: number }> {
  const registry = opts.registry ? { registry: opts.registry } : {};
  const source = await openImageRoot(src, registry);
  try {
    const root = opts.platform ? await resolveImage(source.root, opts.platform, source.name) : source.root;
    const opened = await openImageDestination(dest, { mtime: opts.mtime ?? 1, ...registry });
    const destination = opts.progress ? withProgress(opened, opts.progress) : opened;
    await commitTo(destination, root, opts.tags ?? []);
    return { destination: destination.name, digest: nodeManifest(root).digest, layers: isIndex(root) ? 0 : root.layers.length };
  } finally {
    await source.close();
  }
}
