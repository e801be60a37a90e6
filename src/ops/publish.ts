/**
 * `strata publish`: every store path of a closure becomes one layer blob — exactly the layer a
 * build makes for that path alone — and every store path a package image, `<pname>:<version>`,
 * whose layers are its closure's blobs, dependencies first (perPathOrder), each descriptor
 * annotated with its store path and references (image/package.ts).
 *
 * Paths go in dependency order, so each path's blob is made once, in its own package's
 * repository, and every later package that needs it mounts it from there. A path whose build tag
 * (`<version>-<hash>`) is already published is not made again: its image is read back and its
 * blobs reused, so a new release costs only its new store paths.
 */
import { produceLayers, type ProduceStats } from '../builder/produce-layers.js';
import { storeLayerJob } from '../builder/store-layer-job.js';
import { defaultCacheDir, openLayerCache, type LayerCache } from '../cache/layer-cache.js';
import { buildTag, packageOf, repositoryName, versionTag, type PackageId } from '../closure/package.js';
import { requisites } from '../closure/subset.js';
import type { Closure, StorePathInfo } from '../closure/types.js';
import { checkProducibleCompression } from '../compress/compression.js';
import type { ImageSettings } from '../image/assemble.js';
import { manifestOf } from '../image/manifest.js';
import type { Compression } from '../image/media-types.js';
import { packageImage, readPackage, type PathLayer, type PathRecord } from '../image/package.js';
import { perPathOrder } from '../layering/per-path.js';
import { openPackageRepository, type PackageRepository } from '../transports/package-repository.js';
import type { RegistryOptions } from '../transports/registry/client.js';
import { StrataError } from '../util/errors.js';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { completeSettings, resolveEpoch } from './defaults.js';
import { checkStoreRoot, loadClosure, type ClosureInput } from './inputs.js';

export interface PublishRequest extends ClosureInput {
  /** `docker://HOST/PREFIX` or `oci:DIR`. */
  readonly to: string;
  /** Physical root the store paths are read under (default '/'). */
  readonly storeRoot?: string;
  /** Layer compression (default gzip, what registries expect). */
  readonly compression?: Compression;
  /** mtime of every entry (default SOURCE_DATE_EPOCH, else 1): images built with the same share the blobs. */
  readonly mtime?: number;
  /** Config fields of the package images (architecture, os, created). */
  readonly settings?: Partial<Pick<ImageSettings, 'architecture' | 'os' | 'variant' | 'created'>>;
  readonly cache?: string | false;
  readonly registry?: RegistryOptions;
  readonly stats?: ProduceStats;
}

export interface PublishedEntry {
  readonly storePath: string;
  readonly pname: string;
  readonly version: string;
  /** `docker://HOST/PREFIX/<repo>:<build tag>` or `oci:DIR:<repo>:<build tag>`. */
  readonly reference: string;
  /** The tags this run put on the image (none when it was already published). */
  readonly tagged: readonly string[];
  readonly manifestDigest: string;
  readonly layerDigest: string;
  /** True when the path was already published and nothing was made or pushed for it. */
  readonly reused: boolean;
}

export interface PublishSummary {
  readonly repository: string;
  readonly packages: readonly PublishedEntry[];
}

/** One store path's place in the repository. */
interface Target {
  readonly path: string;
  readonly pkg: PackageId;
  readonly repo: string;
  readonly buildTag: string;
  readonly versionTag: string;
}

export async function publish(request: PublishRequest): Promise<PublishSummary> {
  const closure = await loadClosure(request);
  const storeRoot = request.storeRoot ?? '/';
  await checkStoreRoot(storeRoot);
  const compression = request.compression ?? 'gzip';
  checkProducibleCompression(compression);
  const mtime = request.mtime ?? resolveEpoch('--mtime', undefined);
  const order = perPathOrder(closure);
  const targets = targetsOf(closure, order);
  await checkPresent(order, storeRoot);

  const repository = await openPackageRepository(request.to, request.registry ? { registry: request.registry } : {});
  const tags = new Map<string, Set<string>>();
  for (const t of targets) if (!tags.has(t.repo)) tags.set(t.repo, new Set(await repository.tags(t.repo)));
  // Everything that can be refused is refused before the first push: paths already published
  // are read back (their annotations checked) now.
  const published = new Map<string, PathLayer>();
  const reused = new Map<string, string>();
  for (const t of targets) {
    if (!tags.get(t.repo)!.has(t.buildTag)) continue;
    const digest = await readBack(repository, t, published);
    reused.set(t.path, digest);
  }

  const settings = completeSettings(request.settings ?? {}, undefined);
  const cache = request.cache === false ? undefined : await openLayerCache(request.cache ?? defaultCacheDir());
  const entries: PublishedEntry[] = [];
  for (const t of targets) {
    const known = reused.get(t.path);
    if (known !== undefined) {
      entries.push(entryOf(t, repository, [], known, published.get(t.path)!.layer.digest, true));
      continue;
    }
    // The plain version tag stays on the first build published under it.
    const tagged = tags.get(t.repo)!.has(t.versionTag) ? [t.buildTag] : [t.buildTag, t.versionTag];
    const digest = await publishOne(t, closure, order, published, repository, tagged, { storeRoot, compression, mtime, settings, cache, stats: request.stats });
    for (const tag of tagged) tags.get(t.repo)!.add(tag);
    entries.push(entryOf(t, repository, tagged, digest, published.get(t.path)!.layer.digest, false));
  }
  return { repository: repository.name, packages: entries };
}

