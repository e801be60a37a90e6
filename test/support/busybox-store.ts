/**
 * A tiny but real Nix-store-shaped closure built from Debian's static busybox, so end-to-end tests
 * can run a strata image in podman without Nix. It has what a real store has and what tar writers
 * get wrong: symlinks, executables, read-only modes, a deep directory and a name longer than the
 * 100 bytes a ustar name field holds, and references recorded the way Nix records them (an output
 * refers to another path when it contains that path's hash).
 */
import { createHash, type Hash } from 'node:crypto';
import { chmod, copyFile, lstat, lutimes, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePackages } from './tools.js';

export interface BusyboxStore {
  /** `nix path-info --json --recursive` (array form) of the whole closure. */
  closureFile: string;
  /** Directory holding `nix/store/...`: what `strata build --store-root` takes. */
  storeRoot: string;
  /** Logical store paths (`/nix/store/<hash>-<name>`). */
  paths: { busybox: string; data: string; app: string };
  /** The app's entry point inside the image. */
  entrypoint: string;
  /** Logical path of the file with a long name, relative to `paths.data`. */
  longFile: string;
  /** Exactly what `entrypoint` prints on stdout. */
  expectedOutput: string;
}

const STORE_DIR = '/nix/store';
const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

// Fixed fake hashes: stable images across runs, and distinct first characters so sorting by path
// and by name disagree (a layering that sorts by the wrong key shows up).
const HASHES = {
  busybox: 'sz1b5xwq4m8k2v9c0dnf7hjl3pyr6ga1',
  data: '9g4kdr0qmvx7y2ns1bhz5wlc8fjp3a6b',
  app: '0m2hfk7xq9n4b1w5v3rcs8dylz6pja7g',
};

function checkHash(h: string): string {
  if (h.length !== 32 || [...h].some((c) => !NIX_BASE32.includes(c))) throw new Error(`bad fake store hash ${h}`);
  return h;
}

export async function makeBusyboxStore(dir: string): Promise<BusyboxStore> {
  // Debian's plain `busybox` package also ships /bin/busybox, but dynamically linked: useless in
  // an image without a libc. busybox-static replaces it.
  await ensurePackages(['busybox-static']);

  const storeRoot = join(dir, 'root');
  const real = (logical: string) => join(storeRoot, logical);
  const paths = {
    busybox: `${STORE_DIR}/${checkHash(HASHES.busybox)}-busybox-static-1.35`,
    data: `${STORE_DIR}/${checkHash(HASHES.data)}-greeting-data`,
    app: `${STORE_DIR}/${checkHash(HASHES.app)}-hello-app`,
  };
  await mkdir(real(STORE_DIR), { recursive: true });

  // busybox: the binary plus relative applet symlinks, as nixpkgs' busybox has them.
  const bb = real(paths.busybox);
  await mkdir(join(bb, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(bb, 'bin', 'busybox'));
  await chmod(join(bb, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'echo', 'cat', 'ls']) await symlink('busybox', join(bb, 'bin', applet));

  // greeting-data: plain data, an executable script (refers to busybox), a deep long name.
  const greeting = 'Hello from a strata image!\nSecond line: layers, symlinks and modes survived.\n';
  const longDir = join('share', 'long', 'a-directory-name-that-is-rather-long-on-purpose-0123456789', 'and-another-level-that-is-also-quite-long-abcdefghijklmnopqr');
  const longName = `file-with-a-very-long-name-${'x'.repeat(80)}-end.txt`; // 115 bytes alone
  const longContent = 'long name ok\n';
  const data = real(paths.data);
  await mkdir(join(data, 'share', 'scripts'), { recursive: true });
  await mkdir(join(data, longDir), { recursive: true });
  await writeFile(join(data, 'share', 'greeting.txt'), greeting);
  await writeFile(join(data, 'share', 'scripts', 'shout'), `#!${paths.busybox}/bin/sh\necho "SHOUT: $1"\n`);
  await chmod(join(data, 'share', 'scripts', 'shout'), 0o755);
  await writeFile(join(data, longDir, longName), longContent);
  // A multi-megabyte file: layer writers work in ~1 MiB chunks with several in flight, and
  // ordering or overlap bugs between them only show up when a layer spans many chunks.
  await writeFile(join(data, 'share', 'big.bin'), deterministicBytes(BIG_FILE_SIZE));

  // hello-app: the entry point. Full paths everywhere: the image sets no PATH.
  const app = real(paths.app);
  await mkdir(join(app, 'bin'), { recursive: true });
  const marker = 'strata-e2e: hello-app finished';
  await writeFile(join(app, 'bin', 'hello'), [
    `#!${paths.busybox}/bin/sh`,
    `${paths.busybox}/bin/cat ${paths.data}/share/greeting.txt`,
    `${paths.data}/share/scripts/shout deep`,
    `${paths.busybox}/bin/cat '${paths.data}/${longDir}/${longName}'`,
    `echo "${marker}"`,
    '',
  ].join('\n'));
  await chmod(join(app, 'bin', 'hello'), 0o755);

  // Canonicalise like `nix-store --add`: read-only modes, mtime 1.
  for (const p of Object.values(paths)) await canonicalise(real(p));

  const references: Record<string, string[]> = {
    [paths.busybox]: [],
    [paths.data]: [paths.busybox],
    [paths.app]: [paths.busybox, paths.data].sort(),
  };
  // Keep the recorded references honest: exactly the other paths whose hash occurs in the files.
  for (const p of Object.values(paths)) {
    const found = await scanReferences(real(p), Object.values(paths).filter((o) => o !== p));
    if (found.join() !== references[p]!.join()) throw new Error(`fixture bug: ${p} refers to ${found.join(', ')}`);
  }

  const closure = [];
  for (const p of Object.values(paths).sort()) {
    const { hash, size } = await narHash(real(p));
    closure.push({ path: p, narHash: `sha256-${hash.toString('base64')}`, narSize: size, references: references[p]! });
  }
  const closureFile = join(dir, 'closure.json');
  await writeFile(closureFile, JSON.stringify(closure, null, 2) + '\n');

  const expectedOutput = `${greeting}SHOUT: deep\n${longContent}${marker}\n`;
  return { closureFile, storeRoot, paths, entrypoint: `${paths.app}/bin/hello`, longFile: join(longDir, longName), expectedOutput };
}

const BIG_FILE_SIZE = 12 * 1024 * 1024 + 12345; // not a multiple of any chunk or block size

/** Incompressible but reproducible bytes: sha256 in counter mode. */
function deterministicBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; off += 32, i++) {
    createHash('sha256').update(`strata-e2e-${i}`).digest().copy(out, off);
  }
  return out;
}

