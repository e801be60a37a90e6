import { isIndex, type Image, type ImageIndex } from '../image/image.js';
import { StrataError } from '../util/errors.js';
import { withProgress, type ProgressSink } from '../transports/progress.js';
import type { ImageSettings } from '../image/assemble.js';
import type { Compression } from '../image/media-types.js';
import { openImageDestination, type OutputFormat } from '../transports/open-destination.js';
import type { RegistryOptions } from '../transports/registry/client.js';
import type { ImageDestination } from '../transports/types.js';

/** Commits a root to a destination, aborting it (which removes what it wrote) on any failure. */
export async function commitTo(dest: ImageDestination, root: Image | ImageIndex, refs: readonly string[]): Promise<void> {
  try {
    if (!isIndex(root)) for (const layer of root.layers) await dest.addLayer(layer);
    await dest.commit(root, refs);
  } catch (e) {
    await dest.abort();
    throw e;
  }
}

/** What an operation that writes a new image (stack, embed) is told about its output. */
export interface OutputRequest {
  /** Where the image goes: any reference `strata build -o` takes. */
  readonly output: string;
  /** Format of a plain-path output (default docker-archive). */
  readonly format?: OutputFormat;
  readonly tags?: readonly string[];
  /** Config fields set on top of the config the image starts from (env merged by key). */
  readonly settings?: Partial<ImageSettings>;
  /** mtime of the files and directories strata makes (default: SOURCE_DATE_EPOCH, else 1). */
  readonly mtime?: number;
  /** Compression of new layers (default: gzip for registries and OCI outputs, none for docker-archive). */
  readonly compression?: Compression;
  /** Told of each layer and of the bytes as they are written. */
  readonly progress?: ProgressSink;
}

export interface OutputOptions {
  readonly format?: OutputFormat;
  readonly compression: Compression;
  readonly mtime: number;
  readonly registry: RegistryOptions;
  /** References the new image's layers come from: a registry output mounts from those in its registry. */
  readonly sources: readonly string[];
  /** Told of each layer and of the bytes as they are written (the CLI's progress display). */
  readonly progress?: ProgressSink;
}

/**
 * The destination a build or a stack writes its new image to. A registry output spools each new
 * layer so its digest is known before upload (a layer the registry has then costs one HEAD), and
 * mounts layers from the sources' repositories of the same registry instead of uploading them.
 */
export async function openOutput(output: string, opts: OutputOptions): Promise<ImageDestination> {
  const dest = await openBare(output, opts);
  return opts.progress ? withProgress(dest, opts.progress) : dest;
}

async function openBare(output: string, opts: OutputOptions): Promise<ImageDestination> {
  const { mtime, compression, registry } = opts;
  if (!output.startsWith('docker://')) return openImageDestination(output, { ...(opts.format ? { format: opts.format } : {}), mtime, compression, registry });
  const { sameRegistryRepository } = await import('../transports/registry/reference.js');
  const mountFrom = [...new Set(opts.sources.map((s) => sameRegistryRepository(s, output)).filter((r): r is string => r !== undefined))];
  return openImageDestination(output, {
    mtime,
    compression,
    registry: { ...registry, blobWrites: 'spool', ...(mountFrom.length > 0 ? { mountFrom } : {}) },
  });
}

/**
 * An operation that writes `output`, with a full disk said as such, naming the output the user
 * gave rather than the temporary file it was being written under (which is gone by now).
 */
export async function writing<T>(output: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    const code = (e as { cause?: { code?: string }; code?: string }).cause?.code ?? (e as { code?: string }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || /\bENOSPC\b|\bEDQUOT\b/.test((e as Error).message ?? '')) {
      throw new StrataError(`output ${output}: no space left on the device (or quota) while writing it; nothing was left behind — free some space or write elsewhere (${(e as Error).message})`, { cause: e });
    }
    throw e;
  }
}
