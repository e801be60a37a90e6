/**
 * Issue 13: everything strata writes validates against the OCI image-spec's own JSON schemas plus
 * our stricter checks (test/support/oci-schema.ts), for every writer: docker-archive, an OCI
 * layout directory, oci-archive, and a push to a real registry. The negative tests prove the
 * checker can fail, each naming the problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot, tempDir } from '../support/paths.js';
import { startRegistry } from '../support/registry.js';
import { ensurePackages } from '../support/tools.js';
import { checkConfig, checkDockerArchive, checkIndex, checkLayout, checkManifest, checkOciArchive, checkRegistryImage } from '../support/oci-schema.js';

const demoRoot = join(repoRoot, 'closures', 'demo', 'root');
const demoClosure = join(repoRoot, 'closures', 'demo', 'closure.json');
const hello = '/nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0';
const demoArgs = ['build', demoClosure, '--store-root', demoRoot, '--entrypoint', `${hello}/bin/hello`, '--no-cache'];

async function build(args: string[]): Promise<void> {
  const r = await runStrata([...demoArgs, ...args]);
  assert.equal(r.code, 0, `strata ${args.join(' ')} failed:\n${r.stderr}`);
}

test('docker-archive validates (manifest.json shape, configs, diff_ids)', async (t) => {
  const file = join(tempDir(t), 'image.tar');
  await build(['--format', 'docker-archive', '--tag', 'demo:latest', '-o', file]);
  checkDockerArchive(file);
});

test('docker-archive with gzip layers validates', async (t) => {
  const file = join(tempDir(t), 'image.tar');
  await build(['--format', 'docker-archive', '--compress', 'gzip', '--tag', 'demo:latest', '-o', file]);
  checkDockerArchive(file);
});

test('docker-archive, OCI layout and oci-archive with zstd layers validate (diff_ids checked by zstd -dc)', async (t) => {
  await ensurePackages(['zstd']);
  const dir = tempDir(t);
  await build(['--format', 'docker-archive', '--compress', 'zstd', '--tag', 'demo:latest', '-o', join(dir, 'image.tar')]);
  checkDockerArchive(join(dir, 'image.tar'));
  await build(['--format', 'oci', '--compress', 'zstd', '--tag', 'demo:latest', '-o', join(dir, 'layout')]);
  checkLayout(join(dir, 'layout'));
  await build(['--format', 'oci-archive', '--compress', 'zstd', '--tag', 'demo:latest', '-o', join(dir, 'oci.tar')]);
  checkOciArchive(join(dir, 'oci.tar'));
});

test('OCI layout directory validates (oci-layout, index, manifests, configs, every blob)', async (t) => {
  const dir = join(tempDir(t), 'layout');
  await build(['--format', 'oci', '--tag', 'demo:latest', '-o', dir]);
  checkLayout(dir);
});

test('oci-archive validates', async (t) => {
  const file = join(tempDir(t), 'image.tar');
  await build(['--format', 'oci-archive', '--tag', 'demo:latest', '-o', file]);
  checkOciArchive(file);
});

test('build --push and strata push to a real registry validate (manifest, config, blob sizes)', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  await build(['--push', `${registry.host}/schema/demo:1`]);
  await checkRegistryImage(registry.host, 'schema/demo', '1');

  // `strata push` copies an archive to a registry: the other registry writer.
  const file = join(tempDir(t), 'image.tar');
  await build(['--format', 'oci-archive', '--tag', 'demo:latest', '-o', file]);
  const r = await runStrata(['push', `oci-archive:${file}`, `${registry.host}/schema/copied:2`]);
  assert.equal(r.code, 0, r.stderr);
  await checkRegistryImage(registry.host, 'schema/copied', '2');

  // zstd layers pushed straight from a build.
  await ensurePackages(['zstd']);
  await build(['--push', `${registry.host}/schema/zstd:1`, '--compress', 'zstd']);
  await checkRegistryImage(registry.host, 'schema/zstd', '1');
});

// ---------------------------------------------------------------------------------------------
// The checker fails when it should
// ---------------------------------------------------------------------------------------------

/** A real layout to take valid documents from. */
async function layout(t: { after(fn: () => void): void }): Promise<{ dir: string; index: Buffer; manifest: Buffer; config: Buffer; blobSize: (d: string) => number | undefined }> {
  const dir = join(tempDir(t), 'layout');
  await build(['--format', 'oci', '--tag', 'demo:latest', '-o', dir]);
  const blob = (digest: string): string => join(dir, 'blobs', ...digest.split(':'));
  const index = readFileSync(join(dir, 'index.json'));
  const manifestDigest = JSON.parse(index.toString()).manifests[0].digest as string;
  const manifest = readFileSync(blob(manifestDigest));
  const config = readFileSync(blob(JSON.parse(manifest.toString()).config.digest));
  const blobSize = (d: string): number | undefined => { try { return statSync(blob(d)).size; } catch { return undefined; } };
  return { dir, index, manifest, config, blobSize };
}

