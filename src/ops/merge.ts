import { CONTAINERD_NAME } from '../image/descriptor.js';
import { childOf, makeIndex } from '../image/make-index.js';
import { parseTag } from '../image/tag.js';
import { openImageSource } from '../transports/open-source.js';
import type { ImageSource } from '../transports/types.js';
import { StrataError } from '../util/errors.js';
import { openOutput } from './commit.js';
import type { SourceAccess } from './inputs.js';

/** One image to merge, and the names it takes (default: the names its source records). */
export interface MergeSource {
  readonly ref: string;
  readonly names?: readonly string[];
}

export interface MergeRequest extends SourceAccess {
  readonly sources: readonly MergeSource[];
  /** A docker-archive file (or `docker-archive:FILE`). */
  readonly output: string;
}

export interface MergeSummary {
  readonly destination: string;
  readonly images: readonly { readonly source: string; readonly imageId: string; readonly names: readonly string[] }[];
  /** Layers written: each content (DiffID) once, however many images share it, however compressed. */
  readonly layers: number;
}

/**
 * Several images in one docker-archive, as dockerTools.mergeImages makes it: `docker load` or
 * `podman load` of it gives every image under its names, and a layer two images share is stored
 * once. The images are read from anywhere (any --from reference); each keeps the names its source
 * records (RepoTags, io.containerd.image.name, the registry reference) unless given others.
 */
export async function mergeImages(request: MergeRequest): Promise<MergeSummary> {
  if (request.sources.length === 0) throw new StrataError('nothing to merge: name at least one image');
  const opened: ImageSource[] = [];
  try {
    const children = [];
    const images = [];
    const taken = new Map<string, string>();
    for (const s of request.sources) {
      const source = await openImageSource(s.ref, request);
      opened.push(source);
      const names = (s.names ?? source.names ?? []).map((n) => parseTag(n).qualified);
      if (names.length === 0) throw new StrataError(`${source.name} records no name for its image, and a merged archive loads images by name: give it one as ${s.ref}=NAME:TAG`);
      for (const n of names) {
        const other = taken.get(n);
        if (other !== undefined) throw new StrataError(`${n} would name two images of the archive: ${other} and ${source.name}`);
        taken.set(n, source.name);
      }
      children.push(childOf(source.image, { annotations: { [CONTAINERD_NAME]: names.join(',') } }));
      images.push({ source: source.name, imageId: source.image.configDigest, names });
    }
    const output = request.output.startsWith('docker-archive:') ? request.output : `docker-archive:${request.output}`;
    const dest = await openOutput(output, { compression: 'none', mtime: 1, registry: request.registry ?? {}, sources: [] });
    try {
      await dest.commit(makeIndex(children), []);
    } catch (e) {
      await dest.abort();
      throw e;
    }
    const layers = new Set(opened.flatMap((s) => s.image.layers.map((l) => l.diffId))).size;
    return { destination: dest.name, images, layers };
  } finally {
    await Promise.all(opened.map((s) => s.close()));
  }
}

/** `SRC[=NAME:TAG[,NAME:TAG…]]` as the CLI spells a merge source. */
export function parseMergeSource(arg: string): MergeSource {
  const eq = arg.lastIndexOf('=');
  if (eq <= 0) return { ref: arg };
  const names = arg.slice(eq + 1).split(',').filter((n) => n !== '');
  return { ref: arg.slice(0, eq), names };
}
