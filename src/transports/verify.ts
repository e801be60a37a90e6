import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ZstdDecoder } from '../compress/zstd-decode.js';
import type { Digest } from '../image/digest.js';
import type { Compression } from '../image/media-types.js';
import { parseDigest, sha256Digest } from '../image/digest.js';
import type { ImageConfig } from '../image/config.js';
import { StrataError } from '../util/errors.js';

/** Magic numbers, for telling compressions apart when a format does not say (docker-archive). */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** Checks small metadata (a config, a manifest) against the digest something named it by. */
export function verifyBytes(bytes: Buffer, expected: Digest, what: string, expectedSize?: number): void {
  const actual = sha256Digest(bytes);
  if (actual !== expected) throw new StrataError(`${what}: digest mismatch: expected ${expected}, content hashes to ${actual}`);
  if (expectedSize !== undefined && bytes.length !== expectedSize) {
    throw new StrataError(`${what}: size mismatch: expected ${expectedSize} bytes, found ${bytes.length}`);
  }
}

export interface LayerExpectation {
  readonly digest: Digest;
  readonly diffId: Digest;
  readonly size: number;
  readonly compression: Compression;
  /** Names the layer and its source, e.g. `layer 2 (sha256:…) of docker-archive:base.tar`. */
  readonly what: string;
}

/**
 * Hashes the uncompressed tar of a compressed blob fed to it chunk by chunk: the DiffID. `write`
 * resolves when the chunk is taken (gzip is inflated in a side pipe, whose backpressure slows the
 * caller rather than buffering); `end` gives the digest. A corrupt stream rejects naming `what`:
 * from `write` or `end`, and from `failed` as soon as it is found (gzip finds out on its own
 * time). `release` frees the decoder of a blob not read to its end.
 */
interface TarHasher {
  write(chunk: Buffer): Promise<void> | undefined;
  end(): Promise<Digest>;
  readonly failed: Promise<void>;
  release(): void;
}

/** The tar hasher for a compressed blob; undefined for an uncompressed one, which is its own tar. */
function tarHasher(compression: Compression, what: string): TarHasher | undefined {
  if (compression === 'none') return undefined;
  const hash = createHash('sha256');
  const digest = (): Digest => `sha256:${hash.digest('hex')}`;
  if (compression === 'zstd') {
    // Decoded synchronously, in bounded steps, straight into the hash (zstd-decode.ts).
    const dec = new ZstdDecoder();
    const corrupt = (e: unknown): StrataError => new StrataError(`${what}: zstd stream is corrupt: ${(e as Error).message}`, { cause: e });
    return {
      write: (c) => {
        try {
          for (const out of dec.steps(c)) hash.update(out);
        } catch (e) {
          return Promise.reject(corrupt(e));
        }
        return undefined;
      },
      end: async () => {
        try {
          for (const out of dec.end()) hash.update(out);
        } catch (e) {
          throw corrupt(e);
        }
        return digest();
      },
      // Its failures come back from write and end: nothing is found in between.
      failed: new Promise<void>(() => undefined),
      release: () => undefined,
    };
  }
  const gunzip = createGunzip();
  gunzip.on('data', (c: Buffer) => hash.update(c));
  const done = new Promise<void>((resolve, reject) => {
    gunzip.on('end', resolve);
    gunzip.on('error', (e) => reject(new StrataError(`${what}: gzip stream is corrupt: ${e.message}`, { cause: e })));
  });
  // Attach a handler now so a rejection before end() is not reported as unhandled.
  done.catch(() => undefined);
  return {
    // Waits for the inflater to catch up; its failure ends the wait too (drain would never come).
    write: (c) => (gunzip.write(c) ? undefined : Promise.race([new Promise<void>((r) => gunzip.once('drain', r)), done])),
    end: async () => {
      gunzip.end();
      await done;
      return digest();
    },
    failed: done,
    release: () => gunzip.destroy(),
  };
}

/**
 * Wraps a blob stream so that it passes the bytes through unchanged and, when the blob ends,
 * errors unless the blob hashes to `digest`, has `size` bytes and decompresses to `diffId`.
 * The consumer therefore never finishes reading a corrupt base layer without noticing.
 */
