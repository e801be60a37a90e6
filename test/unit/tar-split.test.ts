/**
 * The tar-split record (src/transports/containers-storage/tar-split.ts) podman reassembles a
 * stored layer's tar from: reassembling it from the record and the members' bodies must give the
 * tar back byte for byte, for the tars real writers make (GNU tar's PAX headers, long names,
 * hardlinks, record padding after the end-of-archive marker), however the bytes are chunked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readTarStream } from '../../src/tar/read-stream.js';
import { Crc64, TarSplitter } from '../../src/transports/containers-storage/tar-split.js';
import { tempDir } from '../support/paths.js';

test('CRC-64: the ISO polynomial as Go\'s hash/crc64 sums it (check value of "123456789")', () => {
  const c = new Crc64();
  c.update(Buffer.from('1234'));
  c.update(Buffer.from('56789'));
  assert.equal(c.digest().toString('hex'), 'b90956c775a41001');
});

interface Entry { type: 1 | 2; name?: string; size?: number; payload: string | null; position: number }

/** What podman does with the record: segments as they are, each member's body from the files. */
function reassemble(record: Buffer, bodies: Map<string, Buffer>): Buffer {
  const out: Buffer[] = [];
  const entries = record.toString().trimEnd().split('\n').map((l) => JSON.parse(l) as Entry);
  entries.forEach((e, i) => assert.equal(e.position, i));
  for (const e of entries) {
    if (e.type === 2) out.push(Buffer.from(e.payload ?? '', 'base64'));
    else if (e.size) {
      const body = bodies.get(e.name!)!;
      const crc = new Crc64();
      crc.update(body);
      assert.equal(e.payload, crc.digest().toString('base64'), `checksum of ${e.name}`);
      out.push(body);
    }
  }
  assert.equal(entries.at(-1)!.payload, '', 'an empty last segment, as podman writes');
  return Buffer.concat(out);
}

test('tar-split: the record and the bodies give the tar back, byte for byte, in any chunking', async (t) => {
  const dir = tempDir(t);
  const src = join(dir, 'src');
  const deep = join(src, 'd'.repeat(60), 'e'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'long-named-file.txt'), 'x'.repeat(70_000));
  writeFileSync(join(src, 'empty'), '');
  writeFileSync(join(src, 'small'), 'hello\n');
  linkSync(join(src, 'small'), join(src, 'hard'));
  for (const format of ['posix', 'gnu']) {
    const tar = execFileSync('tar', ['-c', `--format=${format}`, '-C', src, '--sort=name', '.']);
    assert.ok(tar.length % 10240 === 0, 'GNU tar pads to a whole record after the end-of-archive marker');
    const bodies = new Map<string, Buffer>();
    for await (const m of readTarStream((async function* () { yield tar; })(), 'fixture')) {
      const parts: Buffer[] = [];
      for await (const c of m.body()) parts.push(c as Buffer);
      bodies.set(m.header.name, Buffer.concat(parts));
    }
    for (const chunk of [1, 511, 512, 4096, tar.length]) {
      const splitter = new TarSplitter('fixture');
      for (let i = 0; i < tar.length; i += chunk) splitter.feed(tar.subarray(i, i + chunk));
      assert.ok(reassemble(splitter.finish(), bodies).equals(tar), `${format} tar in ${chunk}-byte chunks`);
    }
  }
});

test('tar-split: a tar cut short is an error naming it', () => {
  const splitter = new TarSplitter('layer X');
  splitter.feed(Buffer.alloc(100, 1));
  assert.throws(() => splitter.finish(), /layer X.*end-of-archive/);
});
