import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, cpSync, lstatSync, mkdirSync, readdirSync, readlinkSync, readFileSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cliPath, repoRoot, tempDir } from '../support/paths.js';
import { sha256File, tarMembers, treeDigests } from '../support/archive.js';

const demoRoot = join(repoRoot, 'closures', 'demo', 'root');
const demoClosure = join(repoRoot, 'closures', 'demo', 'closure.json');
const hello = '/nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0';

/**
 * Copies a store tree file by file in the given order, so the copies differ in inode numbers,
 * directory entry order on disk, and creation order.
 */
function copyTree(src: string, dst: string, reverse: boolean): void {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return lstatSync(p).isDirectory() && !lstatSync(p).isSymbolicLink() ? [p, ...walk(p)] : [p];
    });
  const all = walk(src);
  const dirs = all.filter((p) => lstatSync(p).isDirectory());
  const others = all.filter((p) => !lstatSync(p).isDirectory());
  for (const d of reverse ? [...dirs].reverse() : dirs) mkdirSync(join(dst, relative(src, d)), { recursive: true });
  for (const f of reverse ? [...others].reverse() : others) {
    const st = lstatSync(f);
    const target = join(dst, relative(src, f));
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(f), target);
    else {
      writeFileSync(target, readFileSync(f));
      // Only the owner bits survive, as if the store had been written under umask 077.
      chmodSync(target, st.mode & 0o700);
    }
  }
}

/** Runs the CLI under a shell so the umask can be set; env and cwd as given. */
function build(args: string[], opts: { umask: string; cwd: string; env: NodeJS.ProcessEnv; oneCore?: boolean }): void {
  // One core (taskset): availableParallelism() is 1, so one tar worker and one compression thread.
  const command = [...(opts.oneCore ? ['taskset', '-c', '0'] : []), process.execPath, cliPath, ...args];
  const quoted = command.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('sh', ['-c', `umask ${opts.umask}; exec ${quoted}`], { cwd: opts.cwd, env: opts.env, encoding: 'utf8' });
  assert.equal(r.status, 0, `strata ${args.join(' ')} failed:\n${r.stderr}`);
}

for (const format of ['docker-archive', 'oci', 'oci-archive'] as const) {
  test(`${format}: identical bytes when built under different umask, TZ, LANG, cwd, mtimes, file order and owner`, (t) => {
    const dir = tempDir(t);
    const storeA = join(dir, 'a');
    const storeB = join(dir, 'b');
    cpSync(demoRoot, storeA, { recursive: true, verbatimSymlinks: true });

    // Second store: restrictive umask while copying, reverse creation order, new times, other owner.
    const oldUmask = process.umask(0o077);
    try {
      copyTree(demoRoot, storeB, true);
    } finally {
      process.umask(oldUmask);
    }
    const when = new Date('2031-05-06T07:08:09.123Z');
    const touchAll = (p: string): void => {
      for (const n of readdirSync(p)) {
        const q = join(p, n);
        if (lstatSync(q).isSymbolicLink()) continue;
        if (lstatSync(q).isDirectory()) touchAll(q);
        utimesSync(q, when, when);
      }
    };
    touchAll(storeB);
    if (process.getuid?.() === 0) {
      const chownAll = (p: string): void => {
        for (const n of readdirSync(p)) {
          const q = join(p, n);
          if (lstatSync(q).isDirectory() && !lstatSync(q).isSymbolicLink()) chownAll(q);
          try { chownSync(q, 12345, 12345); } catch { /* symlinks on some systems */ }
        }
      };
      chownAll(storeB);
    }

    const outA = join(dir, format === 'oci' ? 'outA' : 'a.tar');
    const outB = join(dir, format === 'oci' ? 'outB' : 'b.tar');
    const common = ['--no-cache', '--format', format, '--tag', 'repro:1', '--entrypoint', `${hello}/bin/hello`, '--bin', hello, '--env', 'A=1', '--max-layers', '4'];
    const cwdB = join(dir, 'elsewhere');
    mkdirSync(cwdB);
    build(['build', demoClosure, '--store-root', storeA, '-o', outA, ...common], {
      umask: '022',
      cwd: repoRoot,
      env: { ...process.env, TZ: 'UTC', LANG: 'C' },
    });
    build(['build', demoClosure, '--store-root', storeB, '-o', outB, ...common], {
      umask: '077',
      cwd: cwdB,
      env: { ...process.env, TZ: 'Asia/Kolkata', LANG: 'de_DE.UTF-8', LC_ALL: 'tr_TR.UTF-8' },
    });

    if (format === 'oci') {
      const a = treeDigests(outA);
      const b = treeDigests(outB);
      assert.ok(a.size >= 7, 'layout has blobs');
      assert.deepEqual([...b], [...a]);
    } else {
      assert.equal(sha256File(outB), sha256File(outA), 'archive digests differ');
      // Every member too, so a failure says which blob moved.
      assert.deepEqual([...tarMembers(outB)], [...tarMembers(outA)]);
    }
  });
}

