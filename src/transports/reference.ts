import { stat } from 'node:fs/promises';
import { StrataError } from '../util/errors.js';

/**
 * The references every source and destination takes: `docker://REF`, `docker-archive:FILE[:NAME]`,
 * `oci-archive:FILE[:REF]`, `oci:DIR[:REF]`, or a plain path. One parser, so `-o` and `--from`
 * can never disagree about what a reference means.
 */

export type Transport = 'docker' | 'docker-archive' | 'oci-archive' | 'oci';

const LOCAL = ['docker-archive', 'oci-archive', 'oci'] as const;

/** The transport a reference names by its prefix; undefined for a plain path. */
export function transportOf(ref: string): Transport | undefined {
  if (ref.startsWith('docker://')) return 'docker';
  return LOCAL.find((t) => ref.startsWith(`${t}:`));
}

export interface LocalReference {
  readonly transport: Exclude<Transport, 'docker'>;
  readonly path: string;
  /** NAME:TAG of a docker-archive, REF of an OCI layout or archive. */
  readonly name?: string;
}

/** Splits a `docker-archive:`, `oci-archive:` or `oci:` reference; undefined for any other. */
export async function parseLocalReference(ref: string): Promise<LocalReference | undefined> {
  const transport = transportOf(ref);
  if (transport === undefined || transport === 'docker') return undefined;
  const { path, name } = await splitPathAndName(ref.slice(transport.length + 1));
  if (path === '') throw new StrataError(`${ref}: no path given`);
  return { transport, path, ...(name !== undefined ? { name } : {}) };
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

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
