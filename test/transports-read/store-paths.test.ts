import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { storePathsInLayer } from '../../src/image/store-paths.js';
import type { Layer } from '../../src/image/layer.js';
import { StrataError } from '../../src/util/errors.js';
import { gzip, sha, tarBuffer, type Dig } from './helpers.js';

function memoryLayer(blob: Buffer, compression: 'none' | 'gzip', diffId: Dig, storePaths?: string[]): Layer {
  return {
    diffId, digest: sha(blob), size: blob.length, compression,
    mediaType: compression === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
    ...(storePaths ? { storePaths } : {}),
    open: async () => Readable.from([blob.subarray(0, 700), blob.subarray(700)]),
  };
}

const longName = `zzzz-${'long'.repeat(40)}`; // > 100 chars: needs a ustar prefix or a PAX record

async function sampleTar(): Promise<Buffer> {
  return tarBuffer([
    { name: 'nix', type: 'directory' },
    { name: 'nix/store', type: 'directory' },
    { name: 'nix/store/aaaa-relative', type: 'directory' },
    { name: 'nix/store/aaaa-relative/bin/x', content: 'x'.repeat(1500) },
    { name: '/nix/store/bbbb-absolute', type: 'symlink', linkname: 'aaaa-relative' },
    { name: './nix/store/cccc-dotslash/lib/y', content: 'y' },
    { name: `nix/store/${longName}/${'deep/'.repeat(20)}file`, content: 'z' },
    { name: 'nix/store/.wh.dddd-deleted', content: '' },
    { name: 'etc/passwd', content: 'root:x:0:0::/:/bin/sh\n' },
    { name: 'nix/storeish/eeee-not', content: '' },
  ]);
}

const expected = ['/nix/store/aaaa-relative', '/nix/store/bbbb-absolute', '/nix/store/cccc-dotslash', `/nix/store/${longName}`];

test('storePathsInLayer finds top-level store paths in plain and gzipped layers', async () => {
  const tar = await sampleTar();
  assert.deepEqual(await storePathsInLayer(memoryLayer(tar, 'none', sha(tar)), '/nix/store'), expected);
  assert.deepEqual(await storePathsInLayer(memoryLayer(gzip(tar), 'gzip', sha(tar)), '/nix/store'), expected);
  assert.deepEqual(await storePathsInLayer(memoryLayer(tar, 'none', sha(tar)), '/gnu/store'), []);
});

test('storePathsInLayer prefers the layer’s own storePaths and rejects a truncated tar', async () => {
  const tar = await sampleTar();
  assert.deepEqual(await storePathsInLayer(memoryLayer(tar, 'none', sha(tar), ['/nix/store/b', '/nix/store/a']), '/nix/store'), ['/nix/store/a', '/nix/store/b']);
  const cut = tar.subarray(0, 1536 + 100);
  await assert.rejects(storePathsInLayer(memoryLayer(cut, 'none', sha(cut)), '/nix/store'), (e: unknown) => e instanceof StrataError && /truncated/.test(e.message));
});
