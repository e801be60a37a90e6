/**
 * Issue 19, part 1: a base image whose layer tries to reach outside the tree it is unpacked into
 * is refused before anything is written — not passed on into the output for the next runtime to
 * catch. Each case is a docker-archive with one crafted layer; the build fails naming the layer
 * and the member, exits non-zero without a stack trace, and writes no output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { cliPath, tempDir } from '../support/paths.js';
import { ensurePackages } from '../support/tools.js';
import { oneLayerArchive, sha, tarBuffer, type Entry } from '../transports-read/helpers.js';

async function baseWith(dir: string, entries: Entry[]): Promise<string> {
  const layer = await tarBuffer([{ name: 'etc/', type: 'directory' }, { name: 'etc/os-release', content: 'ID=hostile\n' }, ...entries]);
  return oneLayerArchive(join(dir, 'base.tar'), layer, { repoTag: 'hostile:1' });
}

const ATTACKS: { name: string; entries: Entry[]; says: string[] }[] = [
  { name: 'path traversal', entries: [{ name: '../../etc/cron.d/evil', content: '* * * * * root sh\n' }], says: ['../../etc/cron.d/evil', "'..'"] },
  { name: 'symlink then a file through it', entries: [{ name: 'escape', type: 'symlink', linkname: '/' }, { name: 'escape/etc/passwd', content: 'root::0:0::/:/bin/sh\n' }], says: ['escape/etc/passwd', 'symlink "escape"'] },
  { name: 'hardlink out of the root', entries: [{ name: 'shadow', type: 'link', linkname: '../../etc/shadow' }], says: ['hardlink target', '../../etc/shadow'] },
  { name: 'hardlink through a symlink', entries: [{ name: 'd', type: 'symlink', linkname: '/etc' }, { name: 'h', type: 'link', linkname: 'd/shadow' }], says: ['hardlink target of "h"', 'symlink "d"'] },
  { name: 'the same file twice', entries: [{ name: 'etc/motd', content: 'first\n' }, { name: 'etc/motd', content: 'second\n' }], says: ['"etc/motd" appears twice'] },
];

/** Runs strata under GNU time: exit code, stderr without time's line, and peak RSS in MB. */
function measured(args: readonly string[]): { code: number | null; stderr: string; mb: number } {
  const r = spawnSync('/usr/bin/time', ['-f', 'RSS %M', process.execPath, cliPath, ...args], { encoding: 'utf8' });
  const m = /RSS (\d+)\s*$/.exec(r.stderr);
  return { code: r.status, stderr: r.stderr.replace(/RSS \d+\s*$/, ''), mb: m ? Number(m[1]) / 1024 : NaN };
}

let baselineMb: number | undefined;
/** Peak RSS of an accepted build of a harmless base, measured once. */
async function baseline(dir: string): Promise<number> {
  if (baselineMb === undefined) {
    await ensurePackages(['time']);
    const base = await baseWith(dir, []);
    writeFileSync(join(dir, 'note'), 'hi\n');
    const r = measured(['build', '--from', base, '--add', `${join(dir, 'note')}:/note`, '-o', join(dir, 'ok.tar')]);
    assert.equal(r.code, 0, r.stderr);
    baselineMb = r.mb;
    rmSync(join(dir, 'ok.tar'));
    rmSync(base);
  }
  return baselineMb;
}

