import { StrataError } from '../util/errors.js';
import { DEFAULT_STORE_DIR } from './store-path.js';

/*
 * Package names and versions the way Nix itself reads them, so that "the openssl in this closure"
 * and "openssl >= 3" mean what they mean to `nix-env` and `builtins.compareVersions`.
 *
 * Why not the semver package: its ordering is lossy for Nix versions. Nix versions are not semver
 * (1.1.1k, 2024a, 0.9.8zh, 2.3pre1, 2023-10-01), so semver has to coerce them first, and coercion
 * throws information away: coerce('1.1.1k') and coerce('1.1.1w') are both 1.1.1, so OpenSSL's
 * security releases compare equal, and 2.39 vs 2.4 only works by luck of the digits. Ranges here
 * borrow semver's syntax, which people know, but every comparison goes through compareVersions
 * below, a port of Nix's own.
 */

/** A derivation name split the way Nix splits it: `name` up to the version, `version` the rest. */
export interface DrvName {
  name: string;
  version: string;
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
// Nix uses C isalpha/isdigit in the C locale: ASCII only.
const isAlpha = (c: string | undefined) => c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));

/**
 * Nix's DrvName (NixOS/nix src/libstore/names.cc): the name is everything before the first '-'
 * that is followed by a character that is not a letter; the version is everything after that '-'.
 * `apache-httpd-2.0.48` → (apache-httpd, 2.0.48); `curl-8.0.1-bin` → (curl, 8.0.1-bin);
 * `hello` → (hello, ''). A trailing '-' is followed by nothing, so it stays in the name.
 */
export function parseDrvName(name: string): DrvName {
  for (let i = 0; i + 1 < name.length; i++) {
    if (name[i] === '-' && !isAlpha(name[i + 1])) return { name: name.slice(0, i), version: name.slice(i + 1) };
  }
  return { name, version: '' };
}

/** Nix's base-32 alphabet (no e, o, u, t), in which every store path hash is written. */
const STORE_PATH_BASENAME = /^[0-9abcdfghijklmnpqrsvwxyz]{32}-([A-Za-z0-9+\-_?=][A-Za-z0-9+\-._?=]*)$/;

/** The name of a store path, `/nix/store/<32-char hash>-<name>` → `<name>` (e.g. `openssl-1.1.1k`). */
export function storePathName(path: string, storeDir: string = DEFAULT_STORE_DIR): string {
  const m = path.startsWith(storeDir + '/') ? STORE_PATH_BASENAME.exec(path.slice(storeDir.length + 1)) : null;
  if (!m) {
    throw new StrataError(`${JSON.stringify(path)} is not a store path of the form ${storeDir}/<32-character hash>-<name>`);
  }
  return m[1]!;
}

/*
 * compareVersions, ported from NixOS/nix src/libstore/names.cc (nextComponent, componentsLT,
 * compareVersions); builtins.compareVersions is this function.
 *
 * nextComponent skips '.' and '-' and then takes either the longest run of digits or the longest
 * run of non-digit, non-separator characters. compareVersions walks both strings a component at a
 * time until both are exhausted, an exhausted string yielding "". Splitting each string into its
 * components up front and padding the shorter list with "" is the same walk, written shorter.
 */
const COMPONENT = /[0-9]+|[^0-9.-]+/g;

function components(v: string): string[] {
  return v.match(COMPONENT) ?? [];
}

const INT_MAX = 2147483647;

/** Nix's string2Int<int>: a digit run that fits an int. A run that overflows is not a number to Nix. */
function toInt(c: string): number | undefined {
  if (!isDigit(c[0])) return undefined; // components are all-digit or digit-free
  const n = Number(c);
  return n <= INT_MAX ? n : undefined;
}

/** std::string's operator<: byte order of the (UTF-8) strings, not UTF-16 code unit order. */
const bytesLT = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0;

function componentsLT(c1: string, c2: string): boolean {
  const n1 = toInt(c1);
  const n2 = toInt(c2);
  if (n1 !== undefined && n2 !== undefined) return n1 < n2;
  else if (c1 === '' && n2 !== undefined) return true;
  else if (c1 === 'pre' && c2 !== 'pre') return true;
  else if (c2 === 'pre') return false;
  // Assume that `2.3a' < `2.3.1'.
  else if (n2 !== undefined) return true;
  else if (n1 !== undefined) return false;
  else return bytesLT(c1, c2);
}

/** Nix's compareVersions: -1 if a is older than b, 1 if newer, 0 if Nix considers them equal. */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  const ca = components(a);
  const cb = components(b);
  for (let i = 0; i < Math.max(ca.length, cb.length); i++) {
    const c1 = ca[i] ?? '';
    const c2 = cb[i] ?? '';
    if (componentsLT(c1, c2)) return -1;
    if (componentsLT(c2, c1)) return 1;
  }
  return 0;
}

/*
 * Version ranges: semver's syntax, Nix's ordering. `||` separates alternatives; within one,
 * whitespace-separated comparators must all hold. Comparators: >=V >V <=V <V =V (bare V is =V,
 * equality being Nix's: 1.0 = 1-0, but 2.3 ≠ 2.3.0), ^V and ~V with semver's bounds, * for any.
 * Bounds are compared with compareVersions, so `<9` excludes 9, 9.0 and 9.1 but admits 8.99, and
 * also 9pre1, which Nix orders below 9.
 */