const edit = (bytes: Buffer, f: (doc: any) => void): Buffer => { // eslint-disable-line @typescript-eslint/no-explicit-any
  const doc = JSON.parse(bytes.toString('utf8'));
  f(doc);
  return Buffer.from(JSON.stringify(doc));
};

test('the checker rejects what is wrong, naming the problem', async (t) => {
  const l = await layout(t);
  // The untouched documents pass: the failures below are the edits'.
  checkIndex(l.index, 'index', l.blobSize);
  checkManifest(l.manifest, 'manifest', l.blobSize);
  checkConfig(l.config, 'config');

  const offByOne = edit(l.manifest, (m) => { m.layers[0].size += 1; });
  assert.throws(() => checkManifest(offByOne, 'manifest off by one', l.blobSize),
    (e: Error) => e.name === 'AssertionError' && /manifest off by one: \/layers\/0\/size: size \d+ is not the blob's real size \d+/.test(e.message));

  const badDigest = edit(l.manifest, (m) => { m.layers[0].digest = 'sha256:XYZ'; });
  assert.throws(() => checkManifest(badDigest, 'bad digest'),
    (e: Error) => e.name === 'AssertionError' && /bad digest: \/layers\/0\/digest: digest "sha256:XYZ" is not sha256:<64 lowercase hex>/.test(e.message));

  const noManifests = edit(l.index, (i) => { delete i.manifests; });
  assert.throws(() => checkIndex(noManifests, 'index without manifests'),
    (e: Error) => e.name === 'AssertionError' && /index without manifests: does not validate against the OCI index schema: \/: must have required property 'manifests'/.test(e.message));

  const noRootfs = edit(l.config, (c) => { delete c.rootfs; });
  assert.throws(() => checkConfig(noRootfs, 'config without rootfs'),
    (e: Error) => e.name === 'AssertionError' && /config without rootfs: does not validate against the OCI config schema: \/: must have required property 'rootfs'/.test(e.message));

  // A few more the strict checks own.
  const configAsLayer = edit(l.manifest, (m) => { m.config.mediaType = 'application/vnd.oci.image.layer.v1.tar'; });
  assert.throws(() => checkManifest(configAsLayer, 'm'), /\/config\/mediaType: "application\/vnd\.oci\.image\.layer\.v1\.tar" is not a config media type/);
  const missingBlob = edit(l.manifest, (m) => { m.layers[0].digest = `sha256:${'0'.repeat(64)}`; });
  assert.throws(() => checkManifest(missingBlob, 'm', l.blobSize), /\/layers\/0\/digest: blob sha256:0{64} does not exist/);
  const negative = edit(l.manifest, (m) => { m.layers[0].size = -1; });
  assert.throws(() => checkManifest(negative, 'm'), /OCI manifest schema|size -1 is not a non-negative safe integer/);
  const badDate = edit(l.config, (c) => { c.created = 'yesterday'; });
  assert.throws(() => checkConfig(badDate, 'c'), /\/created: must match format "date-time"/);

  // A layout whose blob no longer hashes to its name.
  const layerDigest = JSON.parse(l.manifest.toString()).layers[0].digest as string;
  const layerFile = join(l.dir, 'blobs', ...layerDigest.split(':'));
  const layer = readFileSync(layerFile);
  layer[layer.length - 1] ^= 1;
  writeFileSync(layerFile, layer);
  assert.throws(() => checkLayout(l.dir), (e: Error) => e.name === 'AssertionError' && e.message.includes(`blob ${layerDigest} hashes to sha256:`));
});
