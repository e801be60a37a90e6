/**
 * Layer blobs in archives start at a multiple of 4 KiB (src/transports/archive/tar-file.ts), so
 * a warm rebuild on XFS or btrfs can share their blocks with the previous output. Checked here on
 * the header encoder alone (every offset, size and name shape) and on whole archives, read back
 * by the tests' own tar reader, GNU tar and Python's tarfile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLOCK, encodeHeader, planHeader } from '../../src/tar/header.js';
import type { TarEntry } from '../../src/tar/entry.js';
import { BLOB_ALIGNMENT } from '../../src/transports/archive/tar-file.js';
import { runStrata } from '../support/cli.js';
import { parseTar } from '../tar/tar-reader.js';
import { tempDir } from '../support/paths.js';

const GiB = 2 ** 30;

test('an aligned header ends on the boundary for every block offset, size and name shape, and reads back as the same member', () => {
  const names = ['abc/layer.tar', `${'d'.repeat(120)}/${'n'.repeat(90)}`, 'x'.repeat(300)];
  for (const name of names) {
    for (const size of [0, 1, 4096, 9 * GiB]) {
      for (let at = 0; at < 3 * BLOB_ALIGNMENT; at += BLOCK) {
        const entry: TarEntry = { name, type: 'file', mode: 0o644, size };
        const plan = planHeader(entry, { at, boundary: BLOB_ALIGNMENT });
        assert.equal((at + plan.headerBytes) % BLOB_ALIGNMENT, 0, `${name.length}-byte name, size ${size}, at ${at}`);
        // Never more than one boundary's worth of padding beyond what the member needs anyway.
        assert.ok(plan.headerBytes <= planHeader(entry).headerBytes + BLOB_ALIGNMENT + BLOCK);
        const buf = Buffer.alloc(plan.headerBytes + 2 * BLOCK);
        encodeHeader(entry, plan, 1, buf, 0);
        if (size < 8 * GiB) {
          // A body the reader can skip over (zero-filled, a block long), then the end of the tar.
          const withBody = Buffer.concat([buf.subarray(0, plan.headerBytes), Buffer.alloc(Math.ceil(size / BLOCK) * BLOCK), Buffer.alloc(2 * BLOCK)]);
          const [m] = parseTar(withBody).members;
          assert.equal(m!.name, name);
          assert.equal(m!.size, size);
          assert.equal(m!.offset + BLOCK, plan.headerBytes, 'the data follows the ustar block');
          assert.equal(m!.paxKeysInOrder![0], 'comment', 'the padding is a comment record, first in key order');
        }
        // Same inputs, same bytes: the padding depends on the offset only.
        const again = Buffer.alloc(buf.length);
        encodeHeader(entry, planHeader(entry, { at, boundary: BLOB_ALIGNMENT }), 1, again, 0);
        assert.ok(again.equals(buf));
      }
    }
  }
});

const DEMO = ['closures/demo/closure.json', '--store-root', 'closures/demo/root', '--arch', 'amd64'];

for (const format of ['docker-archive', 'oci-archive'] as const) {
  test(`${format}: every layer blob's data starts at a multiple of ${BLOB_ALIGNMENT}; GNU tar and Python read the same members`, async (t) => {
    const dir = tempDir(t);
    const out = join(dir, 'x.tar');
    const r = await runStrata(['build', ...DEMO, '--format', format, ...(format === 'oci-archive' ? ['--compress', 'gzip'] : []), '--no-cache', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    const bytes = readFileSync(out);
    const members = parseTar(bytes).members;
    const layerDigests = (): Set<string> => {
      // The OCI archive's layers, from its manifest (config and manifest are small metadata files).
      const text = (n: string) => members.find((m) => m.name === n)!.data.toString('utf8');
      const index = JSON.parse(text('index.json')) as { manifests: { digest: string }[] };
      const manifest = JSON.parse(text(`blobs/sha256/${index.manifests[0]!.digest.slice(7)}`)) as { layers: { digest: string }[] };
      return new Set(manifest.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`));
    };
    const layers = format === 'docker-archive' ? undefined : layerDigests();
    const isBlob = (n: string) => (layers === undefined ? n.endsWith('/layer.tar') : layers.has(n));
    const blobs = members.filter((m) => m.type === '0' && isBlob(m.name));
    assert.ok(blobs.length >= 7 && (layers === undefined || blobs.length === layers.size), `expected the demo's layers, found ${blobs.length} blob members`);
    for (const m of blobs) {
      assert.equal((m.offset + BLOCK) % BLOB_ALIGNMENT, 0, `${m.name}: data at ${m.offset + BLOCK}`);
      // The member's body is the blob its name says.
      const hex = format === 'docker-archive' ? undefined : m.name.slice('blobs/sha256/'.length);
      if (hex) assert.equal(createHash('sha256').update(m.data).digest('hex'), hex);
    }
    // Small metadata members are not padded.
    assert.ok(members.filter((m) => !isBlob(m.name)).every((m) => m.pax === undefined), 'a metadata member got a PAX header');
    const gnu = spawnSync('tar', ['-tf', out], { encoding: 'utf8' });
    assert.equal(gnu.status, 0, gnu.stderr);
    assert.equal(gnu.stderr, '', 'GNU tar warned');
    assert.deepEqual(gnu.stdout.trim().split('\n'), members.map((m) => m.name));
    const py = spawnSync('python3', ['-c', 'import sys, tarfile\nfor m in tarfile.open(sys.argv[1]).getmembers(): print(m.name, m.offset_data, m.size)', out], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    assert.deepEqual(py.stdout.trim().split('\n'), members.map((m) => `${m.name.replace(/\/$/, '')} ${m.offset + BLOCK} ${m.size}`));
  });
}