export type Op = '>=' | '>' | '<=' | '<' | '=';

export interface Comparator {
  readonly op: Op;
  readonly version: string;
}

export interface VersionRange {
  /** The text the range was parsed from, for messages. */
  readonly text: string;
  /** Alternatives (ORed), each a list of comparators (ANDed). An empty list admits everything. */
  readonly alternatives: readonly (readonly Comparator[])[];
}

const OPS = ['>=', '<=', '>', '<', '=', '^', '~'] as const;
/** What a bound may look like: starts with a digit (as every version parseDrvName splits off with a
 * number does), then the characters Nix allows in store names, minus the ones ranges use. */
const VERSION = /^[0-9][A-Za-z0-9+._-]*$/;
/** semver's x-ranges (1.x, 1.2.*): Nix would read `x` as a version component, so refuse them. */
const X_RANGE = /(^|[.-])[xX*]($|[.-])/;

export function parseVersionRange(text: string, what: string): VersionRange {
  const fail = (why: string): never => {
    throw new StrataError(`${what}: bad version range ${JSON.stringify(text)}: ${why}`);
  };
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === '*') return { text, alternatives: [[]] };
  const alternatives = trimmed.split('||').map((alt) => {
    const tokens = alt.trim().split(/\s+/).filter((t) => t !== '');
    if (tokens.length === 0) fail(`an alternative between '||' is empty (write * for any version)`);
    const comparators: Comparator[] = [];
    for (let i = 0; i < tokens.length; i++) {
      let token = tokens[i]!;
      if (token === '*') continue;
      const op = OPS.find((o) => token.startsWith(o));
      // Like semver, allow a space between an operator and its version: `>= 2.39`.
      if (op !== undefined && token === op && i + 1 < tokens.length) token += tokens[++i];
      const version = op === undefined ? token : token.slice(op.length);
      if (version === '') fail(`${JSON.stringify(token)} has no version after the operator`);
      if (!VERSION.test(version)) {
        fail(`${JSON.stringify(token)} is not a comparator (>=V >V <=V <V =V ^V ~V or a bare V, where V starts with a digit, like 1.2 or 2024a)`);
      }
      if (X_RANGE.test(version)) fail(`x-ranges like ${JSON.stringify(version)} are not supported; write ^V or ~V`);
      if (op === '^' || op === '~') {
        const upper = op === '^' ? caretUpper(version) : tildeUpper(version);
        if (upper === undefined) fail(`${JSON.stringify(token)}: the version's numbers are too large to bump`);
        comparators.push({ op: '>=', version }, { op: '<', version: upper! });
      } else {
        comparators.push({ op: op ?? '=', version });
      }
    }
    return comparators;
  });
  return { text, alternatives };
}

/** The leading numeric components of a version (1.2.3k → [1, 2, 3]; 2024a → [2024]), at most 3. */
function leadingNumbers(version: string): number[] | undefined {
  const nums: number[] = [];
  for (const c of components(version)) {
    if (nums.length === 3 || !isDigit(c[0])) break;
    const n = toInt(c);
    if (n === undefined || n === INT_MAX) return undefined;
    nums.push(n);
  }
  return nums;
}

/** The bound with component i bumped and the rest dropped: bump([1, 2, 3], 1) = '1.3'. */
const bump = (nums: number[], i: number) => [...nums.slice(0, i), nums[i]! + 1].join('.');

/** semver's caret: keep the leftmost non-zero of the first three numbers (^1.2 → <2, ^0.2 → <0.3,
 * ^0.0.3 → <0.0.4); when all are zero, bump the last one given (^0 → <1, ^0.0 → <0.1). */
function caretUpper(version: string): string | undefined {
  const nums = leadingNumbers(version);
  if (nums === undefined) return undefined;
  const i = nums.findIndex((n) => n !== 0);
  return bump(nums, i === -1 ? nums.length - 1 : i);
}

/** semver's tilde: bump the minor when one is given (~1.1 → <1.2, ~1.1.3 → <1.2), else the major. */
function tildeUpper(version: string): string | undefined {
  const nums = leadingNumbers(version);
  if (nums === undefined) return undefined;
  return bump(nums, nums.length >= 2 ? 1 : 0);
}

function holds(version: string, c: Comparator): boolean {
  const d = compareVersions(version, c.version);
  switch (c.op) {
    case '>=': return d >= 0;
    case '>': return d > 0;
    case '<=': return d <= 0;
    case '<': return d < 0;
    case '=': return d === 0;
  }
}

export function inRange(version: string, range: VersionRange): boolean {
  return range.alternatives.some((alt) => alt.every((c) => holds(version, c)));
}

/**
 * The newest of `versions` inside `range`, by compareVersions. Versions Nix considers equal but
 * spelt differently (1.0, 1-0) are broken by byte order, so the answer does not depend on the
 * order the versions came in.
 */
export function highestInRange(versions: readonly string[], range: VersionRange): string | undefined {
  let best: string | undefined;
  for (const v of versions) {
    if (!inRange(v, range)) continue;
    if (best === undefined) { best = v; continue; }
    const d = compareVersions(v, best);
    if (d > 0 || (d === 0 && bytesLT(best, v))) best = v;
  }
  return best;
}
