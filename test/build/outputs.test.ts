import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot, tempDir } from '../support/paths.js';
import { startRegistry } from '../support/registry.js';

const demoRoot = join(repoRoot, 'closures', 'demo', 'root');
const demoClosure = join(repoRoot, 'closures', 'demo', 'closure.json');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const format of ['docker-archive', 'oci-archive']) {
  test(`${format}: -o - streams exactly the bytes of a file build, and leaves no temporary file`, async (t) => {
    const dir = tempDir(t);
    const args = ['build', demoClosure, '--store-root', demoRoot, '--format', format, '--no-cache', '--tag', 'x:1'];
    const file = await runStrata([...args, '-o', join(dir, 'f.tar')]);
    assert.equal(file.code, 0, file.stderr);
    const tmp = join(dir, 'tmp');
    const { mkdirSync, readdirSync } = await import('node:fs');
    mkdirSync(tmp);
    const piped = await runStrata([...args, '-o', '-'], { env: { ...process.env, TMPDIR: tmp } });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(sha(piped.stdoutBytes), sha(readFileSync(join(dir, 'f.tar'))));
    assert.deepEqual(readdirSync(tmp), []);
  });
}

test('an OCI layout directory cannot go to stdout: clear error', async () => {
  const r = await runStrata(['build', demoClosure, '--store-root', demoRoot, '--format', 'oci', '-o', '-']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /oci-archive/);
  assert.equal(r.stdoutBytes.length, 0);
});

test('build --push: an unchanged rebuild uploads zero layer bytes; a changed one only the changed layer', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const dir = tempDir(t);
  const push = async (cacheDir: string, extra: string[] = []) => {
    const r = await runStrata(['build', demoClosure, '--store-root', demoRoot, '--push', `${registry.host}/demo:1`, '--json', '--cache-dir', cacheDir, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { layers: { size: number }[]; upload: { blobBytesUploaded: number; blobsUploaded: number; blobsSkipped: number } };
  };
  const first = await push(join(dir, 'c1'));
  assert.ok(first.upload.blobBytesUploaded > 0);
  // A fresh cache: every layer is rebuilt from the store, and the registry already has each one.
  const again = await push(join(dir, 'c2'));
  assert.equal(again.upload.blobBytesUploaded, 0, 'nothing re-uploaded');
  assert.ok(again.upload.blobsSkipped >= again.layers.length);
  // A different customisation layer (one env var does not change layers; a symlink does).
  const changed = await push(join(dir, 'c3'), ['--symlink', '/hello:/nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0/bin/hello']);
  const customisation = changed.layers[changed.layers.length - 1]!;
  assert.equal(changed.upload.blobsUploaded, 2, 'the new customisation layer and the new config');
  assert.ok(changed.upload.blobBytesUploaded < customisation.size + 4096);
});

test('build --push from a warm cache: layers the registry has are neither read from the cache nor spooled, and the image is the same', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const dir = tempDir(t);
  const cacheDir = join(dir, 'cache');
  const push = async (tag: string, extra: string[] = []) => {
    const r = await runStrata(['build', demoClosure, '--store-root', demoRoot, '--push', `${registry.host}/demo:${tag}`, '--json', '--cache-dir', cacheDir, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { manifestDigest: string; layers: unknown[]; cache: { hits: number; trusted: number; hashed: number; misses: number }; upload: { blobBytesUploaded: number; blobsSkipped: number } };
  };
  const cold = await push('1');
  const warm = await push('2');
  assert.equal(warm.manifestDigest, cold.manifestDigest);
  assert.equal(warm.upload.blobBytesUploaded, 0);
  assert.equal(warm.cache.misses, 0);
  assert.equal(warm.cache.hits, warm.layers.length, 'every layer came from the cache record');
  // Not one cached blob opened: none trusted by its stamp, none hashed (the registry holds them).
  assert.equal(warm.cache.trusted, 0, JSON.stringify(warm.cache));
  assert.equal(warm.cache.hashed, 0, JSON.stringify(warm.cache));
  // And what the registry serves under the new tag reads back as the same image.
  const r = await runStrata(['inspect', `docker://${registry.host}/demo:2`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(cold.manifestDigest.slice(7)));
  // The same through the progress decorator (--progress plain): it reports every layer, and still
  // lets the registry's answer spare the cache's copies.
  const shown = await runStrata(['build', demoClosure, '--store-root', demoRoot, '--push', `${registry.host}/demo:4`, '--json', '--cache-dir', cacheDir, '--progress', 'plain']);
  assert.equal(shown.code, 0, shown.stderr);
  const viaProgress = JSON.parse(shown.stdout) as typeof warm;
  assert.equal(viaProgress.cache.trusted + viaProgress.cache.hashed, 0, JSON.stringify(viaProgress.cache));
  assert.equal(shown.stderr.match(/^strata: layer \d+ written/gm)?.length, viaProgress.layers.length, shown.stderr);
  // --verify-cache trusts no record: every cached blob is hashed again (and still not uploaded).
  const verified = await push('3', ['--verify-cache']);
  assert.ok(verified.cache.hashed >= verified.layers.length, JSON.stringify(verified.cache));
  assert.equal(verified.upload.blobBytesUploaded, 0);
  assert.equal(verified.manifestDigest, cold.manifestDigest);
});
