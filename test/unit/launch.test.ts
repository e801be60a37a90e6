/**
 * The `strata` command starts the bundled CLI from V8's code cache (src/cli/launch.ts). The cache
 * may only ever make start-up faster: the command as built here uses it, and a cache that does
 * not belong to the source is refused and the source runs as written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cachePathOf, compileProgram } from '../../src/cli/launch.js';
import { cliPath, distDir, repoRoot, tempDir } from '../support/paths.js';

const program = join(distDir, 'src', 'cli', 'strata.cjs');
const launchModule = join(distDir, 'src', 'cli', 'launch.js');

/**
 * What `body` prints, run as an ES module in a process of its own with `compileProgram` in scope,
 * which must succeed: within one process V8 reuses a script it has compiled before and never
 * looks at the cache given with it.
 */
function inFreshProcess(body: string): string {
  const code = `const { compileProgram } = await import(${JSON.stringify(launchModule)});\n${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** How `file`'s cache fares, in a process of its own. */
function cacheOf(file: string): string {
  return inFreshProcess(`process.stdout.write(compileProgram(${JSON.stringify(file)}).cache);`);
}

/** What `strata plan` of the demo prints through the command `cli`, which must succeed. */
function planWith(cli: string): string {
  const r = spawnSync(process.execPath, [cli, 'plan', 'closures/demo/closure.json', '--max-layers', '3', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('the code cache recorded by the build is accepted by this Node', () => {
  assert.ok(existsSync(cachePathOf(program)), `no ${cachePathOf(program)}: src/cli/bundle.mjs records it`);
  assert.equal(cacheOf(program), 'accepted');
});

test('a cache recorded for other source is refused, and the source runs as written', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'p.cjs');
  const key = `strataLaunchTest${process.pid}`;
  writeFileSync(file, `globalThis.${key} = 'first'; module.exports.f = (x) => x + 1;`);
  assert.equal(cacheOf(file), 'missing');
  const first = compileProgram(file);
  first.run();
  writeFileSync(cachePathOf(file), first.record());
  assert.equal(cacheOf(file), 'accepted');
  // Same length, other bytes: V8 itself checks only the length, and would run the old code.
  writeFileSync(file, `globalThis.${key} = 'other'; module.exports.f = (x) => x + 2;`);
  assert.equal(cacheOf(file), 'rejected');
  compileProgram(file).run();
  assert.equal((globalThis as Record<string, unknown>)[key], 'other');
});

test('a stack trace names the program where it is installed, not where its cache was recorded', (t) => {
  // The cache is recorded in one directory and shipped to another, as npm pack and install do.
  const built = join(tempDir(t), 'built-here');
  const installed = join(tempDir(t), 'installed-there');
  for (const d of [built, installed]) mkdirSync(d);
  const key = `strataLaunchWhere${process.pid}`;
  const source = `globalThis.${key} = () => new Error('deliberate').stack;\n`;
  writeFileSync(join(built, 'p.cjs'), source);
  const recorded = compileProgram(join(built, 'p.cjs'));
  recorded.run();
  (globalThis as unknown as Record<string, () => string>)[key]!(); // compiled, so the cache holds it too
  writeFileSync(join(installed, 'p.cjs'), source);
  writeFileSync(cachePathOf(join(installed, 'p.cjs')), recorded.record());
  assert.equal(cacheOf(join(installed, 'p.cjs')), 'accepted');
  const stack = inFreshProcess(`compileProgram(${JSON.stringify(join(installed, 'p.cjs'))}).run(); process.stdout.write(globalThis.${key}());`);
  assert.match(stack, /deliberate[\s\S]*p\.cjs:1:/);
  assert.ok(!stack.includes(built), `the stack names the directory the cache was recorded in:\n${stack}`);
});

test('the command runs without its cache, and with a cache from another program, as with its own', (t) => {
  const dir = tempDir(t);
  const own = planWith(cliPath);
  // A copy of the command beside a copy of the program, first with no cache, then with a foreign one.
  const cli = join(dir, 'strata.mjs');
  copyFileSync(cliPath, cli);
  copyFileSync(program, join(dir, 'strata.cjs'));
  assert.equal(planWith(cli), own);
  const other = join(dir, 'other.cjs');
  writeFileSync(other, 'module.exports = 1;');
  const foreign = compileProgram(other);
  foreign.run();
  // Refused by the digest, and, under the right digest, by V8 itself (it is another script's).
  const digest = createHash('sha256').update(readFileSync(program)).digest();
  for (const cache of [foreign.record(), Buffer.concat([digest, foreign.record().subarray(32)])]) {
    writeFileSync(cachePathOf(join(dir, 'strata.cjs')), cache);
    assert.equal(cacheOf(join(dir, 'strata.cjs')), 'rejected');
    assert.equal(planWith(cli), own);
  }
});

test('the program imports ES modules (libdeflate) from its code cache, and prints no warning', (t) => {
  const out = join(tempDir(t), 'layout');
  // Small gzip layers, compressed on the main thread: the program import()s libdeflate's glue.
  const r = spawnSync(process.execPath, [cliPath, 'build', 'closures/demo/closure.json', '--store-root', 'closures/demo/root', '--format', 'oci', '--compress', 'gzip', '-o', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(cacheOf(program), 'accepted');
});

test('STRATA_CODE_CACHE=off bundles the command without a cache (for reproducible packages), and it runs', (t) => {
  // Inside the checkout, so that esbuild finds node_modules as for dist.
  const dist = mkdtempSync(join(repoRoot, '.bundle-test-'));
  t.after(() => rmSync(dist, { recursive: true, force: true }));
  cpSync(join(distDir, 'src'), join(dist, 'src'), { recursive: true, filter: (f) => !f.endsWith('.v8cache') });
  const r = spawnSync(process.execPath, [join(repoRoot, 'src', 'cli', 'bundle.mjs'), dist], { encoding: 'utf8', env: { ...process.env, STRATA_CODE_CACHE: 'off' } });
  assert.equal(r.status, 0, r.stderr);
  const program = join(dist, 'src', 'cli', 'strata.cjs');
  assert.ok(existsSync(program));
  assert.equal(existsSync(cachePathOf(program)), false);
  assert.equal(planWith(join(dist, 'src', 'cli', 'strata.mjs')), planWith(cliPath));
});
