import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openImageSource } from '../../src/transports/open-source.js';
import { storePathsInLayer } from '../../src/image/store-paths.js';
import { tempDir } from '../support/paths.js';
import { ensurePackages, skopeo } from '../support/tools.js';
import { configJson, hex, readAll, sha, storeLayer, writeTar } from './helpers.js';

/**
 * What a real tool writes, read back: skopeo copies a hand-made docker-archive to a new
 * docker-archive, an OCI layout (gzipping the layers) and an oci-archive. Whatever it rewrites,
 * the diff IDs of the layers must survive, and every layer must stream and verify.
 */
test('images written by skopeo copy read back with the same diff IDs', async (t) => {
  await ensurePackages(['skopeo']);
  const dir = tempDir(t);
  const l1 = await storeLayer('aaaa-base');
  const l2 = await storeLayer('bbbb-app');
  const diffIds = [sha(l1), sha(l2)];
  const cfg = configJson(diffIds);
  const hand = join(dir, 'hand.tar');
  await writeTar(hand, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['hand:1'], Layers: diffIds.map((d) => `${hex(d)}.tar`) }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: `${hex(diffIds[0]!)}.tar`, content: l1 },
    { name: `${hex(diffIds[1]!)}.tar`, content: l2 },
  ]);
  const outArchive = join(dir, 'skopeo.tar');
  const outLayout = join(dir, 'layout');
  const outOciArchive = join(dir, 'skopeo.oci.tar');
  await skopeo(['copy', '-q', `docker-archive:${hand}`, `docker-archive:${outArchive}:copied:2`]);
  await skopeo(['copy', '-q', `docker-archive:${hand}`, `oci:${outLayout}:copied`]);
  await skopeo(['copy', '-q', `docker-archive:${hand}`, `oci-archive:${outOciArchive}:copied`]);

  const refs = [`docker-archive:${outArchive}:copied:2`, outArchive, `oci:${outLayout}:copied`, outLayout, `oci-archive:${outOciArchive}:copied`];
  const gzipped = new Set<string>();
  for (const ref of refs) {
    const src = await openImageSource(ref);
    const img = src.image;
    assert.deepEqual(img.layers.map((l) => l.diffId), diffIds, ref);
    assert.deepEqual(img.config.rootfs.diff_ids, diffIds, ref);
    assert.equal(img.configDigest, sha(img.configBytes), ref);
    for (const l of img.layers) {
      const bytes = await readAll(await l.open()); // throws on any digest mismatch
      assert.equal(sha(bytes), l.digest, ref);
      if (l.compression === 'gzip') gzipped.add(ref);
    }
    assert.deepEqual(await storePathsInLayer(img.layers[1]!, '/nix/store'), ['/nix/store/bbbb-app'], ref);
    await src.close();
  }
  // skopeo's oci: output gzips layers, so the gzip path was really exercised.
  assert.ok(gzipped.has(`oci:${outLayout}:copied`), 'expected skopeo to gzip the OCI layers');
});