function entryOf(t: Target, repository: PackageRepository, tagged: string[], manifestDigest: string, layerDigest: string, reused: boolean): PublishedEntry {
  return { storePath: t.path, pname: t.pkg.pname, version: t.pkg.version, reference: repository.reference(t.repo, t.buildTag), tagged, manifestDigest, layerDigest, reused };
}

/** Where each store path goes; two package names that map to one repository are refused. */
function targetsOf(closure: Closure, order: readonly string[]): Target[] {
  const owners = new Map<string, string>();
  return order.map((path) => {
    const pkg = packageOf(closure.paths.get(path)!, closure.storeDir);
    const repo = repositoryName(pkg.pname);
    const other = owners.get(repo);
    if (other !== undefined && other !== pkg.pname) {
      throw new StrataError(`packages ${JSON.stringify(other)} and ${JSON.stringify(pkg.pname)} would both be published as repository ${repo}`);
    }
    owners.set(repo, pkg.pname);
    return { path, pkg, repo, buildTag: buildTag(pkg, path, closure.storeDir), versionTag: versionTag(pkg) };
  });
}

/** Every store path is there to read, before anything is pushed. */
async function checkPresent(paths: readonly string[], storeRoot: string): Promise<void> {
  for (const p of paths) {
    await lstat(join(storeRoot, p)).catch(() => {
      throw new StrataError(`store path ${p} is not under the store root ${storeRoot} (${join(storeRoot, p)} does not exist)`);
    });
  }
}

/** Reads a published package image back: its layers join `published`; returns its manifest digest. */
async function readBack(repository: PackageRepository, t: Target, published: Map<string, PathLayer>): Promise<string> {
  const ref = repository.reference(t.repo, t.buildTag);
  const source = await repository.open(t.repo, t.buildTag);
  try {
    const pkg = readPackage(source.image, ref);
    if (pkg.storePath !== t.path) throw new StrataError(`${ref} is the package of ${pkg.storePath}, not of ${t.path}; remove that tag or publish elsewhere`);
    for (const l of pkg.layers) if (!published.has(l.storePath)) published.set(l.storePath, l);
    return manifestOf(source.image).digest;
  } finally {
    await source.close();
  }
}

interface MakeOptions {
  storeRoot: string;
  compression: Compression;
  mtime: number;
  settings: ImageSettings;
  cache: LayerCache | undefined;
  stats: ProduceStats | undefined;
}

/**
 * Makes one package image: the path's own layer is produced from the store into its repository,
 * its dependencies' layers are added from where they were published (mounted, or already there),
 * and once committed the image is read back so that later packages take their layers from it.
 */
async function publishOne(t: Target, closure: Closure, order: readonly string[], published: Map<string, PathLayer>, repository: PackageRepository, tagged: string[], o: MakeOptions): Promise<string> {
  const needed = requisites(closure, t.path);
  const { dest, refs } = await repository.destination(t.repo, tagged, { compression: o.compression });
  try {
    const layers: PathLayer[] = [];
    for (const q of order) {
      if (!needed.has(q)) continue;
      const record = recordOf(closure.paths.get(q)!);
      const have = published.get(q);
      if (have !== undefined) {
        await dest.addLayer(have.layer);
        layers.push({ ...record, layer: have.layer });
        continue;
      }
      if (q !== t.path) throw new StrataError(`internal: ${q} is needed by ${t.path} but was not published before it`);
      const jobOpts = { storeDir: closure.storeDir, storeRoot: o.storeRoot, mtime: o.mtime, compression: o.compression, identities: o.cache !== undefined, narHashes: closure.paths };
      const [layer] = await produceLayers([() => storeLayerJob([q], jobOpts)], dest, {
        mtime: o.mtime,
        compression: o.compression,
        ...(o.cache ? { cache: o.cache } : {}),
        ...(o.stats ? { stats: o.stats } : {}),
      });
      layers.push({ ...record, layer: layer! });
    }
    const image = packageImage({ ...recordOf(closure.paths.get(t.path)!), pkg: t.pkg }, layers, o.settings);
    await dest.commit(image, refs);
  } catch (e) {
    await dest.abort();
    throw e;
  }
  return readBack(repository, t, published);
}

/** A closure path as a package layer records it. */
function recordOf(info: StorePathInfo): PathRecord {
  return { storePath: info.path, references: info.references, ...(info.narHash !== undefined ? { narHash: info.narHash } : {}) };
}
