/**
 * Byte-identical gzip and zstd blobs from Node 20 and Node 22: a second Node is installed from the
 * npm registry (the `node` package ships the binary) into a shared temp dir, and the same script
 * compresses the same sample under both, with the worker pool and inline, with different read
 * chunk sizes. Both encoders are WebAssembly (libdeflate, libzstd), which has no CPU-specific path
 * of its own; what could differ per CPU is the machine code V8 generates for it, so one run
 * disables V8's use of every optional x86 extension (SSE4.x, AVX, AVX2, BMI, LZCNT, POPCNT) and
 * another runs it on the baseline compiler only (Liftoff, never TurboFan). Node 22's own
 * node:zlib zstd decoder (native libzstd) checks the zstd bytes independently.
 *
 * Needs the npm registry on the first run. STRATA_SKIP_NODE22=1 skips the Node 22 half.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { CodecRun } from './digest-script.js';
import { distDir, tempDir } from '../support/paths.js';
import { sampleData } from './sample-data.js';

const script = join(distDir, 'test', 'compress', 'digest-script.js');

interface Run {
  node: string;
  gzip: CodecRun;
  zstd: CodecRun;
}

function run(nodeBin: string, chunk: number, v8Flags: string[] = [], out?: string): Run {
  // NODE_OPTIONS would not reach worker threads' V8 flags any differently: flags are per process.
  const stdout = execFileSync(nodeBin, [...v8Flags, script, String(chunk), ...(out ? [out] : [])], { encoding: 'utf8' });
  return JSON.parse(stdout) as Run;
}

/** Installs node@22 once into a temp dir shared by test runs (installed aside, renamed into place). */
function nodeTwentyTwo(): string {
  const home = join(tmpdir(), 'strata-test-node22');
  const bin = join(home, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(bin)) {
    const staging = mkdtempSync(join(tmpdir(), 'strata-test-node22-'));
    const r = spawnSync('npm', ['install', '--prefix', staging, '--no-audit', '--no-fund', '--no-save', 'node@22'], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) {
      rmSync(staging, { recursive: true, force: true });
      throw new Error(`npm install node@22 failed (set STRATA_SKIP_NODE22=1 to skip when offline):\n${r.stderr}`);
    }
    try {
      renameSync(staging, home);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another run installed it first
    }
  }
  return bin;
}

const NO_CPU_EXTENSIONS = ['sse3', 'ssse3', 'sse4-1', 'sse4-2', 'avx', 'avx2', 'fma3', 'bmi1', 'bmi2', 'lzcnt', 'popcnt'].map((f) => `--no-enable-${f}`);

test('gzip and zstd blobs are byte-identical under Node 20 and Node 22, threaded or inline, any chunking, without CPU extensions, on either compiler tier', { timeout: 900_000 }, (t) => {
  const dir = tempDir(t);
  const base = run(process.execPath, 65536, [], join(dir, 'a'));
  assert.match(base.node, /^v20\./, 'the test suite itself runs on Node 20');
  const sample = sampleData();
  for (const codec of ['gzip', 'zstd'] as const) {
    assert.equal(base[codec].threaded, base[codec].inline, codec);
    assert.equal(readFileSync(join(dir, `a.${codec}`)).length, base[codec].size);
  }
  // Independent check that the bytes are what they claim to be: gunzip restores the sample.
  assert.equal(Buffer.compare(gunzipSync(readFileSync(join(dir, 'a.gzip'))), sample), 0);

  const plain = run(process.execPath, 4096, NO_CPU_EXTENSIONS);
  const liftoff = run(process.execPath, 777_777, ['--liftoff-only']);
  for (const codec of ['gzip', 'zstd'] as const) {
    assert.equal(plain[codec].threaded, base[codec].threaded, `${codec}: V8 without optional CPU extensions`);
    assert.equal(liftoff[codec].threaded, base[codec].threaded, `${codec}: baseline WebAssembly compiler only`);
  }

  if (process.env.STRATA_SKIP_NODE22 === '1') {
    t.diagnostic('Node 22 comparison skipped (STRATA_SKIP_NODE22=1)');
    return;
  }
  const node22 = nodeTwentyTwo();
  const other = run(node22, 1_000_003);
  assert.match(other.node, /^v22\./);
  for (const codec of ['gzip', 'zstd'] as const) {
    assert.equal(other[codec].threaded, base[codec].threaded, `${codec}: Node ${other.node} vs ${base.node}`);
    assert.equal(other[codec].inline, base[codec].threaded, codec);
    t.diagnostic(`${codec}, ${base.node} and ${other.node}: ${base[codec].threaded} (${base[codec].size} bytes)`);
  }
  // Node 22's native libzstd decodes strata's zstd frames to the sample.
  const check = `const z=require('node:zlib');const fs=require('node:fs');process.stdout.write(String(z.zstdDecompressSync(fs.readFileSync(process.argv[1])).equals(fs.readFileSync(process.argv[2]))))`;
  writeFileSync(join(dir, 'sample'), sample);
  assert.equal(execFileSync(node22, ['-e', check, join(dir, 'a.zstd'), join(dir, 'sample')], { encoding: 'utf8' }), 'true', 'node:zlib (libzstd) restores the sample');
});
