import { layersWithHistoryPaths } from '../image/history.js';
import { isIndex, type ImageIndex } from '../image/image.js';
import { manifestOf } from '../image/manifest.js';
import { formatPlatform } from '../image/platform.js';
import { openImageRoot, openImageSource } from '../transports/open-source.js';
import type { SourceAccess } from './inputs.js';

export type InspectResult = Awaited<ReturnType<typeof inspect>>;

/**
 * What a reference holds: an index's children (unless a platform is asked for), or an image's
 * layers, sizes, digests and store paths; with `previous`, which layers a client already has.
 */
export async function inspect(ref: string, opts: SourceAccess & { previous?: string } = {}) {
  const access: SourceAccess = opts;
  if (!opts.platform) {
    const root = await openImageRoot(ref, access);
    await root.close();
    if (isIndex(root.root)) return { kind: 'index' as const, ...describeIndex(root.name, root.root) };
  }
  const source = await openImageSource(ref, access);
  try {
    const { image } = source;
    const previousDigests = opts.previous ? await layerDigests(opts.previous, access) : undefined;
    const layers = layersWithHistoryPaths(image).map((l, index) => ({
      index,
      digest: l.digest,
      diffId: l.diffId,
      size: l.size,
      mediaType: l.mediaType,
      storePaths: l.storePaths ?? [],
      ...(previousDigests ? { inPrevious: previousDigests.has(l.digest) } : {}),
    }));
    return {
      kind: 'image' as const,
      source: source.name,
      imageId: image.configDigest,
      manifestDigest: manifestOf(image).digest,
      architecture: image.config.architecture,
      os: image.config.os,
      created: image.config.created,
      config: image.config.config ?? {},
      layers,
      totalSize: layers.reduce((s, l) => s + l.size, 0),
      ...(previousDigests ? { newBytes: layers.filter((l) => !l.inPrevious).reduce((s, l) => s + l.size, 0) } : {}),
    };
  } finally {
    await source.close();
  }
}

/** An index as `inspect` and `strata index` show it: its digest, media type and children. */
export function describeIndex(name: string, index: ImageIndex) {
  return {
    source: name,
    digest: index.manifest.digest,
    mediaType: index.manifest.mediaType,
    annotations: index.annotations ?? {},
    children: index.children.map((d) => ({
      platform: d.platform ? formatPlatform(d.platform) : null,
      digest: d.digest,
      size: d.size,
      mediaType: d.mediaType,
      annotations: d.annotations ?? {},
    })),
  };
}

async function layerDigests(ref: string, access: SourceAccess): Promise<Set<string>> {
  const previous = await openImageSource(ref, access);
  try {
    return new Set(previous.image.layers.map((l) => l.digest));
  } finally {
    await previous.close();
  }
}
