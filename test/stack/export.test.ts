/**
 * Issue 18: `strata export` writes an image's filesystem as one tar, as dockerTools.exportImage
 * does — the layers applied, a path deleted by a whiteout absent, each path once — and the same
 * image exports to the same bytes wherever it is read from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot, tempDir } from '../support/paths.js';
import { tarMembers, tarMemberText } from '../support/archive.js';

const demoRoot = join(repoRoot, 'closures', 'demo', 'root');
const demoClosure = join(repoRoot, 'closures', 'demo', 'closure.json');

async function strata(args: readonly string[]): Promise<string> {
  const r = await runStrata(args);
  assert.equal(r.code, 0, `strata ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}

test('export of an image built on a base with --remove: the removed file is absent, the rest as its top layer has it, the same bytes twice', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'note'), 'from the base\n');
  writeFileSync(join(dir, 'motd'), 'first\n');
  writeFileSync(join(dir, 'motd2'), 'second\n');
  const layout = join(dir, 'layout');
  await strata(['build', demoClosure, '--store-root', demoRoot, '--add', `${join(dir, 'note')}:/etc/note`, '--add', `${join(dir, 'motd')}:/etc/motd`, '-o', `oci:${layout}:base`]);
  await strata(['build', '--from', `oci:${layout}:base`, '--remove', '/etc/note', '--add', `${join(dir, 'motd2')}:/etc/motd`, '-o', `oci:${layout}:child`]);

  const out = join(dir, 'rootfs.tar');
  const summary = JSON.parse(await strata(['export', `oci:${layout}:child`, '-o', out, '--json'])) as { digest: string; layers: number };
  const members = tarMembers(out);
  assert.equal(members.has('etc/note'), false, 'the whited-out file is gone');
  assert.ok(![...members.keys()].some((n) => n.includes('.wh.')), 'no whiteout markers');
  assert.equal(tarMemberText(out, 'etc/motd'), 'second\n', 'the top layer\'s version');
  assert.ok([...members.keys()].some((n) => n.startsWith('nix/store/') && n.includes('demo-hello')), 'the store is there');
  // Each path once (both layers have etc/, and etc/motd twice): GNU tar's own listing.
  const names = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n').filter(Boolean).map((n) => n.replace(/\/$/, ''));
  assert.equal(new Set(names).size, names.length, 'each path once');
  assert.equal(names.filter((n) => n === 'etc/motd').length, 1);
  assert.equal(`sha256:${createHash('sha256').update(readFileSync(out)).digest('hex')}`, summary.digest);

  // Again, from a copy of the layout elsewhere: the same bytes; and to stdout: the same bytes.
  const copy = join(dir, 'copy');
  cpSync(layout, copy, { recursive: true });
  const again = join(dir, 'again.tar');
  await strata(['export', `oci:${copy}:child`, '-o', again]);
  assert.ok(readFileSync(again).equals(readFileSync(out)));
  const piped = await runStrata(['export', `oci:${layout}:child`, '-o', '-']);
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(piped.stdoutBytes.equals(readFileSync(out)), 'stdout gets the same tar');
});

test('export of an image that cannot be read fails naming it, and writes nothing', async (t) => {
  const dir = tempDir(t);
  const r = await runStrata(['export', `oci:${join(dir, 'missing')}`, '-o', join(dir, 'out.tar')]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /missing/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.deepEqual(readdirSync(dir), []);
  assert.equal(existsSync(join(dir, 'out.tar')), false);
});
