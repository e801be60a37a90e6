/**
 * Issue 17: a warm archive rebuild (docker-archive, the default, or an OCI archive) on a filesystem with reflinks (XFS, btrfs) shares the
 * unchanged layers' blocks with the previous output instead of writing them again. Layer blobs
 * start at 4 KiB boundaries in every archive strata writes, so copy_file_range can clone them.
 *
 * Each filesystem is a loop mount of a sparse image in /dev/shm (so the machine's disk is not
 * measured); the output and the cache are on it, the store is not. Checked with FIEMAP
 * (filefrag's `shared` flag), against the same rebuild with kernel copies turned off (which must
 * share nothing: the control), and against a --no-cache build's bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { cliPath, tempDir } from '../support/paths.js';
import { sha256File } from '../support/archive.js';
import { ensurePackages } from '../support/tools.js';

const FILESYSTEMS = [
  { fs: 'xfs', pkg: 'xfsprogs', mkfs: ['mkfs.xfs', '-q', '-f', '-m', 'reflink=1'] },
  { fs: 'btrfs', pkg: 'btrfs-progs', mkfs: ['mkfs.btrfs', '-q', '-f'] },
];

function sh(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Bytes of `file` in extents that FIEMAP reports shared with another file. */
function sharedBytes(file: string): number {
  let blocks = 0;
  const out = sh('filefrag', ['-v', '-b4096', file]);
  for (const line of out.split('\n')) {
    const m = /^\s*\d+:\s+\d+\.\.\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+):.*\bshared\b/.exec(line);
    if (m) blocks += Number(m[1]);
  }
  return blocks * 4096;
}

/** Three store paths of 6 MiB each (incompressible, so sizes are exact), the app referring to the two libraries. */
function makeStore(dir: string): { closure: string; root: string; app: string } {
  const root = join(dir, 'root');
  const names = ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-lib-1.0', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-data-1.0', 'cccccccccccccccccccccccccccccccc-app-1.0'];
  for (const n of names) {
    mkdirSync(join(root, 'nix/store', n), { recursive: true });
    writeFileSync(join(root, 'nix/store', n, 'blob'), randomBytes(6 << 20));
  }
  const p = (n: string) => `/nix/store/${n}`;
  const closure = join(dir, 'closure.json');
  writeFileSync(closure, JSON.stringify({
    version: 1,
    storeDir: '/nix/store',
    roots: [p(names[2]!)],
    paths: [
      { path: p(names[0]!), references: [] },
      { path: p(names[1]!), references: [] },
      { path: p(names[2]!), references: [p(names[0]!), p(names[1]!)] },
    ],
  }));
  return { closure, root, app: join(root, 'nix/store', names[2]!, 'blob') };
}

/** The default output, and an archive of compressed layers (copied from the cache's own blob files). */
const FORMATS: [string, string[]][] = [
  ['docker-archive', []],
  ['oci-archive', ['--format', 'oci-archive', '--compress', 'gzip']],
];

for (const { fs, pkg, mkfs } of FILESYSTEMS) {
  test(`${fs}: a warm rebuild of an archive (docker, OCI gzip) shares the unchanged layers' blocks with the previous output; same bytes as --no-cache`, async (t) => {
    // Capabilities of the machine, not tools a test can install: said, not failed. A mount that is refused fails.
    if (process.getuid?.() !== 0) return t.skip('needs root to mount a loop filesystem');
    if (!existsSync('/dev/loop-control')) return t.skip('this machine has no loop devices (/dev/loop-control)');
    await ensurePackages([pkg]);
    const dir = tempDir(t);
    // Sparse, in memory where there is /dev/shm: only what is written takes room. The mount point
    // is not under `dir`, whose clean-up could run while the filesystem is still mounted.
    const imageDir = mkdtempSync(existsSync('/dev/shm') ? '/dev/shm/strata-test-' : join(tmpdir(), 'strata-test-img-'));
    const mnt = mkdtempSync(join(tmpdir(), `strata-test-${fs}-`));
    t.after(() => {
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
      rmSync(imageDir, { recursive: true, force: true });
    });
    const image = join(imageDir, `${fs}.img`);
    writeFileSync(image, '');
    truncateSync(image, 400 << 20);
    sh(mkfs[0]!, [...mkfs.slice(1), image]);
    sh('mount', ['-o', 'loop', image, mnt]);
    const { closure, root, app } = makeStore(dir);
    for (const [format, flags] of FORMATS) {
      const build = (out: string, extra: string[] = [], env: NodeJS.ProcessEnv = process.env) =>
        sh(process.execPath, [cliPath, 'build', closure, '--store-root', root, '--layering', 'per-path', ...flags, '-o', join(mnt, out), '--cache-dir', join(mnt, `cache-${format}`), ...extra], env);
      build(`${format}-1.tar`);
      appendFileSync(app, `${format} release 2\n`); // the app's layer changes; the two libraries' layers do not
      build(`${format}-2.tar`);
      build(`${format}-2-user.tar`, [], { ...process.env, STRATA_NO_KERNEL_COPY: '1' });
      build(`${format}-2-fresh.tar`, ['--no-cache']);

      const out = (name: string) => join(mnt, `${format}-${name}.tar`);
      const fresh = sha256File(out('2-fresh'));
      assert.equal(sha256File(out('2')), fresh, `${format}: a reflinked rebuild differs from --no-cache`);
      assert.equal(sha256File(out('2-user')), fresh, `${format}: a user-space rebuild differs from --no-cache`);
      // gzip adds a few bytes per 1 MiB block to the random data, so its blobs are a little larger.
      const unchanged = 2 * (6 << 20);
      const shared = sharedBytes(out('2'));
      assert.ok(shared >= unchanged - 2 * 4096, `${format}: ${shared} bytes shared, expected the two unchanged layers' ${unchanged}`);
      assert.ok(shared < statSync(out('2')).size - (6 << 20), `${format}: the changed layer was shared too`);
      assert.equal(sharedBytes(out('2-user')), 0, `${format}: copies through user space share nothing (the control)`);
    }
  });
}
