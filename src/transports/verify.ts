import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
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

/** zstd base layers are refused up front: node:zlib has no zstd before v22.15, and strata runs on 20. */
export function zstdUnsupported(what: string): StrataError {
  return new StrataError(`${what} is zstd-compressed, which strata cannot read yet; recompress the base image with gzip or none (e.g. skopeo copy --dest-compress-format gzip)`);
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
 * Wraps a blob stream so that it passes the bytes through unchanged and, when the blob ends,
 * errors unless the blob hashes to `digest`, has `size` bytes and decompresses to `diffId`.
 * The consumer therefore never finishes reading a corrupt base layer without noticing. gzip is
 * inflated in a side pipe purely to hash the tar; backpressure from that pipe slows the main one
 * rather than buffering.
 */
export function verifyingLayerStream(source: Readable, exp: LayerExpectation): Readable {
  if (exp.compression === 'zstd') throw zstdUnsupported(exp.what);
  const blobHash = createHash('sha256');
  const tarHash = exp.compression === 'gzip' ? createHash('sha256') : undefined;
  let gunzip: Gunzip | undefined;
  let gunzipDone: Promise<void> = Promise.resolve();
  if (tarHash !== undefined) {
    const g = createGunzip();
    gunzip = g;
    g.on('data', (c: Buffer) => tarHash.update(c));
    gunzipDone = new Promise<void>((resolve, reject) => {
      g.on('end', resolve);
      g.on('error', (e) => reject(new StrataError(`${exp.what}: gzip stream is corrupt: ${e.message}`, { cause: e })));
    });
    // Attach a handler now so a rejection before flush is not reported as unhandled.
    gunzipDone.catch(() => undefined);
  }
  let count = 0;
  const out = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      blobHash.update(chunk);
      count += chunk.length;
      this.push(chunk);
      if (gunzip !== undefined && !gunzip.write(chunk)) {
        gunzip.once('drain', () => cb());
        return;
      }
      cb();
    },
    flush(cb: TransformCallback): void {
      gunzip?.end();
      gunzipDone.then(
        () => {
          const digest = `sha256:${blobHash.digest('hex')}` as Digest;
          if (count !== exp.size) {
            return cb(new StrataError(`${exp.what}: size mismatch: expected ${exp.size} bytes, read ${count}`));
          }
          if (digest !== exp.digest) {
            return cb(new StrataError(`${exp.what}: digest mismatch: expected ${exp.digest}, blob hashes to ${digest}`));
          }
          const diffId = tarHash === undefined ? digest : (`sha256:${tarHash.digest('hex')}` as Digest);
          if (diffId !== exp.diffId) {
            return cb(new StrataError(`${exp.what}: diff ID mismatch: config says ${exp.diffId}, uncompressed layer hashes to ${diffId}`));
          }
          cb();
        },
        (e: unknown) => cb(e as Error),
      );
    },
  });
  gunzipDone.catch((e: unknown) => out.destroy(e as Error));
  source.on('error', (e) => out.destroy(e instanceof StrataError ? e : new StrataError(`${exp.what}: read failed: ${e.message}`, { cause: e })));
  out.on('close', () => {
    if (!source.destroyed) source.destroy();
    gunzip?.destroy();
  });
  source.pipe(out);
  return out;
}

/**
 * Hashes a blob stream once: its own digest and, for gzip, the digest of the decompressed tar.
 * Used where a format does not record the digest we must report (legacy docker-archive diff IDs,
 * gzipped docker-archive layers named by something other than their digest).
 */
export async function hashBlob(source: Readable, compression: Compression, what: string): Promise<{ digest: Digest; diffId: Digest; size: number }> {
  if (compression === 'zstd') {
    source.destroy();
    throw zstdUnsupported(what);
  }
  const blobHash = createHash('sha256');
  const tarHash = createHash('sha256');
  let size = 0;
  const gunzip = compression === 'gzip' ? createGunzip() : undefined;
  const inflated = gunzip === undefined ? Promise.resolve() : (async () => {
    for await (const c of gunzip) tarHash.update(c as Buffer);
  })();
  inflated.catch(() => undefined);
  try {
    for await (const chunk of source) {
      const c = chunk as Buffer;
      blobHash.update(c);
      size += c.length;
      if (gunzip === undefined) tarHash.update(c);
      // Wait for the inflater to catch up; its failure ends the wait too (drain would never come).
      else if (!gunzip.write(c)) await Promise.race([new Promise<void>((r) => gunzip.once('drain', r)), inflated]);
    }
    gunzip?.end();
    await inflated;
  } catch (e) {
    gunzip?.destroy();
    if (e instanceof StrataError) throw e;
    throw new StrataError(`${what}: ${compression === 'gzip' ? 'gzip stream is corrupt or unreadable' : 'read failed'}: ${(e as Error).message}`, { cause: e });
  }
  return { digest: `sha256:${blobHash.digest('hex')}`, diffId: `sha256:${tarHash.digest('hex')}`, size };
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
