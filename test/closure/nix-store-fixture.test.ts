/**
 * The real-Nix fixture (test/support/nix-store.ts) is what the package-as-layer end-to-end tests
 * stand on, so its shape is checked here against Nix's own output: two closures of four paths,
 * the references Nix recorded, which paths the two releases share, Nix's store modes, and the
 * scripts' contents. As root, hello is also run in a chroot of the store root (its shebang and
 * commands are absolute /nix/store paths) to confirm `helloOutput`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { makeNixPackageStore, removeNixPackageStore, type NixPackageStore, type NixRelease } from '../support/nix-store.js';
import { run } from '../support/tools.js';

interface PathInfo { path: string; narHash: string; narSize: number; references: string[] }

// Not tempDir(): its rmSync cannot delete through Nix's read-only store directories unless root.
let dir: string;
let store: NixPackageStore;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-nix-store-'));
  const started = Date.now();
  store = await makeNixPackageStore(dir);
  console.log(`nix fixture built in ${Date.now() - started} ms (including any apt install)`);
});

after(async () => {
  if (dir) await removeNixPackageStore(dir);
});

function closure(r: NixRelease): PathInfo[] {
  const parsed: unknown = JSON.parse(readFileSync(r.closureFile, 'utf8'));
  assert.ok(Array.isArray(parsed), `${r.closureFile} is not nix's array form`);
  return parsed as PathInfo[];
}

function refsOf(infos: PathInfo[], path: string): string[] {
  const info = infos.find((i) => i.path === path);
  assert.ok(info, `${path} is not in the closure`);
  return [...info.references].sort();
}

const real = (p: string) => join(store.storeRoot, p);

test('both closure files parse and hold the four paths, with nix SRI narHashes', () => {
  for (const [i, r] of store.releases.entries()) {
    const infos = closure(r);
    assert.equal(infos.length, 4, `release ${i + 1}`);
    assert.deepEqual(infos.map((x) => x.path).sort(), Object.values(r.paths).sort());
    for (const x of infos) {
      assert.match(x.narHash, /^sha256-[A-Za-z0-9+/]{43}=$/, `${x.path} narHash`);
      assert.ok(Number.isInteger(x.narSize) && x.narSize > 0, `${x.path} narSize`);
    }
  }
});

test('store names split into the intended pname and version', () => {
  const [r1, r2] = store.releases;
  const name = (p: string) => p.replace(/^\/nix\/store\/[0-9a-z]{32}-/, '');
  assert.deepEqual(Object.values(r1.paths).map(name), ['busybox-1.36', 'greeting-data-1.0', 'hello-2.1', 'shout-0.3']);
  assert.deepEqual(Object.values(r2.paths).map(name), ['busybox-1.36', 'greeting-data-1.1', 'hello-2.1', 'shout-0.3']);
});

test('references are the ones Nix found by hash', () => {
  for (const r of store.releases) {
    const infos = closure(r);
    assert.deepEqual(refsOf(infos, r.paths.hello), [r.paths.busybox, r.paths.data].sort());
    assert.deepEqual(refsOf(infos, r.paths.shout), [r.paths.busybox]);
    assert.deepEqual(refsOf(infos, r.paths.data), []);
    assert.deepEqual(refsOf(infos, r.paths.busybox), []);
  }
});

test('release 2 shares busybox and shout with release 1 and changes data and hello', () => {
  const [r1, r2] = store.releases;
  assert.equal(r2.paths.busybox, r1.paths.busybox);
  assert.equal(r2.paths.shout, r1.paths.shout);
  assert.notEqual(r2.paths.data, r1.paths.data);
  assert.notEqual(r2.paths.hello, r1.paths.hello);
  const narOf = (r: NixRelease, p: string) => closure(r).find((x) => x.path === p)!.narHash;
  assert.equal(narOf(r2, r2.paths.shout), narOf(r1, r1.paths.shout));
  assert.notEqual(narOf(r2, r2.paths.hello), narOf(r1, r1.paths.hello));
});

test('the files are under storeRoot with Nix modes and contents referring to the right paths', () => {
  for (const r of store.releases) {
    const bb = r.paths.busybox;
    assert.equal(lstatSync(real(`${bb}/bin/busybox`)).mode & 0o7777, 0o555);
    assert.equal(readlinkSync(real(`${bb}/bin/sh`)), 'busybox');
    assert.equal(lstatSync(real(r.paths.hello)).mode & 0o7777, 0o555);
    assert.equal(lstatSync(real(`${r.paths.hello}/bin/hello`)).mode & 0o7777, 0o555);
    assert.equal(lstatSync(real(`${r.paths.data}/share/greeting.txt`)).mode & 0o7777, 0o444);
    assert.equal(lstatSync(real(`${r.paths.hello}/bin/hello`)).mtimeMs, 1000);
    assert.equal(readFileSync(real(`${r.paths.data}/share/greeting.txt`), 'utf8'), r.greeting);

    const hello = readFileSync(real(`${r.paths.hello}/bin/hello`), 'utf8');
    assert.ok(hello.startsWith(`#!${bb}/bin/sh\n`), hello);
    assert.ok(hello.includes(`${bb}/bin/cat ${r.paths.data}/share/greeting.txt\n`), hello);
    const shout = readFileSync(real(`${r.paths.shout}/bin/shout`), 'utf8');
    assert.equal(shout, `#!${bb}/bin/sh\necho "SHOUT: $1"\n`);
  }
});

test('hello prints helloOutput when run in a chroot of the store root', async (t) => {
  if (process.getuid?.() !== 0) { t.skip('chroot needs root'); return; }
  for (const r of store.releases) {
    const out = await run('/usr/sbin/chroot', [store.storeRoot, `${r.paths.hello}/bin/hello`], { env: {} });
    assert.equal(out.stdout, r.helloOutput);
    const shout = await run('/usr/sbin/chroot', [store.storeRoot, `${r.paths.shout}/bin/shout`, 'hi'], { env: {} });
    assert.equal(shout.stdout, 'SHOUT: hi\n');
  }
});