/** Files 0444 or 0555 (executable), directories 0555, mtime 1 everywhere: what the Nix store holds. */
async function canonicalise(p: string): Promise<void> {
  const st = await lstat(p);
  if (st.isDirectory()) {
    for (const name of await readdir(p)) await canonicalise(join(p, name));
    await chmod(p, 0o555);
  } else if (st.isFile()) {
    await chmod(p, st.mode & 0o100 ? 0o555 : 0o444);
  }
  await lutimes(p, 1, 1);
}

async function scanReferences(p: string, candidates: string[]): Promise<string[]> {
  const found = new Set<string>();
  const visit = async (q: string): Promise<void> => {
    const st = await lstat(q);
    const text = st.isDirectory() ? '' : st.isSymbolicLink() ? await readlink(q) : (await readFile(q)).toString('latin1');
    for (const c of candidates) if (text.includes(c.slice(STORE_DIR.length + 1, STORE_DIR.length + 33))) found.add(c);
    if (st.isDirectory()) for (const n of await readdir(q)) await visit(join(q, n));
  };
  await visit(p);
  return [...found].sort();
}

/**
 * NAR serialisation hash and size (Nix's `narHash`/`narSize`), so the closure file carries the
 * same values Nix would print for these paths.
 */
async function narHash(p: string): Promise<{ hash: Buffer; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  const str = (s: string | Buffer) => { size += writeNarString(h, typeof s === 'string' ? Buffer.from(s) : s); };
  const node = async (q: string): Promise<void> => {
    const st = await lstat(q);
    str('(');
    str('type');
    if (st.isSymbolicLink()) {
      str('symlink'); str('target'); str(await readlink(q));
    } else if (st.isFile()) {
      str('regular');
      if (st.mode & 0o100) { str('executable'); str(''); }
      str('contents'); str(await readFile(q));
    } else if (st.isDirectory()) {
      str('directory');
      const names = (await readdir(q)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const n of names) {
        str('entry'); str('('); str('name'); str(n); str('node');
        await node(join(q, n));
        str(')');
      }
    } else {
      throw new Error(`unsupported file type at ${q}`);
    }
    str(')');
  };
  str('nix-archive-1');
  await node(p);
  return { hash: h.digest(), size };
}

function writeNarString(h: Hash, b: Buffer): number {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  h.update(len);
  h.update(b);
  const pad = (8 - (b.length % 8)) % 8;
  if (pad) h.update(Buffer.alloc(pad));
  return 8 + b.length + pad;
}
