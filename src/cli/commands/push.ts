import { sameRegistryRepository } from '../../transports/registry/reference.js';
import { progressSink, type ProgressMode } from '../progress.js';
import { sourceOptions } from './shared.js';
import type { RegistryArgs } from './registry-flags.js';

/**
 * `strata push SRC DEST`: copies an image or a whole index, manifests and blobs untouched, from an
 * archive, a layout or another registry to a registry (or any destination reference). Blobs the
 * registry has are skipped, blobs in another repository of the same registry are mounted, and the
 * manifest goes last so a failed push tags nothing. `--platform` copies one image of an index.
 */
export async function runPush(args: RegistryArgs & { source: string; destination: string; platform?: string; tag?: string[]; progress?: ProgressMode; json: boolean }): Promise<number> {
  const { copy } = await import('../../ops/copy.js');
  const dest = /^(docker|oci|oci-archive|docker-archive):/.test(args.destination) ? args.destination : `docker://${args.destination}`;
  const { platform, registry } = sourceOptions(args);
  const mountFrom = sameRegistryRepository(args.source, dest);
  const progress = progressSink(args.progress ?? 'auto', args.json);
  const result = await copy(args.source, dest, {
    ...(progress ? { progress } : {}),
    ...(platform ? { platform } : {}),
    tags: args.tag ?? [],
    registry: { ...registry, ...(mountFrom ? { mountFrom: [mountFrom] } : {}) },
  });
  if (args.json) process.stdout.write(`${JSON.stringify({ destination: result.destination, manifestDigest: result.digest }, null, 2)}\n`);
  else process.stdout.write(`pushed ${result.destination} (${result.layers ? `${result.layers} layers` : 'index'}), manifest ${result.digest}\n`);
  return 0;
}
