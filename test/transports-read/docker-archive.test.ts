import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openImageSource } from '../../src/transports/open-source.js';
import { StrataError } from '../../src/util/errors.js';
import { tempDir } from '../support/paths.js';
import { ensurePackages } from '../support/tools.js';
import { configJson, drainError, gzip, hex, readAll, rejectsNaming, sha, storeLayer, writeTar, type Entry } from './helpers.js';

const MT_TAR = 'application/vnd.oci.image.layer.v1.tar';
const MT_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

async function twoLayers() {
  const l1 = await storeLayer('aaaa-base');
  const l2 = await storeLayer('bbbb-app');
  return { l1, l2, d1: sha(l1), d2: sha(l2) };
}

/** A legacy (Docker <= 1.9) archive: repositories + <id>/json parent links, no manifest.json. */
async function legacyEntries(l1: Buffer, l2: Buffer, opts: { loop?: boolean } = {}) {
  const v1a = hex(sha('legacy layer a'));
  const v1b = hex(sha('legacy layer b'));
  const entries: Entry[] = [
    { name: 'repositories', content: JSON.stringify({ base: { '1': v1b } }) },
    { name: `${v1a}/VERSION`, content: '1.0' },
    { name: `${v1a}/json`, content: JSON.stringify({ id: v1a, ...(opts.loop ? { parent: v1b } : {}), created: '2015-01-01T00:00:00Z', container_config: { Cmd: ['/bin/sh', '-c', 'add base'] }, os: 'linux' }) },
    { name: `${v1a}/layer.tar`, content: l1 },
    { name: `${v1b}/VERSION`, content: '1.0' },
    { name: `${v1b}/json`, content: JSON.stringify({ id: v1b, parent: v1a, created: '2015-01-02T00:00:00Z', container_config: { Cmd: ['/bin/sh', '-c', 'add app'] }, config: { Env: ['A=1'] }, architecture: 'arm64', os: 'linux' }) },
    { name: `${v1b}/layer.tar`, content: l2 },
  ];
  return { entries, v1a, v1b };
}

test('old-style archive: layers follow the parent chain from the tagged top layer', async (t) => {
  const dir = tempDir(t);
  const { l1, l2, d1, d2 } = await twoLayers();
  const { entries } = await legacyEntries(l1, l2);
  const file = join(dir, 'legacy.tar');
  await writeTar(file, entries);
  for (const ref of [`docker-archive:${file}:base:1`, `docker-archive:${file}`, file]) {
    const src = await openImageSource(ref);
    const img = src.image;
    assert.deepEqual(img.layers.map((l) => l.diffId), [d1, d2], ref);
    assert.deepEqual(img.config.rootfs.diff_ids, [d1, d2]);
    assert.equal(img.config.architecture, 'arm64');
    assert.deepEqual(img.config.config?.Env, ['A=1']);
    assert.equal(img.config['parent'], undefined);
    assert.equal(img.configDigest, sha(img.configBytes));
    assert.deepEqual(JSON.parse(img.configBytes.toString()), img.config);
    assert.equal(img.config.history?.length, 2);
    assert.equal(img.config.history?.[1]?.created_by, '/bin/sh -c add app');
    assert.deepEqual(img.layers.map((l) => [l.digest, l.size, l.mediaType, l.compression]), [[d1, l1.length, MT_TAR, 'none'], [d2, l2.length, MT_TAR, 'none']]);
    assert.deepEqual(await readAll(await img.layers[0]!.open()), l1);
    assert.deepEqual(await readAll(await img.layers[1]!.open()), l2);
    await src.close();
  }
  await rejectsNaming(openImageSource(`docker-archive:${file}:base:2`), 'base:2', 'base:1');
});

test('old-style archive: a loop in the parent chain is an error naming the ids', async (t) => {
  const dir = tempDir(t);
  const { l1, l2 } = await twoLayers();
  const { entries, v1a, v1b } = await legacyEntries(l1, l2, { loop: true });
  const file = join(dir, 'loop.tar');
  await writeTar(file, entries);
  await rejectsNaming(openImageSource(`docker-archive:${file}`), /loop/, v1a, v1b);
});

