import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  appendFileSync, chmodSync, lchownSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync,
  symlinkSync, truncateSync, unlinkSync, utimesSync, lutimesSync, writeFileSync, statSync, openSync, closeSync, fstatSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from '../support/paths.js';
import { StrataError } from '../../src/util/errors.js';
import type { TarEntry } from '../../src/tar/entry.js';
import type { FileRegion } from '../../src/transports/types.js';
import { directoryEntry, finalizeEntries, scanTree, storeLayerEntries, symlinkEntry } from '../../src/tar/scan.js';
import { copyFileOnWorker, hashFileOnWorker, tarSize, writeLayerTar } from '../../src/tar/writer.js';
import { collectingWriter, parseTar } from './tar-reader.js';

const H = (c: string): string => c.repeat(32); // a 32-char "hash"

async function tarOf(entries: TarEntry[], mtime = 1): Promise<{ bytes: Buffer; diffId: string; size: number }> {
  const w = collectingWriter();
  const r = await writeLayerTar(entries, { mtime }, w);
  assert.equal(w.closed, false, 'writeLayerTar must not close the writer');
  return { bytes: w.bytes(), diffId: r.diffId, size: r.size };
}

function gnuTar(args: string[], cwd?: string): string {
  const r = spawnSync('tar', args, { cwd, env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' }, encoding: 'utf8' });
  assert.equal(r.status, 0, `tar ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** A store root holding one store path with a bit of everything. Returns [root, storePath]. */
function makeSampleStore(dir: string): { root: string; sp: string; other: string } {
  const root = join(dir, 'root');
  const sp = `/nix/store/${H('a')}-hello-2.12`;
  const other = `/nix/store/${H('b')}-glibc-2.40`;
  const p = join(root, sp);
  mkdirSync(join(p, 'bin'), { recursive: true });
  mkdirSync(join(p, 'share', 'doc', 'häll ö'), { recursive: true });
  writeFileSync(join(p, 'bin', 'hello'), '#!/bin/sh\necho hello\n');
  chmodSync(join(p, 'bin', 'hello'), 0o755);
  writeFileSync(join(p, 'share', 'doc', 'häll ö', 'README'), 'read me\n');
  writeFileSync(join(p, 'share', 'empty'), '');
  writeFileSync(join(p, 'share', 'block'), Buffer.alloc(512, 7)); // exactly one block: no padding
  writeFileSync(join(p, 'share', 'big'), Buffer.alloc(3 * 1024 * 1024 + 77, 'xyz')); // spans chunks
  symlinkSync('bin/hello', join(p, 'greet'));
  symlinkSync(`${other}/lib/libc.so.6`, join(p, 'libc'));
  symlinkSync('does/not/exist', join(p, 'dangling'));
  linkSync(join(p, 'share', 'doc', 'häll ö', 'README'), join(p, 'share', 'README-hardlink'));
  const o = join(root, other);
  mkdirSync(join(o, 'lib'), { recursive: true });
  writeFileSync(join(o, 'lib', 'libc.so.6'), Buffer.alloc(70_000, 1)); // > the sync-read size
  chmodSync(join(o, 'lib', 'libc.so.6'), 0o555);
  return { root, sp, other };
}

test('GNU tar lists and extracts a store layer with the right names, modes, links and contents', async (t) => {
  const dir = tempDir(t);
  const { root, sp, other } = makeSampleStore(dir);
  const entries = await storeLayerEntries('/nix/store', root, [sp, other]);
  const { bytes, size } = await tarOf(entries);
  assert.equal(size, bytes.length);
  const file = join(dir, 'layer.tar');
  writeFileSync(file, bytes);

  const a = `nix/store/${H('a')}-hello-2.12`;
  const b = `nix/store/${H('b')}-glibc-2.40`;
  // Expected listing, written out by hand: bytewise order of full paths, parents first.
  const expected = [
    ['drwxr-xr-x', 'nix/'],
    ['drwxr-xr-x', 'nix/store/'],
    ['dr-xr-xr-x', `${a}/`],
    ['dr-xr-xr-x', `${a}/bin/`],
    ['-r-xr-xr-x', `${a}/bin/hello`],
    ['lrwxrwxrwx', `${a}/dangling -> does/not/exist`],
    ['lrwxrwxrwx', `${a}/greet -> bin/hello`],
    ['lrwxrwxrwx', `${a}/libc -> /${b}/lib/libc.so.6`],
    ['dr-xr-xr-x', `${a}/share/`],
    ['-r--r--r--', `${a}/share/README-hardlink`],
    ['-r--r--r--', `${a}/share/big`],
    ['-r--r--r--', `${a}/share/block`],
    ['dr-xr-xr-x', `${a}/share/doc/`],
    ['dr-xr-xr-x', `${a}/share/doc/häll ö/`],
    ['-r--r--r--', `${a}/share/doc/häll ö/README`],
    ['-r--r--r--', `${a}/share/empty`],
    ['dr-xr-xr-x', `${b}/`],
    ['dr-xr-xr-x', `${b}/lib/`],
    ['-r-xr-xr-x', `${b}/lib/libc.so.6`],
  ];
  const lines = gnuTar(['--quoting-style=literal', '-tvf', file]).trim().split('\n');
  assert.equal(lines.length, expected.length, lines.join('\n'));
  lines.forEach((line, i) => {
    const m = /^(\S+) (\S+)\s+(\d+) (\S+ \S+) (.*)$/.exec(line);
    assert.ok(m, line);
    assert.equal(m[1], expected[i]![0], line);
    assert.equal(m[2], 'root/root', line);
    assert.equal(m[4], '1970-01-01 00:00', line);
    assert.equal(m[5], expected[i]![1], line);
  });

  const out = join(dir, 'x');
  mkdirSync(out);
  gnuTar(['-xf', file, '-C', out]);
  const src = join(root, sp);
  const dst = join(out, a);
  for (const rel of ['bin/hello', 'share/doc/häll ö/README', 'share/README-hardlink', 'share/empty', 'share/block', 'share/big']) {
    assert.ok(readFileSync(join(dst, rel)).equals(readFileSync(join(src, rel))), rel);
    assert.equal(lstatSync(join(dst, rel)).nlink, 1, `${rel} is written as a regular file, not a hard link`);
  }
  assert.ok(readFileSync(join(out, b, 'lib/libc.so.6')).equals(Buffer.alloc(70_000, 1)));
  assert.equal(readlinkSync(join(dst, 'greet')), 'bin/hello');
  assert.equal(readlinkSync(join(dst, 'libc')), `${other}/lib/libc.so.6`);
  assert.equal(lstatSync(join(dst, 'bin/hello')).mode & 0o7777, 0o555);
  assert.equal(lstatSync(join(dst, 'share/empty')).mode & 0o7777, 0o444);
});

test('headers carry only fixed fields: uid/gid 0, root, the given mtime, ustar magic, no PAX for short names', async (t) => {
  const dir = tempDir(t);
  const { root, sp } = makeSampleStore(dir);
  const entries = await storeLayerEntries('/nix/store', root, [sp]);
  const { bytes, diffId } = await tarOf(entries, 1_700_000_000);
  assert.equal(diffId, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  const { members, endOffset } = parseTar(bytes);
  assert.equal(endOffset, bytes.length, 'the tar ends right after its two zero blocks');
  assert.deepEqual(members.slice(0, 2).map((m) => [m.name, m.type, m.mode]), [['nix/', '5', 0o755], ['nix/store/', '5', 0o755]]);
  for (const m of members) {
    assert.equal(m.uid, 0);
    assert.equal(m.gid, 0);
    assert.equal(m.uname, 'root');
    assert.equal(m.gname, 'root');
    assert.equal(m.mtime, 1_700_000_000);
    assert.equal(m.magic, 'ustar\x0000');
    assert.equal(m.pax, undefined, `${m.name} needs no PAX header`);
    assert.ok(!m.name.startsWith('/'), m.name);
    assert.equal(m.type === '5', m.name.endsWith('/'), m.name);
  }
  const big = members.find((m) => m.name.endsWith('/share/big'))!;
  assert.ok(big.data.equals(readFileSync(join(root, sp, 'share/big'))));
});

test('long names use the ustar prefix first, then PAX; long link targets use PAX; GNU tar reads them all', async (t) => {
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  const seg = (c: string, n: number): string => c.repeat(n);
  const splittable = `${seg('p', 85)}/${seg('q', 60)}/${seg('f', 95)}`; // with 'opt/app/': prefix 154 + name 95
  const oneLongComponent = `${seg('d', 20)}/${seg('n', 200)}`; // name part > 100 after any split
  const veryLong = `${seg('a', 120)}/${seg('b', 120)}/${seg('c', 120)}/file`; // > 255 bytes
  const longTarget = `/${seg('t', 150)}/${seg('u', 150)}`;
  for (const rel of [splittable, oneLongComponent, veryLong]) {
    mkdirSync(join(tree, rel, '..'), { recursive: true });
    writeFileSync(join(tree, rel), `content of ${rel.length}\n`);
  }
  symlinkSync(longTarget, join(tree, 'longlink'));
  const entries = finalizeEntries(await scanTree(tree, 'opt/app', 'normal'));
  const { bytes, size } = await tarOf(entries);
  assert.equal(size, tarSize(entries));
  const members = parseTar(bytes).members;
  const byName = new Map(members.map((m) => [m.name, m]));

  const s = byName.get(`opt/app/${splittable}`)!;
  assert.equal(s.pax, undefined, 'fits the ustar prefix/name split');
  assert.equal(s.ustarName, seg('f', 95));
  const l = byName.get(`opt/app/${oneLongComponent}`)!;
  assert.deepEqual(l.paxKeysInOrder, ['path']);
  assert.equal(l.paxHeaderName, '././@PaxHeader');
  const v = byName.get(`opt/app/${veryLong}`)!;
  assert.deepEqual(v.paxKeysInOrder, ['path']);
  const link = byName.get('opt/app/longlink')!;
  assert.deepEqual(link.paxKeysInOrder, ['linkpath']);
  assert.equal(link.linkname, longTarget);

  const file = join(dir, 'l.tar');
  writeFileSync(file, bytes);
  const listed = gnuTar(['-tf', file]).trim().split('\n');
  for (const rel of [splittable, oneLongComponent, veryLong]) assert.ok(listed.includes(`opt/app/${rel}`), rel);
  const out = join(dir, 'x');
  mkdirSync(out);
  gnuTar(['-xf', file, '-C', out]);
  for (const rel of [splittable, oneLongComponent, veryLong]) {
    assert.equal(readFileSync(join(out, 'opt/app', rel), 'utf8'), `content of ${rel.length}\n`);
  }
  assert.equal(readlinkSync(join(out, 'opt/app/longlink')), longTarget);
  assert.equal(statSync(join(out, 'opt/app', veryLong)).mode & 0o777, 0o644);
});

test('tarSize equals the bytes written, for many shapes of entries', async () => {
  // Deterministic pseudo-random shapes: sizes around block and chunk boundaries, names around
  // the 100/155/255-byte limits, long link targets, in-memory contents.
  let seed = 42;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const sizes = [0, 1, 511, 512, 513, 1023, 1024, 65_535, 65_536, 65_537, (1 << 20) - 512, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 7];
  const nameLens = [1, 99, 100, 101, 154, 155, 156, 254, 255, 256, 300];
  for (let round = 0; round < 12; round++) {
    const entries: TarEntry[] = [];
    const n = 1 + Math.floor(rand() * 40);
    for (let i = 0; i < n; i++) {
      const len = nameLens[Math.floor(rand() * nameLens.length)]!;
      // Components of 50 chars separated by '/', cut to the wanted length, made unique by a prefix.
      let name = `r${round}e${i}/`;
      while (name.length < len) name += (name.length % 51 === 50 ? '/' : String.fromCharCode(97 + (i % 26)));
      name = name.slice(0, Math.max(len, 8)).replace(/\/+$/, 'z').replace(/\/\//g, '/x');
      const kind = rand();
      if (kind < 0.6) {
        const size = sizes[Math.floor(rand() * sizes.length)]!;
        entries.push({ name, type: 'file', mode: 0o644, size, content: Buffer.alloc(size, i) });
      } else if (kind < 0.8) {
        entries.push(symlinkEntry(name, 'x'.repeat(nameLens[Math.floor(rand() * nameLens.length)]!)));
      } else {
        entries.push(directoryEntry(name));
      }
    }
    const final = finalizeEntries(entries);
    const predicted = tarSize(final);
    const { bytes, size } = await tarOf(final);
    assert.equal(size, bytes.length);
    assert.equal(predicted, bytes.length, `round ${round}`);
    // And the bytes are a valid tar holding exactly those entries.
    const parsed = parseTar(bytes).members;
    assert.deepEqual(parsed.map((m) => m.name.replace(/\/$/, '')), final.map((e) => e.name));
    for (const m of parsed) if (m.type === '0') assert.ok(m.data.every((x) => x === m.data[0]), m.name);
  }
  assert.equal(tarSize([]), 1024);
  assert.equal((await tarOf([])).bytes.length, 1024);
});

/** Builds the same logical tree under `root`, in `order`, with the given process umask. */
function buildVariant(root: string, sp: string, opts: { umask: number; reverse: boolean; hardlinks: boolean; content?: string }): void {
  const old = process.umask(opts.umask);
  try {
    const p = join(root, sp);
    const files: [string, string, boolean][] = [
      ['bin/tool', '#!/bin/sh\n', true],
      ['lib/liba.so', 'AAAA'.repeat(300), false],
      ['lib/libb.so', 'same bytes\n', false],
      ['share/copy-of-libb', 'same bytes\n', false],
      ['share/doc/x/y/z.txt', opts.content ?? 'zzz', false],
      ['share/large', 'L'.repeat(200_000), false],
    ];
    const ordered = opts.reverse ? [...files].reverse() : files;
    for (const [rel, data, exec] of ordered) {
      mkdirSync(join(p, rel, '..'), { recursive: true });
      if (opts.hardlinks && rel === 'share/copy-of-libb') {
        mkdirSync(join(p, 'lib'), { recursive: true });
        if (!lstatSync(join(p, 'lib/libb.so'), { throwIfNoEntry: false })) writeFileSync(join(p, 'lib/libb.so'), 'same bytes\n');
        linkSync(join(p, 'lib/libb.so'), join(p, rel));
        continue;
      }
      if (opts.hardlinks && rel === 'lib/libb.so' && lstatSync(join(p, rel), { throwIfNoEntry: false })) continue;
      writeFileSync(join(p, rel), data, { mode: exec ? 0o777 : 0o666 });
    }
    const links: [string, string][] = [['bin/alias', 'tool'], ['lib/current', 'liba.so']];
    for (const [rel, target] of opts.reverse ? [...links].reverse() : links) symlinkSync(target, join(p, rel));
  } finally {
    process.umask(old);
  }
}

function walk(p: string, fn: (path: string) => void): void {
  fn(p);
  if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) walk(join(p, n), fn);
}

test('reproducible: umask, creation order, times, owner and hard-link optimisation do not change the DiffID', async (t) => {
  const dir = tempDir(t);
  const sp = `/nix/store/${H('c')}-app-1.0`;
  const rootA = join(dir, 'a');
  const rootB = join(dir, 'b');
  buildVariant(rootA, sp, { umask: 0o022, reverse: false, hardlinks: false });
  buildVariant(rootB, sp, { umask: 0o077, reverse: true, hardlinks: true });
  // B: other times and another owner everywhere.
  walk(join(rootB, sp), (q) => {
    lchownSync(q, 12345, 12345);
    if (lstatSync(q).isSymbolicLink()) lutimesSync(q, 123456789, 987654321);
    else utimesSync(q, 222222222, 333333333);
  });
  assert.equal(lstatSync(join(rootB, sp, 'share/copy-of-libb')).nlink, 2, 'B really is hard-link optimised');
  assert.equal(lstatSync(join(rootB, sp, 'share/doc/x/y/z.txt')).mode & 0o777, 0o600, 'B really has another umask');

  const a = await tarOf(await storeLayerEntries('/nix/store', rootA, [sp]));
  const b = await tarOf(await storeLayerEntries('/nix/store', rootB, [sp]));
  assert.equal(a.diffId, b.diffId);
  assert.ok(a.bytes.equals(b.bytes));

  // The same holds for content from outside the store ('normal' modes).
  const na = await tarOf(finalizeEntries(await scanTree(join(rootA, sp), 'app', 'normal')));
  const nb = await tarOf(finalizeEntries(await scanTree(join(rootB, sp), 'app', 'normal')));
  assert.equal(na.diffId, nb.diffId);
  const modes = new Map(parseTar(na.bytes).members.map((m) => [m.name, m.mode]));
  assert.equal(modes.get('app/bin/tool'), 0o755);
  assert.equal(modes.get('app/lib/liba.so'), 0o644);
  assert.equal(modes.get('app/share/'), 0o755);

  // And the check can fail: one changed byte changes the DiffID.
  const rootC = join(dir, 'c');
  buildVariant(rootC, sp, { umask: 0o022, reverse: false, hardlinks: false, content: 'zzZ' });
  const c = await tarOf(await storeLayerEntries('/nix/store', rootC, [sp]));
  assert.notEqual(c.diffId, a.diffId);
});

test('special files are rejected with the path named', async (t) => {
  const dir = tempDir(t);
  const fifoTree = join(dir, 'fifo');
  mkdirSync(fifoTree);
  writeFileSync(join(fifoTree, 'ok'), 'x');
  assert.equal(spawnSync('mkfifo', [join(fifoTree, 'pipe')]).status, 0);
  await assert.rejects(scanTree(fifoTree, 'x', 'store'), (e: Error) => e instanceof StrataError && e.message.includes(join(fifoTree, 'pipe')) && /FIFO/.test(e.message));

  const sockTree = join(dir, 'sock');
  mkdirSync(sockTree);
  const server = createServer();
  await new Promise<void>((r) => server.listen(join(sockTree, 's.sock'), r));
  t.after(() => server.close());
  await assert.rejects(scanTree(sockTree, 'x', 'normal'), (e: Error) => e instanceof StrataError && e.message.includes(join(sockTree, 's.sock')) && /socket/.test(e.message));

  await assert.rejects(scanTree('/dev/null', 'dev/null', 'normal'), (e: Error) => e instanceof StrataError && e.message.includes('/dev/null'));
  await assert.rejects(scanTree(join(dir, 'missing'), 'x', 'normal'), (e: Error) => e instanceof StrataError && e.message.includes(join(dir, 'missing')));
});

test('a file name that is not UTF-8 is rejected, naming its directory', async (t) => {
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'sub'), { recursive: true });
  writeFileSync(Buffer.concat([Buffer.from(join(tree, 'sub') + '/bad-'), Buffer.from([0xff, 0xfe])]), 'x');
  writeFileSync(join(tree, 'sub', 'real-\uFFFD-ok'), 'a real U+FFFD is valid UTF-8');
  await assert.rejects(scanTree(tree, 'x', 'normal'), (e: Error) => e instanceof StrataError && e.message.includes(join(tree, 'sub')));
  unlinkSync(Buffer.concat([Buffer.from(join(tree, 'sub') + '/bad-'), Buffer.from([0xff, 0xfe])]));
  const entries = await scanTree(tree, 'x', 'normal');
  assert.ok(entries.some((e) => e.name === 'x/sub/real-\uFFFD-ok'));
});

test('a file that changes between scan and write is detected and named', async (t) => {
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  // Sizes chosen for each read path: small (read inline), block-aligned (fstat), medium
  // (thread pool), large (several chunks).
  const cases: [string, number, (f: string) => void][] = [
    ['small-grows', 100, (f) => appendFileSync(f, 'more')],
    ['small-shrinks', 100, (f) => truncateSync(f, 50)],
    ['aligned-grows', 1024, (f) => appendFileSync(f, 'x')],
    ['empty-grows', 0, (f) => appendFileSync(f, 'x')],
    ['medium-grows', 200_000, (f) => appendFileSync(f, 'x')],
    ['large-shrinks', 3 << 20, (f) => truncateSync(f, 1 << 20)],
    ['large-grows', 3 << 20, (f) => appendFileSync(f, 'x')],
    ['deleted', 10, (f) => unlinkSync(f)],
  ];
  for (const [name, size, change] of cases) {
    const f = join(tree, name);
    writeFileSync(f, Buffer.alloc(size, 1));
    const entries = finalizeEntries(await scanTree(f, `data/${name}`, 'normal'));
    change(f);
    await assert.rejects(tarOf(entries), (e: Error) => e instanceof StrataError && e.message.includes(f), name);
    // The tree is fine again once rescanned.
    if (name !== 'deleted') await tarOf(finalizeEntries(await scanTree(f, `data/${name}`, 'normal')));
  }

  // A failure in the middle of a chunk whose other reads are still running leaks no descriptor.
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  const mixed = join(dir, 'mixed');
  mkdirSync(mixed);
  for (let i = 0; i < 6; i++) writeFileSync(join(mixed, `a${i}-big`), Buffer.alloc(300_000 + i, i));
  writeFileSync(join(mixed, 'b-small'), 'small');
  for (let i = 0; i < 6; i++) writeFileSync(join(mixed, `c${i}-big`), Buffer.alloc(2_000_000 + i, i));
  const entries = finalizeEntries(await scanTree(mixed, 'm', 'normal'));
  unlinkSync(join(mixed, 'b-small'));
  await assert.rejects(tarOf(entries), (e: Error) => e instanceof StrataError && e.message.includes(join(mixed, 'b-small')));
  assert.equal(fds(), before);
});

test('finalizeEntries sorts bytewise (UTF-8), adds parents, drops duplicate dirs, rejects conflicts', () => {
  const f = (name: string, size = 0): TarEntry => ({ name, type: 'file', mode: 0o644, size });
  const out = finalizeEntries([
    f('a/b/c'), f('a/b-x'), directoryEntry('a/b'), directoryEntry('a/b'),
    f('u/\u{1F600}'), f('u/\uE000'), symlinkEntry('/z/link', 'a'),
  ]);
  // UTF-8: U+E000 is EE 80 80 and sorts before U+1F600 (F0 9F 98 80), unlike UTF-16 order.
  assert.deepEqual(out.map((e) => e.name), ['a', 'a/b', 'a/b-x', 'a/b/c', 'u', 'u/\uE000', 'u/\u{1F600}', 'z', 'z/link']);
  assert.deepEqual(out.filter((e) => e.type === 'directory').map((e) => [e.name, e.mode]), [['a', 0o755], ['a/b', 0o755], ['u', 0o755], ['z', 0o755]]);
  assert.throws(() => finalizeEntries([f('a/b'), symlinkEntry('a/b', 'x')]), (e: Error) => e instanceof StrataError && e.message.includes('a/b'));
  assert.throws(() => finalizeEntries([directoryEntry('d', 0o755), directoryEntry('d', 0o555)]), (e: Error) => e instanceof StrataError && e.message.includes('d'));
  assert.throws(() => finalizeEntries([f('file'), f('file/child')]), (e: Error) => e instanceof StrataError && e.message.includes('file/child'));
  assert.throws(() => finalizeEntries([f('a/../b')]), StrataError);

  // Against Buffer.compare on random names mixing ASCII, U+0800..U+FFFF and astral characters.
  const alphabet = ['a', 'b', '-', '_', '\u00e9', '\u4e2d', '\uE000', '\uFFFD', '\u{1F600}', '\u{10000}'];
  let seed = 7;
  const rand = (n: number): number => (seed = (seed * 48271) % 2147483647) % n;
  const names = new Set<string>();
  while (names.size < 300) names.add(`r/${Array.from({ length: 1 + rand(6) }, () => alphabet[rand(alphabet.length)]).join('')}`);
  const sorted = finalizeEntries([...names].map((n) => f(n))).map((e) => e.name).slice(1);
  const expected = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual(sorted, expected);
});

test('writeLayerTar keeps order and bounds pending writes when the BlobWriter resolves late', async (t) => {
  const dir = tempDir(t);
  const { root, sp, other } = makeSampleStore(dir);
  const entries = await storeLayerEntries('/nix/store', root, [sp, other]);
  const fast = await tarOf(entries);
  let i = 0;
  const slow = collectingWriter({ delayMs: () => [7, 1, 3, 0, 5][i++ % 5]! });
  const r = await writeLayerTar(entries, { mtime: 1 }, slow);
  assert.equal(r.diffId, fast.diffId);
  assert.ok(slow.bytes().equals(fast.bytes));
  assert.ok(slow.maxPending <= 8, `at most a few writes pending (saw ${slow.maxPending})`);
  assert.equal(slow.closed, false);
});

test('a BlobWriter that releases chunks gets recycled buffers and the same bytes', async (t) => {
  const dir = tempDir(t);
  const { root, sp, other } = makeSampleStore(dir);
  // Enough data (~20 MB) that chunks must be recycled while the layer is still being written.
  const extra: TarEntry[] = Array.from({ length: 16 }, (_, i) => ({ name: `data/blob${i}`, type: 'file', mode: 0o644, size: 1_000_003, content: Buffer.alloc(1_000_003, i) }));
  const entries = finalizeEntries([...(await storeLayerEntries('/nix/store', root, [sp, other])), ...extra]);
  const fresh = collectingWriter();
  const a = await writeLayerTar(entries, { mtime: 1 }, fresh);
  let i = 0;
  const recycling = collectingWriter({ releasesChunks: true, delayMs: () => [2, 0, 1][i++ % 3]! });
  const b = await writeLayerTar(entries, { mtime: 1 }, recycling);
  assert.equal(b.diffId, a.diffId);
  assert.ok(recycling.bytes().equals(fresh.bytes()));
  assert.ok(fresh.buffersSeen.size >= 4, `fresh buffers: ${fresh.buffersSeen.size}`);
  assert.ok(recycling.buffersSeen.size < fresh.buffersSeen.size, `recycled: ${recycling.buffersSeen.size} vs ${fresh.buffersSeen.size}`);
});

test('a failing BlobWriter fails the write and leaves no file descriptors open', async (t) => {
  const dir = tempDir(t);
  const { root, sp, other } = makeSampleStore(dir);
  const entries = await storeLayerEntries('/nix/store', root, [sp, other]);
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  let n = 0;
  const failing = { ...collectingWriter(), write: async () => { if (++n === 2) throw new Error('disk full'); } };
  await assert.rejects(writeLayerTar(entries, { mtime: 1 }, failing), /disk full/);
  assert.equal(fds(), before);
  await assert.rejects(writeLayerTar(entries, { mtime: -1 }, collectingWriter()), StrataError);
  await assert.rejects(writeLayerTar([...entries].reverse(), { mtime: 1 }, collectingWriter()), /not sorted/);
});

test('sizes of 8 GiB and more go into a PAX size record (header level; no such file is written)', async () => {
  const { planHeader, encodeHeader } = await import('../../src/tar/header.js');
  const entry: TarEntry = { name: 'big/file', type: 'file', mode: 0o644, size: 2 ** 33 + 5 };
  const plan = planHeader(entry);
  // "19 size=8589934597\n" is 19 bytes: 2 digits + ' ' + 'size=' (5) + 10 digits + '\n'.
  assert.equal(plan.pax?.toString(), '19 size=8589934597\n');
  assert.equal(tarSize([entry]), 512 + 512 + 512 + (2 ** 33 + 512) + 1024);
  const buf = Buffer.alloc(plan.headerBytes + 1024);
  encodeHeader(entry, plan, 1, buf, 0);
  // First the PAX header ('x'), then its one block of records, then the ustar header, whose
  // size field cannot hold the size and says 0 (readers take the PAX record).
  assert.equal(String.fromCharCode(buf[156]!), 'x');
  assert.equal(String.fromCharCode(buf[1024 + 156]!), '0');
  assert.equal(buf.subarray(1024 + 124, 1024 + 136).toString('latin1'), '00000000000\0');
});

test('direct file regions get the same bytes as write(); a failing best-effort region is dropped, a failing required one fails the write', async (t) => {
  const dir = tempDir(t);
  const { root, sp, other } = makeSampleStore(dir);
  // Large enough (~5 MB) that the worker fills its slot several times.
  const extra: TarEntry[] = Array.from({ length: 5 }, (_, i) => ({ name: `data/blob${i}`, type: 'file', mode: 0o644, size: 1_000_003, content: Buffer.alloc(1_000_003, i) }));
  const entries = finalizeEntries([...(await storeLayerEntries('/nix/store', root, [sp, other])), ...extra]);
  const viaWrite = await tarOf(entries);

  // Two regions: one at an offset in a file (as in an archive member), one at 0 (as in the cache).
  const a = join(dir, 'a.bin');
  const b = join(dir, 'b.bin');
  const fa = openSync(a, 'w+');
  const fb = openSync(b, 'w+');
  const wrote: string[] = [];
  const region = (fd: number, offset: number, path: string, extraFields = {}): FileRegion => ({ fd, offset, path, wrote: (n) => wrote.push(`${path}:${n}`), ...extraFields });
  const untouched = { ...collectingWriter(), write: async () => { throw new Error('write() used despite direct regions'); } };
  const r = await writeLayerTar(entries, { mtime: 1, direct: [region(fa, 4096, a, { limit: viaWrite.size }), region(fb, 0, b)] }, untouched);
  assert.equal(r.diffId, viaWrite.diffId);
  assert.deepEqual(wrote, [`${a}:${viaWrite.size}`, `${b}:${viaWrite.size}`]);
  assert.ok(readFileSync(a).subarray(4096).equals(viaWrite.bytes));
  assert.ok(readFileSync(b).equals(viaWrite.bytes));

  // A read-only descriptor makes every write fail: best effort drops it, the other gets all bytes.
  const ro = openSync(b, 'r');
  const failures: string[] = [];
  const fc = openSync(join(dir, 'c.bin'), 'w+');
  wrote.length = 0;
  const r2 = await writeLayerTar(entries, { mtime: 1, direct: [region(fc, 0, 'c'), region(ro, 0, 'cache-file', { bestEffort: true, failed: (e: Error) => failures.push(e.message) })] }, untouched);
  assert.equal(r2.diffId, viaWrite.diffId);
  assert.deepEqual(wrote, [`c:${viaWrite.size}`]);
  assert.equal(failures.length, 1);
  assert.match(failures[0]!, /cannot write cache-file/);
  assert.ok(readFileSync(join(dir, 'c.bin')).equals(viaWrite.bytes));

  // The same region required: the write fails, naming the file; a region too small fails too.
  await assert.rejects(writeLayerTar(entries, { mtime: 1, direct: [region(ro, 0, 'the-output')] }, untouched), (e: Error) => e instanceof StrataError && /cannot write the-output/.test(e.message));
  await assert.rejects(writeLayerTar(entries, { mtime: 1, direct: [region(fc, 0, 'small', { limit: 1024 })] }, untouched), /grew past its reserved 1024 bytes/);
  for (const fd of [fa, fb, fc, ro]) closeSync(fd);
});

test('a layer of at most 1 MiB, made on this thread, has the bytes a tar worker makes, through write() and into direct regions', async (t) => {
  const dir = tempDir(t);
  const { root, other } = makeSampleStore(dir);
  const extra: TarEntry[] = [{ name: 'data/blob', type: 'file', mode: 0o644, size: 300_001, content: Buffer.alloc(300_001, 9) }];
  const entries = finalizeEntries([...(await storeLayerEntries('/nix/store', root, [other])), ...extra]);
  assert.ok(tarSize(entries) <= 1 << 20 && tarSize(entries) > 300_000, 'small enough for this thread, more than a few blocks');
  const inline = await tarOf(entries);
  const w = collectingWriter();
  const onWorker = await writeLayerTar(entries, { mtime: 1, inline: false }, w);
  assert.equal(inline.diffId, onWorker.diffId);
  assert.ok(inline.bytes.equals(w.bytes()), 'the same bytes');

  const a = join(dir, 'a.bin');
  const fa = openSync(a, 'w+');
  const ro = openSync(a, 'r');
  const wrote: number[] = [];
  const failures: string[] = [];
  const untouched = { ...collectingWriter(), write: async () => { throw new Error('write() used despite direct regions'); } };
  const r = await writeLayerTar(entries, { mtime: 1, direct: [
    { fd: fa, offset: 512, path: a, limit: inline.size, wrote: (n) => wrote.push(n) },
    { fd: ro, offset: 0, path: 'cache-file', bestEffort: true, wrote: () => assert.fail('a failed region reported as written'), failed: (e) => failures.push(e.message) },
  ] }, untouched);
  assert.equal(r.diffId, inline.diffId);
  assert.deepEqual(wrote, [inline.size]);
  assert.ok(readFileSync(a).subarray(512).equals(inline.bytes));
  assert.equal(failures.length, 1);
  assert.match(failures[0]!, /cannot write cache-file/);
  await assert.rejects(writeLayerTar(entries, { mtime: 1, direct: [{ fd: ro, offset: 0, path: 'the-output', wrote: () => {} }] }, untouched), (e: Error) => e instanceof StrataError && /cannot write the-output/.test(e.message));
  closeSync(fa);
  closeSync(ro);
});

test('a large layer gives the same DiffID whichever thread hashes it (alone: this thread; beside another: its worker)', async (t) => {
  const dir = tempDir(t);
  // 34 MB: above the size at which a layer made alone is hashed on the main thread.
  const big: TarEntry[] = finalizeEntries([{ name: 'data/big', type: 'file', mode: 0o644, size: 34_000_000, content: Buffer.alloc(34_000_000, 7) }]);
  const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const alone = collectingWriter({ releasesChunks: true });
  const r1 = await writeLayerTar(big, { mtime: 1 }, alone);
  assert.equal(r1.diffId, sha(alone.bytes()));
  // Two at once: the second starts beside the first, so its worker hashes it.
  const [x, y] = [collectingWriter(), collectingWriter()];
  const [r2, r3] = await Promise.all([writeLayerTar(big, { mtime: 1 }, x), writeLayerTar(big, { mtime: 1 }, y)]);
  assert.equal(r2.diffId, r1.diffId);
  assert.equal(r3.diffId, r1.diffId);
  assert.ok(x.bytes().equals(alone.bytes()) && y.bytes().equals(alone.bytes()));
  // Direct to a file, alone and beside another.
  const files = [join(dir, 'd1'), join(dir, 'd2')];
  const fds = files.map((f) => openSync(f, 'w+'));
  const regions = fds.map((fd, i): FileRegion => ({ fd, offset: 0, path: files[i]!, wrote: () => {} }));
  const unused = { ...collectingWriter(), write: async () => { throw new Error('write() used despite direct regions'); } };
  const [d1, d2] = await Promise.all(regions.map((r) => writeLayerTar(big, { mtime: 1, direct: [r] }, unused)));
  fds.forEach((fd) => closeSync(fd));
  assert.equal(d1!.diffId, r1.diffId);
  assert.equal(d2!.diffId, r1.diffId);
  for (const f of files) assert.ok(readFileSync(f).equals(alone.bytes()));
});

test('a file range is hashed and copied on a worker from the caller\'s descriptor, which stays open', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'blob');
  // Not a whole number of blocks, and longer than one 1 MiB slot: a blob, not a tar.
  const bytes = Buffer.from(Array.from({ length: 3_000_017 }, (_, i) => (i * 7919) & 0xff));
  writeFileSync(src, bytes);
  const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const fd = openSync(src, 'r');
  const file = { fd, path: src, size: bytes.length };
  assert.equal(await hashFileOnWorker(file), sha(bytes));
  assert.equal(await hashFileOnWorker(file, 1_234_567, 1_000_001), sha(bytes.subarray(1_234_567, 2_234_568)));
  // The copy lands at the region's offset and reports its size to the region.
  const out = join(dir, 'out');
  const ofd = openSync(out, 'w+');
  const wrote: number[] = [];
  const r = await copyFileOnWorker(file, [{ fd: ofd, offset: 100, path: out, wrote: (n) => wrote.push(n) }]);
  closeSync(ofd);
  assert.deepEqual(r, { digest: sha(bytes), size: bytes.length });
  assert.deepEqual(wrote, [bytes.length]);
  assert.ok(readFileSync(out).subarray(100).equals(bytes));
  // Still open: the worker read through it but never closed it.
  assert.equal(fstatSync(fd).size, bytes.length);
  // A file whose size is not what the caller says is reported, naming it.
  await assert.rejects(hashFileOnWorker({ ...file, size: bytes.length + 1 }), (e: Error) => e instanceof StrataError && e.message.includes(src));
  closeSync(fd);
});
