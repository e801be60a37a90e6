/**
 * skopeo and umoci read strata's outputs with their own parsers (containers/image, umoci's OCI
 * code). Expectations come from the fixture store on disk and from the tools, never from strata's
 * writer; `strata inspect` is only compared with what the tools report.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { BusyboxStore } from '../support/busybox-store.js';
import { skopeo, umoci } from '../support/tools.js';
import { assertLayoutBlobsIntact, buildImage, ociRefName, setupE2E, strataInspect, type InspectedLayer } from './e2e-support.js';

interface SkopeoInspect { Layers: string[]; Architecture?: string; Os?: string }
interface ImageConfig { rootfs: { type: string; diff_ids: string[] }; config?: { Entrypoint?: string[] } }

async function skopeoInspect(ref: string): Promise<{ inspect: SkopeoInspect; config: ImageConfig }> {
  const inspect = JSON.parse((await skopeo(['inspect', ref])).stdout) as SkopeoInspect;
  const config = JSON.parse((await skopeo(['inspect', '--config', ref])).stdout) as ImageConfig;
  assert.ok(Array.isArray(inspect.Layers), `skopeo inspect ${ref}: no Layers`);
  return { inspect, config };
}

/** Every store path of the closure appears in exactly one layer. */
function assertStorePathsCovered(layers: InspectedLayer[], store: BusyboxStore): void {
  const all = layers.flatMap((l) => l.storePaths);
  assert.deepEqual([...all].sort(), Object.values(store.paths).sort(), 'each store path in exactly one layer');
}

/** What a tree looks like to a container: type, mode bits, symlink target, content hash; by relative path. */
function describeTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (rel: string) => {
    const p = join(root, rel);
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    if (st.isSymbolicLink()) out.set(rel, `symlink -> ${readlinkSync(p)}`);
    else if (st.isFile()) out.set(rel, `file ${mode} sha256:${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    else if (st.isDirectory()) {
      out.set(rel, `dir ${mode}`);
      for (const n of readdirSync(p).sort()) visit(join(rel, n));
    } else out.set(rel, `other ${st.mode.toString(8)}`);
  };
  visit('');
  return out;
}

describe('skopeo and umoci read strata images', () => {
  let dir: string;
  let store: BusyboxStore;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-e2e-oci-'));
    store = await setupE2E(join(dir, 'fixture'));
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  test('skopeo inspect docker-archive: layers and diff_ids agree with strata inspect', async () => {
    const out = join(dir, 'image.tar');
    await buildImage(store, out);
    const { inspect, config } = await skopeoInspect(`docker-archive:${out}`);
    const mine = await strataInspect(out);
    assert.equal(inspect.Layers.length, mine.layers.length, 'layer count');
    assert.ok(inspect.Layers.length >= 2, 'store layers plus the customisation layer');
    // containers/image names docker-archive layers by DiffID, whatever their compression.
    assert.deepEqual(inspect.Layers, mine.layers.map((l) => l.diffId));
    assert.deepEqual(config.rootfs.diff_ids, mine.layers.map((l) => l.diffId));
    assert.deepEqual(config.config?.Entrypoint, [store.entrypoint]);
    assert.equal(inspect.Os, 'linux');
    assertStorePathsCovered(mine.layers, store);
  });

  test('skopeo inspect oci:DIR:NAME agrees with strata inspect', async () => {
    const out = join(dir, 'layout');
    await buildImage(store, out, ['--format', 'oci']);
    assertLayoutBlobsIntact(out);
    const { inspect, config } = await skopeoInspect(`oci:${out}:${ociRefName(out)}`);
    const mine = await strataInspect(out);
    assert.equal(inspect.Layers.length, mine.layers.length, 'layer count');
    assert.deepEqual(inspect.Layers, mine.layers.map((l) => l.digest));
    assert.deepEqual(config.rootfs.diff_ids, mine.layers.map((l) => l.diffId));
    assertStorePathsCovered(mine.layers, store);
  });

  test('skopeo inspect oci-archive:FILE reads --format oci-archive', async () => {
    const out = join(dir, 'image-oci.tar');
    await buildImage(store, out, ['--format', 'oci-archive']);
    const { inspect, config } = await skopeoInspect(`oci-archive:${out}`);
    const mine = await strataInspect(out);
    assert.equal(inspect.Layers.length, mine.layers.length, 'layer count');
    assert.deepEqual(config.rootfs.diff_ids, mine.layers.map((l) => l.diffId));
  });

  test('umoci unpack: files, symlinks and modes are exactly those of the store', async () => {
    const out = join(dir, 'layout-umoci');
    await buildImage(store, out, ['--format', 'oci']);
    assertLayoutBlobsIntact(out);
    const bundle = join(dir, 'bundle');
    const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];
    await umoci(['unpack', ...rootless, '--image', `${out}:${ociRefName(out)}`, bundle]);
    const rootfs = join(bundle, 'rootfs');
    for (const p of ['nix', 'nix/store']) assert.ok(lstatSync(join(rootfs, p)).isDirectory(), `/${p} is a directory`);

    for (const p of Object.values(store.paths)) {
      const expected = describeTree(join(store.storeRoot, p));
      const actual = describeTree(join(rootfs, p));
      assert.deepEqual(actual, expected, `contents of ${p}`);
    }
    // Spelled out, independent of the fixture's own chmod: the store is read-only.
    const bb = describeTree(join(rootfs, store.paths.busybox));
    assert.equal(bb.get('bin/sh'), 'symlink -> busybox');
    assert.match(bb.get('bin/busybox')!, /^file 0555 /);
    assert.equal(bb.get('bin'), 'dir 0555');
    const data = describeTree(join(rootfs, store.paths.data));
    assert.match(data.get('share/greeting.txt')!, /^file 0444 /);
    assert.match(data.get(store.longFile)!, /^file 0444 /, 'file with a name longer than 100 bytes');
    assert.match(data.get('share/scripts/shout')!, /^file 0555 /);
    // The store holds the closure and nothing else.
    assert.deepEqual(readdirSync(join(rootfs, 'nix', 'store')).sort(), Object.values(store.paths).map((p) => p.slice('/nix/store/'.length)).sort());
  });

  test('--max-layers 3 gives exactly 3 layers (2 store layers + customisation) with every file present', async () => {
    const out = join(dir, 'layout-3');
    await buildImage(store, out, ['--format', 'oci', '--max-layers', '3']);
    assertLayoutBlobsIntact(out);
    const ref = `${out}:${ociRefName(out)}`;
    const { inspect, config } = await skopeoInspect(`oci:${ref}`);
    assert.equal(inspect.Layers.length, 3);
    assert.equal(config.rootfs.diff_ids.length, 3);
    const mine = await strataInspect(out);
    assert.equal(mine.layers.length, 3);
    assert.equal(mine.layers.filter((l) => l.storePaths.length > 0).length, 2, 'two layers carry store paths');
    assertStorePathsCovered(mine.layers, store);

    const bundle = join(dir, 'bundle-3');
    const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];
    await umoci(['unpack', ...rootless, '--image', ref, bundle]);
    for (const p of Object.values(store.paths)) {
      assert.deepEqual(describeTree(join(bundle, 'rootfs', p)), describeTree(join(store.storeRoot, p)), `contents of ${p}`);
    }
  });
});