export function verifyingLayerStream(source: Readable, exp: LayerExpectation): Readable {
  const blobHash = createHash('sha256');
  const tar = tarHasher(exp.compression, exp.what);
  let count = 0;
  const out: Transform = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      blobHash.update(chunk);
      count += chunk.length;
      this.push(chunk);
      const taken = tar?.write(chunk);
      if (taken === undefined) cb();
      else taken.then(() => cb(), (e: unknown) => cb(e as Error));
    },
    flush(cb: TransformCallback): void {
      (tar ? tar.end() : Promise.resolve(undefined)).then(
        (tarDigest) => {
          const digest = `sha256:${blobHash.digest('hex')}` as Digest;
          if (count !== exp.size) {
            return cb(new StrataError(`${exp.what}: size mismatch: expected ${exp.size} bytes, read ${count}`));
          }
          if (digest !== exp.digest) {
            return cb(new StrataError(`${exp.what}: digest mismatch: expected ${exp.digest}, blob hashes to ${digest}`));
          }
          // Uncompressed, the blob is the tar.
          const actual = tarDigest ?? digest;
          if (actual !== exp.diffId) {
            return cb(new StrataError(`${exp.what}: diff ID mismatch: config says ${exp.diffId}, uncompressed layer hashes to ${actual}`));
          }
          cb();
        },
        (e: unknown) => cb(e as Error),
      );
    },
  });
  // A corrupt gzip stream ends the read at once rather than at the blob's end.
  tar?.failed.catch((e: unknown) => out.destroy(e as Error));
  source.on('error', (e) => out.destroy(e instanceof StrataError ? e : new StrataError(`${exp.what}: read failed: ${e.message}`, { cause: e })));
  out.on('close', () => {
    if (!source.destroyed) source.destroy();
    tar?.release();
  });
  source.pipe(out);
  return out;
}

/**
 * Hashes a blob stream once: its own digest and, compressed, the digest of the decompressed tar.
 * Used where a format does not record the digest we must report (legacy docker-archive diff IDs,
 * compressed docker-archive layers named by something other than their digest).
 */
export async function hashBlob(source: Readable, compression: Compression, what: string): Promise<{ digest: Digest; diffId: Digest; size: number }> {
  const blobHash = createHash('sha256');
  const tar = tarHasher(compression, what);
  let size = 0;
  let tarDigest: Digest | undefined;
  try {
    for await (const chunk of source) {
      const c = chunk as Buffer;
      blobHash.update(c);
      size += c.length;
      await tar?.write(c);
    }
    tarDigest = await tar?.end();
  } catch (e) {
    source.destroy();
    tar?.release();
    if (e instanceof StrataError) throw e;
    throw new StrataError(`${what}: read failed: ${(e as Error).message}`, { cause: e });
  }
  const digest: Digest = `sha256:${blobHash.digest('hex')}`;
  // Uncompressed, the blob is the tar: hashed once.
  return { digest, diffId: tarDigest ?? digest, size };
}

/**
 * Parses and checks a base image config: a JSON object with os, architecture and
 * rootfs.diff_ids, whose diff_ids count must equal the layer count the manifest gives.
 */
export function parseImageConfig(bytes: Buffer, what: string, layerCount: number): ImageConfig {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new StrataError(`${what}: config is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new StrataError(`${what}: config is not a JSON object`);
  const c = value as Record<string, unknown>;
  const rootfs = c['rootfs'] as Record<string, unknown> | undefined;
  const diffIds = rootfs?.['diff_ids'];
  if (!Array.isArray(diffIds)) throw new StrataError(`${what}: config has no rootfs.diff_ids`);
  diffIds.forEach((d, i) => parseDigest(d, `${what}: config rootfs.diff_ids[${i}]`));
  if (typeof c['os'] !== 'string' || typeof c['architecture'] !== 'string') {
    throw new StrataError(`${what}: config lacks "os" or "architecture"`);
  }
  if (diffIds.length !== layerCount) {
    throw new StrataError(`${what}: the manifest lists ${layerCount} layer(s) but the config's rootfs.diff_ids lists ${diffIds.length}`);
  }
  return value as ImageConfig;
}
