/**
 * A small REAL Nix store, built by the real `nix` tools (Debian's nix-bin 2.8), holding two
 * releases of a few tiny packages: the fixture for end-to-end tests of package-as-layer
 * publishing. Unlike busybox-store.ts (which fakes a store by hand), every hash, mode, mtime,
 * narHash and reference here is Nix's own, so a test built on it checks strata against what Nix
 * really produces rather than against our idea of it.
 *
 * Packages (store names chosen so Nix's name/version split gives the pname/version shown):
 *   busybox-1.36        static busybox + relative applet symlinks, `nix-store --add`ed; the
 *                       builder of everything else; refers to nothing
 *   greeting-data-1.0   share/greeting.txt; refers to nothing (its builder is not a reference)
 *   hello-2.1           bin/hello: cats greeting-data's text, echoes a marker; refers to busybox
 *                       and greeting-data
 *   shout-0.3           bin/shout: prints "SHOUT: $1"; refers to busybox
 * Release 2 bumps greeting-data to 1.1 (new text), so hello-2.1 is rebuilt against it and gets a
 * new store path; busybox and shout keep theirs. Both releases live in the same chroot store.
 *
 * How Nix runs here (design notes §8): as root, offline, with a chroot store (`--store R`: the
 * logical /nix/store lives at R/nix/store, state in R/nix/var). nix 2.8 builds for such a
 * "diverted" store always run in its Linux sandbox (mount namespace with /nix/store bound in),
 * whatever `sandbox = false` says — that is what lets a `/nix/store/...` builder run at all.
 * HOME, the XDG dirs, TMPDIR and the global Nix dirs all point into `dir`, so nix writes no state
 * outside it and reads no nix.conf but NIX_CONFIG.
 */
