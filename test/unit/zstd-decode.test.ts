/**
 * The zstd reader (src/compress/zstd-decode.ts): real zstd(1) streams in any chunking, several
 * frames and skippable frames; and the bounds it keeps against hostile streams — a window above
 * 128 MiB refused before any decoding, a run-length bomb handed out in steps of at most 8 MiB,
 * truncated, empty and garbage streams refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_WINDOW, ZstdDecoder, ZstdError } from '../../src/compress/zstd-decode.js';
import { tempDir } from '../support/paths.js';
import { ensurePackages } from '../support/tools.js';
import { sampleData } from '../compress/sample-data.js';

function decodeAll(stream: Buffer, chunk: number): { out: Buffer; largestStep: number } {
  const dec = new ZstdDecoder();
  const parts: Buffer[] = [];
  let largestStep = 0;
  const take = (steps: Iterable<Uint8Array>): void => {
    for (const s of steps) {
      parts.push(Buffer.from(s));
      largestStep = Math.max(largestStep, s.length);
    }
  };
  for (let at = 0; at < stream.length; at += chunk) take(dec.steps(stream.subarray(at, at + chunk)));
  take(dec.end());
  return { out: Buffer.concat(parts), largestStep };
}

const MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** A 3-byte block header (RFC 8878 §3.1.1.2). */
function blockHeader(last: boolean, type: number, size: number): Buffer {
  const v = (last ? 1 : 0) | (type << 1) | (size << 3);
  return Buffer.from([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
}
/** A frame without a content size, whose window descriptor says 2^windowLog. */
function frameHeader(windowLog: number): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([0x00, (windowLog - 10) << 3])]);
}

test('zstd(1) streams decode in any chunking: several frames, a skippable frame, checksums, long windows', async (t) => {
  await ensurePackages(['zstd']);
  const dir = tempDir(t);
  const data = sampleData();
  writeFileSync(join(dir, 'a'), data.subarray(0, data.length >> 1));
  writeFileSync(join(dir, 'b'), data.subarray(data.length >> 1));
  const z = (args: string[], file: string): Buffer => execFileSync('zstd', ['-q', '-c', ...args, join(dir, file)], { maxBuffer: 1 << 28 });
  const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18]), Buffer.from([5, 0, 0, 0]), Buffer.from('hello')]);
  const stream = Buffer.concat([z(['-3', '--check'], 'a'), skippable, z(['-19', '--long=27', '--no-check'], 'b')]);
  for (const chunk of [5, 4096, 1 << 20]) {
    assert.equal(Buffer.compare(decodeAll(stream, chunk).out, data), 0, `chunk ${chunk}`);
  }
  // And zstd(1) agrees with what we hand it back (an independent decoder of the same bytes).
  assert.equal(Buffer.compare(execFileSync('zstd', ['-d', '-q', '-c'], { input: stream, maxBuffer: 1 << 28 }), data), 0);
});

test('a frame declaring a window above 128 MiB is refused before it is decoded', () => {
  const raw = Buffer.from('x');
  const ok = Buffer.concat([frameHeader(27), blockHeader(true, 0, raw.length), raw]);
  assert.equal(decodeAll(ok, 1 << 20).out.toString(), 'x');
  const big = Buffer.concat([frameHeader(28), blockHeader(true, 0, raw.length), raw]);
  assert.throws(() => decodeAll(big, 1 << 20), (e: unknown) => e instanceof ZstdError && /256 MiB window/.test(e.message) && /128 MiB/.test(e.message));
  // A single-segment frame whose content size is its window: 1 GiB declared in 4 bytes.
  const single = Buffer.concat([MAGIC, Buffer.from([0xa0]), Buffer.from([0, 0, 0, 0x40]), blockHeader(true, 0, 1), raw]);
  assert.throws(() => decodeAll(single, 3), (e: unknown) => e instanceof ZstdError && /1024 MiB window/.test(e.message));
  assert.equal(MAX_WINDOW, 2 ** 27);
});

test('a run-length bomb (128 MiB from 4 KiB) comes out in steps of at most 8 MiB', () => {
  const blocks: Buffer[] = [frameHeader(20)];
  const n = 1024;
  for (let i = 0; i < n; i++) blocks.push(blockHeader(i === n - 1, 1, 128 << 10), Buffer.from([0x61]));
  const bomb = Buffer.concat(blocks);
  assert.ok(bomb.length < 4200);
  const { out, largestStep } = decodeAll(bomb, bomb.length);
  assert.equal(out.length, n * (128 << 10));
  assert.ok(out.every((b) => b === 0x61));
  // fzstd hands out a block at a time; what matters is that one step of ours never holds more
  // than 64 blocks' output, so an async consumer can push back between steps.
  assert.ok(largestStep <= 128 << 10, `largest piece ${largestStep}`);
  const dec = new ZstdDecoder();
  let steps = 0;
  let most = 0;
  let inStep = 0;
  const it = dec.steps(bomb);
  for (;;) {
    const r = it.next();
    if (r.done) break;
    inStep += r.value.length;
    // A step ends when the generator goes back to the walker: count per 64 blocks.
    if (inStep >= 64 * (128 << 10)) {
      most = Math.max(most, inStep);
      inStep = 0;
      steps++;
    }
  }
  assert.ok(steps >= 15, `${steps} steps`);
  assert.ok(most <= 8 << 20, `a step made ${most} bytes`);
});

test('truncated, empty and garbage streams are refused', async (t) => {
  await ensurePackages(['zstd']);
  const dir = tempDir(t);
  writeFileSync(join(dir, 'a'), sampleData().subarray(0, 3 << 20));
  const good = execFileSync('zstd', ['-q', '-c', join(dir, 'a')], { maxBuffer: 1 << 28 });
  assert.throws(() => decodeAll(good.subarray(0, good.length - 10), 4096), (e: unknown) => e instanceof ZstdError && /truncated|corrupt/.test(e.message));
  assert.throws(() => decodeAll(Buffer.alloc(0), 4096), (e: unknown) => e instanceof ZstdError && /empty/.test(e.message));
  assert.throws(() => decodeAll(Buffer.from('not zstd at all'), 4096), (e: unknown) => e instanceof ZstdError && /magic/.test(e.message));
  assert.throws(() => decodeAll(Buffer.concat([frameHeader(20), blockHeader(true, 3, 0)]), 4096), (e: unknown) => e instanceof ZstdError && /reserved block type/.test(e.message));
  // A flipped byte inside a block: refused, or (zstd without a checksum cannot always tell) decoded
  // to other bytes, which the DiffID check then refuses (test/transports-read).
  const flipped = Buffer.from(good);
  flipped[flipped.length >> 1] ^= 0x55;
  let decoded: Buffer | undefined;
  try {
    decoded = decodeAll(flipped, 65536).out;
  } catch (e) {
    assert.ok(e instanceof ZstdError, String(e));
  }
  if (decoded) assert.notEqual(Buffer.compare(decoded, sampleData().subarray(0, 3 << 20)), 0);
});
