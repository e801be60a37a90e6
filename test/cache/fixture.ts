/**
 * A small fake Nix store and a build through produceLayers into a real destination, shared by
 * the cache tests and by build-script.ts (which runs the same build in a separate process).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LayerCache, NarHashLookup } from '../../src/cache/layer-cache.js';
import { storeLayerJob } from '../../src/builder/store-layer-job.js';
import { produceLayers, type ProduceStats } from '../../src/builder/produce-layers.js';
import { assembleImage } from '../../src/image/assemble.js';
import type { Layer } from '../../src/image/layer.js';
import type { Compression } from '../../src/image/media-types.js';
import { openDockerArchiveDestination } from '../../src/transports/docker-archive/write.js';
import { openOciDirectoryDestination } from '../../src/transports/oci-layout/write.js';
import type { ImageDestination } from '../../src/transports/types.js';

export const STORE_DIR = '/nix/store';
export const MTIME = 1;

export interface FakeStore {
  root: string;
  paths: string[];
  /** The leaf (an application nothing else needs): the path the tests change. */
  leaf: string;
}

/** Pseudo-random but fixed bytes (a big file spans several deflate blocks). */
function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let a = seed;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    out[i] = i % 3 === 0 ? 0x41 + ((a >>> 24) % 26) : a >>> 24;
  }
  return out;
}

export function makeStore(dir: string): FakeStore {
  const root = join(dir, 'root');
  const names = ['0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r-liba-1.0', '1a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r-big-2.0', '2a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r-libc-3.0', '3a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5r-app-1.0'];
  const paths = names.map((n) => `${STORE_DIR}/${n}`);
  for (const [i, p] of paths.entries()) {
    const d = join(root, p);
    mkdirSync(join(d, 'lib'), { recursive: true });
    mkdirSync(join(d, 'share', 'doc'), { recursive: true });
    writeFileSync(join(d, 'lib', `lib${i}.so`), bytes(40_000 + i * 1000, i + 1), { mode: 0o755 });
    writeFileSync(join(d, 'share', 'doc', 'README'), `package ${i}\n`.repeat(50));
    writeFileSync(join(d, 'share', 'empty'), '');
    symlinkSync('lib', join(d, 'lib64'));
  }
  writeFileSync(join(root, paths[1]!, 'share', 'data.bin'), bytes(2_500_000, 42));
  mkdirSync(join(root, paths[3]!, 'bin'));
  writeFileSync(join(root, paths[3]!, 'bin', 'app'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
  return { root, paths, leaf: paths[3]! };
}

/** Non-empty regular files below a store path, by physical path (found independently of strata). */
export function filesBelow(root: string, storePath: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && statSync(p).size > 0) out.push(p);
    }
  };
  walk(join(root, storePath));
  return out.sort();
}

export interface BuildOutcome {
  layers: Layer[];
  /** sha256 over the output (archive file, or every file of the layout directory). */
  outputDigest: string;
}

/**
 * Where buildFixture writes: docker-archive (the default for 'none'), an OCI directory (the
 * default for gzip), or an OCI directory whose blob writers offer no file region (as a registry
 * upload's do not), so bytes cannot be written in place or taken back.
 */
export type FixtureOutput = 'docker-archive' | 'oci' | 'oci-no-region';

/**
 * Built into `out`: one layer per store path, or the store path indexes of `layout`, a layer per
 * group.
 */
export async function buildFixture(store: FakeStore, out: string, opts: { compression: Compression; cache?: LayerCache; stats?: ProduceStats; narHashes?: NarHashLookup; concurrency?: number; layout?: number[][]; output?: FixtureOutput }): Promise<BuildOutcome> {
  const jobs = [];
  const jobOpts = { storeDir: STORE_DIR, storeRoot: store.root, mtime: MTIME, compression: opts.compression, identities: true, ...(opts.narHashes ? { narHashes: opts.narHashes } : {}) };
  for (const group of opts.layout ?? store.paths.map((_, i) => [i])) jobs.push(await storeLayerJob(group.map((i) => store.paths[i]!), jobOpts));
  const output = opts.output ?? (opts.compression === 'none' ? 'docker-archive' : 'oci');
  const dest = output === 'docker-archive'
    ? await openDockerArchiveDestination(out, { mtime: MTIME, compression: opts.compression })
    : withoutRegions(await openOciDirectoryDestination(out, { compression: opts.compression }), output === 'oci-no-region');
  try {
    const layers = await produceLayers(jobs, dest, {
      mtime: MTIME,
      compression: opts.compression,
      ...(opts.cache ? { cache: opts.cache } : {}),
      ...(opts.stats ? { stats: opts.stats } : {}),
      concurrency: opts.concurrency ?? 2,
      workers: 2,
    });
    const image = assembleImage(undefined, layers.map((layer) => ({ layer, createdBy: 'test' })), { architecture: 'amd64', os: 'linux', created: '1970-01-01T00:00:01Z' });
    await dest.commit(image, ['fixture:latest']);
    return { layers, outputDigest: treeDigest(out) };
  } catch (e) {
    await dest.abort();
    throw e;
  }
}

function withoutRegions(dest: ImageDestination, hide: boolean): ImageDestination {
  if (!hide) return dest;
  return {
    ...dest,
    beginBlob: async (size) => {
      const { region: _region, restart: _restart, ...writer } = await dest.beginBlob(size);
      return writer;
    },
  };
}

export function treeDigest(path: string): string {
  const h = createHash('sha256');
  const walk = (p: string, rel: string): void => {
    if (statSync(p).isDirectory()) {
      for (const n of readdirSync(p).sort()) walk(join(p, n), `${rel}/${n}`);
    } else {
      h.update(`${rel}\0`);
      h.update(readFileSync(p));
    }
  };
  walk(path, '');
  return h.digest('hex');
}
