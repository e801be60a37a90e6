import { ociManifest } from '../../image/manifest.js';
import { openImageSource } from '../../transports/open-source.js';
import { openRegistryDestination } from '../../transports/registry/destination.js';
import { parseRegistryReference } from '../../transports/registry/reference.js';
import { sourceOptions } from './shared.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';

/**
 * `strata push SRC DEST`: copies an image, layer blobs untouched, from an archive, a layout or
 * another registry to a registry. Blobs the registry has are skipped, blobs in another repository
 * of the same registry are mounted, and the manifest goes last so a failed push tags nothing.
 */
export async function runPush(args: RegistryArgs & { source: string; destination: string; platform?: string; tag?: string[]; json: boolean }): Promise<number> {
  const registry = registryOptions(args);
  const source = await openImageSource(args.source, sourceOptions(args));
  try {
    const destRef = args.destination.startsWith('docker://') ? args.destination : `docker://${args.destination}`;
    const mountFrom = sameRegistryRepository(args.source, destRef);
    const dest = await openRegistryDestination(destRef, { ...registry, ...(mountFrom ? { mountFrom: [mountFrom] } : {}) });
    try {
      for (const layer of source.image.layers) await dest.addLayer(layer);
      await dest.commit(source.image, args.tag ?? []);
    } catch (err) {
      await dest.abort();
      throw err;
    }
    const digest = ociManifest(source.image).digest;
    if (args.json) process.stdout.write(`${JSON.stringify({ destination: dest.name, manifestDigest: digest, imageId: source.image.configDigest }, null, 2)}\n`);
    else process.stdout.write(`pushed ${dest.name} (${source.image.layers.length} layers), manifest ${digest}\n`);
    return 0;
  } finally {
    await source.close();
  }
}

/** The source's repository when source and destination are in the same registry (blobs can be mounted). */
export function sameRegistryRepository(source: string, destination: string): string | undefined {
  if (!source.startsWith('docker://')) return undefined;
  const s = parseRegistryReference(source);
  const d = parseRegistryReference(destination);
  return s.apiHost === d.apiHost && s.repository !== d.repository ? s.repository : undefined;
}
