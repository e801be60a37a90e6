import { isIndex, type ImageIndex } from '../image/image.js';
import { appendIndex as appendToIndex, createIndex as makeNewIndex, filterIndex as filterChildren, removePlatforms, type IndexOptions, type IndexSource } from '../image/index-ops.js';
import type { Platform } from '../image/platform.js';
import { openImageDestination } from '../transports/open-destination.js';
import { openImageRoot } from '../transports/open-source.js';
import type { RegistryOptions } from '../transports/registry/client.js';
import type { RootSource } from '../transports/types.js';
import { StrataError } from '../util/errors.js';
import { commitTo } from './commit.js';

/** A source of index children named by reference, with what the user said of it. */
export interface IndexSourceRef {
  readonly ref: string;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface IndexAccess {
  /** Registry access for every `docker://` source and destination. */
  readonly registry?: RegistryOptions;
  /** mtime of archive members of an `oci-archive:` destination. */
  readonly mtime?: number;
}

export interface IndexResult {
  readonly destination: string;
  readonly index: ImageIndex;
}

/** `strata index create`: an index over the sources, committed to `dest` (children before the index). */
export async function createIndex(dest: string, sources: readonly IndexSourceRef[], opts: IndexOptions & IndexAccess = {}): Promise<IndexResult> {
  return withSources(sources, opts, async (opened) => commitIndex(dest, await makeNewIndex(opened, opts), opts));
}

/** `strata index append`: `dest`'s index with the sources' children added (or replacing, with `replace`). */
export async function appendIndex(dest: string, sources: readonly IndexSourceRef[], opts: IndexOptions & IndexAccess & { replace?: boolean } = {}): Promise<IndexResult> {
  const current = await openIndex(dest, opts);
  try {
    return await withSources(sources, opts, async (opened) => commitIndex(dest, await appendToIndex(current.root as ImageIndex, current.name, opened, opts), opts));
  } finally {
    await current.close();
  }
}

/** `strata index remove`: `dest`'s index without the children of `platforms`. */
export async function removeFromIndex(dest: string, platforms: readonly Platform[], opts: IndexAccess = {}): Promise<IndexResult> {
  const current = await openIndex(dest, opts);
  try {
    return await commitIndex(dest, removePlatforms(current.root as ImageIndex, current.name, platforms), opts);
  } finally {
    await current.close();
  }
}

/** `strata index filter`: the children of `src` for `platforms`, less `exclude`, as a new index at `dest`. */
export async function filterIndex(src: string, dest: string, platforms: readonly Platform[], exclude: readonly Platform[], opts: IndexAccess = {}): Promise<IndexResult> {
  const current = await openIndex(src, opts);
  try {
    return await commitIndex(dest, filterChildren(current.root as ImageIndex, current.name, platforms, exclude), opts);
  } finally {
    await current.close();
  }
}

async function openIndex(ref: string, opts: IndexAccess): Promise<RootSource> {
  const source = await openImageRoot(ref, { ...(opts.registry ? { registry: opts.registry } : {}) });
  if (!isIndex(source.root)) {
    await source.close();
    throw new StrataError(`${source.name} is an image, not an index`);
  }
  return source;
}

async function withSources<T>(refs: readonly IndexSourceRef[], opts: IndexAccess, fn: (sources: IndexSource[]) => Promise<T>): Promise<T> {
  if (refs.length === 0) throw new StrataError('name at least one source image or index');
  const opened: RootSource[] = [];
  try {
    const sources: IndexSource[] = [];
    for (const r of refs) {
      const s = await openImageRoot(r.ref, { ...(opts.registry ? { registry: opts.registry } : {}) }).catch((e: unknown) => {
        throw e instanceof StrataError ? new StrataError(`source ${r.ref}: ${e.message}`) : e;
      });
      opened.push(s);
      sources.push({ name: r.ref, node: s.root, ...(r.platform ? { platform: r.platform } : {}), ...(r.annotations ? { annotations: r.annotations } : {}) });
    }
    return await fn(sources);
  } finally {
    await Promise.all(opened.map((s) => s.close()));
  }
}

async function commitIndex(dest: string, index: ImageIndex, opts: IndexAccess): Promise<IndexResult> {
  const destination = await openImageDestination(dest, { mtime: opts.mtime ?? 1, ...(opts.registry ? { registry: opts.registry } : {}) });
  await commitTo(destination, index, []);
  return { destination: destination.name, index };
}
