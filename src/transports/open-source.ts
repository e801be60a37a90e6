import { stat } from 'node:fs/promises';
import type { Platform } from '../image/platform.js';
import { StrataError } from '../util/errors.js';
import { openDockerArchive } from './docker-archive/read.js';
import { openOciArchiveRoot, openOciLayoutRoot } from './oci-layout/read.js';
import { exists, parseLocalReference } from './reference.js';
import { indexTarFile } from './tar-index.js';
import { imageOf, type ImageSource, type RootSource } from './types.js';
import type { RegistryOptions } from './registry/client.js';

export interface OpenSourceOptions {
  /** Which image of a multi-platform source (default linux/amd64; containers/image's rules). */
  platform?: Platform;
  /** Credentials, insecure hosts and retries for `docker://` sources. */
  registry?: RegistryOptions;
}

/**
 * Opens an image by reference:
 * `docker-archive:FILE[:NAME:TAG]`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker://…`,
 * or a bare path whose format is detected from its contents. A multi-platform root resolves to
 * the image for `opts.platform`.
 */
export async function openImageSource(ref: string, opts: OpenSourceOptions = {}): Promise<ImageSource> {
  return imageOf(await openImageRoot(ref, opts), opts.platform);
}

/** Opens what a reference names as it is: an image, or an index (whose children open lazily). */
export async function openImageRoot(ref: string, opts: OpenSourceOptions = {}): Promise<RootSource> {
  if (ref.startsWith('docker://')) {
    const { openRegistryRoot } = await import('./registry/source.js');
    return openRegistryRoot(ref, opts.registry ?? {});
  }
  const local = await parseLocalReference(ref);
  if (local !== undefined) {
    const named = local.name !== undefined ? { ref: local.name } : {};
    switch (local.transport) {
      case 'docker-archive': return rootOf(await openDockerArchive(local.path, named));
      case 'oci-archive': return openOciArchiveRoot(local.path, named);
      case 'oci': return openOciLayoutRoot(local.path, named);
    }
  }
  return openDetected(ref);
}

/** A docker-archive holds single images: its root is the image. */
function rootOf(source: ImageSource): RootSource {
  return { name: source.name, root: source.image, ...(source.names ? { names: source.names } : {}), close: () => source.close() };
}

async function openDetected(path: string): Promise<RootSource> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new StrataError(`image ${path} ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `cannot be read: ${(e as Error).message}`} (expected a path or docker-archive:, oci:, oci-archive:, docker:// reference)`);
  }
  if (st.isDirectory()) {
    if (!(await exists(`${path}/oci-layout`))) throw new StrataError(`image ${path}: directory has no oci-layout file (not an OCI image layout)`);
    return openOciLayoutRoot(path);
  }
  // Scan the archive once and hand the index to whichever reader the contents call for.
  const index = await indexTarFile(path);
  const has = (n: string): boolean => index.members.has(n);
  // Docker >= 25 archives carry both; manifest.json is what docker-archive readers use.
  if (has('manifest.json') || has('repositories')) return rootOf(await openDockerArchive(path, { index }));
  if (has('oci-layout')) return openOciArchiveRoot(path, { index });
  throw new StrataError(`image ${path}: tar archive has neither manifest.json, repositories nor oci-layout — not a docker-archive or oci-archive`);
}
