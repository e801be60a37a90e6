import { ociManifest } from '../../image/manifest.js';
import { openImageSource } from '../../transports/open-source.js';
import { humanSize, layersWithHistoryPaths, sourceOptions } from './shared.js';
import type { RegistryArgs } from './registry-flags.js';

export async function runInspect(args: RegistryArgs & { image: string; platform?: string; json: boolean }): Promise<number> {
  const source = await openImageSource(args.image, sourceOptions(args));
  try {
    const { image } = source;
    const layers = layersWithHistoryPaths(image).map((l, index) => ({
      index,
      digest: l.digest,
      diffId: l.diffId,
      size: l.size,
      mediaType: l.mediaType,
      storePaths: l.storePaths ?? [],
    }));
    const info = {
      source: source.name,
      imageId: image.configDigest,
      manifestDigest: ociManifest(image).digest,
      architecture: image.config.architecture,
      os: image.config.os,
      created: image.config.created,
      config: image.config.config ?? {},
      layers,
      totalSize: layers.reduce((s, l) => s + l.size, 0),
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
    ];
    for (const l of layers) {
      lines.push(`  [${l.index}] ${l.digest}  ${humanSize(l.size).padStart(9)}  ${l.storePaths.length ? `${l.storePaths.length} store paths` : ''}`);
      for (const p of l.storePaths) lines.push(`        ${p}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await source.close();
  }
}
