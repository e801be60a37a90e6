/**
 * Test support for the real container tools (podman, skopeo, umoci) that prove strata's images
 * are usable. Fresh CI machines start without them, so tests install what they need rather than
 * skip: a missing tool must fail the run loudly, never pass it quietly.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';

export interface ToolResult { code: number | null; stdout: string; stderr: string }

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  /** When false, a non-zero exit is returned instead of thrown. Default true. */
  check?: boolean;
}

/** Runs a command and collects its output; throws (unless check is false) naming the command, exit code and stderr. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<ToolResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new Error(`could not start ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      const r: ToolResult = { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      if ((opts.check ?? true) && code !== 0) {
        reject(new Error(`${formatCommand(cmd, args)} failed (${code === null ? `signal ${signal}` : `exit ${code}`})\n` +
          `--- stderr ---\n${r.stderr.trim()}\n--- stdout ---\n${r.stdout.trim().slice(0, 4000)}`));
        return;
      }
      resolvePromise(r);
    });
    child.stdin.on('error', () => { /* the tool may exit without reading its input */ });
    child.stdin.end(opts.input ?? '');
  });
}

function formatCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

// ---------------------------------------------------------------------------------------------
// Package installation

/** Debian packages the end-to-end tests need. */
export const E2E_PACKAGES = ['podman', 'runc', 'skopeo', 'umoci', 'busybox-static'] as const;

/** One install per package per process; several test files (processes) are serialised by flock. */
const pending = new Map<string, Promise<void>>();

/** Lock shared by every test process that may run apt at once. */
const APT_LOCK = join(tmpdir(), 'strata-test-apt.lock');

async function installedPackages(pkgs: readonly string[]): Promise<Set<string>> {
  const installed = new Set<string>();
  await Promise.all(pkgs.map(async (p) => {
    const r = await run('dpkg', ['-s', p], { check: false }).catch(() => undefined);
    // `dpkg -s` also succeeds for removed packages whose config files remain: read the Status line.
    if (r?.code === 0 && /^Status: install ok installed$/m.test(r.stdout)) installed.add(p);
  }));
  return installed;
}

/**
 * Installs the Debian packages that are not yet installed. Safe to call from many test files at
 * once: apt runs under an exclusive flock, and the set of missing packages is re-read inside it
 * (another process may have installed them while we waited). apt-get also waits for the dpkg
 * lock held by an unrelated apt run (e.g. a background install). Throws with apt's output when
 * the install fails.
 */
export function ensurePackages(pkgs: readonly string[]): Promise<void> {
  const key = [...pkgs].sort().join(' ');
  let p = pending.get(key);
  if (!p) {
    p = doEnsurePackages([...pkgs]);
    pending.set(key, p);
    p.catch(() => pending.delete(key)); // let a later caller retry after a failure
  }
  return p;
}

async function doEnsurePackages(pkgs: string[]): Promise<void> {
  const have = await installedPackages(pkgs);
  const missing = pkgs.filter((p) => !have.has(p));
  if (missing.length === 0) return;
  for (const p of missing) {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p)) throw new Error(`ensurePackages: ${JSON.stringify(p)} is not a Debian package name`);
  }
  const asRoot = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  // Inside the lock: recheck, try to install with the current lists, and only when that fails
  // run `apt-get update` (once) and retry. A fresh machine has no lists at all; a warm one needs
  // no network for the update. apt waits up to 10 minutes for a dpkg lock held by another apt.
  const script = `
set -u
missing=""
for p in "$@"; do
  dpkg -s "$p" 2>/dev/null | grep -qx 'Status: install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
export DEBIAN_FRONTEND=noninteractive
opts="-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
apt-get install -y --no-install-recommends $opts $missing && exit 0
echo "strata tests: apt-get install failed; running apt-get update and retrying" >&2
for i in 1 2 3 4 5 6 7 8 9 10; do
  apt-get update $opts && break
  echo "strata tests: apt-get update failed (try $i), retrying" >&2
  sleep 5
done
apt-get install -y --no-install-recommends $opts $missing
`;
  const [cmd, ...args] = [...asRoot, 'flock', APT_LOCK, 'sh', '-c', script, 'ensure-packages', ...missing];
  const r = await run(cmd!, args, { check: false });
  if (r.code !== 0) {
    throw new Error(`could not install Debian packages ${missing.join(', ')} needed by the tests ` +
      `(apt-get install, exit ${r.code}):\n${r.stderr.trim().split('\n').slice(-15).join('\n')}`);
  }
  const now = await installedPackages(missing);
  const still = missing.filter((p) => !now.has(p));
  if (still.length) throw new Error(`Debian packages still not installed after apt-get: ${still.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// podman / skopeo / umoci

/**
 * Writes a containers.conf and storage.conf confining podman to `dir` and returns an environment
 * that makes podman use them. Why each setting (design notes §8): crun fails on these VMs' hybrid
 * cgroup setup, so runc; runc fails with the default open-files/process limits, so bounded
 * ulimits; no network is needed or available; vfs needs no kernel overlay support and no mounts
 * to clean up. Every state and temp directory lives in `dir` so concurrent test files with
 * different dirs do not share podman state, and removing `dir` removes everything.
 */
export function podmanEnv(dir: string): NodeJS.ProcessEnv {
  const root = resolve(dir);
  const d = (name: string) => { const p = join(root, name); mkdirSync(p, { recursive: true }); return p; };
  const graphroot = d('storage');
  const runroot = d('run');
  const tmp = d('tmp');
  const containersConf = join(root, 'containers.conf');
  const storageConf = join(root, 'storage.conf');
  const q = (s: string) => JSON.stringify(s); // TOML basic strings accept JSON string escapes
  writeFileSync(containersConf, [
    '[containers]',
    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
    'netns = "none"',
    'log_driver = "k8s-file"',
    '',
    '[engine]',
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = ${q(join(root, 'events.log'))}`,
    `tmp_dir = ${q(d('libpod-tmp'))}`,
    `static_dir = ${q(join(graphroot, 'libpod'))}`,
    `volume_path = ${q(d('volumes'))}`,
    `image_copy_tmp_dir = ${q(tmp)}`,
    '',
  ].join('\n'));
  writeFileSync(storageConf, [
    '[storage]',
    'driver = "vfs"',
    `graphroot = ${q(graphroot)}`,
    `runroot = ${q(runroot)}`,
    '',
  ].join('\n'));
  return {
    ...process.env,
    CONTAINERS_CONF: containersConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    TMPDIR: tmp,
  };
}

/** Runs podman with an environment from podmanEnv. */
export function podman(args: readonly string[], env: NodeJS.ProcessEnv, opts: Omit<RunOptions, 'env'> = {}): Promise<ToolResult> {
  return run('podman', args, { ...opts, env });
}

export function skopeo(args: readonly string[], opts: RunOptions = {}): Promise<ToolResult> {
  // skopeo reads no podman storage for the transports we use; insecure policy is not needed for
  // inspect (it verifies no signatures), but copy needs a policy: the Debian default accepts all.
  return run('skopeo', args, opts);
}

export function umoci(args: readonly string[], opts: RunOptions = {}): Promise<ToolResult> {
  return run('umoci', args, opts);
}
