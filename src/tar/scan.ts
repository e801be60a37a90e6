/**
 * Turns trees on disk into TarEntry lists. Only what is reproducible is taken from the host:
 * the file type, the size, the owner-executable bit and symlink targets. Owner, times, inode
 * numbers (hard links), xattrs and readdir order are never read, so two machines holding the
 * same store contents produce the same entries.
 */
import { lstatSync, readdirSync, readlinkSync, type Dirent, type Stats } from 'node:fs';
import { compareBytes } from '../util/byte-order.js';
import { join, posix, resolve } from 'node:path';
import { StrataError } from '../util/errors.js';
import { policyMode, type ModePolicy, type TarEntry } from './entry.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function directoryEntry(imagePath: string, mode = 0o755): TarEntry {
  return { name: normalizeName(imagePath), type: 'directory', mode, size: 0 };
}

export function symlinkEntry(imagePath: string, target: string): TarEntry {
  return { name: normalizeName(imagePath), type: 'symlink', mode: 0o777, size: 0, linkTarget: target };
}

/** Accepts '/a/b', 'a/b' or 'a/b/' and returns 'a/b'; rejects empty, '.', '..' and NUL. */
function normalizeName(imagePath: string): string {
  const name = imagePath.replace(/^\/+/, '').replace(/\/+$/, '');
  validateName(name);
  return name;
}

/** Empty, absolute, trailing '/', empty or '.'/'..' components, NUL: one regex, as it runs per entry. */
const BAD_NAME = /^$|^\/|\/$|\/\/|(?:^|\/)\.\.?(?:\/|$)|\0/;

function validateName(name: string): void {
  if (BAD_NAME.test(name)) throw new StrataError(`invalid path inside the image: ${JSON.stringify(name)}`);
}

/**
 * lstat-walks one tree — a store path, or any directory, file or symlink — and returns an entry
 * for the root and everything below it, named under `imagePath`. Symlinks are never followed.
 * The result is unsorted; pass it (with the rest of a layer) through finalizeEntries.
 *
 * The walk is synchronous inside: on a warm cache one lstat costs a few microseconds, less than
 * the round trip through the thread pool that an async call takes. (Layer bytes are read and
 * written on tar worker threads, so the walk holds up nothing else.)
 */
