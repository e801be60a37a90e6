/**
 * Who owns what strata writes, and with which modes, when the user says so: what nixpkgs'
 * streamLayeredImage `uid`/`gid`/`uname`/`gname`, its `fakeRootCommands` chowns, and
 * nix2container's `perms` give. Pure functions over entry lists: an entry's owner travels with it
 * into its tar header, and an entry without one is root's, byte for byte as before.
 */
import { StrataError } from '../util/errors.js';
import type { TarEntry } from './entry.js';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
  readonly uname: string;
  readonly gname: string;
}

/** `--chown PATH=UID:GID[:recursive]` / `--chmod PATH=MODE`: one image path (tar name), optionally all below it. */
export interface PathRule {
  readonly path: string;
  readonly recursive: boolean;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

/** `--perms REGEX=MODE[:UID:GID]`: store files whose absolute image path matches. */
export interface PermRule {
  /** The pattern's source (kept for the cache key and messages). */
  readonly pattern: string;
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
}

/** What store layers are written with: an owner for every entry, then --perms rules in order. */
export interface StoreOwnership {
  readonly owner?: Owner;
  readonly perms?: readonly PermRule[];
}

/** ustar holds 7 octal digits of uid/gid and 32 bytes of user and group name; strata writes no PAX for them. */
const MAX_ID = 0o7777777;

export function checkId(value: number, flag: string): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_ID) throw new StrataError(`${flag} ${value}: give a whole number from 0 to ${MAX_ID}`);
  return value;
}

export function checkName(value: string, flag: string): string {
  if (!/^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$/.test(value)) throw new StrataError(`${flag} ${JSON.stringify(value)}: a user or group name of 1–32 letters, digits, '.', '_' or '-'`);
  return value;
}

export function parseMode(value: string, flag: string): number {
  if (!/^0?[0-7]{3,4}$/.test(value)) throw new StrataError(`${flag}: ${JSON.stringify(value)} is not an octal mode such as 0755`);
  return parseInt(value, 8);
}

const withOwner = (e: TarEntry, owner: Owner): TarEntry => ({ ...e, owner });

/** The store layer's entries with the ownership applied (none: the entries as they are). */
export function ownStoreEntries(entries: readonly TarEntry[], o: StoreOwnership | undefined): readonly TarEntry[] {
  if (!o || (!o.owner && !o.perms?.length)) return entries;
  const rules = (o.perms ?? []).map((r) => ({ r, re: new RegExp(r.pattern) }));
  return entries.map((e) => {
    let out = o.owner ? withOwner(e, o.owner) : e;
    for (const { r, re } of rules) {
      if (e.type === 'symlink' || !re.test(`/${e.name}`)) continue;
      const base = out.owner ?? ROOT;
      out = { ...out, mode: r.mode, owner: { ...base, uid: r.uid ?? base.uid, gid: r.gid ?? base.gid } };
    }
    return out;
  });
}

const ROOT: Owner = { uid: 0, gid: 0, uname: 'root', gname: 'root' };

/**
 * The customisation layer's entries with a default owner and the --chown/--chmod rules applied.
 * A rule's path that no entry has is made a directory (as `mkdir -p` then `chown` in
 * fakeRootCommands would), so a home directory can be given an owner without adding files.
 */
export function ownPaths(entries: readonly TarEntry[], owner: Owner | undefined, rules: readonly PathRule[]): TarEntry[] {
  const out = entries.map((e) => (owner ? withOwner(e, owner) : e));
  const names = new Set(out.map((e) => e.name));
  for (const r of rules) {
    if (!names.has(r.path)) {
      out.push({ name: r.path, type: 'directory', mode: 0o755, size: 0, ...(owner ? { owner } : {}) });
      names.add(r.path);
    }
  }
  return out.map((e) => {
    let next = e;
    for (const r of rules) {
      if (!(e.name === r.path || (r.recursive && e.name.startsWith(`${r.path}/`)))) continue;
      if (r.mode !== undefined && e.type !== 'symlink') next = { ...next, mode: r.mode };
      if (r.uid !== undefined || r.gid !== undefined) {
        const base = next.owner ?? ROOT;
        next = { ...next, owner: { ...base, uid: r.uid ?? base.uid, gid: r.gid ?? base.gid } };
      }
    }
    return next;
  });
}

/** What the ownership of store layers contributes to their cache identity ('' when there is none). */
export function ownershipKey(o: StoreOwnership | undefined): string {
  if (!o || (!o.owner && !o.perms?.length)) return '';
  return JSON.stringify({ owner: o.owner ?? null, perms: o.perms ?? [] });
}
