import { isIndex, type ImageIndex } from '../../image/image.js';
import { manifestOf } from '../../image/manifest.js';
import { formatPlatform } from '../../image/platform.js';
import { openImageRoot, openImageSource } from '../../transports/open-source.js';
import { layersWithHistoryPaths } from '../../image/history.js';
import { humanSize, sourceOptions } from './shared.js';
import type { RegistryArgs } from './registry-flags.js';

export async function runInspect(args: RegistryArgs & { image: string; platform?: string; previous?: string; json: boolean }): Promise<number> {
  const opts = sourceOptions(args);
  // An index is shown as it is (its children) unless a platform is asked for.
  if (!opts.platform) {
    const root = await openImageRoot(args.image, opts);
    if (isIndex(root.root)) {
      await root.close();
      return inspectIndex(root.name, root.root, args.json);
    }
    await root.close();
  }
  const source = await openImageSource(args.image, opts);
  try {
    const { image } = source;
    // With --previous: which layers a client that has the previous image already holds.
    const previousDigests = args.previous ? await layerDigests(args.previous, args) : undefined;
    const layers = layersWithHistoryPaths(image).map((l, index) => ({
      index,
      digest: l.digest,
      diffId: l.diffId,
      size: l.size,
      mediaType: l.mediaType,
      storePaths: l.storePaths ?? [],
      ...(previousDigests ? { inPrevious: previousDigests.has(l.digest) } : {}),
    }));
    const info = {
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
    if (args.json) {
      process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
      return 0;
    }
    const lines = [
      `${info.source}`,
      `  image id   ${info.imageId}`,
      `  platform   ${info.os}/${info.architecture}`,
      `  created    ${info.created ?? '-'}`,
      `  layers     ${layers.length}, ${humanSize(info.totalSize)}`,
      ...(info.newBytes !== undefined ? [`  vs previous ${layers.filter((l) => l.inPrevious).length} layers reused, ${humanSize(info.newBytes)} new to download`] : []),
    ];
    for (const l of layers) {
      const mark = l.inPrevious === undefined ? '' : l.inPrevious ? 'reused  ' : 'new     ';
      lines.push(`  [${l.index}] ${mark}${l.digest}  ${humanSize(l.size).padStart(9)}  ${l.storePaths.length ? `${l.storePaths.length} store paths` : ''}`);
      for (const p of l.storePaths) lines.push(`        ${p}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await source.close();
  }
}

async function layerDigests(ref: string, args: RegistryArgs & { platform?: string }): Promise<Set<string>> {
  const previous = await openImageSource(ref, sourceOptions(args));
  try {
    return new Set(previous.image.layers.map((l) => l.digest));
  } finally {
    await previous.close();
  }
}

/** An index's children: platform, digest, size, media type and annotations. */
function inspectIndex(name: string, index: ImageIndex, json: boolean): number {
  const children = index.children.map((d) => ({
    platform: d.platform ? formatPlatform(d.platform) : null,
    digest: d.digest,
    size: d.size,
    mediaType: d.mediaType,
    annotations: d.annotations ?? {},
  }));
  const info = { source: name, digest: index.manifest.digest, mediaType: index.manifest.mediaType, annotations: index.annotations ?? {}, children };
  if (json) {
    process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    return 0;
  }
  const lines = [`${name}`, `  index      ${info.digest} (${info.mediaType})`, `  children   ${children.length}`];
  for (const [i, c] of children.entries()) {
    lines.push(`  [${i}] ${(c.platform ?? 'no platform').padEnd(18)} ${c.digest}  ${humanSize(c.size).padStart(9)}`);
    for (const [k, v] of Object.entries(c.annotations)) lines.push(`        ${k}=${v}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
