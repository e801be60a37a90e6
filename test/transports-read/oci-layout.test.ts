import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openImageSource } from '../../src/transports/open-source.js';
import { StrataError } from '../../src/util/errors.js';
import { tempDir } from '../support/paths.js';
import { configJson, drainError, gzip, hex, readAll, rejectsNaming, sha, storeLayer, type Dig } from './helpers.js';

const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
const MT_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MT_TAR = 'application/vnd.oci.image.layer.v1.tar';
const MT_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const REF = 'org.opencontainers.image.ref.name';

function putBlob(dir: string, b: Buffer | string): { digest: Dig; size: number } {
  const buf = Buffer.from(b);
  const d = sha(buf);
  writeFileSync(join(dir, 'blobs', 'sha256', hex(d)), buf);
  return { digest: d, size: buf.length };
}

function manifestOf(dir: string, cfg: Buffer, layers: { mediaType: string; blob: Buffer }[]): { digest: Dig; size: number; bytes: Buffer } {
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MT_MANIFEST,
    config: { mediaType: MT_CONFIG, ...putBlob(dir, cfg) },
    layers: layers.map((l) => ({ mediaType: l.mediaType, ...putBlob(dir, l.blob) })),
  }));
  return { ...putBlob(dir, bytes), bytes };
}

/**
 * A layout with a gzip layer and a nested index of two platforms:
 * index.json → {"multi": index → [amd64 manifest, arm64/v8 manifest], "single": amd64 manifest}.
 */
async function multiPlatformLayout(dir: string) {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const l1 = await storeLayer('aaaa-base');
  const l2 = await storeLayer('bbbb-app');
  const gz1 = gzip(l1);
  const cfgA = configJson([sha(l1), sha(l2)]);
  const cfgB = configJson([sha(l1)], { architecture: 'arm64', variant: 'v8' });
  const mA = manifestOf(dir, cfgA, [{ mediaType: MT_GZIP, blob: gz1 }, { mediaType: MT_TAR, blob: l2 }]);
  const mB = manifestOf(dir, cfgB, [{ mediaType: MT_GZIP, blob: gz1 }]);
  const nested = putBlob(dir, JSON.stringify({
    schemaVersion: 2, mediaType: MT_INDEX,
    manifests: [
      { mediaType: MT_MANIFEST, digest: mA.digest, size: mA.size, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MT_MANIFEST, digest: mB.digest, size: mB.size, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
  }));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, mediaType: MT_INDEX,
    manifests: [
      { mediaType: MT_INDEX, ...nested, annotations: { [REF]: 'multi' } },
      { mediaType: MT_MANIFEST, digest: mA.digest, size: mA.size, annotations: { [REF]: 'single' } },
    ],
  }));
  return { l1, l2, gz1, cfgA, cfgB, mA, mB };
}

test('OCI layout: gzip layer, nested index of two platforms, selection by ref name and platform', async (t) => {
  const dir = join(tempDir(t), 'layout');
  const { l1, l2, gz1, cfgA, cfgB } = await multiPlatformLayout(dir);

  await rejectsNaming(openImageSource(`oci:${dir}`), 'multi', 'single');
  await rejectsNaming(openImageSource(dir), 'multi', 'single');
  await rejectsNaming(openImageSource(`oci:${dir}:nope`), 'nope', 'multi', 'single');

  const a = (await openImageSource(`oci:${dir}:multi`)).image;
  assert.deepEqual(a.configBytes, cfgA);
  assert.equal(a.configDigest, sha(cfgA));
  assert.deepEqual(a.layers.map((l) => [l.digest, l.diffId, l.size, l.mediaType, l.compression]), [
    [sha(gz1), sha(l1), gz1.length, MT_GZIP, 'gzip'],
    [sha(l2), sha(l2), l2.length, MT_TAR, 'none'],
  ]);
  assert.deepEqual(await readAll(await a.layers[0]!.open()), gz1);
  assert.deepEqual(await readAll(await a.layers[1]!.open()), l2);

  for (const platform of [{ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }]) {
    const b = (await openImageSource(`oci:${dir}:multi`, { platform })).image;
    assert.deepEqual(b.configBytes, cfgB);
    assert.equal(b.layers.length, 1);
  }
  await rejectsNaming(openImageSource(`oci:${dir}:multi`, { platform: { os: 'linux', architecture: 's390x' } }), 'linux/s390x', 'linux/amd64', 'linux/arm64/v8');

  // A manifest chosen by name is used as it is, whatever platform was asked for.
  const single = (await openImageSource(`oci:${dir}:single`, { platform: { os: 'linux', architecture: 'arm64' } })).image;
  assert.deepEqual(single.configBytes, cfgA);
});

