/**
 * Issue 3, end to end: strata builds on bases made by hand from the published formats (an
 * old-style parent-chain archive, a manifest.json-only archive, an OCI layout with a gzipped
 * layer) and on an oci-archive written by `skopeo copy`; podman runs the results, and both the base's files and our store paths are visible in
 * the container. The base layers must come through bit for bit; what "the base's layers" are is
 * read from the base's own files and from skopeo, never from strata.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BusyboxStore } from '../support/busybox-store.js';
import {
  BASE_KEEP, BASE_RELEASE, hexOf,
  type BaseLayer, type LegacyArchive, type ManifestArchive, type OciBase,
} from '../support/base-images.js';
import { podman, podmanEnv, skopeo } from '../support/tools.js';
import {
  bothEntrypoint, buildOn, handMadeBases, checkLegacyChain, lowercaseTempDir, ociRef, readDockerArchive, setup, skopeoConfig, skopeoRaw,
  sha, tarListing, tarMemberBytes,
} from './helpers.js';

describe('strata builds on hand-made bases and podman runs the results', () => {
  let dir: string;
  let store: BusyboxStore;
  let env: NodeJS.ProcessEnv;
  let layers: BaseLayer[];
  let legacy: LegacyArchive;
  let newStyle: ManifestArchive;
  let oci: OciBase;
  let expected: string;

  before(async () => {
    dir = lowercaseTempDir('strata-br');
    store = await setup(dir);
    env = podmanEnv(join(dir, 'podman'));
    ({ layers, legacy, newStyle, oci } = await handMadeBases(dir));
    expected = BASE_RELEASE + store.expectedOutput;
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  const build = (from: string, format: 'docker-archive' | 'oci' = 'docker-archive', extra: readonly string[] = []) =>
    buildOn(join(dir, 'work'), { closure: store.closureFile, storeRoot: store.storeRoot, from, format, extra: ['--entrypoint', bothEntrypoint(store), ...extra] });

  test('(a) old-style archive (parent chain, no manifest.json): podman runs the strata image built on it', async () => {
    // The base itself is unreadable for podman/skopeo (no manifest.json): prove that first, so the
    // test really depends on strata reading the parent chain.
    const refused = await podman(['load', '-i', legacy.file], env, { check: false });
    assert.notEqual(refused.code, 0, 'podman unexpectedly loads an archive without manifest.json; the premise of this test changed');

    for (const from of [`docker-archive:${legacy.file}`, `docker-archive:${legacy.file}:${legacy.repoTag}`, legacy.file]) {
      const { out } = await build(from);
      const r = await podman(['run', '--rm', `docker-archive:${out}`], env);
      assert.equal(r.stdout, expected, `podman run of the image built --from ${from}`);

      // Bit for bit: the output's bottom layers are the bytes of the base's <id>/layer.tar files.
      const view = readDockerArchive(out);
      const baseLayerDigests = legacy.ids.map((id) => sha(tarMemberBytes(legacy.file, `${id}/layer.tar`)));
      assert.deepEqual(baseLayerDigests, layers.map((l) => l.diffId), 'fixture: the base archive holds the layer tars');
      assert.deepEqual(view.layerDigests.slice(0, 2), baseLayerDigests, 'base layers copied byte for byte, in chain order');
      assert.deepEqual(view.config.rootfs.diff_ids.slice(0, 2), baseLayerDigests);
      assert.ok(view.layerDigests.length > 2, 'our layers come on top');
      const raw = await skopeoRaw(`docker-archive:${out}`);
      assert.deepEqual(raw.layers.slice(0, 2).map((l) => l.digest), baseLayerDigests, 'skopeo sees the base layers first');
      checkLegacyChain(out);
    }
  });

  test('(b) manifest.json-only archive: podman runs it; base layers bit for bit in docker-archive and OCI outputs', async () => {
    // skopeo reads the hand-made base with its own parser: what it calls the base's layers is the truth.
    const baseRaw = await skopeoRaw(`docker-archive:${newStyle.file}`);
    const baseCfg = await skopeoConfig(`docker-archive:${newStyle.file}`);
    assert.deepEqual(baseCfg.rootfs.diff_ids, newStyle.diffIds, 'fixture: skopeo reads the hand-made base');
    const baseFiles = newStyle.layerNames.map((n) => sha(tarMemberBytes(newStyle.file, n)));

    const da = (await build(newStyle.file)).out;
    assert.equal((await podman(['run', '--rm', `docker-archive:${da}`], env)).stdout, expected);
    const view = readDockerArchive(da);
    assert.deepEqual(view.layerDigests.slice(0, 2), baseFiles, 'docker-archive output: base layer files byte for byte');
    const daRaw = await skopeoRaw(`docker-archive:${da}`);
    assert.deepEqual(daRaw.layers.slice(0, 2), baseRaw.layers, 'skopeo: base layer descriptors unchanged');
    checkLegacyChain(da);

    const layout = (await build(`docker-archive:${newStyle.file}:${newStyle.repoTag}`, 'oci')).out;
    const ref = `oci:${layout}:${ociRef(layout)}`;
    assert.equal((await podman(['run', '--rm', ref], env)).stdout, expected);
    const ociRaw = await skopeoRaw(ref);
    assert.deepEqual(ociRaw.layers.slice(0, 2).map((l) => [l.digest, l.size]), baseRaw.layers.map((l) => [l.digest, l.size]),
      'OCI output: base blobs keep their digests and sizes');
    for (const l of ociRaw.layers.slice(0, 2)) {
      assert.equal(sha(readFileSync(join(layout, 'blobs', 'sha256', hexOf(l.digest)))), l.digest, `blob ${l.digest} holds its bytes`);
    }
    assert.deepEqual((await skopeoConfig(ref)).rootfs.diff_ids.slice(0, 2), newStyle.diffIds);
  });

  test('(c) OCI layout with a gzipped base layer: podman runs OCI and docker-archive outputs; blobs bit for bit', async () => {
    const baseRef = `oci:${oci.dir}:${oci.ref}`;
    const baseRaw = await skopeoRaw(baseRef);
    assert.deepEqual(baseRaw.layers, oci.layers, 'fixture: skopeo reads the hand-made layout');
    assert.match(baseRaw.layers[0]!.mediaType, /\+gzip$/, 'fixture: the bottom layer is gzipped');

    const layout = (await build(baseRef, 'oci')).out;
    const ref = `oci:${layout}:${ociRef(layout)}`;
    assert.equal((await podman(['run', '--rm', ref], env)).stdout, expected);
    const raw = await skopeoRaw(ref);
    assert.deepEqual(raw.layers.slice(0, 2), baseRaw.layers, 'base descriptors (digest, size, media type) unchanged');
    for (const l of oci.layers) {
      assert.deepEqual(readFileSync(join(layout, 'blobs', 'sha256', hexOf(l.digest))), readFileSync(join(oci.dir, 'blobs', 'sha256', hexOf(l.digest))),
        `blob ${l.digest} copied byte for byte`);
    }
    assert.deepEqual((await skopeoConfig(ref)).rootfs.diff_ids.slice(0, 2), oci.diffIds, 'diff_ids are the uncompressed digests');

    // A docker-archive carries the gzipped blob as it is (loaders decompress), under its diff ID.
    const da = (await build(oci.dir)).out;
    assert.equal((await podman(['run', '--rm', `docker-archive:${da}`], env)).stdout, expected);
    const view = readDockerArchive(da);
    assert.deepEqual(view.layerDigests.slice(0, 2), oci.layers.map((l) => l.digest), 'docker-archive output: the base blobs byte for byte');
    assert.deepEqual(view.config.rootfs.diff_ids.slice(0, 2), oci.diffIds);
    checkLegacyChain(da);
  });

  test('(d) an oci-archive written by skopeo copy (every layer gzipped by containers/image): podman runs the image built on it', async () => {
    const archive = join(dir, 'bases', 'skopeo-oci.tar');
    await skopeo(['copy', `docker-archive:${newStyle.file}`, `oci-archive:${archive}:base`]);
    const baseRaw = await skopeoRaw(`oci-archive:${archive}:base`);
    assert.ok(baseRaw.layers.every((l) => l.mediaType.endsWith('+gzip')), 'fixture: skopeo gzipped the layers');

    const da = (await build(`oci-archive:${archive}:base`)).out;
    assert.equal((await podman(['run', '--rm', `docker-archive:${da}`], env)).stdout, expected);
    const view = readDockerArchive(da);
    assert.deepEqual(view.layerDigests.slice(0, 2), baseRaw.layers.map((l) => l.digest), 'skopeo\'s gzip blobs copied byte for byte');
    assert.deepEqual(view.config.rootfs.diff_ids.slice(0, 2), newStyle.diffIds, 'diff_ids of the uncompressed tars');
    checkLegacyChain(da);

    const layout = (await build(archive, 'oci')).out; // a bare path: detected as an oci-archive
    const ref = `oci:${layout}:${ociRef(layout)}`;
    assert.equal((await podman(['run', '--rm', ref], env)).stdout, expected);
    assert.deepEqual((await skopeoRaw(ref)).layers.slice(0, 2), baseRaw.layers, 'base descriptors unchanged');
  });

  test('--remove deletes a base file and --add DIR with --remove DIR replaces a base directory (opaque whiteout)', async () => {
    const conf = join(dir, 'new-conf');
    mkdirSync(conf);
    writeFileSync(join(conf, 'new.txt'), 'new configuration\n');
    for (const [from, format] of [[newStyle.file, 'docker-archive'], [`oci:${oci.dir}:${oci.ref}`, 'oci']] as const) {
      const { out } = await build(from, format, ['--remove', '/etc/base-release', '--add', `${conf}:/opt/conf`, '--remove', '/opt/conf']);
      const img = format === 'oci' ? `oci:${out}:${ociRef(out)}` : `docker-archive:${out}`;
      const script = [
        'test ! -e /etc/base-release && echo "base-release: gone"',
        'cat /etc/keep-me',
        'ls -A /opt/conf',
        'cat /opt/conf/new.txt',
        `test -x ${store.entrypoint} && echo "store path: present"`,
      ].join('; ');
      const r = await podman(['run', '--rm', '--entrypoint', '/bin/sh', img, '-c', script], env);
      assert.equal(r.stdout, `base-release: gone\n${BASE_KEEP}new.txt\nnew configuration\nstore path: present\n`, `in the container of ${img}`);

      if (format === 'docker-archive') {
        // The whiteouts themselves, read with GNU tar from the top layer.
        const view = readDockerArchive(out);
        const top = tarMemberBytes(out, view.manifest.Layers[view.manifest.Layers.length - 1]!);
        const topFile = join(dir, 'top-layer.tar');
        writeFileSync(topFile, top);
        const names = tarListing(topFile).map((m) => m.name.replace(/^\//, ''));
        assert.ok(names.includes('etc/.wh.base-release'), `top layer lacks etc/.wh.base-release: ${names.join(', ')}`);
        assert.ok(names.includes('opt/conf/.wh..wh..opq'), `top layer lacks opt/conf/.wh..wh..opq: ${names.join(', ')}`);
        assert.ok(names.indexOf('opt/conf/.wh..wh..opq') < names.indexOf('opt/conf/new.txt'), 'the opaque marker precedes the new content');
        checkLegacyChain(out);
      }
    }
  });
});
