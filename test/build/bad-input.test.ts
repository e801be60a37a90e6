import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot, tempDir } from '../support/paths.js';

const demoRoot = join(repoRoot, 'closures', 'demo', 'root');
const demoClosure = join(repoRoot, 'closures', 'demo', 'closure.json');
const A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a';
const B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b';

function plain(paths: { path: string; references: string[] }[]): string {
  return JSON.stringify({ version: 1, paths });
}

interface Case {
  name: string;
  closure?: string;
  /** Extra arguments; the output goes to OUT in a fresh directory. */
  args?: string[];
  format?: string;
  /** Every pattern must appear in stderr. */
  expect: RegExp[];
  storeRoot?: string;
}

const cases: Case[] = [
  { name: 'malformed JSON', closure: '{"version": 1, "paths": [', expect: [/closure\.json/, /JSON/i] },
  { name: 'unknown closure format', closure: '{"hello": "world", "n": 3}', expect: [/closure\.json/, /format/i] },
  { name: 'reference to a path missing from the closure', closure: plain([{ path: A, references: [B] }]), expect: [/bbbbbbbb/, /aaaaaaaa/] },
  { name: 'store path outside the store dir', closure: plain([{ path: '/usr/lib/x', references: [] }]), expect: [/\/usr\/lib\/x/] },
  { name: 'store path with ..', closure: plain([{ path: '/nix/store/../etc/passwd', references: [] }]), expect: [/\.\./] },
  { name: 'cycle other than a self-reference', closure: plain([{ path: A, references: [B] }, { path: B, references: [A] }]), expect: [/cycle/i, /aaaaaaaa/, /bbbbbbbb/] },
  { name: 'path missing on disk', closure: plain([{ path: A, references: [] }]), expect: [/aaaaaaaa/, /(not exist|missing|no such|ENOENT)/i] },
  { name: 'budget below 2', args: ['--max-layers', '1'], expect: [/max.layers/i, /at least 2/] },
  { name: 'unknown output format', args: ['--format', 'tarball'], expect: [/format/, /tarball/] },
  { name: 'store root that does not exist', storeRoot: '/nonexistent/strata-root', expect: [/\/nonexistent\/strata-root/] },
  { name: 'closure file that does not exist', closure: undefined, args: [], expect: [/no-such-closure\.json/] },
];

for (const format of ['docker-archive', 'oci', 'oci-archive']) {
  for (const c of cases) {
    test(`${format}: ${c.name} → clear error, non-zero exit, no output left`, async (t) => {
      const dir = tempDir(t);
      const work = join(dir, 'work');
      mkdirSync(work);
      let closureFile = demoClosure;
      if (c.closure !== undefined) {
        closureFile = join(work, 'closure.json');
        writeFileSync(closureFile, c.closure);
      } else if (c.name.startsWith('closure file')) {
        closureFile = join(work, 'no-such-closure.json');
      }
      const store = join(dir, 'root');
      cpSync(demoRoot, store, { recursive: true, verbatimSymlinks: true });
      const out = join(work, format === 'oci' ? 'out-dir' : 'out.tar');
      const r = await runStrata(['build', closureFile, '--store-root', c.storeRoot ?? store, '-o', out, '--format', format, ...(c.args ?? [])], { cwd: work });
      assert.notEqual(r.code, 0, `expected failure, got success; stderr: ${r.stderr}`);
      for (const re of c.expect) assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /internal error|    at /, 'a user error must not print a stack trace');
      assert.equal(existsSync(out), false, 'output left behind');
      const leftovers = readdirSync(work).filter((n) => n !== 'closure.json');
      assert.deepEqual(leftovers, [], `temporary files left behind: ${leftovers.join(', ')}`);
    });
  }
}

test('a failure while writing layers (a store file vanishes mid-closure) removes the partial archive', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'root');
  cpSync(demoRoot, store, { recursive: true, verbatimSymlinks: true });
  // The top-most layer's path is missing: earlier layers are written before the failure.
  const { rmSync } = await import('node:fs');
  rmSync(join(store, 'nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0'), { recursive: true });
  const work = join(dir, 'work');
  mkdirSync(work);
  const r = await runStrata(['build', demoClosure, '--store-root', store, '-o', join(work, 'x.tar')], { cwd: work });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /i47ri27awhf97vii49wzlf792npyffib-demo-hello-1\.0/);
  assert.deepEqual(readdirSync(work), []);
});
