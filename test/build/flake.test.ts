/**
 * Issue 18: flake.nix parses, builds strata without a fixed-output hash (importNpmLock reads
 * package-lock.json), and its buildLayeredImage — streamLayeredImage's shape — turns its
 * arguments into a derivation that writes the closure with exportReferencesGraph and runs strata.
 * Checked offline with Debian's nix-bin against a stub nixpkgs (test/fixtures/nix).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../support/paths.js';
import { ensurePackages } from '../support/tools.js';

const NIX_ENV = { ...process.env, NIX_CONFIG: 'experimental-features = nix-command\n', NIX_REMOTE: '', NIX_STATE_DIR: '/tmp/strata-flake-test-state' };

function evalJson(expr: string): unknown {
  return JSON.parse(execFileSync('nix-instantiate', ['--eval', '--strict', '--json', '--readonly-mode', '-E', expr], { cwd: repoRoot, env: NIX_ENV, encoding: 'utf8' }));
}

const OUTPUTS = `let flake = import ${join(repoRoot, 'flake.nix')}; out = flake.outputs { self = out; nixpkgs = import ${join(repoRoot, 'test/fixtures/nix/stub-nixpkgs.nix')}; }; in out`;

test('flake.nix parses', async () => {
  await ensurePackages(['nix-bin']);
  execFileSync('nix-instantiate', ['--parse', join(repoRoot, 'flake.nix')], { env: NIX_ENV, stdio: 'pipe' });
});

test('the package takes its npm dependencies from package-lock.json, with no fake hash', async () => {
  await ensurePackages(['nix-bin']);
  const pkg = evalJson(`(${OUTPUTS}).packages.x86_64-linux.strata`) as { args: Record<string, unknown> };
  assert.equal((pkg.args['npmDeps'] as { type: string }).type, 'importNpmLock');
  assert.equal(pkg.args['npmConfigHook'], 'importNpmLock.npmConfigHook');
  assert.equal(pkg.args['npmDepsHash'], undefined);
  assert.equal(pkg.args['pname'], 'strata');
  // V8's code cache is not the same bytes from build to build (src/cli/bundle.mjs): left out.
  assert.equal((pkg.args['env'] as Record<string, string> | undefined)?.['STRATA_CODE_CACHE'], 'off');
});

test('buildLayeredImage: exportReferencesGraph of the contents, and strata run with streamLayeredImage\'s arguments as flags', async () => {
  await ensurePackages(['nix-bin']);
  const hello = '/nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0';
  const img = evalJson(`(${OUTPUTS}).lib.x86_64-linux.buildLayeredImage {
    name = "hello"; tag = "1.0"; contents = [ "${hello}" ]; maxLayers = 40;
    config = { Entrypoint = [ "${hello}/bin/hello" ]; Env = [ "GREETING=hi there" ]; ExposedPorts = { "8080/tcp" = { }; }; Labels = { team = "core"; }; };
  }`) as { name: string; env: { exportReferencesGraph: { closure: string[] }; __structuredAttrs: boolean }; script: string };
  assert.equal(img.name, 'hello.tar');
  assert.equal(img.env.__structuredAttrs, true);
  assert.deepEqual(img.env.exportReferencesGraph.closure, [hello]);
  const s = img.script.replace(/\s+/g, ' ');
  assert.match(s, /jq '\.closure' "\$NIX_ATTRS_JSON_FILE" > closure\.json/);
  assert.match(s, /strata build closure\.json --store-root \/ --no-cache/);
  assert.match(s, /--tag 'hello':"\$tag"/);
  assert.match(s, /tag='1\.0'/);
  assert.match(s, /--max-layers 40/);
  assert.ok(s.includes(`--entrypoint '["${hello}/bin/hello"]'`), s);
  assert.ok(s.includes(`--env 'GREETING=hi there'`), s);
  assert.ok(s.includes(`--expose '8080/tcp'`), s);
  assert.ok(s.includes(`--label 'team=core'`), s);
  assert.match(s, /-o "\$out"/);

  // tag = null: the output path's hash, as nixpkgs tags images.
  const untagged = evalJson(`(${OUTPUTS}).lib.x86_64-linux.buildLayeredImage { name = "hello"; contents = [ "${hello}" ]; }`) as { script: string };
  assert.match(untagged.script, /tag="\$\(basename "\$out" \| cut -d- -f1\)"/);
});
