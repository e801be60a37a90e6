#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) under node's built-in test runner.
// A filter may be passed: `node test/run.mjs layering` runs only files whose path contains it.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const testDir = join(process.env.STRATA_DIST ?? join(root, 'dist'), 'test');
const filters = process.argv.slice(2);

function walk(dir) {
  return readdirSync(dir).sort().flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
  });
}

const files = walk(testDir).filter((f) => filters.length === 0 || filters.some((s) => relative(testDir, f).includes(s)));
if (files.length === 0) {
  console.error(`no test files under ${testDir}${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
