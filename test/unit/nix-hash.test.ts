/** NAR hashes as the Nix database stores them (sha256:<base16>), from each form Nix prints (values from `nix hash`). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base16NarHash } from '../../src/builder/nix-db.js';
import { StrataError } from '../../src/util/errors.js';

const BASE16 = 'sha256:b2fe4b3d6e0ef34e2b9e2ef4e15da0afb86553ea9043e3c456279f0bb10f8995';

test('SRI, Nix base32 and base16 give the same base16', () => {
  assert.equal(base16NarHash('sha256:15c91yqhp7r7av2f6hwhx99nbf5gl1fy3x1fkqmlxwqfdqylpzmj', 'p'), BASE16);
  assert.equal(base16NarHash('sha256-sv5LPW4O804rni704V2gr7hlU+qQQ+PEViefC7EPiZU=', 'p'), BASE16);
  assert.equal(base16NarHash(BASE16, 'p'), BASE16);
});

test('anything else is refused naming the path', () => {
  for (const bad of ['md5:abc', 'sha256:xyz', 'sha256-AAAA', 'sha512-' + 'A'.repeat(86)]) {
    assert.throws(() => base16NarHash(bad, '/nix/store/x-y'), (e: unknown) => e instanceof StrataError && e.message.includes('/nix/store/x-y'));
  }
});
