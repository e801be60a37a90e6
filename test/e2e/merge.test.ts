/**
 * Issue 18: `strata merge` writes several images into one docker-archive, as dockerTools.mergeImages
 * does: one `podman load` gives both tags, both run, and the layers they share are stored once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { podman, podmanEnv } from '../support/tools.js';
import { e2eFixture } from './e2e-support.js';

const fixture = e2eFixture('strata-merge');

async function strata(args: readonly string[]): Promise<string> {
  const r = await runStrata(args);
  assert.equal(r.code, 0, `strata ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}

test('two images merged: one load gives both tags, both run, shared layers once in the archive', async () => {
  const { dir, store } = fixture;
  const busybox = store.paths.busybox;
  await strata(['build', store.closureFile, '--store-root', store.storeRoot, '--entrypoint', store.entrypoint, '--tag', 'merged/app:1', '-o', join(dir, 'app.tar')]);
  await strata(['build', store.closureFile, '--store-root', store.storeRoot, '--entrypoint', `${busybox}/bin/busybox`, '--cmd', '["echo", "the other one"]', '-o', `oci:${join(dir, 'layout')}:other`]);
  const out = join(dir, 'both.tar');
  const summary = JSON.parse(await strata(['merge', join(dir, 'app.tar'), `oci:${join(dir, 'layout')}:other=merged/other:2`, '-o', out, '--json'])) as { images: { names: string[] }[]; layers: number };
  assert.deepEqual(summary.images.map((i) => i.names), [['docker.io/merged/app:1'], ['docker.io/merged/other:2']]);

  // Every layer blob once: as many distinct regular layer.tar files as distinct digests.
  const listing = execFileSync('tar', ['-tvf', out], { encoding: 'utf8' }).split('\n');
  const layerFiles = listing.filter((l) => l.startsWith('-') && / \S+\/layer\.tar$|\.tar$/.test(l) && !l.endsWith('both.tar'));
  const bodies = new Set(layerFiles.map((l) => {
    const name = l.split(/\s+/).at(-1)!;
    return createHash('sha256').update(execFileSync('tar', ['-xOf', out, name], { maxBuffer: 1 << 30 })).digest('hex');
  }));
  assert.equal(bodies.size, layerFiles.length, 'no layer body is stored twice');
  assert.equal(layerFiles.length, summary.layers);

  const env = podmanEnv(join(dir, 'podman'));
  await podman(['load', '-i', out], env);
  const names = (await podman(['images', '--format', '{{.Repository}}:{{.Tag}}'], env)).stdout;
  assert.match(names, /merged\/app:1/);
  assert.match(names, /merged\/other:2/);
  assert.equal((await podman(['run', '--rm', 'docker.io/merged/app:1'], env)).stdout, store.expectedOutput);
  assert.equal((await podman(['run', '--rm', 'docker.io/merged/other:2'], env)).stdout, 'the other one\n');
});

test('merging images that cannot be told apart by name is refused before anything is written', async () => {
  const { dir } = fixture;
  const a = join(dir, 'app.tar');
  const r = await runStrata(['merge', a, a, '-o', join(dir, 'twice.tar')]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /would name two images/);
  const unnamed = await runStrata(['merge', `oci:${join(dir, 'layout')}:other`, '-o', join(dir, 'unnamed.tar')]);
  assert.notEqual(unnamed.code, 0);
  assert.match(unnamed.stderr, /records no name.*=NAME:TAG/);
});
