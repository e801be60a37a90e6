/**
 * A Nix database in the image (`--nix-db`; nixpkgs' `includeNixDB`, nix2container's
 * `initializeNixDatabase`): `/nix/var/nix/db/db.sqlite` with the closure registered — ValidPaths
 * and Refs as `nix-store --load-db` writes them, Nix's own schema (version 10, as Nix 2.x makes
 * it) — so that Nix run inside the image knows its store. Written by SQLite compiled to
 * WebAssembly (sql.js, pinned): the same statements give the same file on every machine, and
 * nothing in it comes from the clock (registrationTime is the build's mtime).
 */
import { createRequire } from 'node:module';
import type { Closure } from '../closure/types.js';
import type { TarEntry } from '../tar/entry.js';
import { compareBytes } from '../util/byte-order.js';
import { StrataError } from '../util/errors.js';

/** The tables, indexes and trigger exactly as Nix's schema.sql creates them (checked against a store Nix 2.8 made). */
const SCHEMA = `create table if not exists ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer, -- null implies "false"
    sigs             text, -- space-separated
    ca               text -- if not null, an assertion that the path is content-addressed; see ValidPathInfo
);

create table if not exists Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);

create index if not exists IndexReferrer on Refs(referrer);
create index if not exists IndexReference on Refs(reference);

create trigger if not exists DeleteSelfRefs before delete on ValidPaths
  begin
    delete from Refs where referrer = old.id and reference = old.id;
  end;

create table if not exists DerivationOutputs (
    drv  integer not null,
    id   text not null, -- symbolic output id, usually "out"
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);

create index if not exists IndexDerivationOutputs on DerivationOutputs(path);
`;

/** The schema version Nix 2.x keeps beside the database. */
const SCHEMA_VERSION = '10';

interface SqlJsDatabase {
  run(sql: string, params?: unknown[]): void;
  export(): Uint8Array;
  close(): void;
}

/** The Nix database of `closure`'s paths as the entries of the files that hold it. */
export async function nixDbEntries(closure: Closure, registrationTime: number): Promise<TarEntry[]> {
  const require = createRequire(import.meta.url);
  const initSqlJs = require('sql.js') as () => Promise<{ Database: new () => SqlJsDatabase }>;
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  try {
    db.run(SCHEMA);
    const paths = [...closure.paths.keys()].sort(compareBytes);
    const ids = new Map<string, number>();
    db.run('begin');
    paths.forEach((p, i) => {
      const info = closure.paths.get(p)!;
      if (info.narHash === undefined) throw new StrataError(`--nix-db: ${p} has no narHash in the closure; give the closure as nix path-info --json --recursive prints it`);
      db.run('insert into ValidPaths (path, hash, registrationTime, narSize) values (?, ?, ?, ?)', [p, base16NarHash(info.narHash, p), registrationTime, info.narSize]);
      ids.set(p, i + 1);
    });
    for (const p of paths) {
      for (const r of closure.paths.get(p)!.references) db.run('insert into Refs (referrer, reference) values (?, ?)', [ids.get(p)!, ids.get(r)!]);
    }
    db.run('commit');
    const bytes = db.export();
    const dir = (name: string): TarEntry => ({ name, type: 'directory', mode: 0o755, size: 0 });
    const file = (name: string, content: Uint8Array): TarEntry => ({ name, type: 'file', mode: 0o644, size: content.length, content });
    return [dir('nix/var'), dir('nix/var/nix'), dir('nix/var/nix/db'), file('nix/var/nix/db/db.sqlite', bytes), file('nix/var/nix/db/schema', Buffer.from(SCHEMA_VERSION))];
  } finally {
    db.close();
  }
}

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

/**
 * A NAR hash as the database holds it, `sha256:<base16>`, from any way Nix prints one: SRI
 * (`sha256-<base64>`), Nix base32 (`sha256:<52 chars>`) or base16.
 */
export function base16NarHash(hash: string, path: string): string {
  const bad = (): never => {
    throw new StrataError(`--nix-db: ${path} has the narHash ${JSON.stringify(hash)}, which is not a sha256 in a form Nix prints`);
  };
  let bytes: Buffer;
  if (hash.startsWith('sha256-')) bytes = Buffer.from(hash.slice(7), 'base64');
  else if (hash.startsWith('sha256:')) {
    const v = hash.slice(7);
    if (/^[0-9a-f]{64}$/.test(v)) bytes = Buffer.from(v, 'hex');
    else if (v.length === 52 && [...v].every((c) => NIX32.includes(c))) bytes = fromNix32(v);
    else return bad();
  } else return bad();
  if (bytes.length !== 32) bad();
  return `sha256:${bytes.toString('hex')}`;
}

/** Nix's base32: the last character holds the lowest 5 bits of the first byte, and so on. */
function fromNix32(s: string): Buffer {
  const out = Buffer.alloc(32);
  for (let n = 0; n < s.length; n++) {
    const digit = NIX32.indexOf(s[s.length - 1 - n]!);
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i] = (out[i]! | (digit << j)) & 0xff;
    if (i + 1 < 32) out[i + 1] = (out[i + 1]! | (digit >> (8 - j))) & 0xff;
  }
  return out;
}
