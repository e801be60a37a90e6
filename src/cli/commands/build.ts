import { buildImage } from '../../builder/build.js';
import { emptyCustomisation, parseAdd, parseSymlink, type CustomisationSpec } from '../../builder/customisation.js';
import { manifestOf } from '../../image/manifest.js';
import { defaultCompression, openImageDestination, type OutputFormat } from '../../transports/open-destination.js';
import type { Compression } from '../../image/media-types.js';
import { StrataError } from '../../util/errors.js';
import { checkProducibleCompression } from '../../compress/compression.js';
import { defaultCacheDir, openLayerCache } from '../../cache/layer-cache.js';
import { registryOptions } from './registry-flags.js';
import { imageSettings, resolveEpoch, type ImageFlags } from '../settings.js';
import { checkStoreRoot, humanSize, loadClosure, loadPrevious, openBase, type ClosureArgs } from './shared.js';

export interface BuildArgs extends ClosureArgs, ImageFlags {
  'store-root': string;
  output?: string;
  push?: string;
  compress?: 'none' | 'gzip' | 'zstd';
  cache?: boolean;
  'cache-dir'?: string;
  format: OutputFormat;
  tag?: string[];
  mtime?: string;
  add?: string[];
  bin?: string[];
  symlink?: string[];
  remove?: string[];
}

export async function runBuild(args: BuildArgs): Promise<number> {
  if (!args.output && !args.push) throw new StrataError('no output: pass -o FILE|DIR|- or --push REGISTRY/REPO:TAG');
  if (args.output && args.push) throw new StrataError('give either -o or --push, not both');
  const closure = await loadClosure(args);
  await checkStoreRoot(args['store-root']);
  const previous = await loadPrevious(args);
  const base = await openBase(args, closure);
  try {
    const mtime = resolveEpoch('--mtime', args.mtime);
    const customisation: CustomisationSpec = {
      ...emptyCustomisation,
      adds: (args.add ?? []).map(parseAdd),
      bins: args.bin ?? [],
      symlinks: (args.symlink ?? []).map(parseSymlink),
      removes: args.remove ?? [],
    };
    const settings = imageSettings(args, base !== undefined);
    // -o takes every reference --from takes; --push REF is -o docker://REF.
    const target = args.push ? (args.push.startsWith('docker://') ? args.push : `docker://${args.push}`) : args.output!;
    const compression = args.compress ?? defaultCompression(target, args.format);
    checkProducibleCompression(compression);
    const cache = args.cache === false ? undefined : await openLayerCache(args['cache-dir'] ?? defaultCacheDir());
    const dest = target.startsWith('docker://')
      ? await openPushDestination(args, target, compression)
      : await openImageDestination(target, { format: args.format, mtime, compression });
    // Archives take their names from --tag; a registry push is named by --push (extra --tag = more tags there).
    const result = await buildImage(
      {
        closure,
        storeRoot: args['store-root'],
        layering: args.layering,
        maxLayers: args['max-layers'],
        ...(previous ? { previous } : {}),
        ...(base ? { base: base.source.image, basePaths: base.paths } : {}),
        settings,
        customisation,
        mtime,
        compression,
        ...(cache ? { cache } : {}),
        tags: args.tag ?? [],
      },
      dest,
    );
    const { image } = result;
    const total = image.layers.reduce((s, l) => s + l.size, 0);
    const summary = {
      output: dest.name,
      imageId: image.configDigest,
      manifestDigest: manifestOf(image).digest,
      layers: image.layers.map((l) => ({ digest: l.digest, diffId: l.diffId, size: l.size, storePaths: l.storePaths ?? [] })),
      providedByBase: result.providedByBase,
      // What went over the wire: lets CI see that an unchanged re-push uploaded nothing.
      ...(target.startsWith('docker://') ? { upload: { ...(await import('../../transports/registry/client.js')).registryStats } } : {}),
    };
    const out = args.output === '-' ? process.stderr : process.stdout;
    if (args.json) out.write(`${JSON.stringify(summary, null, 2)}\n`);
    else out.write(`wrote ${dest.name}: ${image.layers.length} layers, ${humanSize(total)}, image id ${image.configDigest}\n`);
    return 0;
  } finally {
    await base?.source.close();
  }
}

/** The registry modules load only for --push: a build to a file never needs them. */
async function openPushDestination(args: BuildArgs, target: string, compression: Compression) {
  const [{ openRegistryDestination }, { sameRegistryRepository }] = await Promise.all([
    import('../../transports/registry/destination.js'),
    import('./push.js'),
  ]);
  const mountFrom = args.from ? sameRegistryRepository(args.from, target) : undefined;
  return openRegistryDestination(target, {
    ...registryOptions(args),
    compression,
    // Spool each new layer so its digest is known before upload: a layer the registry
    // already has then costs one HEAD instead of a re-upload.
    blobWrites: 'spool',
    ...(mountFrom ? { mountFrom: [mountFrom] } : {}),
  });
}
