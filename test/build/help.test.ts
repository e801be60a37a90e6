/**
 * Issue 18: help that helps — every command's --help shows examples, `strata completion` prints a
 * completion script, and the messages for the two commonest slips name the fix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot, tempDir } from '../support/paths.js';

const COMMANDS = ['build', 'stack', 'embed', 'publish', 'compose', 'plan', 'inspect', 'diff', 'export', 'push', 'index', 'cache'];

test('every command\'s --help has examples', async () => {
  for (const c of COMMANDS) {
    const r = await runStrata([c, '--help']);
    assert.equal(r.code, 0, `${c}: ${r.stderr}`);
    assert.match(r.stdout, /\nExamples:\n {2}strata /, `strata ${c} --help has no examples`);
  }
});

test('strata --version prints the package\'s version, as skopeo and podman print theirs', async () => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const r = await runStrata(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `strata version ${version}\n`);
});

test('strata completion prints a shell completion script for strata', async () => {
  const r = await runStrata(['completion']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /strata completion >> ~\/\.bashrc/);
  assert.match(r.stdout, /complete -o bashdefault -o default -F _strata_yargs_completions strata/);
});

test('a missing image says "not found"; a store path missing under --store-root names the flag', async (t) => {
  const dir = tempDir(t);
  const missing = await runStrata(['inspect', join(dir, 'nope.tar')]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /image .*nope\.tar not found/);
  assert.doesNotMatch(missing.stderr, /base image/);
  const noStore = await runStrata(['build', join(repoRoot, 'closures', 'demo', 'closure.json'), '--store-root', dir, '-o', join(dir, 'x.tar')]);
  assert.notEqual(noStore.code, 0);
  assert.match(noStore.stderr, /is not under --store-root .*: pass the directory that holds \/nix\/store as --store-root/);
});
