import { createReadStream } from 'node:fs';
import { holdTemp, releaseTemp } from '../util/temp-paths.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Compression } from '../image/media-types.js';
import { StrataError } from '../util/errors.js';
import { openDockerArchiveDestination } from './docker-archive/write.js';
import { openOciArchiveDestination, openOciDirectoryDestination, openOciLayoutAppendDestination } from './oci-layout/write.js';
import { parseLocalReference, transportOf } from './reference.js';
import type { RegistryOptions } from './registry/client.js';
import type { ImageDestination } from './types.js';

export const OUTPUT_FORMATS = ['docker-archive', 'oci', 'oci-archive'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface OutputSpec {
  format: OutputFormat;
  /** A file or directory path, or '-' for standard output. */
  output: string;
  /** mtime of archive members. */
  mtime: number;
  compression?: Compression;
}

export interface DestinationOptions {
  /** Format of a plain path (no transport prefix); default docker-archive. */
  format?: OutputFormat;
  /** mtime of archive members. */
  mtime: number;
  compression?: Compression;
  /** Access, spooling and mount sources for `docker://` destinations. */
  registry?: RegistryOptions;
}

/**
 * Opens a destination by reference, the same references `openImageSource` reads:
 * `oci:DIR[:REF]` (adds to the layout at DIR, made when missing), `oci-archive:FILE[:REF]`,
 * `docker-archive:FILE[:NAME:TAG]`, `docker://HOST/REPO[:TAG]`, or a plain path (or `-`)
 * written in `opts.format`. A REF (or NAME:TAG) names the root in the output, beside any `--tag`.
 */
export async function openImageDestination(ref: string, opts: DestinationOptions): Promise<ImageDestination> {
  const compression = opts.compression ? { compression: opts.compression } : {};
  if (ref.startsWith('docker://')) {
    const { openRegistryDestination } = await import('./registry/destination.js');
    return openRegistryDestination(ref, { ...(opts.registry ?? {}), ...compression });
  }
  const local = await parseLocalReference(ref);
  if (local !== undefined) {
    const where = resolve(local.path);
    const name = local.name;
    switch (local.transport) {
      case 'docker-archive': return openDockerArchiveDestination(where, { mtime: opts.mtime, ...compression, ...(name !== undefined ? { tag: name } : {}) });
      case 'oci-archive': return openOciArchiveDestination(where, { mtime: opts.mtime, ...compression, ...(name !== undefined ? { refNames: [name] } : {}) });
      case 'oci': return openOciLayoutAppendDestination(where, { ...compression, ...(name !== undefined ? { refNames: [name] } : {}) });
    }
  }
  return openOutputDestination({ format: opts.format ?? 'docker-archive', output: ref, mtime: opts.mtime, ...compression });
}

/**
 * The layer compression a destination gets unless asked: gzip where registries and OCI tools
 * expect it; a docker-archive stays uncompressed, which is what `docker save` writes.
 */
export function defaultCompression(ref: string, format: OutputFormat = 'docker-archive'): Compression {
  const transport = transportOf(ref) ?? format;
  return transport === 'docker-archive' ? 'none' : 'gzip';
}

/** Opens the local destination an output spec names. */
export async function openOutputDestination(spec: OutputSpec): Promise<ImageDestination> {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(spec.format)) {
    throw new StrataError(`unknown format ${JSON.stringify(spec.format)}: expected one of ${OUTPUT_FORMATS.join(', ')}`);
  }
  const opts = { mtime: spec.mtime, ...(spec.compression ? { compression: spec.compression } : {}) };
  if (spec.output === '-') {
    if (spec.format === 'oci') throw new StrataError('an OCI layout is a directory and cannot be written to standard output: use --format oci-archive');
    return toStdout(spec.format, opts);
  }
  const path = resolve(spec.output);
  switch (spec.format) {
    case 'docker-archive': return openDockerArchiveDestination(path, opts);
    case 'oci-archive': return openOciArchiveDestination(path, opts);
    case 'oci': return openOciDirectoryDestination(path, opts);
  }
}

/**
 * `-o -`: the archive is assembled in a private temporary directory and streamed to stdout once
 * complete. Its layer members are named by digests known only after their bytes, so streaming
 * without a seekable file would mean reading every store file twice; and a consumer never sees
 * a partial image when the build fails.
 */
async function toStdout(format: 'docker-archive' | 'oci-archive', opts: { mtime: number; compression?: Compression }): Promise<ImageDestination> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-stdout-'));
  holdTemp(dir);
  const file = join(dir, 'image.tar');
  const inner = format === 'docker-archive' ? await openDockerArchiveDestination(file, opts) : await openOciArchiveDestination(file, opts);
  return {
    ...inner,
    name: `${format}:-`,
    async commit(image, refs) {
      try {
        await inner.commit(image, refs);
        await pipeline(createReadStream(file), process.stdout, { end: false });
      } finally {
        await rm(dir, { recursive: true, force: true });
        releaseTemp(dir);
      }
    },
    async abort() {
      await inner.abort();
      await rm(dir, { recursive: true, force: true });
      releaseTemp(dir);
    },
  };
}