for (const attack of ATTACKS) {
  test(`a base layer with ${attack.name} is refused, naming the member, at about a good build's memory; nothing is written`, async (t) => {
    const dir = tempDir(t);
    const normal = await baseline(dir);
    const base = await baseWith(dir, attack.entries);
    writeFileSync(join(dir, 'note'), 'hi\n');
    const out = join(dir, 'out.tar');
    const r = measured(['build', '--from', base, '--add', `${join(dir, 'note')}:/note`, '-o', out]);
    // A margin for the collector's timing on a busy machine; what it rules out is holding the input.
    assert.ok(r.mb < normal + 64, `peak ${r.mb.toFixed(0)} MB against ${normal.toFixed(0)} MB for a good build`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^strata: error: layer sha256:[0-9a-f]{64}/);
    for (const s of attack.says) assert.ok(r.stderr.includes(s), `stderr names ${s}:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir).sort(), ['base.tar', 'note']);
  });
}

test('a directory given twice (strata\'s own chardev whiteouts do it) and absolute names (nixpkgs writes them) are accepted', async (t) => {
  const dir = tempDir(t);
  const base = await baseWith(dir, [{ name: 'var/', type: 'directory' }, { name: 'var/', type: 'directory' }, { name: '/opt/abs', content: 'x\n' }]);
  writeFileSync(join(dir, 'note'), 'hi\n');
  const r = await runStrata(['build', '--from', base, '--add', `${join(dir, 'note')}:/note`, '-o', join(dir, 'out.tar')]);
  assert.equal(r.code, 0, r.stderr);
});

test('a device node in a layer that is then re-tarred under a path is refused; at / the layer is carried as it is', async (t) => {
  const dir = tempDir(t);
  const tarStream = (await import('tar-stream')).default;
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  pack.entry({ name: 'dev/', type: 'directory', mode: 0o755 });
  pack.entry({ name: 'dev/sda', type: 'block-device', mode: 0o660, devmajor: 8, devminor: 0 });
  pack.finalize();
  await done;
  const base = await oneLayerArchive(join(dir, 'dev.tar'), Buffer.concat(chunks), { repoTag: 'dev:1' });
  writeFileSync(join(dir, 'note'), 'hi\n');
  const out = join(dir, 'out.tar');
  const placed = await runStrata(['build', '--import', `${base}=/opt/dev`, '--add', `${join(dir, 'note')}:/note`, '-o', out]);
  assert.notEqual(placed.code, 0);
  assert.match(placed.stderr, /"dev\/sda" is a block device \(8:0\)/);
  assert.equal(existsSync(out), false);
  const carried = await runStrata(['build', '--from', base, '--add', `${join(dir, 'note')}:/note`, '-o', out]);
  assert.equal(carried.code, 0, carried.stderr);
});

test('a PAX bomb and a gzip bomb in a base layer are refused without holding what they claim or expand to', async (t) => {
  const dir = tempDir(t);
  const normal = await baseline(dir);
  writeFileSync(join(dir, 'note'), 'hi\n');
  const archiveOf = (name: string, layer: Buffer, diffId: string) => oneLayerArchive(join(dir, name), layer, { diffId, repoTag: 'bomb:1' });
  // A PAX header that claims 1 GiB of records: refused before a byte of it is held.
  const pax = Buffer.alloc(1024);
  const header = Buffer.alloc(512);
  header.write('././@PaxHeader', 0);
  header.write('0000644\0', 100); header.write('0000000\0', 108); header.write('0000000\0', 116);
  header.write('10000000000\0', 124); header.write('00000000000\0', 136);
  header.write('x', 156); header.write('ustar\u000000', 257);
  header.write('        ', 148);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const paxLayer = Buffer.concat([header, pax]);
  const paxBase = await archiveOf('pax.tar', paxLayer, sha(paxLayer));
  const p = measured(['build', '--from', paxBase, '--add', `${join(dir, 'note')}:/note`, '-o', join(dir, 'p.tar')]);
  assert.notEqual(p.code, 0);
  assert.match(p.stderr, /extended header of 1073741824 bytes is too large/);
  assert.ok(p.mb < normal + 64, `PAX bomb: peak ${p.mb.toFixed(0)} MB against ${normal.toFixed(0)} MB`);

  // 512 MiB of zeros in about half a MiB of gzip, claiming to be a small tar: streamed, found out, refused.
  const bomb = join(dir, 'bomb.gz');
  spawnSync('sh', ['-c', `head -c 536870912 /dev/zero | gzip -1 > ${bomb}`]);
  const gzBase = await archiveOf('gz.tar', readFileSync(bomb), sha('a small tar'));
  const g = measured(['build', '--from', gzBase, '--add', `${join(dir, 'note')}:/note`, '-o', join(dir, 'g.tar')]);
  assert.notEqual(g.code, 0);
  assert.match(g.stderr, /layer/);
  assert.doesNotMatch(g.stderr, /\n\s+at /);
  // Streamed: gunzip's buffers and the collector's lag, never the 512 MiB it expands to.
  assert.ok(g.mb < normal + 128, `gzip bomb: peak ${g.mb.toFixed(0)} MB against ${normal.toFixed(0)} MB`);
  assert.equal(existsSync(join(dir, 'g.tar')) || existsSync(join(dir, 'p.tar')), false);
});
