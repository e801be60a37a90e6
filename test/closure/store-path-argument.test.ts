/**
 * Issue 18: `strata build STOREPATH` and `strata build ./result` ask Nix for the closure
 * themselves (`nix path-info --json --recursive`, `--nix-store` passed as `--store`), and give the
 * same image as the closure-JSON form, against a real Nix store (Debian's nix-bin, a chroot store).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { nixStoreFixture } from '../support/nix-store.js';

const fixture = nixStoreFixture('nixarg');

async function imageId(args: readonly string[], withEnv = fixture.env): Promise<string> {
  const r = await runStrata(['build', ...args, '--json'], { env: withEnv });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { imageId: string }).imageId;
}

test('a store path, and a ./result symlink to it, build the image its closure JSON builds', async () => {
  const hello = fixture.store.releases[0].paths.hello;
  const closure = join(fixture.dir, 'hello.json');
  writeFileSync(closure, execFileSync('nix', ['path-info', '--store', fixture.store.storeRoot, '--json', '--recursive', hello], { env: fixture.env }));
  const common = ['--store-root', fixture.store.storeRoot, '--tag', 'hello:1'];
  const fromJson = await imageId([closure, ...common, '-o', join(fixture.dir, 'json.tar')]);
  const fromPath = await imageId([hello, '--nix-store', fixture.store.storeRoot, ...common, '-o', join(fixture.dir, 'path.tar')]);
  assert.equal(fromPath, fromJson);
  const result = join(fixture.dir, 'result');
  symlinkSync(hello, result);
  assert.equal(await imageId([result, '--nix-store', fixture.store.storeRoot, ...common, '-o', join(fixture.dir, 'result.tar')]), fromJson);
});

test('a store path without Nix installed, or one Nix does not know, is a clear error', async () => {
  const hello = fixture.store.releases[0].paths.hello;
  const noNix = await runStrata(['build', hello, '--store-root', fixture.store.storeRoot, '-o', join(fixture.dir, 'x.tar')], { env: { ...fixture.env, PATH: '/nonexistent' } });
  assert.notEqual(noNix.code, 0);
  assert.match(noNix.stderr, /no `nix` command here/);
  const unknown = await runStrata(['build', '/nix/store/00000000000000000000000000000000-nothing', '--nix-store', fixture.store.storeRoot, '-o', join(fixture.dir, 'y.tar')], { env: fixture.env });
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /nix path-info --json --recursive \/nix\/store\/0+-nothing failed/);
  assert.doesNotMatch(unknown.stderr + noNix.stderr, /\n\s+at /);
});
