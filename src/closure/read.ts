import { readFile } from 'node:fs/promises';
import { StrataError } from '../util/errors.js';
import { buildClosure } from './build-closure.js';
import { decodeClosureInput } from './formats.js';
import { checkStoreDir, DEFAULT_STORE_DIR } from './store-path.js';
import type { Closure } from './types.js';

export interface ReadClosureOptions {
  /** Logical store directory; default: what the input declares, else `/nix/store`. */
  storeDir?: string;
  /** Explicit roots; default: those in the input (strata form), else the paths nothing refers to. */
  roots?: readonly string[];
}

/**
 * Validates parsed closure JSON in any accepted format (see formats.ts) and returns the Closure.
 * `source` names the input (usually the file) in every error message.
 */
export function parseClosure(input: unknown, source: string, opts: ReadClosureOptions = {}): Closure {
  const decoded = decodeClosureInput(input, source);
  const storeDir = resolveStoreDir(opts.storeDir, decoded.storeDirs, source);
  // Versioned path-info prints base names (`<hash>-<name>`) rather than full paths.
  const full = (p: string): string => (decoded.baseNames && !p.startsWith('/') ? `${storeDir}/${p}` : p);
  const entries = decoded.baseNames
    ? decoded.entries.map((e) => ({ ...e, path: full(e.path), references: e.references.map(full) }))
    : decoded.entries;
  const roots = opts.roots ?? decoded.roots?.map(full);
  return buildClosure(entries, { source, storeDir, roots });
}

/** Reads and parses a closure file; every failure is a StrataError naming the file. */
export async function readClosureFile(file: string, opts: ReadClosureOptions = {}): Promise<Closure> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new StrataError(`cannot read closure file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let input: unknown;
  try {
    // A BOM is invisible in editors and harmless, but JSON.parse rejects it.
    input = JSON.parse(text.startsWith('\uFEFF') ? text.slice(1) : text);
  } catch (err) {
    throw new StrataError(`${file}: malformed JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseClosure(input, file, opts);
}

/**
 * One store directory for the whole closure: the caller's, the input's, or the default. Paths are
 * checked against it by prefix, so the input disagreeing with itself or with the caller is an error
 * rather than something to guess about.
 */
function resolveStoreDir(explicit: string | undefined, declared: readonly { storeDir: unknown; where: string }[], source: string): string {
  let chosen: { storeDir: string; where: string } | undefined;
  if (explicit !== undefined) chosen = { storeDir: checkStoreDir(explicit, 'the storeDir option'), where: 'the storeDir option' };
  for (const d of declared) {
    const storeDir = checkStoreDir(d.storeDir, `${source} (${d.where})`);
    if (chosen === undefined) chosen = { storeDir, where: d.where };
    else if (chosen.storeDir !== storeDir) {
      throw new StrataError(`${source}: store directory ${storeDir} in ${d.where} disagrees with ${chosen.storeDir} from ${chosen.where}`);
    }
  }
  return chosen?.storeDir ?? DEFAULT_STORE_DIR;
}
