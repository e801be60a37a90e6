import { StrataError } from '../util/errors.js';
import { canonicalJson } from '../util/json.js';
import type { ClosureEntry } from './build-closure.js';

/** Which input shape a closure file had; reported for diagnostics only. */
export type ClosureFormat =
  | 'path-info-array' // `nix path-info --json -r`, Nix <= 2.18; also a bare exportReferencesGraph list
  | 'path-info-object' // Nix >= 2.19: object keyed by store path
  | 'path-info-versioned' // Nix >= 2.33 `--json-format 2`: {version, storeDir, info: {basename: ...}}
  | 'references-graph' // exportReferencesGraph list under a key, e.g. {"closure": [...]}
  | 'strata'; // {"version": 1, "storeDir"?, "roots"?, "paths": [...]}

export interface DecodedClosure {
  readonly format: ClosureFormat;
  /** Paths and references as written; in the versioned form they may be base names. */
  readonly entries: ClosureEntry[];
  /** Store directories the input declared (top level and per entry), each with where it was seen. */
  readonly storeDirs: { readonly storeDir: unknown; readonly where: string }[];
  readonly roots?: readonly string[];
  /** True when names without a leading `/` are store path base names to prefix with the store dir. */
  readonly baseNames: boolean;
}

export const ACCEPTED_FORMATS =
  'accepted formats: `nix path-info --json --recursive` output (a JSON array of {path, references, ...} objects, ' +
  'an object keyed by store path, or the versioned {"version": 2, "storeDir", "info": {...}} form), ' +
  'exportReferencesGraph output (a list of {path, references}, bare or under a single key such as "closure" or "graph"), ' +
  'or strata\'s {"version": 1, "paths": [{"path", "references"}]}';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPathEntry(v: unknown): v is Json & { path: string } {
  return isObject(v) && typeof v['path'] === 'string';
}

/** Recognises the shape of parsed closure JSON and extracts its entries, unvalidated. */
export function decodeClosureInput(input: unknown, source: string): DecodedClosure {
  if (Array.isArray(input)) return decodeList(input, source, 'path-info-array');
  if (!isObject(input)) throw new StrataError(`${source}: unrecognised closure format (top level is ${describe(input)}); ${ACCEPTED_FORMATS}`);

  const keys = Object.keys(input);
  // strata's own form: the explicit version number is what marks it as ours.
  if (Object.hasOwn(input, 'paths') && Object.hasOwn(input, 'version') && !Object.hasOwn(input, 'info')) {
    return decodeStrata(input, source);
  }
  // Nix >= 2.33 with --json-format >= 2 wraps the map: {"version": 2, "storeDir": ..., "info": {...}}.
  if (isObject(input['info']) && typeof input['version'] === 'number') {
    const version = input['version'];
    if (!Number.isInteger(version) || version < 2) {
      throw new StrataError(`${source}: path-info JSON with an "info" map has version ${version}; expected 2 or later`);
    }
    const decoded = decodeKeyed(input['info'], source, 'path-info-versioned', true);
    if (Object.hasOwn(input, 'storeDir')) decoded.storeDirs.unshift({ storeDir: input['storeDir'], where: 'the top-level "storeDir"' });
    return decoded;
  }
  // exportReferencesGraph under its single key, e.g. {"closure": [...]}.
  if (keys.length === 1 && Array.isArray(input[keys[0]!])) {
    return decodeList(input[keys[0]!] as unknown[], `${source} (key ${JSON.stringify(keys[0])})`, 'references-graph');
  }
  // Nix 2.19 .. 2.32 (and --json-format 1): an object keyed by full store path. Nix 2.33 may add
  // "version"/"storeDir" metadata beside the paths, so those two keys are not store paths.
  const pathKeys = keys.filter((k) => !(k === 'version' && typeof input[k] === 'number') && !(k === 'storeDir' && typeof input[k] === 'string'));
  if (pathKeys.every((k) => k.startsWith('/') && (input[k] === null || isObject(input[k])))) {
    const decoded = decodeKeyed(Object.fromEntries(pathKeys.map((k) => [k, input[k]])), source, 'path-info-object', false);
    if (typeof input['storeDir'] === 'string') decoded.storeDirs.unshift({ storeDir: input['storeDir'], where: 'the top-level "storeDir"' });
    return decoded;
  }
  // A structured-attrs file (.attrs.json) holds the graph beside other attributes: accept it when
  // exactly one key holds a list of path entries.
  const graphKeys = keys.filter((k) => {
    const v = input[k];
    return Array.isArray(v) && v.length > 0 && v.every(isPathEntry);
  });
  if (graphKeys.length === 1) {
    return decodeList(input[graphKeys[0]!] as unknown[], `${source} (key ${JSON.stringify(graphKeys[0])})`, 'references-graph');
  }
  if (graphKeys.length > 1) {
    throw new StrataError(`${source}: ambiguous closure: keys ${graphKeys.map((k) => JSON.stringify(k)).join(', ')} all hold path lists; ${ACCEPTED_FORMATS}`);
  }
  throw new StrataError(`${source}: unrecognised closure format (an object with keys ${keys.slice(0, 5).map((k) => JSON.stringify(k)).join(', ')}${keys.length > 5 ? ', ...' : ''}); ${ACCEPTED_FORMATS}`);
}

