import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openImageSource } from '../../src/transports/open-source.js';
import { StrataError } from '../../src/util/errors.js';
import { tempDir } from '../support/paths.js';
import { configJson, hex, sha, storeLayer, writeTar } from './helpers.js';

function naming(...needles: string[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof StrataError, String(e));
    for (const n of needles) assert.ok(e.message.includes(n), `${e.message} should name ${n}`);
    return true;
  };
}

/** A docker-archive at FILE holding one image (config CFG, one layer L1) listed with REPOTAGS. */
async function oneLayerArchive(file: string, cfg: Buffer, l1: Buffer, repoTags: string[] | null): Promise<void> {
  await writeTar(file, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: repoTags, Layers: ['l.tar'] }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: 'l.tar', content: l1 },
  ]);
}

test('openImageSource: unrecognisable inputs are errors naming the path', async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'nope.tar');
  await assert.rejects(openImageSource(missing), naming(missing, 'not found'));
  await assert.rejects(openImageSource(dir), naming(dir, 'oci-layout'));
  const other = join(dir, 'other.tar');
  await writeTar(other, [{ name: 'hello.txt', content: 'hi' }]);
  await assert.rejects(openImageSource(other), naming(other, 'manifest.json'));
  await assert.rejects(openImageSource(`docker-archive:${other}`), naming(other));
  mkdirSync(join(dir, 'empty'));
  await assert.rejects(openImageSource(`oci:${join(dir, 'empty')}`), naming(join(dir, 'empty'), 'oci-layout'));
});

test('openImageSource: a file name containing a colon still opens', async (t) => {
  const dir = tempDir(t);
  const l1 = await storeLayer('aaaa-base');
  const cfg = configJson([sha(l1)]);
  const file = join(dir, 'odd:name.tar');
  await oneLayerArchive(file, cfg, l1, ['x:1']);
  assert.equal((await openImageSource(`docker-archive:${file}`)).image.configDigest, sha(cfg));
  assert.equal((await openImageSource(`docker-archive:${file}:x:1`)).image.configDigest, sha(cfg));
});

test('openImageSource: the names a source records come back fully qualified (RepoTags, io.containerd.image.name)', async (t) => {
  const dir = tempDir(t);
  const l1 = await storeLayer('aaaa-base');
  const cfg = configJson([sha(l1)]);
  const file = join(dir, 'named.tar');
  await oneLayerArchive(file, cfg, l1, ['x:1', 'reg.example:5000/team/x:2']);
  assert.deepEqual((await openImageSource(`docker-archive:${file}`)).names, ['docker.io/library/x:1', 'reg.example:5000/team/x:2']);

  const untagged = join(dir, 'untagged.tar');
  await oneLayerArchive(untagged, cfg, l1, null);
  assert.equal((await openImageSource(`docker-archive:${untagged}`)).names, undefined);

  // An OCI layout records the full name beside the ref name, as containerd does.
  const layout = join(dir, 'layout');
  const { copy } = await import('../../src/ops/copy.js');
  await copy(`docker-archive:${file}`, `oci:${layout}:v9`, { tags: ['reg.example/app:3'] });
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
  const recorded = index.manifests.map((m) => m.annotations['io.containerd.image.name']);
  assert.ok(recorded.includes('reg.example/app:3'), JSON.stringify(recorded));
  assert.deepEqual((await openImageSource(`oci:${layout}:v9`)).names, ['reg.example/app:3']);
});