/** skopeo-style: `<diffid>.tar` files, `<hex>.json` config, legacy dirs as symlinks; two images. */
async function skopeoStyle(dir: string) {
  const { l1, l2, d1, d2 } = await twoLayers();
  const cfgA = configJson([d1, d2]);
  const cfgB = configJson([d1], { architecture: 'arm64' });
  const v1 = hex(sha('v1 id of b'));
  const manifest = [
    { Config: `${hex(sha(cfgA))}.json`, RepoTags: ['docker.io/library/app:2'], Layers: [`${hex(d1)}.tar`, `${hex(d2)}.tar`] },
    { Config: `${hex(sha(cfgB))}.json`, RepoTags: ['other:1'], Layers: [`${v1}/layer.tar`] },
  ];
  const entries: Entry[] = [
    { name: `${hex(d1)}.tar`, content: l1 },
    { name: `${hex(d2)}.tar`, content: l2 },
    { name: `${hex(sha(cfgA))}.json`, content: cfgA },
    { name: `${hex(sha(cfgB))}.json`, content: cfgB },
    { name: `${v1}`, type: 'directory' },
    { name: `${v1}/layer.tar`, type: 'symlink', linkname: `../${hex(d1)}.tar` },
    { name: 'manifest.json', content: JSON.stringify(manifest) },
  ];
  const file = join(dir, 'skopeo-style.tar');
  const bytes = await writeTar(file, entries);
  return { file, bytes, l1, l2, d1, d2, cfgA, cfgB };
}

test('new-style archive: manifest.json with <diffid>.tar files, selected by tag', async (t) => {
  const dir = tempDir(t);
  const { file, l1, d1, d2, cfgA, cfgB } = await skopeoStyle(dir);
  await rejectsNaming(openImageSource(`docker-archive:${file}`), 'holds 2 images', 'docker.io/library/app:2', 'other:1');
  await rejectsNaming(openImageSource(file), 'holds 2 images');
  await rejectsNaming(openImageSource(`docker-archive:${file}:nope:1`), 'nope:1', 'other:1');

  const a = (await openImageSource(`docker-archive:${file}:app:2`)).image;
  assert.deepEqual(a.configBytes, cfgA);
  assert.equal(a.configDigest, sha(cfgA));
  assert.deepEqual(a.layers.map((l) => [l.diffId, l.digest, l.mediaType]), [[d1, d1, MT_TAR], [d2, d2, MT_TAR]]);
  assert.equal(a.layers[0]!.size, l1.length);

  // One level of symlink (legacy dir → ../<diffid>.tar) is followed.
  for (const ref of [`docker-archive:${file}:other:1`, `docker-archive:${file}:@1`]) {
    const b = (await openImageSource(ref)).image;
    assert.deepEqual(b.configBytes, cfgB);
    assert.equal(b.config.architecture, 'arm64');
    assert.deepEqual(await readAll(await b.layers[0]!.open()), l1);
  }
});

test('Docker 25 archive: manifest.json pointing into an OCI blob layout', async (t) => {
  const dir = tempDir(t);
  const { l1, l2, d1, d2 } = await twoLayers();
  const cfg = configJson([d1, d2]);
  const ociManifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: cfg.length },
    layers: [{ mediaType: MT_TAR, digest: d1, size: l1.length }, { mediaType: MT_TAR, digest: d2, size: l2.length }],
  }));
  const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(ociManifest), size: ociManifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/d25:latest', 'org.opencontainers.image.ref.name': 'latest' } }] };
  const entries: Entry[] = [
    { name: 'blobs', type: 'directory' },
    { name: 'blobs/sha256', type: 'directory' },
    { name: `blobs/sha256/${hex(d1)}`, content: l1 },
    { name: `blobs/sha256/${hex(d2)}`, content: l2 },
    { name: `blobs/sha256/${hex(sha(cfg))}`, content: cfg },
    { name: `blobs/sha256/${hex(sha(ociManifest))}`, content: ociManifest },
    { name: 'index.json', content: JSON.stringify(index) },
    { name: 'manifest.json', content: JSON.stringify([{ Config: `blobs/sha256/${hex(sha(cfg))}`, RepoTags: ['d25:latest'], Layers: [`blobs/sha256/${hex(d1)}`, `blobs/sha256/${hex(d2)}`] }]) },
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
  ];
  const file = join(dir, 'd25.tar');
  await writeTar(file, entries);
  const src = await openImageSource(file);
  assert.match(src.name, /^docker-archive:/);
  for (const img of [src.image, (await openImageSource(`docker-archive:${file}:d25`)).image, (await openImageSource(`oci-archive:${file}:latest`)).image]) {
    assert.deepEqual(img.configBytes, cfg);
    assert.deepEqual(img.layers.map((l) => [l.diffId, l.digest, l.size]), [[d1, d1, l1.length], [d2, d2, l2.length]]);
    assert.deepEqual(await readAll(await img.layers[1]!.open()), l2);
  }
});

