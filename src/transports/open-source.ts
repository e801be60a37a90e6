import { stat } from 'node:fs/promises';
import type { Platform } from '../image/config.js';
import { StrataError } from '../util/errors.js';
import { openDockerArchive } from './docker-archive/read.js';
import { openOciArchive, openOciLayout } from './oci-layout/read.js';
import { indexTarFile } from './tar-index.js';
import type { ImageSource } from './types.js';
import { openRegistrySource } from './registry/source.js';
import type { RegistryOptions } from './registry/client.js';

export interface OpenSourceOptions {
  platform?: { os: string; architecture: string; variant?: string };
  /** Credentials, insecure hosts and retries for `docker://` sources. */
  registry?: RegistryOptions;
}


/**
 * Opens a base image by reference:
 * `docker-archive:FILE[:NAME:TAG]`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker://…`,
 * or a bare path whose format is detected from its contents.
 */
export async function openImageSource(ref: string, opts: OpenSourceOptions = {}): Promise<ImageSource> {
  const platform: Platform | undefined = opts.platform;
  if (ref.startsWith('docker://')) return openRegistry(ref, opts);
  for (const transport of ['docker-archive', 'oci-archive', 'oci'] as const) {
    const prefix = `${transport}:`;
    if (!ref.startsWith(prefix)) continue;
    const { path, name } = await splitPathAndName(ref.slice(prefix.length));
    if (path === '') throw new StrataError(`${ref}: no path given`);
    switch (transport) {
      case 'docker-archive': return openDockerArchive(path, name !== undefined ? { ref: name } : {});
      case 'oci-archive': return openOciArchive(path, { ...(name !== undefined ? { ref: name } : {}), ...(platform ? { platform } : {}) });
      case 'oci': return openOciLayout(path, { ...(name !== undefined ? { ref: name } : {}), ...(platform ? { platform } : {}) });
    }
  }
  return openDetected(ref, platform);
}

/**
 * `PATH:NAME` splits at the first colon, as containers/image does — unless a longer prefix
 * names an existing file or directory, so paths that contain a colon still work.
 */
async function splitPathAndName(rest: string): Promise<{ path: string; name?: string }> {
  if (await exists(rest)) return { path: rest };
  const colons = [...rest.matchAll(/:/g)].map((m) => m.index!);
  const longestExisting = await (async () => {
    for (const c of [...colons].reverse()) if (await exists(rest.slice(0, c))) return c;
    return undefined;
  })();
  const at = longestExisting ?? colons[0];
  if (at === undefined) return { path: rest };
  const name = rest.slice(at + 1);
  return name === '' ? { path: rest.slice(0, at) } : { path: rest.slice(0, at), name };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function openDetected(path: string, platform: Platform | undefined): Promise<ImageSource> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new StrataError(`base image ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message} (expected a path or docker-archive:, oci:, oci-archive:, docker:// reference)`);
  }
  if (st.isDirectory()) {
    if (!(await exists(`${path}/oci-layout`))) throw new StrataError(`base image ${path}: directory has no oci-layout file (not an OCI image layout)`);
    return openOciLayout(path, platform ? { platform } : {});
  }
  // Scan the archive once and hand the index to whichever reader the contents call for.
  const index = await indexTarFile(path);
  const has = (n: string): boolean => index.members.has(n);
  // Docker >= 25 archives carry both; manifest.json is what docker-archive readers use.
  if (has('manifest.json') || has('repositories')) return openDockerArchive(path, { index });
  if (has('oci-layout')) return openOciArchive(path, { index, ...(platform ? { platform } : {}) });
  throw new StrataError(`base image ${path}: tar archive has neither manifest.json, repositories nor oci-layout — not a docker-archive or oci-archive`);
}

async function openRegistry(ref: string, opts: OpenSourceOptions): Promise<ImageSource> {
  return openRegistrySource(ref, { ...(opts.registry ?? {}), ...(opts.platform ? { platform: opts.platform } : {}) });
}
