/**
 * Where packages are published and composed from: a registry prefix (`docker://HOST/PREFIX`, a
 * package `curl` living at `HOST/PREFIX/curl:<tag>`) or an OCI layout (`oci:DIR`, the package's
 * images named `curl:<tag>` in index.json). One interface, so publish and compose never ask which.
 */
import type { Compression } from '../image/media-types.js';
import { StrataError } from '../util/errors.js';
import { openOciLayout, layoutRefNames } from './oci-layout/read.js';
import { openOciLayoutAppendDestination } from './oci-layout/write.js';
import { parseLocalReference } from './reference.js';
import type { RegistryOptions } from './registry/client.js';
import type { ImageDestination, ImageSource } from './types.js';

export interface PackageRepository {
  /** `docker://HOST/PREFIX` or `oci:DIR`, for messages. */
  readonly name: string;
  /** The reference a package image is pulled by (`docker://HOST/PREFIX/curl:8.0.1`, `oci:DIR:curl:8.0.1`). */
  reference(repo: string, tag: string): string;
  /** Tags of one package's repository; none when it has no images. */
  tags(repo: string): Promise<string[]>;
  /** The packages there are, for suggesting names (empty where the registry will not list them). */
  packages(): Promise<string[]>;
  open(repo: string, tag: string): Promise<ImageSource>;
  /** A destination for one package image, which its commit names under each of `tags`. */
  destination(repo: string, tags: readonly string[], opts: { compression: Compression }): Promise<PackageDestination>;
}

export interface PackageDestination {
  readonly dest: ImageDestination;
  /** What to pass as commit's `refs`. */
  readonly refs: readonly string[];
}

export async function openPackageRepository(ref: string, opts: { registry?: RegistryOptions } = {}): Promise<PackageRepository> {
  if (ref.startsWith('docker://')) return registryPackages(ref, opts.registry ?? {});
  const local = await parseLocalReference(ref);
  if (local?.transport === 'oci' && local.name === undefined) return layoutPackages(local.path);
  throw new StrataError(`${ref}: packages live in a registry (docker://HOST/PREFIX) or an OCI layout (oci:DIR)`);
}

async function registryPackages(ref: string, registry: RegistryOptions): Promise<PackageRepository> {
  const { parseRegistryReference } = await import('./registry/reference.js');
  const { RegistryClient } = await import('./registry/client.js');
  const { openRegistrySource } = await import('./registry/source.js');
  const { openRegistryDestination } = await import('./registry/destination.js');
  const base = ref.slice('docker://'.length).replace(/\/+$/, '');
  // HOST[:PORT] alone is a prefix too (packages at HOST/NAME); a ':' after the host is a tag.
  if (base.includes('@') || (base.includes('/') && base.slice(base.indexOf('/')).includes(':'))) {
    throw new StrataError(`${ref}: name a registry and repository prefix (docker://HOST/PREFIX), without a tag or digest`);
  }
  const probe = parseRegistryReference(`${base}/probe`);
  const prefix = probe.repository.slice(0, -'probe'.length); // '' or 'PREFIX/'
  const client = new RegistryClient(probe.apiHost, probe.registry, probe.repository, registry);
  const reference = (repo: string, tag: string) => `docker://${base}/${repo}:${tag}`;
  return {
    name: `docker://${base}`,
    reference,
    tags: (repo) => client.listTags(prefix + repo),
    async packages() {
      // Many registries keep their catalog private; suggestions are then simply not offered.
      const all = await client.listRepositories().catch(() => [] as string[]);
      return all.filter((r) => r.startsWith(prefix) && !r.slice(prefix.length).includes('/')).map((r) => r.slice(prefix.length));
    },
    open: (repo, tag) => openRegistrySource(reference(repo, tag), registry),
    async destination(repo, tags, { compression }) {
      // Spooled, so each new layer's digest is known before upload: a blob the registry has costs a HEAD.
      const dest = await openRegistryDestination(reference(repo, tags[0]!), { ...registry, compression, blobWrites: 'spool' });
      return { dest, refs: tags };
    },
  };
}

function layoutPackages(dir: string): PackageRepository {
  const reference = (repo: string, tag: string) => `oci:${dir}:${repo}:${tag}`;
  const split = (name: string): [string, string] | undefined => {
    const i = name.lastIndexOf(':');
    return i > 0 ? [name.slice(0, i), name.slice(i + 1)] : undefined;
  };
  return {
    name: `oci:${dir}`,
    reference,
    async tags(repo) {
      return (await layoutRefNames(dir)).flatMap((n) => (split(n)?.[0] === repo ? [split(n)![1]] : []));
    },
    async packages() {
      return [...new Set((await layoutRefNames(dir)).flatMap((n) => split(n)?.slice(0, 1) ?? []))];
    },
    open: (repo, tag) => openOciLayout(dir, { ref: `${repo}:${tag}` }),
    async destination(repo, tags, { compression }) {
      const dest = await openOciLayoutAppendDestination(dir, { compression, refNames: tags.map((t) => `${repo}:${t}`) });
      return { dest, refs: [] };
    },
  };
}
