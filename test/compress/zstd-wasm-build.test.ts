/**
 * strata's zstd encoder is a WebAssembly module built from libzstd's sources by
 * src/compress/zstd-wasm/build.sh and committed beside it. This rebuilds it (installing clang 14,
 * lld 14 and wasi-libc from Debian, fetching the pinned sources from the npm registry) into a
 * temporary file and checks that it is, byte for byte, the module strata runs and pins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ZSTD_WASM_SHA256, zstdWasmPath } from '../../src/compress/zstd-block.js';
import { repoRoot, tempDir } from '../support/paths.js';
import { ensurePackages } from '../support/tools.js';

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

test('the committed zstd module is what build.sh makes from the pinned sources, and what strata pins', async (t) => {
  assert.equal(sha256(zstdWasmPath()), ZSTD_WASM_SHA256, 'the committed module is not the pinned one');
  // Installed here, under the lock the other tests' installs take, so build.sh has nothing to install.
  await ensurePackages(['clang-14', 'lld-14', 'wasi-libc']);
  const out = join(tempDir(t), 'zstd.wasm');
  // In a directory of its own, so that nothing of the checkout's path can reach the module.
  const r = spawnSync('sh', [join(repoRoot, 'src', 'compress', 'zstd-wasm', 'build.sh'), out], { cwd: tempDir(t), encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  assert.equal(r.status, 0, `build.sh failed:\n${r.stderr}\n${r.stdout.slice(-2000)}`);
  assert.equal(sha256(out), ZSTD_WASM_SHA256, 'build.sh made another module from the same sources');
});
