import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainIds, sha256Digest, type Digest } from '../../src/image/digest.js';
import { canonicalJson } from '../../src/util/json.js';

test('ChainID follows the OCI definition', () => {
  const a = sha256Digest('a');
  const b = sha256Digest('b');
  const c = sha256Digest('c');
  const ids = chainIds([a, b, c]);
  assert.equal(ids[0], a);
  const ab = sha256Digest(`${a} ${b}`);
  assert.equal(ids[1], ab);
  assert.equal(ids[2], sha256Digest(`${ab} ${c}`) as Digest);
});

test('canonical JSON sorts keys at every depth and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[{"y":2,"z":1}]},"b":1}');
});
