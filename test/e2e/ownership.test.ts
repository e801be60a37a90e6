/**
 * Issue 18: ownership and modes as nixpkgs' streamLayeredImage (uid/gid/uname/gname,
 * fakeRootCommands chowns) and nix2container's perms give them. The headers of every new layer
 * carry the owner, --perms changes matched store files, --chown makes a home directory owned
 * inside the container, and the cache never serves a layer made for other owners.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { podman, podmanEnv } from '../support/tools.js';
import { e2eFixture } from './e2e-support.js';
import { layoutLayers } from '../support/host-store.js';

const fixture = e2eFixture('strata-own');

/** `tar -tv --numeric-owner` of every layer of the layout's image REF: name → "uid/gid mode". */
function owners(layout: string, ref: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const blob of layoutLayers(layout, ref)) {
    const list = execFileSync('tar', ['-tvf', blob, '--numeric-owner'], { encoding: 'utf8' });
    for (const line of list.split('\n').filter(Boolean)) {
      const [perm, owner, , , , ...rest] = line.split(/\s+/);
      const name = rest.join(' ').replace(/ -> .*$/, '').replace(/\/$/, '');
      out.set(name, `${owner} ${perm}`);
    }
  }
  return out;
}

async function build(args: readonly string[]): Promise<void> {
  const r = await runStrata(['build', fixture.store.closureFile, '--store-root', fixture.store.storeRoot, ...args]);
  assert.equal(r.code, 0, r.stderr);
}

test('--uid/--gid/--uname/--gname in every new layer\'s headers; --perms on matched store files; --chown of a home directory seen by podman', async () => {
  const { dir, store } = fixture;
  const layout = join(dir, 'layout');
  const busybox = store.paths.busybox;
  const cache = ['--cache-dir', join(dir, 'cache')];
  // First without owners, with the cache: the owned build must not be served these layers.
  await build([...cache, '-o', `oci:${layout}:plain`, '--compress', 'none', '--entrypoint', store.entrypoint]);
  await build([...cache, '--compress', 'none', '-o', `oci:${layout}:owned`,
    '--uid', '1000', '--gid', '100', '--uname', 'user', '--gname', 'users',
    '--perms', `^${busybox}/bin/busybox$=0750:12345:12345`,
    '--chown', '/home/alice=1000:1000', '--chmod', '/home/alice=0700',
    '--cmd', '["sh", "-c", "stat -c %u:%g:%a /home/alice"]', '--entrypoint', `${busybox}/bin/busybox`]);
  const plain = owners(layout, 'plain');
  const owned = owners(layout, 'owned');
  assert.ok([...plain.values()].every((v) => v.startsWith('0/0 ')), 'without flags, everything is root\'s');
  for (const [name, v] of owned) {
    if (name === `${busybox.slice(1)}/bin/busybox`) assert.equal(v, '12345/12345 -rwxr-x---', name);
    else if (name === 'home/alice') assert.equal(v, '1000/1000 drwx------', name);
    else if (name === 'home') assert.ok(v.startsWith('0/0 '), 'a parent made for a rule is root\'s');
    else assert.ok(v.startsWith('1000/100 '), `${name}: ${v}`);
  }
  // And the names, as GNU tar shows them.
  const named = execFileSync('tar', ['-tvf', layoutLayers(layout, 'owned')[0]!], { encoding: 'utf8' });
  assert.match(named, /user\/users/);

  const env = podmanEnv(join(dir, 'podman'));
  const r = await podman(['run', '--rm', `oci:${layout}:owned`], env);
  assert.equal(r.stdout.trim(), '1000:1000:700');
  // The same flags again: the same bytes (the owners are part of the layers' cache keys).
  const index = readFileSync(join(layout, 'index.json'), 'utf8');
  await build([...cache, '--compress', 'none', '-o', `oci:${join(dir, 'again')}:owned`,
    '--uid', '1000', '--gid', '100', '--uname', 'user', '--gname', 'users',
    '--perms', `^${busybox}/bin/busybox$=0750:12345:12345`,
    '--chown', '/home/alice=1000:1000', '--chmod', '/home/alice=0700',
    '--cmd', '["sh", "-c", "stat -c %u:%g:%a /home/alice"]', '--entrypoint', `${busybox}/bin/busybox`]);
  const digestOf = (text: string, ref: string) => (JSON.parse(text) as { manifests: { digest: string; annotations?: Record<string, string> }[] }).manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref)!.digest;
  assert.equal(digestOf(readFileSync(join(dir, 'again', 'index.json'), 'utf8'), 'owned'), digestOf(index, 'owned'));
});

test('bad ownership flags are one-line errors naming the flag', async () => {
  const { dir, store } = fixture;
  for (const [flag, value, says] of [
    ['--uid', '99999999', '--uid'], ['--uname', 'a'.repeat(40), '--uname'], ['--chown', '/x=1000', 'PATH=UID:GID'],
    ['--chmod', '/x=rwx', 'octal mode'], ['--perms', '([=0644', '--perms'], ['--chown', 'relative=1:1', 'absolute'],
  ] as const) {
    const r = await runStrata(['build', store.closureFile, '--store-root', store.storeRoot, flag, value, '-o', join(dir, 'bad.tar')]);
    assert.notEqual(r.code, 0, `${flag} ${value}`);
    assert.ok(r.stderr.includes(says), `${flag} ${value}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});