test('oci-archive: a tar of a layout, one manifest without a ref name, auto-detected', async (t) => {
  const tmp = tempDir(t);
  const dir = join(tmp, 'layout');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const l1 = await storeLayer('aaaa-base');
  const gz1 = gzip(l1);
  const cfg = configJson([sha(l1)]);
  const m = manifestOf(dir, cfg, [{ mediaType: MT_GZIP, blob: gz1 }]);
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MT_MANIFEST, digest: m.digest, size: m.size }] }));
  const file = join(tmp, 'image.oci.tar');
  // GNU tar, `./`-prefixed member names, as `tar -C dir .` writes them.
  execFileSync('tar', ['--sort=name', '-cf', file, '-C', dir, '.']);
  for (const ref of [file, `oci-archive:${file}`]) {
    const src = await openImageSource(ref);
    assert.match(src.name, /^oci-archive:/);
    assert.deepEqual(src.image.configBytes, cfg);
    assert.deepEqual(src.image.layers.map((l) => [l.digest, l.diffId]), [[sha(gz1), sha(l1)]]);
    assert.deepEqual(await readAll(await src.image.layers[0]!.open()), gz1);
  }
  // Same layout read as a directory gives the same image.
  assert.deepEqual((await openImageSource(`oci:${dir}`)).image.configDigest, sha(cfg));
});

test('OCI layout: tampered blobs are caught, naming the layer, digest and source', async (t) => {
  const dir = join(tempDir(t), 'layout');
  const { gz1, l2 } = await multiPlatformLayout(dir);

  // Uncompressed layer: same size, one byte flipped.
  const p2 = join(dir, 'blobs', 'sha256', hex(sha(l2)));
  const t2 = Buffer.from(l2);
  t2[700] = t2[700]! ^ 1;
  writeFileSync(p2, t2);
  const img = (await openImageSource(`oci:${dir}:multi`)).image;
  const e2 = await drainError(await img.layers[1]!.open());
  assert.ok(e2 instanceof StrataError, String(e2));
  for (const s of ['layer 1', sha(l2), `oci:${dir}`, 'digest mismatch']) assert.ok(e2.message.includes(s), `${e2.message} should name ${s}`);

  // gzip layer: a flipped byte in the deflate stream.
  const p1 = join(dir, 'blobs', 'sha256', hex(sha(gz1)));
  const t1 = Buffer.from(gz1);
  t1[gz1.length - 12] = t1[gz1.length - 12]! ^ 0x55;
  writeFileSync(p1, t1);
  const e1 = await drainError(await img.layers[0]!.open());
  assert.ok(e1 instanceof StrataError, String(e1));
  for (const s of ['layer 0', sha(gz1), `oci:${dir}`]) assert.ok(e1.message.includes(s), `${e1.message} should name ${s}`);

  // A missing blob is found before any layer is streamed.
  rmSync(p2);
  await rejectsNaming(openImageSource(`oci:${dir}:multi`), 'layer 1', sha(l2), 'missing');
});

test('OCI layout: manifest digest, media types, zstd and layer counts are checked', async (t) => {
  const tmp = tempDir(t);
  const l1 = await storeLayer('aaaa-base');
  const mk = (name: string, cfg: Buffer, layers: { mediaType: string; blob: Buffer }[], tamperManifest = false): string => {
    const dir = join(tmp, name);
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    const m = manifestOf(dir, cfg, layers);
    if (tamperManifest) writeFileSync(join(dir, 'blobs', 'sha256', hex(m.digest)), Buffer.from(m.bytes.toString().replace('"schemaVersion":2', '"schemaVersion":2 ')));
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MT_MANIFEST, digest: m.digest, size: m.size }] }));
    return dir;
  };
  const okCfg = configJson([sha(l1)]);
  const tampered = mk('tampered', okCfg, [{ mediaType: MT_TAR, blob: l1 }], true);
  await rejectsNaming(openImageSource(`oci:${tampered}`), 'manifest', 'mismatch');

  // zstd magic and then nothing a frame can be: the layer opens (the manifest is fine) and fails when read, named.
  const zstdMagic = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(60)]);
  const zstdType = mk('zstd', okCfg, [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', blob: zstdMagic }]);
  const zstdErr = await drainError(await (await openImageSource(`oci:${zstdType}`)).image.layers[0]!.open());
  assert.ok(zstdErr instanceof StrataError && /zstd stream is corrupt/.test(zstdErr.message) && /layer 0/.test(zstdErr.message), String(zstdErr));
  // A zstd blob labelled as plain tar is still a lie.
  const zstdLying = mk('zstd-lying', okCfg, [{ mediaType: MT_TAR, blob: zstdMagic }]);
  await rejectsNaming(openImageSource(`oci:${zstdLying}`), 'layer 0', 'zstd');

  const lying = mk('lying', okCfg, [{ mediaType: MT_TAR, blob: gzip(l1) }]);
  await rejectsNaming(openImageSource(`oci:${lying}`), 'layer 0', 'gzip');

  const count = mk('count', configJson([sha(l1), sha(l1)]), [{ mediaType: MT_TAR, blob: l1 }]);
  await rejectsNaming(openImageSource(`oci:${count}`), '1 layer', 'diff_ids');

  // The good one reads, so the failures above are about what was broken.
  const good = mk('good', okCfg, [{ mediaType: MT_TAR, blob: l1 }]);
  assert.deepEqual(await readAll(await (await openImageSource(`oci:${good}`)).image.layers[0]!.open()), l1);
  assert.deepEqual(readFileSync(join(good, 'blobs', 'sha256', hex(sha(okCfg)))), okCfg);
});
