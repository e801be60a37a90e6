/**
 * zstd layers (`--compress zstd`) in the tools users run: podman runs them from an OCI layout and
 * from a docker-archive, skopeo reads and copies them with containers/image's own zstd decoder
 * (klauspost/compress), and GNU tar with zstd(1) unpacks them to exactly the store's files (Debian
 * 12's umoci 0.4.7 has no zstd). Expectations come
 * from the fixture store and the tools; strata's own reader is only compared with them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { lstatSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { BusyboxStore } from '../support/busybox-store.js';
import { ensurePackages, podman, podmanEnv, skopeo, umoci } from '../support/tools.js';
import { assertLayoutBlobsIntact, buildImage, ociRefName, setupE2E, strataInspect } from './e2e-support.js';
import { runStrata } from '../support/cli.js';

const ZSTD_TYPE = 'application/vnd.oci.image.layer.v1.tar+zstd';

/** The layers' media types in the layout's one manifest, read from the files. */
function layerTypes(layout: string): string[] {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { mediaType: string }[] };
  return manifest.layers.map((l) => l.mediaType);
}

describe('zstd layers in podman, skopeo and umoci', () => {
  let dir: string;
  let store: BusyboxStore;
  let env: NodeJS.ProcessEnv;
  let layout: string;

  before(async () => {
    // Lowercase: podman 4.3 names an image pulled from oci:DIR after DIR's path (see podman.test.ts).
    dir = join(tmpdir(), `strata-e2e-zstd-${randomBytes(8).toString('hex')}`);
    mkdirSync(dir);
    store = await setupE2E(join(dir, 'fixture'));
    env = podmanEnv(join(dir, 'podman'));
    layout = join(dir, 'layout');
    await buildImage(store, layout, ['--format', 'oci', '--compress', 'zstd']);
    assertLayoutBlobsIntact(layout);
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  test('every layer is zstd, each blob starts with the zstd magic', () => {
    const types = layerTypes(layout);
    assert.ok(types.length >= 2);
    assert.deepEqual(new Set(types), new Set([ZSTD_TYPE]));
    const blobs = readdirSync(join(layout, 'blobs', 'sha256')).map((f) => readFileSync(join(layout, 'blobs', 'sha256', f)));
    assert.equal(blobs.filter((b) => b.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).length, types.length);
  });

  test('podman runs the zstd OCI layout', async () => {
    const r = await podman(['run', '--rm', `oci:${layout}:${ociRefName(layout)}`], env);
    assert.equal(r.stdout, store.expectedOutput);
  });

  test('podman loads and runs a docker-archive whose layers are zstd', async () => {
    const out = join(dir, 'image-zstd.tar');
    await buildImage(store, out, ['--compress', 'zstd']);
    const r = await podman(['run', '--rm', `docker-archive:${out}`], env);
    assert.equal(r.stdout, store.expectedOutput);
  });

  test('skopeo inspect agrees with strata; skopeo recompressing to gzip reads back the DiffIDs', async () => {
    const ref = `oci:${layout}:${ociRefName(layout)}`;
    const inspect = JSON.parse((await skopeo(['inspect', ref])).stdout) as { Layers: string[] };
    const mine = await strataInspect(layout);
    assert.deepEqual(inspect.Layers, mine.layers.map((l) => l.digest));
    // Recompressing makes containers/image decode every zstd layer (klauspost/compress); the gzip
    // it writes must hold exactly the tars the config's DiffIDs name (checked with gunzip here).
    const copy = join(dir, 'copied');
    await skopeo(['copy', '--dest-compress-format', 'gzip', ref, `oci:${copy}:x`]);
    const index = JSON.parse(readFileSync(join(copy, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blob = (d: string): Buffer => readFileSync(join(copy, 'blobs', 'sha256', d.slice(7)));
    const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as { config: { digest: string }; layers: { digest: string; mediaType: string }[] };
    const config = JSON.parse(blob(manifest.config.digest).toString()) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(config.rootfs.diff_ids, mine.layers.map((l) => l.diffId));
    const tars = manifest.layers.map((l) => `sha256:${createHash('sha256').update(gunzipSync(blob(l.digest))).digest('hex')}`);
    assert.deepEqual(tars, config.rootfs.diff_ids);
  });

  test('GNU tar with zstd(1) unpacks the layers to exactly the store\'s files; umoci 0.4.7 cannot read zstd', async () => {
    // Debian 12's umoci predates zstd support: it refuses the media type, naming it (checked, so
    // that a umoci that learns zstd shows up here and takes over this test).
    const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];
    await assert.rejects(umoci(['unpack', ...rootless, '--image', `${layout}:${ociRefName(layout)}`, join(dir, 'bundle')]), /not correct mediatype: application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd/);
    await ensurePackages(['zstd', 'tar']);
    const rootfs = join(dir, 'rootfs');
    mkdirSync(rootfs);
    for (const l of (await strataInspect(layout)).layers) {
      execFileSync('tar', ['--zstd', '-xf', join(layout, 'blobs', 'sha256', l.digest.slice(7)), '-C', rootfs]);
    }
    assert.deepEqual(readdirSync(join(rootfs, 'nix', 'store')).sort(), Object.values(store.paths).map((p) => p.slice('/nix/store/'.length)).sort());
    for (const p of Object.values(store.paths)) {
      for (const f of readdirSync(join(store.storeRoot, p), { recursive: true }) as string[]) {
        const src = lstatSync(join(store.storeRoot, p, f));
        const got = lstatSync(join(rootfs, p, f));
        assert.equal(got.mode, src.mode, `${p}/${f}: mode`);
        if (src.isFile()) assert.ok(readFileSync(join(rootfs, p, f)).equals(readFileSync(join(store.storeRoot, p, f))), `${p}/${f}: content`);
      }
    }
  });
  test('zstd layers written by containers/image (skopeo copy --dest-compress-format zstd) are read back: exported to the store\'s files, and built on with --from', async () => {
    // A gzip image of the fixture, recompressed by skopeo with klauspost/compress's encoder.
    const gz = join(dir, 'gz-layout');
    await buildImage(store, gz, ['--format', 'oci', '--compress', 'gzip']);
    const foreign = join(dir, 'foreign-zstd');
    await skopeo(['copy', '--dest-compress-format', 'zstd', `oci:${gz}:${ociRefName(gz)}`, `oci:${foreign}:x`]);
    assert.deepEqual(new Set(layerTypes(foreign)), new Set([ZSTD_TYPE]), 'skopeo wrote zstd layers');
    // export decodes every layer (strata's zstd reader), verifying each against its DiffID.
    const rootfsTar = join(dir, 'foreign-rootfs.tar');
    const ex = await runStrata(['export', `oci:${foreign}:x`, '-o', rootfsTar]);
    assert.equal(ex.code, 0, ex.stderr);
    const rootfs = join(dir, 'foreign-rootfs');
    mkdirSync(rootfs);
    execFileSync('tar', ['-xf', rootfsTar, '-C', rootfs]);
    for (const p of Object.values(store.paths)) {
      for (const f of readdirSync(join(store.storeRoot, p), { recursive: true }) as string[]) {
        const src = lstatSync(join(store.storeRoot, p, f));
        if (src.isFile()) assert.ok(readFileSync(join(rootfs, p, f)).equals(readFileSync(join(store.storeRoot, p, f))), `${p}/${f}: content`);
      }
    }
    // And an image built on top of it (its zstd layers carried as they are) runs.
    const onTop = join(dir, 'on-top');
    await buildImage(store, onTop, ['--format', 'oci', '--from', `oci:${foreign}:x`]);
    const r = await podman(['run', '--rm', `oci:${onTop}:${ociRefName(onTop)}`], env);
    assert.equal(r.stdout, store.expectedOutput);
  });
});
