/**
 * Issue 18: `strata build STOREPATH` and `strata build ./result` ask Nix for the closure
 * themselves (`nix path-info --json --recursive`, `--nix-store` passed as `--store`), and give the
 * same image as the closure-JSON form, against a real Nix store (Debian's nix-bin, a chroot store).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { makeNixPackageStore, nixEnv, removeNixPackageStore, type NixPackageStore } from '../support/nix-store.js';
import { lowercaseTempDir } from '../e2e-base/helpers.js';

let dir: string;
let store: NixPackageStore;
let env: NodeJS.ProcessEnv;
before(async () => {
  dir = lowercaseTempDir('nixarg');
  store = await makeNixPackageStore(join(dir, 'nix'));
  env = await nixEnv(join(dir, 'nix'));
});
after(async () => removeNixPackageStore(join(dir, 'nix')));

async function imageId(args: readonly string[], withEnv = env): Promise<string> {
  const r = await runStrata(['build', ...args, '--json'], { env: withEnv });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { imageId: string }).imageId;
}

test('a store path, and a ./result symlink to it, build the image its closure JSON builds', async () => {
  const hello = store.releases[0].paths.hello;
  const closure = join(dir, 'hello.json');
  writeFileSync(closure, execFileSync('nix', ['path-info', '--store', store.storeRoot, '--json', '--recursive', hello], { env }));
  const common = ['--store-root', store.storeRoot, '--tag', 'hello:1'];
  const fromJson = await imageId([closure, ...common, '-o', join(dir, 'json.tar')]);
  const fromPath = await imageId([hello, '--nix-store', store.storeRoot, ...common, '-o', join(dir, 'path.tar')]);
  assert.equal(fromPath, fromJson);
  const result = join(dir, 'result');
  symlinkSync(hello, result);
  assert.equal(await imageId([result, '--nix-store', store.storeRoot, ...common, '-o', join(dir, 'result.tar')]), fromJson);
});

test('a store path without Nix installed, or one Nix does not know, is a clear error', async () => {
  const hello = store.releases[0].paths.hello;
  const noNix = await runStrata(['build', hello, '--store-root', store.storeRoot, '-o', join(dir, 'x.tar')], { env: { ...env, PATH: '/nonexistent' } });
  assert.notEqual(noNix.code, 0);
  assert.match(noNix.stderr, /no `nix` command here/);
  const unknown = await runStrata(['build', '/nix/store/00000000000000000000000000000000-nothing', '--nix-store', store.storeRoot, '-o', join(dir, 'y.tar')], { env });
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /nix path-info --json --recursive \/nix\/store\/0+-nothing failed/);
  assert.doesNotMatch(unknown.stderr + noNix.stderr, /\n\s+at /);
});
