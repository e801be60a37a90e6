import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { openDockerArchiveDestination } from '../../src/transports/docker-archive/write.js';
import { openOciArchiveDestination, openOciDirectoryDestination } from '../../src/transports/oci-layout/write.js';
import type { ImageDestination } from '../../src/transports/types.js';
import type { Digest } from '../../src/image/digest.js';
import { tempDir } from '../support/paths.js';

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/**
 * Producers keep several writes in flight (the tar writer does); a destination must place each
 * chunk where its turn puts it, not where the file happened to end when the write ran.
 */
const destinations: [string, (dir: string) => Promise<ImageDestination>][] = [
  ['docker-archive (reserved size)', (d) => openDockerArchiveDestination(join(d, 'x.tar'), { mtime: 1 })],
  ['oci-archive (reserved size)', (d) => openOciArchiveDestination(join(d, 'x.tar'), { mtime: 1 })],
  ['oci directory', (d) => openOciDirectoryDestination(join(d, 'layout'))],
];

for (const [name, open] of destinations) {
  for (const sized of [true, false]) {
    test(`${name}, ${sized ? 'size known' : 'size unknown (spooled)'}: concurrent in-flight writes land in order`, async (t) => {
      if (name === 'oci directory' && !sized) return; // the directory never needs the size
      const dir = tempDir(t);
      const dest = await open(dir);
      const chunks = Array.from({ length: 64 }, (_, i) => randomBytes(1000 + i * 37));
      const body = Buffer.concat(chunks);
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}` as Digest;
      const writer = await dest.beginBlob(sized ? body.length : undefined);
      await Promise.all(chunks.map((c) => writer.write(c)));
      const reopen = await writer.close(digest, body.length);
      const back = await readAll(await reopen());
      assert.equal(back.length, body.length);
      assert.ok(back.equals(body), 'blob bytes differ from what was written');
      await dest.abort();
    });
  }
}
