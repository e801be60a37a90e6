/**
 * What a store path is as a package: its name, version and output, and the registry names
 * (repository and tags) it is published under. Pure: data in, data out.
 *
 * Names come from Nix, not guesses: the closure's `pname`/`version`/`output` fields when it has
 * them, else Nix's own split of the store path's name (parseDrvName), in which an output name
 * stays in the version (`curl-8.0.1-bin` is curl at 8.0.1-bin). Both give the same tag for the
 * same path, because the tag of a known non-default output carries it the same way.
 */
import { StrataError } from '../util/errors.js';
import { parseDrvName, storePathName } from './nix-name.js';
import type { StorePathInfo } from './types.js';

export interface PackageId {
  /** The Nix package name (`curl`). */
  readonly pname: string;
  /** The version as Nix reads it ('' when the name has none). */
  readonly version: string;
  /** The output, when the closure said (`bin`); otherwise any output suffix is part of `version`. */
  readonly output?: string;
}

/** The package a store path is. */
export function packageOf(info: Pick<StorePathInfo, 'path' | 'pname' | 'version' | 'output'>, storeDir: string): PackageId {
  const parsed = parseDrvName(storePathName(info.path, storeDir));
  if (info.pname === undefined) return { pname: parsed.name, version: parsed.version };
  return { pname: info.pname, version: info.version ?? parsed.version, ...(info.output !== undefined ? { output: info.output } : {}) };
}

/** Stands in for the version of a package whose name has none (`greeting-data`), in tags. */
export const UNVERSIONED_TAG = 'unversioned';

/** The plain tag a package is published under: its version, and its output unless it is `out`. */
export function versionTag(pkg: PackageId): string {
  const text = pkg.version === '' ? UNVERSIONED_TAG : pkg.output !== undefined && pkg.output !== 'out' ? `${pkg.version}-${pkg.output}` : pkg.version;
  // Tags allow [A-Za-z0-9_.-] and must not start with '.' or '-'; Nix names also allow + ? =.
  const tag = text.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[.-]/, '_');
  if (tag.length > 128 - 9) throw new StrataError(`package ${pkg.pname} has a version of ${text.length} characters, too long for a registry tag`);
  return tag;
}

/** The first characters of a store path's hash: what tells two builds of one version apart. */
export function hashPrefix(storePath: string, storeDir: string): string {
  return storePath.slice(storeDir.length + 1, storeDir.length + 9);
}

/** The tag only this build of the package has: `<version tag>-<hash prefix>`. It never moves. */
export function buildTag(pkg: PackageId, storePath: string, storeDir: string): string {
  return `${versionTag(pkg)}-${hashPrefix(storePath, storeDir)}`;
}

const BUILD_SUFFIX = /-[0-9abcdfghijklmnpqrsvwxyz]{8}$/;

/**
 * The tags of a repository that name versions: every tag but the `<version>-<hash>` build tags,
 * which are recognised by their plain version tag being there too (every published version has
 * one), so that versions like `1.0-20240101` are not mistaken for build tags.
 */
export function versionTags(tags: readonly string[]): string[] {
  const all = new Set(tags);
  return tags.filter((t) => !(BUILD_SUFFIX.test(t) && all.has(t.slice(0, -9))));
}

/**
 * The repository a package name is published under. Registry repository names are lowercase
 * `[a-z0-9]` runs joined by `.`, `_`, `__` or dashes; Nix names also have upper case and `+`
 * (`libstdc++`, `SDL2`), so those map: lower case, `+` spelt `plus`, anything else a dash.
 * Distinct names that map alike are refused where both meet (publish).
 */
export function repositoryName(pname: string): string {
  const mapped = pname.toLowerCase().replace(/\+/g, 'plus').replace(/[^a-z0-9._-]/g, '-');
  // Separator runs that the grammar does not allow (`._`, `___`, `-.`) become one dash.
  const joined = mapped.replace(/[._-]+/g, (run) => (/^(\.|_|__|-+)$/.test(run) ? run : '-')).replace(/^[._-]+|[._-]+$/g, '');
  if (joined === '') throw new StrataError(`package name ${JSON.stringify(pname)} has no letters or digits to name a repository`);
  return joined;
}