function decodeList(list: readonly unknown[], source: string, format: ClosureFormat): DecodedClosure {
  const entries: ClosureEntry[] = [];
  const storeDirs: DecodedClosure['storeDirs'] = [];
  list.forEach((item, i) => {
    if (!isPathEntry(item)) {
      throw new StrataError(`${source}: entry ${i} is not an object with a "path" string (${describe(item)}); ${ACCEPTED_FORMATS}`);
    }
    entries.push(decodeEntry(item, item.path, source, storeDirs));
  });
  return { format, entries, storeDirs, baseNames: false };
}

function decodeKeyed(map: Json, source: string, format: ClosureFormat, baseNames: boolean): DecodedClosure {
  const entries: ClosureEntry[] = [];
  const storeDirs: DecodedClosure['storeDirs'] = [];
  for (const [path, value] of Object.entries(map)) {
    if (!isObject(value)) {
      throw new StrataError(value === null
        ? `${source}: store path ${path} is not valid in the store (path-info printed null for it)`
        : `${source}: store path ${path} maps to ${describe(value)}, expected an object`);
    }
    entries.push(decodeEntry(value, path, source, storeDirs));
  }
  return { format, entries, storeDirs, baseNames };
}

function decodeStrata(input: Json, source: string): DecodedClosure {
  if (input['version'] !== 1) {
    throw new StrataError(`${source}: unsupported strata closure version ${JSON.stringify(input['version'])} (supported: 1)`);
  }
  const paths = input['paths'];
  if (!Array.isArray(paths)) throw new StrataError(`${source}: "paths" must be a list of {path, references} objects`);
  const decoded = decodeList(paths, source, 'strata');
  if (Object.hasOwn(input, 'storeDir')) decoded.storeDirs.unshift({ storeDir: input['storeDir'], where: 'the top-level "storeDir"' });
  let roots: string[] | undefined;
  if (Object.hasOwn(input, 'roots')) {
    const r = input['roots'];
    if (!Array.isArray(r) || !r.every((x) => typeof x === 'string')) throw new StrataError(`${source}: "roots" must be a list of store paths`);
    roots = r as string[];
  }
  return roots === undefined ? decoded : { ...decoded, roots };
}

function decodeEntry(obj: Json, path: string, source: string, storeDirs: DecodedClosure['storeDirs']): ClosureEntry {
  // Nix 2.3's path-info marks paths missing from the store this way instead of omitting them.
  if (obj['valid'] === false) throw new StrataError(`${source}: store path ${path} is not valid in the store (path-info says "valid": false)`);
  const references = obj['references'];
  if (!Array.isArray(references)) {
    throw new StrataError(`${source}: store path ${path} has ${references === undefined ? 'no "references" list' : `"references" that is ${describe(references)}, not a list`}`);
  }
  for (const ref of references) {
    if (typeof ref !== 'string') throw new StrataError(`${source}: store path ${path} has a reference that is ${describe(ref)}, not a string`);
  }
  if (Object.hasOwn(obj, 'storeDir')) storeDirs.push({ storeDir: obj['storeDir'], where: `the "storeDir" of ${path}` });
  // Nix >= 2.23 prints absent optional fields as null; treat null as "not given".
  const narSize = obj['narSize'] ?? undefined;
  return {
    path,
    references: references as string[],
    narSize: narSize as number | undefined,
    narHash: decodeHash(obj['narHash'], path, source),
    ...packageFields(obj),
  };
}

/**
 * Package metadata some generators add beside each path (strata's form, or a wrapper around
 * exportReferencesGraph): `pname`, `version`, and `outputName` (Nix's word) or `output`. Read only
 * when `pname` is there — Nix 2.33 puts a numeric `version` (of its JSON format) in every entry.
 */
function packageFields(obj: Json): { pname?: string; version?: string; output?: string } {
  if (obj['pname'] === undefined || obj['pname'] === null) return {};
  return {
    pname: obj['pname'] as string,
    version: (obj['version'] ?? undefined) as string | undefined,
    output: (obj['outputName'] ?? obj['output'] ?? undefined) as string | undefined,
  };
}

/**
 * narHash is kept as printed, for cache identity only. Most Nix versions print a string (base32
 * `sha256:...` or SRI `sha256-...`); some development versions printed {algorithm, format, hash}.
 */
function decodeHash(value: unknown, path: string, source: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (isObject(value)) {
    const { algorithm, format, hash } = value;
    if (typeof algorithm === 'string' && typeof hash === 'string') {
      return format === 'base64' ? `${algorithm}-${hash}` : `${algorithm}:${hash}`;
    }
    return canonicalJson(value);
  }
  throw new StrataError(`${source}: store path ${path} has a narHash that is ${describe(value)}, not a string`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}
