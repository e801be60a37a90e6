/**
 * The final proof: images strata builds load into podman and run. The expected output comes from
 * the fixture's script, not from strata, so a wrong layer, a lost symlink, a dropped exec bit or a
 * mangled long name all make these tests fail.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { BusyboxStore } from '../support/busybox-store.js';
import { podman, podmanEnv } from '../support/tools.js';
import { TAG, buildImage, ociRefName, setupE2E } from './e2e-support.js';

describe('podman runs strata images', () => {
  let dir: string;
  let store: BusyboxStore;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    // Lowercase on purpose: podman 4.3 names an image pulled from `oci:DIR:1` after DIR's path,
    // and rejects it when the path has capitals (mkdtemp's random suffix has them).
    dir = join(tmpdir(), `strata-e2e-podman-${randomBytes(8).toString('hex')}`);
    mkdirSync(dir);
    store = await setupE2E(join(dir, 'fixture'));
    env = podmanEnv(join(dir, 'podman'));
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  test('docker-archive (the default format): podman load, then run by tag', async () => {
    const out = join(dir, 'image.tar');
    await buildImage(store, out);
    const loaded = await podman(['load', '-i', out], env);
    assert.match(loaded.stdout + loaded.stderr, /strata-e2e:1/, 'podman load should name the loaded image by its tag');
    const r = await podman(['run', '--rm', TAG], env);
    assert.equal(r.stdout, store.expectedOutput);
  });

  test('OCI layout directory: podman runs oci:DIR:NAME directly', async () => {
    const out = join(dir, 'layout');
    await buildImage(store, out, ['--format', 'oci']);
    const r = await podman(['run', '--rm', `oci:${out}:${ociRefName(out)}`], env);
    assert.equal(r.stdout, store.expectedOutput);
  });

  test('OCI archive: podman runs oci-archive:FILE directly', async () => {
    const out = join(dir, 'image-oci.tar');
    await buildImage(store, out, ['--format', 'oci-archive']);
    const r = await podman(['run', '--rm', `oci-archive:${out}`], env);
    assert.equal(r.stdout, store.expectedOutput);
  });

  test('an image squeezed into 3 layers still runs', async () => {
    const out = join(dir, 'image-3.tar');
    await buildImage(store, out, ['--max-layers', '3']);
    const r = await podman(['run', '--rm', `docker-archive:${out}`], env);
    assert.equal(r.stdout, store.expectedOutput);
  });
});