import { chmod, copyFile, lstat, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { after, before } from 'node:test';
import { lowercaseTempDir } from '../e2e-base/helpers.js';
import { join, resolve } from 'node:path';
import { ensurePackages, run, type ToolResult } from './tools.js';

export interface NixPackageStore {
  /** Directory holding `nix/store/...` (and nix's `nix/var/...`): what `strata build --store-root` takes. */
  storeRoot: string;
  releases: [NixRelease, NixRelease];
}

export interface NixRelease {
  /** `nix path-info --json --recursive` (array form, exactly as nix printed it) of hello + shout. */
  closureFile: string;
  /** Logical store paths (`/nix/store/<hash>-<name>`). */
  paths: { busybox: string; data: string; hello: string; shout: string };
  /** Exactly what `<paths.hello>/bin/hello` prints on stdout. */
  helloOutput: string;
  /** The text of `<paths.data>/share/greeting.txt`. */
  greeting: string;
}

const STORE_DIR = '/nix/store';
const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-(.+)$/;
const HELLO_MARKER = 'strata-nix: hello-2.1 finished';

/** The two releases: only greeting-data changes between them. */
const RELEASES = [
  { dataVersion: '1.0', greeting: 'Hello from a real Nix store!\nRelease one.\n' },
  { dataVersion: '1.1', greeting: 'Hello again from a real Nix store!\nRelease two: greeting-data 1.1.\n' },
] as const;

/**
 * The packages. The builder is busybox's `sh` from the store; nix gives it no PATH, so every
 * command is spelled out. Script texts travel as derivation attributes (environment variables)
 * so no quoting of the generated file happens in shell. greeting-data's output does not contain
 * busybox's hash, so Nix records no reference for it; hello's and shout's scripts do.
 */
const PACKAGES_NIX = `{ busyboxPath, dataVersion, greeting }:
let
  bb = builtins.storePath busyboxPath;
  mk = name: attrs: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = "\${bb}/bin/sh";
  } // attrs);
  bin = name: file: script: mk name {
    inherit script;
    args = [ "-c" ''
      set -e
      \${bb}/bin/busybox mkdir -p $out/bin
      printf '%s' "$script" > $out/bin/\${file}
      \${bb}/bin/busybox chmod 755 $out/bin/*
    '' ];
  };
  data = mk "greeting-data-\${dataVersion}" {
    inherit greeting;
    args = [ "-c" ''
      set -e
      \${bb}/bin/busybox mkdir -p $out/share
      printf '%s' "$greeting" > $out/share/greeting.txt
    '' ];
  };
in {
  inherit data;
  hello = bin "hello-2.1" "hello" ''
    #!\${bb}/bin/sh
    \${bb}/bin/cat \${data}/share/greeting.txt
    echo "${HELLO_MARKER}"
  '';
  shout = bin "shout-0.3" "shout" ''
    #!\${bb}/bin/sh
    echo "SHOUT: $1"
  '';
}
`;

/**
 * Builds the store in `dir` (which should be empty; not idempotent). Takes well under a second
 * once nix-bin is installed. Throws naming the failing nix command with its stderr.
 */
export async function makeNixPackageStore(dir: string): Promise<NixPackageStore> {
  await ensurePackages(['nix-bin', 'busybox-static']);
  const root = resolve(dir);
  const storeRoot = join(root, 'root');
  const env = await nixEnv(root);
  const nix = async (step: string, cmd: string, args: string[]): Promise<ToolResult> => {
    try {
      return await run(cmd, args, { env, cwd: root });
    } catch (e) {
      throw new Error(`nix fixture: ${step} failed: ${(e as Error).message}`);
    }
  };

  // busybox-1.36: the directory's name becomes the store name.
  const src = join(root, 'src', 'busybox-1.36');
  await mkdir(join(src, 'bin'), { recursive: true });
  // Debian's plain `busybox` is dynamically linked; busybox-static's /bin/busybox is not.
  await copyFile('/bin/busybox', join(src, 'bin', 'busybox'));
  await chmod(join(src, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'echo', 'cat', 'ls']) await symlink('busybox', join(src, 'bin', applet));
  const busybox = onlyStorePath((await nix('nix-store --add busybox-1.36', 'nix-store', ['--store', storeRoot, '--add', src])).stdout, 'busybox-1.36');

  const expr = join(root, 'packages.nix');
  await writeFile(expr, PACKAGES_NIX);

  const releases: NixRelease[] = [];
  for (const [i, rel] of RELEASES.entries()) {
    const n = i + 1;
    const built = await nix(`nix-build (release ${n})`, 'nix-build', ['--store', storeRoot, expr, '--no-out-link',
      '--argstr', 'busyboxPath', busybox, '--argstr', 'dataVersion', rel.dataVersion, '--argstr', 'greeting', rel.greeting,
      '-A', 'data', '-A', 'hello', '-A', 'shout']);
    const outs = built.stdout.split('\n').filter((l) => l.trim() !== '');
    const byName = (name: string): string => {
      const found = outs.filter((p) => STORE_PATH.exec(p)?.[1] === name);
      if (found.length !== 1) throw new Error(`nix fixture: nix-build (release ${n}) printed no single ${name} output:\n${built.stdout}\n--- stderr ---\n${built.stderr}`);
      return found[0]!;
    };
    const paths = { busybox, data: byName(`greeting-data-${rel.dataVersion}`), hello: byName('hello-2.1'), shout: byName('shout-0.3') };

    const info = await nix(`nix path-info (release ${n})`, 'nix', ['path-info', '--store', storeRoot, '--json', '--recursive', paths.hello, paths.shout]);
    let closure: unknown;
    try {
      closure = JSON.parse(info.stdout);
    } catch (e) {
      throw new Error(`nix fixture: nix path-info (release ${n}) printed no JSON (${(e as Error).message}):\n${info.stdout.slice(0, 2000)}`);
    }
    const listed = Array.isArray(closure) ? closure.map((c: { path?: unknown }) => c.path).sort() : [];
    const expected = Object.values(paths).sort();
    if (listed.join() !== expected.join()) {
      throw new Error(`nix fixture: release ${n} closure is ${JSON.stringify(listed)}, expected ${JSON.stringify(expected)}`);
    }
    const closureFile = join(root, `release-${n}.closure.json`);
    await writeFile(closureFile, info.stdout);
    releases.push({ closureFile, paths, helloOutput: `${rel.greeting}${HELLO_MARKER}\n`, greeting: rel.greeting });
  }
  return { storeRoot, releases: [releases[0]!, releases[1]!] };
}

/**
 * Removes a directory holding a fixture store. Nix leaves store directories read-only (0555),
 * which only root may delete through; this makes every directory owner-writable first.
 */
export async function removeNixPackageStore(dir: string): Promise<void> {
  const unlock = async (p: string): Promise<void> => {
    const st = await lstat(p);
    if (!st.isDirectory()) return;
    await chmod(p, (st.mode & 0o7777) | 0o700);
    for (const name of await readdir(p)) await unlock(join(p, name));
  };
  try {
    await unlock(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await rm(dir, { recursive: true, force: true });
}

/** Environment confining nix to `root`: config only from NIX_CONFIG, state and caches inside root. */
export async function nixEnv(root: string): Promise<NodeJS.ProcessEnv> {
  const d = async (...parts: string[]) => { const p = join(root, ...parts); await mkdir(p, { recursive: true }); return p; };
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // NIX_REMOTE, NIX_PATH, NIX_CONF_DIR, ... of the calling environment must not leak in.
    if (!k.startsWith('NIX_') || k === 'NIX_SSL_CERT_FILE') env[k] = v;
  }
  const home = await d('home');
  return {
    ...env,
    HOME: home,
    XDG_CACHE_HOME: await d('home', '.cache'),
    XDG_CONFIG_HOME: await d('home', '.config'),
    XDG_DATA_HOME: await d('home', '.local', 'share'),
    XDG_STATE_HOME: await d('home', '.local', 'state'),
    TMPDIR: await d('tmp'),
    NIX_CONFIG: ['sandbox = false', 'build-users-group =', 'substituters =', 'experimental-features = nix-command', ''].join('\n'),
    NIX_CONF_DIR: await d('etc-nix'), // empty: no system nix.conf
    NIX_USER_CONF_FILES: '',
    NIX_STATE_DIR: await d('var-nix'), // the chroot store itself keeps its state in <root>/nix/var/nix
    NIX_LOG_DIR: await d('var-log-nix'),
  };
}

/** The single store path a command printed (e.g. `nix-store --add`), checked to have `name`. */
function onlyStorePath(stdout: string, name: string): string {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1 || STORE_PATH.exec(lines[0]!)?.[1] !== name || !lines[0]!.startsWith(`${STORE_DIR}/`)) {
    throw new Error(`nix fixture: expected one ${STORE_DIR}/<hash>-${name} path, nix printed:\n${stdout}`);
  }
  return lines[0]!;
}

export interface NixFixture {
  /** A fresh directory for the test file: the store is under `nix/`, the rest is the tests'. */
  readonly dir: string;
  readonly store: NixPackageStore;
  /** The environment that confines nix to this store (see nixEnv). */
  readonly env: NodeJS.ProcessEnv;
}

/**
 * A real Nix package store for the tests of one file (or describe block): made before them, and
 * removed after them together with everything they put beside it in `dir`.
 */
export function nixStoreFixture(prefix: string): NixFixture {
  const fixture = {} as { dir: string; store: NixPackageStore; env: NodeJS.ProcessEnv };
  before(async () => {
    fixture.dir = lowercaseTempDir(prefix);
    fixture.store = await makeNixPackageStore(join(fixture.dir, 'nix'));
    fixture.env = await nixEnv(join(fixture.dir, 'nix'));
  });
  after(async () => {
    if (fixture.dir) await removeNixPackageStore(fixture.dir);
  });
  return fixture;
}