test('gzip layer files in a docker-archive are detected by magic bytes and hashed for their digest', async (t) => {
  const dir = tempDir(t);
  const { l1, d1 } = await twoLayers();
  const gz = gzip(l1);
  const cfg = configJson([d1]);
  const h = hex(sha('nixpkgs-style layer dir'));
  const file = join(dir, 'gz.tar');
  // nixpkgs streamLayeredImage names: `<hash>/layer.tar`, `<hash>.json`.
  await writeTar(file, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['gz:1'], Layers: [`${h}/layer.tar`] }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: `${h}/layer.tar`, content: gz },
  ]);
  const img = (await openImageSource(file)).image;
  const l = img.layers[0]!;
  assert.deepEqual([l.compression, l.mediaType, l.digest, l.diffId, l.size], ['gzip', MT_GZIP, sha(gz), d1, gz.length]);
  assert.deepEqual(await readAll(await l.open()), gz);
});

test('when manifest.json and the legacy parent chain disagree, manifest.json wins', async (t) => {
  const dir = tempDir(t);
  const { l1, l2, d2 } = await twoLayers();
  const { entries } = await legacyEntries(l1, l2); // chain: [l1, l2]
  const cfg = configJson([d2]);
  entries.push(
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: `${hex(d2)}.tar`, content: l2 },
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['base:1'], Layers: [`${hex(d2)}.tar`] }]) },
  );
  const file = join(dir, 'both.tar');
  await writeTar(file, entries);
  const img = (await openImageSource(`docker-archive:${file}:base:1`)).image;
  assert.deepEqual(img.layers.map((l) => l.diffId), [d2]);
  assert.deepEqual(img.configBytes, cfg);
});

test('a truncated archive is a clear error naming the file', async (t) => {
  const dir = tempDir(t);
  const { file, bytes } = await skopeoStyle(dir);
  truncateSync(file, Math.floor(bytes.length / 2) + 100);
  await rejectsNaming(openImageSource(`docker-archive:${file}:app:2`), 'truncated', file);
  // Cut exactly after a member: no end-of-archive marker.
  writeFileSync(file, bytes.subarray(0, 512 + 512));
  await rejectsNaming(openImageSource(`docker-archive:${file}:app:2`), 'truncated', file);
});

test('digest and diff ID mismatches name the config or the layer', async (t) => {
  const dir = tempDir(t);
  const { l1, d1 } = await twoLayers();
  const cfg = configJson([d1]);

  // Config file content does not hash to its name.
  const badCfgFile = join(dir, 'badcfg.tar');
  const wrongName = `${hex(sha('something else'))}.json`;
  await writeTar(badCfgFile, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: wrongName, RepoTags: ['x:1'], Layers: ['l.tar'] }]) },
    { name: wrongName, content: cfg },
    { name: 'l.tar', content: l1 },
  ]);
  await rejectsNaming(openImageSource(badCfgFile), wrongName, 'digest mismatch');

  // Layer bytes do not match the config's diff ID: found while streaming the layer.
  const tampered = Buffer.from(l1);
  tampered[600] = tampered[600]! ^ 0xff;
  const badLayerFile = join(dir, 'badlayer.tar');
  await writeTar(badLayerFile, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['x:1'], Layers: ['layer0.tar'] }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: 'layer0.tar', content: tampered },
  ]);
  const img = (await openImageSource(badLayerFile)).image;
  const err = await drainError(await img.layers[0]!.open());
  assert.ok(err instanceof StrataError, String(err));
  for (const s of ['layer 0', 'layer0.tar', d1, badLayerFile, 'mismatch']) assert.ok(err.message.includes(s), `${err.message} should name ${s}`);

  // A gzip layer whose decompressed tar is not the diff ID.
  const badGz = join(dir, 'badgz.tar');
  await writeTar(badGz, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['x:1'], Layers: ['layer0.tar'] }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: 'layer0.tar', content: gzip(tampered) },
  ]);
  const gzErr = await drainError(await (await openImageSource(badGz)).image.layers[0]!.open());
  assert.ok(gzErr instanceof StrataError && gzErr.message.includes('diff ID mismatch') && gzErr.message.includes('layer 0'), String(gzErr));

  // A file named by a digest that is not the diff ID is refused up front.
  const misnamed = join(dir, 'misnamed.tar');
  const other = `${hex(sha('not the layer'))}.tar`;
  await writeTar(misnamed, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['x:1'], Layers: [other] }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: other, content: l1 },
  ]);
  await rejectsNaming(openImageSource(misnamed), other, d1);
});

