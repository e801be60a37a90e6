import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
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

test('openImageSource: unrecognisable inputs are errors naming the path', async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'nope.tar');
  await assert.rejects(openImageSource(missing), naming(missing, 'no such file'));
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
  await writeTar(file, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['x:1'], Layers: ['l.tar'] }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: 'l.tar', content: l1 },
  ]);
  assert.equal((await openImageSource(`docker-archive:${file}`)).image.configDigest, sha(cfg));
  assert.equal((await openImageSource(`docker-archive:${file}:x:1`)).image.configDigest, sha(cfg));
});
