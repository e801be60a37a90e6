import { readFile, stat } from 'node:fs/promises';
import { queryClosure, storePathArgument } from '../closure/nix-query.js';
import { readClosureFile } from '../closure/read.js';
import type { Closure } from '../closure/types.js';
import { layerHistory, recordedStorePaths, storePathsFromHistory } from '../image/history.js';
import { LayerScanner } from '../image/layer-scan.js';
import type { Platform } from '../image/platform.js';
import { parsePlanFile } from '../layering/plan-file.js';
import type { PreviousAssignment } from '../layering/stable.js';
import { openImageSource } from '../transports/open-source.js';
import type { RegistryOptions } from '../transports/registry/client.js';
import type { ImageSource } from '../transports/types.js';
import { StrataError } from '../util/errors.js';

/**
 * What a build or a plan reads besides its flags: the closure, the base image and the store paths
 * it already carries, and the previous release's layer assignment. The domain rules live here,
 * once, for the CLI and library callers alike.
 */

export interface ClosureInput {
  /** A closure file (any supported form), or a closure already parsed. */
  readonly closure: string | Closure;
  /** Logical store directory when the closure does not say (default /nix/store). */
  readonly storeDir?: string;
  /** Root store paths (default: the paths nothing refers to). */
  readonly roots?: readonly string[];
  /** The store Nix is asked about when `closure` names a store path (`nix … --store`). */
  readonly nixStore?: string;
}

/** A closure file read, or — when `closure` names a store path or a symlink to one (`./result`) — Nix asked for its closure. */
export async function loadClosure(input: ClosureInput): Promise<Closure> {
  if (typeof input.closure !== 'string') return input.closure;
  const opts = {
    ...(input.storeDir ? { storeDir: input.storeDir } : {}),
    ...(input.roots?.length ? { roots: [...input.roots] } : {}),
  };
  const storePath = await storePathArgument(input.closure, input.storeDir ?? '/nix/store');
  if (storePath !== undefined) return queryClosure(storePath, { ...opts, ...(input.nixStore ? { nixStore: input.nixStore } : {}) });
  return readClosureFile(input.closure, opts);
}

export interface SourceAccess {
  /** Which image of a multi-platform base or previous release. */
  readonly platform?: Platform;
  readonly registry?: RegistryOptions;
}

/** A base image and the store paths its layers already carry (so they are not added again). */
export interface Base {
  readonly source: ImageSource;
  readonly paths: ReadonlySet<string>;
}

/**
 * Opens a base image and finds the store paths it carries. `scanner` shares reads with later
 * checks; with `fullScan` (a build that also imports, so the base is checked for conflicts) each
 * foreign layer is read once, whole, for both.
 */
export async function openBase(ref: string, closure: Closure, access: SourceAccess = {}, scanner = new LayerScanner(), fullScan = false): Promise<Base> {
  const source = await openImageSource(ref, access);
  try {
    const paths = new Set<string>();
    const recorded = recordedStorePaths(source.image);
    for (const [i, layer] of source.image.layers.entries()) {
      if (fullScan && recorded[i] === undefined) await scanner.members(layer, `layer ${layer.digest} of ${source.name}`);
      const found = recorded[i] ?? (await scanner.storePaths(layer, closure.storeDir, source.name));
      for (const p of found) paths.add(p);
    }
    return { source, paths };
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** The previous release's store-path layers: from an image strata built, or a plan file. */
export async function loadPrevious(from: { previous?: string; planIn?: string }, access: SourceAccess = {}): Promise<PreviousAssignment | undefined> {
  if (from.previous && from.planIn) throw new StrataError('give either --previous or --plan-in, not both');
  if (from.planIn) {
    const file = from.planIn;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new StrataError(`--plan-in ${file}: ${(err as Error).message}`);
    }
    return parsePlanFile(parsed, file);
  }
  if (!from.previous) return undefined;
  const source = await openImageSource(from.previous, access);
  try {
    const history = layerHistory(source.image.config.history, source.image.layers.length);
    const layers = history.map(storePathsFromHistory).filter((p): p is string[] => p !== undefined && p.length > 0);
    if (layers.length === 0) {
      throw new StrataError(`--previous ${from.previous}: the image records no strata store layers (was it built by strata?); use --plan-in instead`);
    }
    return { layers };
  } finally {
    await source.close();
  }
}

export async function checkStoreRoot(root: string): Promise<void> {
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new StrataError(`--store-root ${root}: not a directory`);
}
