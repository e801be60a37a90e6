import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { indexTarFile, openMember, resolveMember } from '../../src/transports/tar-index.js';
import { tempDir } from '../support/paths.js';
import { readAll } from './helpers.js';

const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(120)}.tar`;

/** GNU tar's own formats: gnu (././@LongLink 'L' records) and posix (PAX 'x' records). */
for (const format of ['gnu', 'posix', 'ustar']) {
  test(`indexTarFile reads a GNU tar --format=${format} archive`, async (t) => {
    const dir = tempDir(t);
    const src = join(dir, 'src');
    const body = Buffer.alloc(70_000, 7);
    mkdirSync(join(src, 'a'), { recursive: true });
    writeFileSync(join(src, 'a', 'big.bin'), body);
    writeFileSync(join(src, 'small'), 'hello');
    symlinkSync('a/big.bin', join(src, 'link'));
    const names = ['a', 'a/big.bin', 'link', 'small'];
    if (format !== 'ustar') {
      mkdirSync(join(src, long, '..'), { recursive: true });
      writeFileSync(join(src, long), 'long one');
      names.push(long);
    }
    const file = join(dir, 'x.tar');
    execFileSync('tar', [`--format=${format}`, '--sort=name', '-cf', file, '-C', src, ...names]);
    const index = await indexTarFile(file);
    assert.equal(index.members.get('a')?.type, 'directory');
    assert.deepEqual(await readAll(openMember(index, resolveMember(index, 'a/big.bin', 'test'))), body);
    assert.deepEqual(await readAll(openMember(index, resolveMember(index, 'link', 'test'))), body);
    assert.equal((await readAll(openMember(index, resolveMember(index, './small', 'test')))).toString(), 'hello');
    if (format !== 'ustar') assert.equal((await readAll(openMember(index, resolveMember(index, long, 'test')))).toString(), 'long one');
  });
}