test('control: the comparison above notices a changed input (mtime option, one byte of one file)', (t) => {
  const dir = tempDir(t);
  const store = join(dir, 's');
  cpSync(demoRoot, store, { recursive: true, verbatimSymlinks: true });
  const env = { ...process.env };
  const args = (out: string, extra: string[] = []) => ['build', demoClosure, '--store-root', store, '-o', out, '--no-cache', ...extra];
  build(args(join(dir, '1.tar')), { umask: '022', cwd: dir, env });
  build(args(join(dir, '2.tar'), ['--mtime', '2']), { umask: '022', cwd: dir, env });
  assert.notEqual(sha256File(join(dir, '2.tar')), sha256File(join(dir, '1.tar')));
  const greeting = join(store, 'nix/store/74k7gw8jnr3hnx22rjq7fqdcvxw446zd-demo-greeting-data-1.0/share/greeting.txt');
  writeFileSync(greeting, readFileSync(greeting, 'utf8').replace('Hello', 'Jello'));
  build(args(join(dir, '3.tar')), { umask: '022', cwd: dir, env });
  const m1 = tarMembers(join(dir, '1.tar'));
  const m3 = tarMembers(join(dir, '3.tar'));
  const changed = [...m3.keys()].filter((k) => m1.get(k) !== m3.get(k));
  // The greeting layer, the config, manifest.json, the legacy json/dirs of every layer above it.
  assert.ok(changed.some((k) => k.endsWith('/layer.tar')), 'a layer changed');
  assert.ok(changed.includes('manifest.json'));
});

const MAGIC = { gzip: Buffer.from([0x1f, 0x8b]), zstd: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]) };

for (const compression of ['gzip', 'zstd'] as const) {
  test(`${compression} oci-archive: a warm-cache rebuild, a cold one, a --no-cache one and one elsewhere on one core are byte-identical`, (t) => {
    const dir = tempDir(t);
    const cache = join(dir, 'cache');
    const env = { ...process.env };
    const run = (out: string, extra: string[], opts: { env?: NodeJS.ProcessEnv; umask?: string; oneCore?: boolean } = {}) =>
      build(['build', demoClosure, '--store-root', demoRoot, '--format', 'oci-archive', '--compress', compression, '-o', join(dir, out), ...extra], { umask: opts.umask ?? '022', cwd: dir, env: opts.env ?? env, oneCore: opts.oneCore ?? false });
    run('cold.tar', ['--cache-dir', cache]);
    run('warm.tar', ['--cache-dir', cache]);
    run('nocache.tar', ['--no-cache']);
    // Another TMPDIR and umask, and one compression thread where the others had one per core.
    const other = join(dir, 'tmp2');
    mkdirSync(other);
    run('elsewhere.tar', ['--no-cache'], { env: { ...env, TMPDIR: other }, umask: '077', oneCore: true });
    const cold = sha256File(join(dir, 'cold.tar'));
    assert.equal(sha256File(join(dir, 'warm.tar')), cold);
    assert.equal(sha256File(join(dir, 'nocache.tar')), cold);
    assert.equal(sha256File(join(dir, 'elsewhere.tar')), cold);
    // The layers really are compressed so: every blob but the JSON documents starts with the magic.
    const archive = join(dir, 'cold.tar');
    const blobs = [...tarMembers(archive).keys()].filter((k) => k.startsWith('blobs/sha256/') && !k.endsWith('/'));
    const packed = blobs.filter((k) => spawnSync('tar', ['-xOf', archive, k]).stdout.subarray(0, MAGIC[compression].length).equals(MAGIC[compression]));
    assert.equal(packed.length, blobs.length - 2, `every blob but the config and the manifest is ${compression}`);
  });
}

/**
 * A release where one store path changed: its layer is rebuilt (a compressed blob of a size
 * known only at its end) while the others come from the cache (sizes known at once). The archive
 * must still be what a build from nothing makes: its members in layer order, whichever layers the
 * cache had.
 */
for (const [format, flags] of [['docker-archive', []], ['docker-archive', ['--compress', 'gzip']], ['oci-archive', ['--compress', 'gzip']], ['oci-archive', ['--compress', 'zstd']]] as const) {
  test(`${[format, ...flags].join(' ')}: a release rebuilt partly from the cache is byte-identical to a --no-cache build`, (t) => {
    const dir = tempDir(t);
    const root = join(dir, 'root');
    cpSync(demoRoot, root, { recursive: true });
    const run = (closure: string, out: string, extra: string[]) =>
      build(['build', closure, '--store-root', root, '--format', format, ...flags, '-o', join(dir, out), ...extra], { umask: '022', cwd: dir, env: process.env });
    run(demoClosure, 'release1.tar', ['--cache-dir', join(dir, 'cache')]);
    // Release 2: tzdata (a layer low in the image, with layers above it) has new contents and so a new NAR hash.
    const tzdata = '/nix/store/hyzdvdqv4sq278f1vn8lncvhpimjj5ps-demo-tzdata-2024a';
    const file = readdirSync(join(root, tzdata), { recursive: true, withFileTypes: true }).find((e) => e.isFile())!;
    const path = join(file.parentPath, file.name);
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from('release 2')]));
    const closure = (JSON.parse(readFileSync(demoClosure, 'utf8')) as { path: string; narHash?: string }[]).map((p) => (p.path === tzdata ? { ...p, narHash: 'sha256-release2' } : p));
    writeFileSync(join(dir, 'closure2.json'), JSON.stringify(closure));
    run(join(dir, 'closure2.json'), 'warm.tar', ['--cache-dir', join(dir, 'cache'), '--json']);
    run(join(dir, 'closure2.json'), 'fresh.tar', ['--no-cache']);
    assert.notEqual(sha256File(join(dir, 'release1.tar')), sha256File(join(dir, 'fresh.tar')), 'release 2 changed nothing');
    assert.deepEqual([...tarMembers(join(dir, 'warm.tar')).keys()], [...tarMembers(join(dir, 'fresh.tar')).keys()], 'member order differs');
    assert.equal(sha256File(join(dir, 'warm.tar')), sha256File(join(dir, 'fresh.tar')));
  });
}