test('manifest.json naming a missing file, and layer count != diff_ids count', async (t) => {
  const dir = tempDir(t);
  const { l1, d1, d2 } = await twoLayers();
  const cfg = configJson([d1, d2]);
  const missing = join(dir, 'missing.tar');
  await writeTar(missing, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['x:1'], Layers: ['a.tar', 'gone/layer.tar'] }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: 'a.tar', content: l1 },
  ]);
  await rejectsNaming(openImageSource(missing), 'gone/layer.tar', 'not in the archive');

  const missingCfg = join(dir, 'missingcfg.tar');
  await writeTar(missingCfg, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: 'nocfg.json', RepoTags: ['x:1'], Layers: ['a.tar'] }]) },
    { name: 'a.tar', content: l1 },
  ]);
  await rejectsNaming(openImageSource(missingCfg), 'nocfg.json');

  const cfg2 = configJson([d1, d2]);
  const count = join(dir, 'count.tar');
  await writeTar(count, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg2))}.json`, RepoTags: ['x:1'], Layers: ['a.tar'] }]) },
    { name: `${hex(sha(cfg2))}.json`, content: cfg2 },
    { name: 'a.tar', content: l1 },
  ]);
  await rejectsNaming(openImageSource(count), '1 layer', '2', 'diff_ids');
});

test('member names with .. and symlinks leaving the archive are refused', async (t) => {
  const dir = tempDir(t);
  const { l1, d1 } = await twoLayers();
  const cfg = configJson([d1]);
  const base = (layerEntries: Entry[]): Entry[] => [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['x:1'], Layers: ['v1/layer.tar'] }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: 'real.tar', content: l1 },
    ...layerEntries,
  ];
  const dotdot = join(dir, 'dotdot.tar');
  await writeTar(dotdot, base([{ name: 'v1/layer.tar', content: l1 }, { name: 'v1/../../evil', content: 'x' }]));
  await rejectsNaming(openImageSource(dotdot), 'v1/../../evil', '..');

  const escaping = join(dir, 'escape.tar');
  await writeTar(escaping, base([{ name: 'v1/layer.tar', type: 'symlink', linkname: '../../outside.tar' }]));
  await rejectsNaming(openImageSource(escaping), 'v1/layer.tar', 'escapes');

  const absolute = join(dir, 'absolute.tar');
  await writeTar(absolute, base([{ name: 'v1/layer.tar', type: 'symlink', linkname: '/etc/passwd' }]));
  await rejectsNaming(openImageSource(absolute), 'v1/layer.tar', '/etc/passwd');

  const twoLevels = join(dir, 'twolevels.tar');
  await writeTar(twoLevels, base([{ name: 'v1/layer.tar', type: 'symlink', linkname: '../v2/layer.tar' }, { name: 'v2/layer.tar', type: 'symlink', linkname: '../real.tar' }]));
  await rejectsNaming(openImageSource(twoLevels), 'v1/layer.tar', 'one level');

  // Sanity: the same archive with a one-level relative symlink reads fine.
  const ok = join(dir, 'ok.tar');
  await writeTar(ok, base([{ name: 'v1/layer.tar', type: 'symlink', linkname: '../real.tar' }]));
  assert.deepEqual(await readAll(await (await openImageSource(ok)).image.layers[0]!.open()), l1);
});

test('a zstd-compressed layer (from zstd(1)) is read and verified; a corrupt one is refused naming the layer', async (t) => {
  await ensurePackages(['zstd']);
  const dir = tempDir(t);
  const { l1, d1 } = await twoLayers();
  writeFileSync(join(dir, 'l.tar'), l1);
  // --long gives a 128 MiB window, the most strata's decoder accepts; -T2 makes several blocks.
  execFileSync('zstd', ['-q', '-f', '--long=27', '-19', '--check', join(dir, 'l.tar'), '-o', join(dir, 'l.tar.zst')]);
  const zst = readFileSync(join(dir, 'l.tar.zst'));
  const cfg = configJson([d1]);
  const archive = async (name: string, blob: Buffer): Promise<string> => {
    const file = join(dir, name);
    await writeTar(file, [
      { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['x:1'], Layers: ['zz/layer.tar'] }]) },
      { name: `${hex(sha(cfg))}.json`, content: cfg },
      { name: 'zz/layer.tar', content: blob },
    ]);
    return file;
  };
  const { image } = await openImageSource(await archive('zstd.tar', zst));
  const layer = image.layers[0]!;
  assert.equal(layer.compression, 'zstd');
  assert.equal(layer.digest, sha(zst));
  assert.equal(layer.diffId, d1);
  assert.deepEqual(await readAll(await layer.open()), zst, 'the blob passes through unchanged, its DiffID checked');

  // The same frames with one byte of a block flipped: the layer opens, and reading it fails, named.
  const bad = Buffer.from(zst);
  bad[bad.length >> 1] ^= 0xff;
  const broken = (await openImageSource(await archive('bad.tar', bad))).image.layers[0]!;
  const e = await drainError(await broken.open());
  assert.ok(e instanceof StrataError, String(e));
  assert.match(e.message, /layer 0/);
  assert.match(e.message, /zz\/layer\.tar/);
  assert.match(e.message, /zstd stream is corrupt|diff ID mismatch/);
});
