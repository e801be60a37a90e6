/**
 * Small test images made in the test itself: files written to a temp dir, packed with GNU tar
 * (not strata's tar writer, so these tests stand alone), optionally gzipped with `gzip -n`,
 * digests computed here with node:crypto.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, createReadStream, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Digest } from '../../src/image/digest.js';
import type { Image } from '../../src/image/image.js';
import type { Layer } from '../../src/image/layer.js';
import type { ImageConfig } from '../../src/image/config.js';
import { canonicalJsonBytes } from '../../src/util/json.js';
import { newRegistryStats, openRegistryDestination, type RegistryOptions } from '../../src/transports/registry/index.js';

export function sha256File(path: string): Digest {
  return `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
}

export interface FileLayer extends Layer {
  readonly path: string;
}

/**
 * Packs `files` (relative path → content, or `{ copyFrom }` to copy a host file, mode 0755)
 * into a layer blob under `dir`.
 */
export function makeLayer(dir: string, name: string, files: Record<string, string | Buffer | { copyFrom: string }>, gzip = true): FileLayer {
  const root = join(dir, `${name}.root`);
  for (const [rel, content] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof content === 'object' && !Buffer.isBuffer(content)) {
      copyFileSync(content.copyFrom, p);
      chmodSync(p, 0o755);
    } else writeFileSync(p, content);
  }
  const tarPath = join(dir, `${name}.tar`);
  const t = spawnSync('tar', ['--sort=name', '--mtime=@1', '--owner=0', '--group=0', '--numeric-owner', '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '-cf', tarPath, '-C', root, '.'], { encoding: 'utf8' });
  if (t.status !== 0) throw new Error(`tar failed: ${t.stderr}`);
  const diffId = sha256File(tarPath);
  let blobPath = tarPath;
  if (gzip) {
    blobPath = `${tarPath}.gz`;
    const g = spawnSync('sh', ['-c', `gzip -n -1 -c "$1" > "$2"`, 'gz', tarPath, blobPath], { encoding: 'utf8' });
    if (g.status !== 0) throw new Error(`gzip failed: ${g.stderr}`);
  }
  return {
    path: blobPath,
    diffId,
    digest: sha256File(blobPath),
    size: statSync(blobPath).size,
    mediaType: gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
    compression: gzip ? 'gzip' : 'none',
    open: async (): Promise<Readable> => createReadStream(blobPath),
  };
}

/** A big layer of incompressible bytes (for chunked uploads and the kill-mid-push case), uncompressed. */
export function makeBigLayer(dir: string, name: string, megabytes: number, seed: string): FileLayer {
  const root = join(dir, `${name}.root`);
  mkdirSync(root, { recursive: true });
  // Deterministic pseudo-random content: sha256 in counter mode, so the same seed gives the same layer.
  const out = Buffer.alloc(megabytes * 1024 * 1024);
  for (let off = 0, i = 0; off < out.length; i++) {
    const h = createHash('sha256').update(`${seed}:${i}`).digest();
    off += h.copy(out, off);
  }
  writeFileSync(join(root, 'blob.bin'), out);
  return makeLayer(dir, name, {}, false);
}

export function makeImage(layers: readonly Layer[], extra: Partial<ImageConfig> = {}): Image {
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    created: '1970-01-01T00:00:01Z',
    config: { Cmd: ['/bin/busybox', 'cat', '/hello.txt'], Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: '1970-01-01T00:00:01Z', created_by: `test layer ${i}` })),
    ...extra,
  };
  const configBytes = canonicalJsonBytes(config);
  return {
    config,
    configBytes,
    configDigest: `sha256:${createHash('sha256').update(configBytes).digest('hex')}`,
    layers,
  };
}

/** Pushes an existing image (layers copied, manifest last) and returns what went over the wire. */
export async function push(ref: string, image: Image, opts: RegistryOptions = {}) {
  const stats = newRegistryStats();
  const dest = await openRegistryDestination(ref, { retryBaseMs: 20, ...opts, stats });
  for (const l of image.layers) await dest.addLayer(l);
  await dest.commit(image, []);
  return stats;
}
