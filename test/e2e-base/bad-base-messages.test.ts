/**
 * Issue 3: what the error for a bad base must say, beyond "it failed". These two gaps were found
 * while writing bad-bases.test.ts:
 * - a corrupt gzip base layer is reported by zlib's words alone ("incorrect data check"), naming
 *   neither the base image nor that the blob is corrupt or fails its digest;
 * - errors about manifest.json members print the archive's path twice ("F: F: manifest.json…").
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BusyboxStore } from '../support/busybox-store.js';
import { runStrata } from '../support/cli.js';
import { manifestDockerArchive, makeBaseLayers, ociLayoutBase, hexOf, type BaseLayer } from '../support/base-images.js';
import { lowercaseTempDir, setup } from './helpers.js';

describe('bad-base error messages', () => {
  let dir: string;
  let store: BusyboxStore;
  let layers: BaseLayer[];

  before(async () => {
    dir = lowercaseTempDir('strata-bm');
    store = await setup(dir);
    mkdirSync(join(dir, 'layers'));
    layers = await makeBaseLayers(join(dir, 'layers'));
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  async function buildFrom(from: string): Promise<string> {
    const cwd = join(dir, `cwd-${Math.random().toString(36).slice(2)}`);
    mkdirSync(cwd);
    const r = await runStrata(['build', store.closureFile, '--store-root', store.storeRoot, '--from', from, '-o', join(cwd, 'out.tar'),
      '--entrypoint', store.entrypoint], { cwd });
    assert.equal(r.code, 1, `expected a user error:\n${r.stderr}`);
    assert.deepEqual(readdirSync(cwd), []);
    return r.stderr;
  }

  test('a corrupt gzip layer in an OCI base: the message names the base, the layer and the corruption', async () => {
    const base = ociLayoutBase(join(dir, 'b1'), layers);
    const layer = base.layers[0]!;
    const blob = join(base.dir, 'blobs', 'sha256', hexOf(layer.digest));
    const b = readFileSync(blob);
    b[Math.floor(b.length / 2)] ^= 0xff;
    writeFileSync(blob, b);
    const stderr = await buildFrom(`oci:${base.dir}:${base.ref}`);
    assert.ok(stderr.includes(base.dir), `should name the base ${base.dir}: ${stderr}`);
    assert.ok(stderr.includes(layer.digest), `should name the layer ${layer.digest}: ${stderr}`);
    assert.match(stderr, /corrupt|digest mismatch|does not match/i, 'should say the blob is corrupt or fails its digest');
  });

  test('a manifest.json naming a missing member: the archive path is printed once', async () => {
    const { file } = manifestDockerArchive(join(dir, 'b2'), layers, {
      mutate: (stage) => {
        const m = JSON.parse(readFileSync(join(stage, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
        m[0]!.Layers[1] = 'missing-layer.tar';
        writeFileSync(join(stage, 'manifest.json'), JSON.stringify(m));
      },
    });
    const stderr = await buildFrom(file);
    assert.ok(stderr.includes('missing-layer.tar'), stderr);
    assert.equal(stderr.split(file).length - 1, 1, `the base path should appear once: ${stderr}`);
  });
});
