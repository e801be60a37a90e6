/**
 * Issue 18: `--nix-db` registers the closure in a Nix database inside the image. Unpacked, the
 * image is a store real Nix accepts: `nix-store --verify --check-contents` passes and
 * `nix path-info --recursive` lists the closure's paths and references; two builds give the same
 * database bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { unpackWithGnuTar } from '../support/host-store.js';
import { nixStoreFixture } from '../support/nix-store.js';

const fixture = nixStoreFixture('nixdb');

type PathInfo = { path: string; references: string[] };

test('an image built with --nix-db is a store Nix verifies, listing the closure as given; the database is the same bytes twice', async () => {
  const { dir, store, env } = fixture;
  const r1 = store.releases[0];
  const layout = join(dir, 'layout');
  for (const [ref, cwd] of [['a', dir], ['b', '/']] as const) {
    const r = await runStrata(['build', r1.closureFile, '--store-root', store.storeRoot, '--nix-db', '--compress', 'none', '-o', `oci:${layout}:${ref}`], { cwd });
    assert.equal(r.code, 0, r.stderr);
  }
  const rootfs = join(dir, 'rootfs');
  await unpackWithGnuTar(layout, 'a', rootfs);
  const again = join(dir, 'rootfs-b');
  await unpackWithGnuTar(layout, 'b', again);
  const db = readFileSync(join(rootfs, 'nix/var/nix/db/db.sqlite'));
  assert.ok(db.equals(readFileSync(join(again, 'nix/var/nix/db/db.sqlite'))), 'the same database bytes from both builds');
  assert.equal(readFileSync(join(rootfs, 'nix/var/nix/db/schema'), 'utf8'), '10');

  const verify = execFileSync('nix-store', ['--store', rootfs, '--verify', '--check-contents'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.doesNotMatch(verify, /error|invalid|modified/i);

  const input = JSON.parse(readFileSync(r1.closureFile, 'utf8')) as PathInfo[];
  const noSelf = (p: PathInfo) => [p.path, p.references.filter((r) => r !== p.path).sort()] as const;
  const roots = [r1.paths.hello, r1.paths.shout];
  const listed = JSON.parse(execFileSync('nix', ['path-info', '--store', rootfs, '--json', '--recursive', ...roots], { env, encoding: 'utf8' })) as PathInfo[];
  assert.deepEqual(listed.map(noSelf).sort(), input.map(noSelf).sort());
});
