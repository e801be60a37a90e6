/**
 * Layer descriptor annotations (a package layer's store path) are part of the model: read from a
 * layout's manifest, carried into the manifests of images made from those layers, and never part
 * of the blob.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { tempDir } from '../support/paths.js';
import { openImageSource } from '../../src/transports/open-source.js';
import { assembleImage } from '../../src/image/assemble.js';
import { ociManifest } from '../../src/image/manifest.js';

test('layer annotations are read from a layout and written into new manifests; the blob is unchanged', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'f'), 'x\n');
  const r = await runStrata(['build', '--add', `${join(dir, 'f')}:/f`, '-o', `oci:${join(dir, 'l')}:img`, '--no-cache', '--arch', 'amd64']);
  assert.equal(r.code, 0, r.stderr);
  // Annotate the layer descriptor by hand, as a package publisher would.
  const layout = join(dir, 'l');
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blob = (d: string) => join(layout, 'blobs', 'sha256', d.slice(7));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  manifest.layers[0].annotations = { 'dev.strata.nix.store-path': '/nix/store/aaaa-x' };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  writeFileSync(blob(digest), bytes);
  index.manifests[0] = { ...index.manifests[0], digest, size: bytes.length };
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index));

  const source = await openImageSource(`oci:${layout}:img`);
  try {
    const [layer] = source.image.layers;
    assert.deepEqual(layer!.annotations, { 'dev.strata.nix.store-path': '/nix/store/aaaa-x' });
    const made = assembleImage(undefined, [{ layer: layer!, createdBy: 'test' }], { created: '1970-01-01T00:00:01Z', architecture: 'amd64', os: 'linux' });
    const written = JSON.parse(ociManifest(made).bytes.toString('utf8'));
    assert.deepEqual(written.layers[0], manifest.layers[0], 'the descriptor, annotations included, is carried as it was');
  } finally {
    await source.close();
  }
});
