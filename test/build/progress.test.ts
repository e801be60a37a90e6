/**
 * Issue 18: progress on a terminal only. A build shows nothing when stderr is not a terminal, a
 * status line under a pseudo-terminal (script -qc), a line per layer with --progress plain, and
 * its --json summary stays valid JSON every way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { cliPath, repoRoot, tempDir } from '../support/paths.js';

const demo = ['build', join(repoRoot, 'closures', 'demo', 'closure.json'), '--store-root', join(repoRoot, 'closures', 'demo', 'root'), '--no-cache'];

/** Runs strata under a pseudo-terminal (util-linux script), returning everything it printed. */
function underPty(args: readonly string[], dir: string): string {
  const quoted = [process.execPath, cliPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const log = join(dir, 'typescript');
  execFileSync('script', ['-qec', quoted, log], { cwd: repoRoot, stdio: 'ignore' });
  return readFileSync(log, 'utf8').replace(/^Script started.*\n/, '').replace(/\nScript done.*\n?$/, '');
}

test('no progress when stderr is not a terminal; JSON stays JSON', async (t) => {
  const dir = tempDir(t);
  const r = await runStrata([...demo, '-o', join(dir, 'a.tar'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'nothing on stderr');
  JSON.parse(r.stdout);
  const plain = await runStrata([...demo, '-o', join(dir, 'b.tar'), '--progress', 'plain', '--json']);
  assert.match(plain.stderr, /strata: layer 1 written \(.*\), .* so far\n/);
  assert.match(plain.stderr, /strata: committed\n$/);
  JSON.parse(plain.stdout);
});

test('a status line under a pseudo-terminal, none with --json there either', (t) => {
  const dir = tempDir(t);
  const shown = underPty([...demo, '-o', join(dir, 'c.tar')], dir);
  assert.match(shown, /\r\x1b\[Kstrata: \d+ layers?, .* written/);
  assert.match(shown, /wrote docker-archive:/);
  const json = underPty([...demo, '-o', join(dir, 'd.tar'), '--json'], dir);
  assert.doesNotMatch(json, /\x1b\[K/);
  JSON.parse(json.replace(/\r\n/g, '\n'));
});
