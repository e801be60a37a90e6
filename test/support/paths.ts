import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** Compiled test files live in <outDir>/test/...; the compiled sources beside them in <outDir>/src. */
export const distDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The repository root: where package.json and closures/ are. Tests run with it as cwd. */
export const repoRoot = findRepoRoot();

function findRepoRoot(): string {
  for (let dir = distDir; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'closures'))) return dir;
    if (dirname(dir) === dir) return process.cwd();
  }
}

/** The `strata` command as installed: the bundle of the CLI (src/cli/bundle.mjs). */
export const cliPath = join(distDir, 'src', 'cli', 'strata.mjs');

/** A fresh temporary directory, removed when `t` (a node:test context) ends. */
export function tempDir(t: { after(fn: () => void): void }, prefix = 'strata-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
