/**
 * Issue 17, part 2: unchanged bytes move in the kernel. copyRangeSync (copy_file_range through
 * the native helper `npm ci` builds) copies exact ranges and says when it cannot; a warm
 * docker-archive rebuild copies its trusted layers with copy_file_range — seen with strace, not
 * inferred — and gives the bytes of a build that copies through user space and of --no-cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyRangeSync, kernelCopyAvailable } from '../../src/util/copy-range.js';
import { cliPath, repoRoot, tempDir } from '../support/paths.js';
import { sha256File } from '../support/archive.js';
import { ensurePackages } from '../support/tools.js';

const demoRoot = join(repoRoot, 'closures', 'demo', 'root');
const demoClosure = join(repoRoot, 'closures', 'demo', 'closure.json');

test('the kernel-copy helper is built (npm ci builds it where g++ and Node headers exist, as on CI)', () => {
  assert.ok(kernelCopyAvailable(), 'src/native/build/Release/copy_range.node missing: run npm ci (needs g++, make, python3)');
});

test('copyRangeSync copies exactly the range asked, into the offset asked; refuses what the kernel cannot do', (t) => {
  const dir = tempDir(t);
  const src = randomBytes(5 << 20);
  writeFileSync(join(dir, 'src'), src);
  writeFileSync(join(dir, 'dst'), Buffer.alloc(3 << 20, 0x55));
  const a = openSync(join(dir, 'src'), 'r');
  const b = openSync(join(dir, 'dst'), 'r+');
  try {
    assert.equal(copyRangeSync(a, 1000, b, 777, 4 << 20), true);
    assert.equal(copyRangeSync(a, 0, b, 0, 0), true, 'nothing to copy is done');
    const got = readFileSync(join(dir, 'dst'));
    assert.equal(got.length, 777 + (4 << 20));
    assert.ok(got.subarray(0, 777).every((x) => x === 0x55), 'bytes before the offset untouched');
    assert.ok(got.subarray(777).equals(src.subarray(1000, 1000 + (4 << 20))));
    // Past the source's end: a short copy is an error, not a silent truncation.
    assert.throws(() => copyRangeSync(a, (5 << 20) - 10, b, 0, 100), /copied 10 of 100/);
  } finally {
    closeSync(a);
    closeSync(b);
  }
  // A target the kernel will not copy into (a character device): false, nothing thrown.
  const nul = openSync('/dev/null', 'w');
  const s = openSync(join(dir, 'src'), 'r');
  try {
    assert.equal(copyRangeSync(s, 0, nul, 0, 4096), false);
  } finally {
    closeSync(nul);
    closeSync(s);
  }
});

test('a warm docker-archive rebuild copies trusted layers with copy_file_range, and gives the same bytes as a user-space copy and --no-cache', async (t) => {
  await ensurePackages(['strace']);
  const dir = tempDir(t);
  const args = (out: string, extra: string[]) => [cliPath, 'build', demoClosure, '--store-root', demoRoot, '-o', join(dir, out), '--cache-dir', join(dir, 'cache'), ...extra];
  const run = (out: string, extra: string[] = [], env: NodeJS.ProcessEnv = process.env, strace = false): string => {
    const cmd = strace ? ['strace', '-f', '-qq', '-e', 'trace=copy_file_range', '-o', join(dir, `${out}.strace`), process.execPath] : [process.execPath];
    const r = spawnSync(cmd[0]!, [...cmd.slice(1), ...args(out, extra)], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return strace ? readFileSync(join(dir, `${out}.strace`), 'utf8') : '';
  };
  run('image.tar');
  const traced = run('image.tar', [], process.env, true);
  // Every successful call: `copy_file_range(fd, [off], fd, [off], len, 0) = n`.
  const copied = [...traced.matchAll(/copy_file_range\(.*\)\s*=\s*(\d+)/g)].map((m) => Number(m[1]));
  assert.ok(copied.length >= 3, `copy_file_range calls: ${copied.length}\n${traced.slice(0, 2000)}`);
  const kernelBytes = copied.reduce((a, b) => a + b, 0);
  assert.ok(kernelBytes > 20_000, `bytes copied in the kernel: ${kernelBytes}`);
  const kernel = sha256File(join(dir, 'image.tar'));

  run('image.tar', [], { ...process.env, STRATA_NO_KERNEL_COPY: '1' });
  assert.equal(sha256File(join(dir, 'image.tar')), kernel, 'a user-space copy gives the same bytes');
  run('reference.tar', ['--no-cache']);
  assert.equal(sha256File(join(dir, 'reference.tar')), kernel, 'and so does a build without the cache');
});
