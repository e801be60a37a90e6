import { readdir, lstat } from 'node:fs/promises';
import { ownPaths, type Owner, type PathRule } from '../tar/ownership.js';
import { basename, join, posix } from 'node:path';
import type { Closure } from '../closure/types.js';
import type { TarEntry } from '../tar/entry.js';
import { directoryEntry, finalizeEntries, scanTree, symlinkEntry } from '../tar/scan.js';
import { imagePath } from '../image/image-path.js';
import { StrataError } from '../util/errors.js';

/** What goes into the customisation layer, on top of the store-path layers. */
export interface CustomisationSpec {
  /** `--add SRC:DEST`: host files, directories or fast-glob patterns placed at image paths. */
  adds: readonly { source: string; dest: string }[];
  /** `--bin STOREPATH`: every entry of STOREPATH/bin linked as /bin/<name>. */
  bins: readonly string[];
  /** `--symlink LINK:TARGET`. */
  symlinks: readonly { link: string; target: string }[];
  /** `--remove PATH`: paths of lower (base) layers to delete, written as OCI whiteouts. */
  removes: readonly string[];
  /** A later --bin's link replaces an earlier one of the same name instead of failing (`--allow-shadow`). */
  shadowBins?: boolean;
  /** Owner of every entry (`--uid/--gid/--uname/--gname`); unset, root. */
  owner?: Owner;
  /** `--chown` and `--chmod`, in order. */
  paths?: readonly PathRule[];
  /** Generated files (the Nix database of --nix-db). */
  files?: readonly TarEntry[];
}

export const emptyCustomisation: CustomisationSpec = { adds: [], bins: [], symlinks: [], removes: [] };

/** The names in a store path's bin/ directory (what `--bin` links), from wherever the path's files are. */
export type BinLister = (storePath: string) => Promise<string[]>;

/** Lists bin/ of the closure's store paths on disk, under the physical `storeRoot`. */
export function storeBinLister(closure: Closure, storeRoot: string): BinLister {
  return async (storePath) => {
    if (!closure.paths.has(storePath)) throw new StrataError(`--bin ${storePath}: not a store path of the closure`);
    const binDir = join(storeRoot, storePath, 'bin');
    return readdir(binDir).catch(() => {
      throw new StrataError(`--bin ${storePath}: ${binDir} does not exist`);
    });
  };
}

/** Parses `SRC:DEST` where DEST is an absolute image path (SRC may itself contain ':'). */
export function parseAdd(arg: string): { source: string; dest: string } {
  const i = arg.lastIndexOf(':/');
  if (i <= 0) throw new StrataError(`--add ${JSON.stringify(arg)}: expected SRC:DEST with DEST an absolute path in the image`);
  return { source: arg.slice(0, i), dest: imagePath(arg.slice(i + 1), '--add') };
}

/** Parses `LINK:TARGET` (LINK absolute in the image; TARGET written verbatim). */
export function parseSymlink(arg: string): { link: string; target: string } {
  const i = arg.indexOf(':');
  if (i <= 0 || i === arg.length - 1) throw new StrataError(`--symlink ${JSON.stringify(arg)}: expected LINK:TARGET`);
  return { link: imagePath(arg.slice(0, i), '--symlink'), target: arg.slice(i + 1) };
}

/**
 * The entries of the customisation layer. Everything is sorted and deduplicated by the same
 * rules as store layers; whiteouts are then moved before their siblings, as the OCI spec asks.
 */
export async function customisationEntries(spec: CustomisationSpec, listBin: BinLister): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  for (const add of spec.adds) entries.push(...(await addEntries(add.source, add.dest)));
  entries.push(...(await binLinks(spec.bins, listBin, spec.shadowBins ?? false)));
  for (const s of spec.symlinks) entries.push(symlinkEntry(s.link, s.target));
  entries.push(...(spec.files ?? []));

  const addedDirs = new Set(entries.filter((e) => e.type === 'directory').map((e) => e.name));
  const added = new Set(entries.map((e) => e.name));
  for (const raw of spec.removes) {
    const name = imagePath(raw, '--remove');
    if (addedDirs.has(name)) {
      // Removed and re-added as a directory: hide everything the lower layers had inside it.
      entries.push(whiteout(`${name}/.wh..wh..opq`));
    } else if (!added.has(name)) {
      const dir = posix.dirname(name);
      entries.push(whiteout(`${dir === '.' ? '' : `${dir}/`}.wh.${posix.basename(name)}`));
    }
    // Removed and re-added as a file or symlink: the new entry replaces the old one by itself.
  }
  return whiteoutsFirst(finalizeEntries(ownPaths(entries, spec.owner, spec.paths ?? [])));
}

async function addEntries(source: string, dest: string): Promise<TarEntry[]> {
  // Loaded for --add only: fast-glob's ~40 modules cost ~18 ms of every build's start-up.
  const { default: fg } = await import('fast-glob');
  if (!fg.isDynamicPattern(source)) {
    await lstat(source).catch(() => {
      throw new StrataError(`--add: ${source} does not exist`);
    });
    return scanTree(source, dest, 'normal');
  }
  const matches = (await fg(source, { onlyFiles: false, dot: true, followSymbolicLinks: false, unique: true })).sort();
  if (matches.length === 0) throw new StrataError(`--add: pattern ${JSON.stringify(source)} matches nothing`);
  const out: TarEntry[] = [directoryEntry(dest)];
  for (const m of matches) out.push(...(await scanTree(m, `${dest}/${basename(m)}`, 'normal')));
  return out;
}

/**
 * /bin/<name> → <store path>/bin/<name> for every name of every --bin path. Two paths with a
 * command of the same name (two versions of one package) are an error naming both, unless
 * `shadow`, when the later --bin wins.
 */
async function binLinks(storePaths: readonly string[], listBin: BinLister, shadow: boolean): Promise<TarEntry[]> {
  if (storePaths.length === 0) return [];
  const owner = new Map<string, string>();
  for (const storePath of storePaths) {
    for (const name of await listBin(storePath)) {
      const other = owner.get(name);
      if (other !== undefined && other !== storePath && !shadow) {
        throw new StrataError(`--bin: /bin/${name} is in both ${other} and ${storePath}; pass --allow-shadow to let the later one win`);
      }
      owner.set(name, storePath);
    }
  }
  const names = [...owner.keys()].sort();
  return [directoryEntry('bin'), ...names.map((n) => symlinkEntry(`bin/${n}`, `${owner.get(n)}/bin/${n}`))];
}

function whiteout(name: string): TarEntry {
  return { name, type: 'file', mode: 0o644, size: 0, content: new Uint8Array(0) };
}

/**
 * Bytewise order, except that within a directory whiteouts precede their siblings (OCI
 * image-spec layer.md: a whiteout must apply before anything it could shadow is extracted).
 */
function whiteoutsFirst(entries: TarEntry[]): TarEntry[] {
  const key = (e: TarEntry) => {
    const base = posix.basename(e.name);
    if (!base.startsWith('.wh.')) return Buffer.from(e.name, 'utf8');
    const dir = posix.dirname(e.name);
    return Buffer.from(`${dir === '.' ? '' : `${dir}/`}\u0000${base}`, 'utf8');
  };
  return entries.map((e) => ({ e, k: key(e) })).sort((a, b) => Buffer.compare(a.k, b.k)).map((x) => x.e);
}