export async function scanTree(physicalPath: string, imagePath: string, policy: ModePolicy, stamps?: FileStamps, missing?: () => StrataError): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  const rootName = normalizeName(imagePath);
  let st: Stats;
  try {
    st = lstatSync(physicalPath);
  } catch (e) {
    // The caller may know better what an absent root means (a store path not under --store-root).
    if (missing && (e as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    throw new StrataError(`cannot read ${physicalPath}: ${(e as Error).message}`, { cause: e });
  }
  const rootType = typeOf(st, physicalPath);
  if (rootType === 'directory') {
    out.push({ name: rootName, type: 'directory', mode: policyMode(policy, 'directory', st.mode), size: 0 });
    walkDir(physicalPath === '/' ? '' : resolve(physicalPath), rootName, policy, out, stamps);
  } else {
    addLeaf(physicalPath, rootName, rootType, st, policy, out, stamps);
  }
  return out;
}

function typeOf(st: Stats | Dirent, physicalPath: string): TarEntry['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  const kind = st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isCharacterDevice() ? 'a character device'
    : st.isBlockDevice() ? 'a block device' : 'a special file';
  throw new StrataError(`${physicalPath} is ${kind}; only regular files, directories and symlinks can go into a layer`);
}

/**
 * Source file → a stamp of its content as lstat sees it (mtime, ctime, inode), recorded by a scan
 * that is given a map: what the layer cache keys unchanged files by when the closure has no NAR
 * hash. The same lstat that sizes the entry makes the stamp, so the store is walked once.
 */
export type FileStamps = Map<string, string>;

function addLeaf(physicalPath: string, name: string, type: TarEntry['type'], st: Stats | undefined, policy: ModePolicy, out: TarEntry[], stamps: FileStamps | undefined): void {
  if (type === 'symlink') {
    let target: string;
    try {
      target = utf8.decode(readlinkSync(physicalPath, { encoding: 'buffer' }));
    } catch (e) {
      if (e instanceof TypeError) throw new StrataError(`symlink ${physicalPath} has a target that is not valid UTF-8`);
      throw new StrataError(`cannot read symlink ${physicalPath}: ${(e as Error).message}`, { cause: e });
    }
    out.push({ name, type: 'symlink', mode: 0o777, size: 0, linkTarget: target });
  } else if (type === 'file') {
    const s = st ?? lstatOrThrow(physicalPath);
    stamps?.set(physicalPath, `${s.mtimeMs} ${s.ctimeMs} ${s.ino}`);
    // A hard-linked file is simply another regular file: its bytes never depend on link counts.
    out.push({ name, type: 'file', mode: policyMode(policy, 'file', s.mode), size: s.size, source: physicalPath });
  } else {
    out.push({ name, type: 'directory', mode: policyMode(policy, 'directory', 0), size: 0 });
  }
}

function lstatOrThrow(p: string): Stats {
  try {
    const s = lstatSync(p);
    // The dirent said "file"; if it is something else now, the tree changed under us.
    if (!s.isFile()) {
      typeOf(s, p); // throws for special files, with the usual message
      throw new StrataError(`${p} changed type while it was being scanned`);
    }
    return s;
  } catch (e) {
    if (e instanceof StrataError) throw e;
    throw new StrataError(`cannot read ${p}: ${(e as Error).message}`, { cause: e });
  }
}

function walkDir(dir: string, dirName: string, policy: ModePolicy, out: TarEntry[], stamps: FileStamps | undefined): void {
  let dirents: Dirent[];
  try {
    dirents = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new StrataError(`cannot read directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  // Node decodes names as UTF-8 and replaces invalid bytes with U+FFFD; only then is the
  // (slower) byte-exact listing needed to tell a real U+FFFD from an undecodable name.
  if (dirents.some((d) => d.name.includes('\uFFFD'))) checkUtf8Names(dir);
  for (const d of dirents) {
    const physical = `${dir}/${d.name}`; // dir is already normalised: plain concatenation suffices
    const name = `${dirName}/${d.name}`;
    const type = typeOf(d, physical);
    if (type === 'directory') {
      out.push({ name, type: 'directory', mode: policyMode(policy, 'directory', 0), size: 0 });
      walkDir(physical, name, policy, out, stamps);
    } else {
      addLeaf(physical, name, type, undefined, policy, out, stamps);
    }
  }
}

function checkUtf8Names(dir: string): void {
  for (const raw of readdirSync(dir, { encoding: 'buffer' })) {
    try {
      utf8.decode(raw);
    } catch {
      throw new StrataError(`directory ${dir} contains a file name that is not valid UTF-8 (${JSON.stringify(raw.toString('latin1'))})`);
    }
  }
}

/**
 * Makes a list of entries ready for the writer: sorted bytewise by UTF-8 name (parents therefore
 * come before children), missing parent directories added (0755), exact duplicate directories
 * dropped. Two different entries for one path, or a path below a file or symlink, are errors.
 */
export function finalizeEntries(entries: TarEntry[]): TarEntry[] {
  const byName = new Map<string, TarEntry>();
  for (const e of entries) {
    validateName(e.name);
    const prev = byName.get(e.name);
    if (prev === undefined) {
      byName.set(e.name, e);
    } else if (!(prev.type === 'directory' && e.type === 'directory' && prev.mode === e.mode)) {
      throw new StrataError(`two different entries for ${e.name} in one layer (${describe(prev)} and ${describe(e)})`);
    }
  }
  for (const name of [...byName.keys()]) {
    for (let parent = posix.dirname(name); parent !== '.'; parent = posix.dirname(parent)) {
      const p = byName.get(parent);
      if (p === undefined) {
        byName.set(parent, { name: parent, type: 'directory', mode: 0o755, size: 0 });
      } else if (p.type !== 'directory') {
        throw new StrataError(`${name} lies below ${parent}, which is a ${p.type}, not a directory`);
      } else {
        break; // this ancestor was already present or added, and so were its own ancestors
      }
    }
  }
  // JS string order (UTF-16 code units) equals UTF-8 byte order unless a surrogate meets a
  // character in U+E000..U+FFFF; only names holding such characters take the slow comparison.
  const keyed = [...byName.values()].map((e) => ({ e, wide: WIDE.test(e.name) }));
  keyed.sort((a, b) => (a.wide || b.wide ? compareBytes(a.e.name, b.e.name) : a.e.name < b.e.name ? -1 : a.e.name > b.e.name ? 1 : 0));
  return keyed.map((x) => x.e);
}

const WIDE = /[\ud800-\uffff]/;


function describe(e: TarEntry): string {
  return e.type === 'file' ? `file${e.source ? ` from ${e.source}` : ''}` : e.type === 'symlink' ? `symlink to ${e.linkTarget}` : `directory ${e.mode.toString(8)}`;
}

/**
 * Entries of a layer holding `storePaths`: the store directory and its parents (0755), then
 * every store path read from `storeRoot + path` with the canonical NAR modes. Finalized. With
 * `stamps`, every file's stamp is recorded there too (see FileStamps).
 */
export async function storeLayerEntries(storeDir: string, storeRoot: string, storePaths: readonly string[], stamps?: FileStamps): Promise<TarEntry[]> {
  const dir = storeDir.replace(/\/+$/, '');
  const entries: TarEntry[] = [];
  for (let d = dir; d !== '/' && d !== '' && d !== '.'; d = posix.dirname(d)) entries.push(directoryEntry(d, 0o755));
  for (const p of storePaths) {
    if (posix.dirname(p) !== dir || posix.basename(p).startsWith('.')) {
      throw new StrataError(`store path ${p} does not lie directly inside the store directory ${dir}`);
    }
    const physical = join(storeRoot || '/', p);
    const root = storeRoot || '/';
    const missing = () => new StrataError(
      root === '/'
        ? `store path ${p} is not in this machine's store (${physical} does not exist): realise it (nix-store --realise ${p}), or pass --store-root DIR if the store lives under DIR${p}`
        : `store path ${p} is not under --store-root ${root} (${physical} does not exist): pass the directory that holds ${posix.dirname(p)} as --store-root, or realise the path there`,
    );
    // A loop, not push(...spread): a large store path would overflow the argument limit.
    for (const e of await scanTree(physical, p, 'store', stamps, missing)) entries.push(e);
  }
  return finalizeEntries(entries);
}
