/**
 * The directory of a compression library's npm package, after checking that the installed
 * version is the one whose WebAssembly makes strata's bytes (a different .wasm could compress
 * differently, and the cache keys on the pinned version).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * `entryDepth`: how many directories the package's resolved entry file lies below its root (the
 * root holds package.json, which the package may not export).
 */
export function pinnedPackage(name: string, version: string, what: string, entryDepth = 0): { root: string; entry: string } {
  const entry = createRequire(import.meta.url).resolve(name);
  let root = dirname(entry);
  for (let i = 0; i < entryDepth; i++) root = dirname(root);
  const installed = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version;
  if (installed !== version) {
    throw new Error(`${name} ${installed} is installed, but strata's ${what} bytes are pinned to ${name} ${version}: reinstall with npm ci`);
  }
  return { root, entry };
}
