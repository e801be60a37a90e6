/** containers-storage names (src/transports/containers-storage/names.ts) against what podman 4.3.1 wrote here. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { bigDataFileName, linkName, storageLayerIds } from '../../src/transports/containers-storage/names.js';

test('layer IDs: the base is its DiffID, each later one hashes parent ID + "+" + DiffID (podman pull, 2 layers)', () => {
  const l1 = '0667ccdfa8b8d61a1e22afd3b15635dfb48734a204af0a20929e0ca4bf0bcf0a';
  const d2 = '4d62c2c18b3c4d34f016af0d6a6923bd170f2db30232a2b99d277522240ec643';
  assert.deepEqual(storageLayerIds([`sha256:${l1}`, `sha256:${d2}`]), [l1, '60112821723f98edbea5925d24dd13a5a60a5de1fff05acad897075e1ad61d0f']);
  const chainId = createHash('sha256').update(`sha256:${l1} sha256:${d2}`).digest('hex');
  assert.notEqual(storageLayerIds([`sha256:${l1}`, `sha256:${d2}`])[1], chainId, 'not the OCI ChainID');
});

test('link names: 26 characters of containers-storage\'s alphabet, the same for the same layer, distinct across layers', () => {
  const a = linkName('60112821723f98edbea5925d24dd13a5a60a5de1fff05acad897075e1ad61d0f');
  assert.match(a, /^[A-Z2-7]{26}$/);
  assert.equal(linkName('60112821723f98edbea5925d24dd13a5a60a5de1fff05acad897075e1ad61d0f'), a);
  const many = new Set(Array.from({ length: 1000 }, (_, i) => linkName(i.toString(16).padStart(64, '0'))));
  assert.equal(many.size, 1000);
});

test('big-data file names: plain keys kept, others "=" + base64 (as podman stored them)', () => {
  assert.equal(bigDataFileName('manifest'), 'manifest');
  assert.equal(bigDataFileName('sha256:cf7e0bf8cdf6051e437bdc497103523b40fbc3256add8b1744ca7de2d92f31ab'),
    '=c2hhMjU2OmNmN2UwYmY4Y2RmNjA1MWU0MzdiZGM0OTcxMDM1MjNiNDBmYmMzMjU2YWRkOGIxNzQ0Y2E3ZGUyZDkyZjMxYWI=');
  const key = 'manifest-sha256:dcd06569';
  assert.equal(Buffer.from(bigDataFileName(key).slice(1), 'base64').toString(), key);
  assert.equal(bigDataFileName('Manifest'), '=TWFuaWZlc3Q=', 'upper case is outside the plain set');
});
