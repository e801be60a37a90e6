import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareBytes, sortBytewise } from '../../src/util/byte-order.js';

test('compareBytes orders exactly as the UTF-8 encodings compare, surrogates included', () => {
  const samples = ['', 'a', 'a-b', 'a/b', 'a.b', 'A', 'é', '\uE000', '\uFFFD', '😀', 'z😀', 'z\uFFFF', 'nix/store/x', 'nix/store/x-1'];
  for (const a of samples) {
    for (const b of samples) {
      const want = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assert.equal(Math.sign(compareBytes(a, b)), want, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  }
  assert.deepEqual(sortBytewise(['b', '😀', '\uFFFD', 'a']), ['a', 'b', '\uFFFD', '😀']);
});
