/**
 * Issue 3: builds on a base are reproducible, and a strata image is itself a good base — across
 * docker-archive ↔ OCI — with the lower image's layers carried up unchanged and its store paths
 * not added twice. podman runs the stacked images; layer contents are listed with GNU tar.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BusyboxStore } from '../support/busybox-store.js';
import { treeDigests, sha256File } from '../support/archive.js';
import {
  BASE_RELEASE, hexOf,
  type LegacyArchive, type ManifestArchive, type OciBase,
} from '../support/base-images.js';
import { podman, podmanEnv } from '../support/tools.js';
import {
  bothEntrypoint, buildOn, handMadeBases, checkLegacyChain, lowercaseTempDir, ociRef, readDockerArchive, setup, skopeoRaw,
  storePathsInLayerBytes, subClosure, tarMemberBytes,
} from './helpers.js';

describe('reproducible builds on a base, and strata images as bases', () => {
  let dir: string;
  let store: BusyboxStore;
  let env: NodeJS.ProcessEnv;
  let legacy: LegacyArchive;
  let newStyle: ManifestArchive;
  let oci: OciBase;
  let busyboxOnly: string;

  before(async () => {
    dir = lowercaseTempDir('strata-bs');
    store = await setup(dir);
    env = podmanEnv(join(dir, 'podman'));
    ({ legacy, newStyle, oci } = await handMadeBases(dir));
    busyboxOnly = subClosure(store, [store.paths.busybox], join(dir, 'closure-busybox.json'));
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  const work = () => join(dir, 'work');

  test('the same closure on the same base gives identical bytes, in every output format', async () => {
    // The second build reads a copy of the base from another directory: where the base lives
    // (and the working directory, which buildOn makes fresh) must not reach the output.
    const bases = join(dir, 'bases');
    const copy = join(dir, 'bases-copy-elsewhere');
    cpSync(bases, copy, { recursive: true, verbatimSymlinks: true });
    const froms = [legacy.file, `docker-archive:${newStyle.file}`, `oci:${oci.dir}:${oci.ref}`];
    for (const from of froms) {
      for (const format of ['docker-archive', 'oci', 'oci-archive'] as const) {
        const build = (f: string) => buildOn(work(), {
          closure: store.closureFile, storeRoot: store.storeRoot, from: f, format, extra: ['--entrypoint', bothEntrypoint(store)],
        });
        const a = (await build(from)).out;
        const b = (await build(from.replace(bases, copy))).out;
        if (format === 'oci') assert.deepEqual(treeDigests(b), treeDigests(a), `OCI layouts built twice on ${from} differ`);
        else assert.equal(sha256File(b), sha256File(a), `${format} built twice on ${from} differs`);
      }
    }
  });

  /**
   * Layer digests of an image as skopeo sees it, and the store paths GNU tar finds in each layer
   * blob (read from the output's own files).
   */
  async function layersOf(out: string, format: 'docker-archive' | 'oci'): Promise<{ digests: string[]; paths: string[][]; ref: string }> {
    if (format === 'docker-archive') {
      const view = readDockerArchive(out);
      const paths = view.manifest.Layers.map((l) => {
        const bytes = tarMemberBytes(out, l, view.listing);
        return storePathsInLayerBytes(bytes, bytes[0] === 0x1f && bytes[1] === 0x8b);
      });
      return { digests: view.layerDigests, paths, ref: `docker-archive:${out}` };
    }
    const ref = `oci:${out}:${ociRef(out)}`;
    const raw = await skopeoRaw(ref);
    const paths = raw.layers.map((l) => storePathsInLayerBytes(readFileSync(join(out, 'blobs', 'sha256', hexOf(l.digest))), l.mediaType.endsWith('+gzip')));
    return { digests: raw.layers.map((l) => l.digest), paths, ref };
  }

  for (const [lowerFormat, upperFormat, baseName] of [['docker-archive', 'oci', 'manifest.json archive'], ['oci', 'docker-archive', 'OCI layout']] as const) {
    test(`hand-made ${baseName} → strata ${lowerFormat} (busybox) → strata ${upperFormat} (app): podman runs the stack`, async () => {
      const base = baseName === 'OCI layout' ? `oci:${oci.dir}:${oci.ref}` : newStyle.file;
      const baseDigests = baseName === 'OCI layout' ? oci.layers.map((l) => l.digest) : newStyle.diffIds;

      const lower = (await buildOn(work(), {
        closure: busyboxOnly, storeRoot: store.storeRoot, from: base, format: lowerFormat, extra: ['--entrypoint', '/bin/sh'],
      })).out;
      const lowerLayers = await layersOf(lower, lowerFormat);
      assert.deepEqual(lowerLayers.digests.slice(0, baseDigests.length), baseDigests, 'the lower image starts with the base layers');

      const lowerRef = lowerFormat === 'oci' ? `oci:${lower}:${ociRef(lower)}` : lower; // a bare path: detected
      const upper = (await buildOn(work(), {
        closure: store.closureFile, storeRoot: store.storeRoot, from: lowerRef, format: upperFormat, extra: ['--entrypoint', bothEntrypoint(store)],
      })).out;
      const upperLayers = await layersOf(upper, upperFormat);

      // The lower image's layers, base included, come through unchanged and in order.
      assert.deepEqual(upperLayers.digests.slice(0, lowerLayers.digests.length), lowerLayers.digests, 'lower layers carried up bit for bit');
      assert.ok(upperLayers.digests.length > lowerLayers.digests.length, 'the upper image adds layers');
      // Every store path of the closure is in exactly one layer: busybox only in the lower image's.
      const all = upperLayers.paths.flat();
      assert.deepEqual([...all].sort(), Object.values(store.paths).sort(), 'each store path once across the stack');
      const lowerPaths = lowerLayers.paths.flat();
      assert.deepEqual(lowerPaths, [store.paths.busybox], 'the lower image holds busybox');

      const r = await podman(['run', '--rm', upperLayers.ref], env);
      assert.equal(r.stdout, BASE_RELEASE + store.expectedOutput, `podman run ${upperLayers.ref}`);
      if (upperFormat === 'docker-archive') checkLegacyChain(upper);
      if (lowerFormat === 'docker-archive') checkLegacyChain(lower);
    });
  }
});
