/**
 * Package names, tags and repositories (src/closure/package.ts): Nix's split of store path names,
 * the closure's own pname/version/output where it has them, and the registry's name grammar.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTag, packageOf, repositoryName, versionTag, versionTags } from '../../src/closure/package.js';
import { parseClosure } from '../../src/closure/read.js';

const S = '/nix/store';
const h = (c: string) => c.repeat(32);

test('names split as Nix splits them when the closure says nothing more', () => {
  assert.deepEqual(packageOf({ path: `${S}/${h('a')}-curl-8.0.1-bin` }, S), { pname: 'curl', version: '8.0.1-bin' });
  assert.deepEqual(packageOf({ path: `${S}/${h('a')}-openssl-1.1.1k` }, S), { pname: 'openssl', version: '1.1.1k' });
  assert.deepEqual(packageOf({ path: `${S}/${h('a')}-greeting-data` }, S), { pname: 'greeting-data', version: '' });
});

test('pname, version and output from the closure win, and give the same tag as the split', () => {
  const recorded = packageOf({ path: `${S}/${h('a')}-curl-8.0.1-bin`, pname: 'curl', version: '8.0.1', output: 'bin' }, S);
  assert.deepEqual(recorded, { pname: 'curl', version: '8.0.1', output: 'bin' });
  const parsed = packageOf({ path: `${S}/${h('a')}-curl-8.0.1-bin` }, S);
  assert.equal(versionTag(recorded), '8.0.1-bin');
  assert.equal(versionTag(recorded), versionTag(parsed));
  assert.equal(versionTag({ pname: 'curl', version: '8.0.1', output: 'out' }), '8.0.1', 'the default output adds nothing');
});

test('the closure readers keep package fields, but a numeric Nix format version is not a package version', () => {
  const c = parseClosure({ version: 1, paths: [{ path: `${S}/${h('a')}-curl-8.0.1-bin`, references: [], pname: 'curl', version: '8.0.1', outputName: 'bin' }] }, 'strata.json');
  assert.deepEqual(packageOf(c.paths.get(`${S}/${h('a')}-curl-8.0.1-bin`)!, S), { pname: 'curl', version: '8.0.1', output: 'bin' });
  const nix233 = parseClosure({ [`${S}/${h('b')}-hello-2.12`]: { references: [], version: 2, storeDir: S } }, 'path-info.json');
  assert.deepEqual(packageOf(nix233.paths.get(`${S}/${h('b')}-hello-2.12`)!, S), { pname: 'hello', version: '2.12' });
  assert.throws(() => parseClosure({ version: 1, paths: [{ path: `${S}/${h('a')}-x-1`, references: [], pname: 'x', version: 3 }] }, 'bad.json'),
    /bad\.json: store path .*-x-1 has a "version" that is not a non-empty string/);
});

test('tags: registry characters only; build tags carry the hash prefix; an unversioned name gets a word', () => {
  assert.equal(versionTag({ pname: 'foo', version: '1.0+git20240101' }), '1.0_git20240101');
  assert.equal(versionTag({ pname: 'data', version: '' }), 'unversioned');
  assert.equal(buildTag({ pname: 'hello', version: '2.1' }, `${S}/kmg8krvd5bfxxacj8y27l089b9m335wp-hello-2.1`, S), '2.1-kmg8krvd');
});

test('version tags are told from build tags by the plain tag beside them', () => {
  const tags = ['2.1', '2.1-kmg8krvd', '2.1-k97nc3d1', '1.0-20240101', '3.0-abcdfghi'];
  // 1.0-20240101 has no plain 1.0 beside it, so it is a version; 3.0-abcdfghi likewise.
  assert.deepEqual(versionTags(tags), ['2.1', '1.0-20240101', '3.0-abcdfghi']);
});

test('repository names follow the registry grammar; + is spelt out', () => {
  assert.equal(repositoryName('curl'), 'curl');
  assert.equal(repositoryName('SDL2'), 'sdl2');
  assert.equal(repositoryName('libstdc++'), 'libstdcplusplus');
  assert.equal(repositoryName('gtk+3'), 'gtkplus3');
  assert.equal(repositoryName('python3.11-requests'), 'python3.11-requests');
  assert.equal(repositoryName('foo._bar'), 'foo-bar');
  assert.equal(repositoryName('-weird-'), 'weird');
  assert.throws(() => repositoryName('-._'), /no letters or digits/);
  // 'plus' is spelt out: the two names below would collide, which publish refuses (tested end to end).
  assert.equal(repositoryName('a+'), repositoryName('aplus'));
});

test('publish refuses two package names that would share a repository, before reading the store', async (t) => {
  const { runStrata } = await import('../support/cli.js');
  const { tempDir } = await import('../support/paths.js');
  const { writeFileSync, existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  const dir = tempDir(t, 'strata-pkgname');
  const closure = join(dir, 'closure.json');
  writeFileSync(closure, JSON.stringify({ version: 1, paths: [
    { path: `${S}/${h('a')}-gtk+-3.0`, references: [] },
    { path: `${S}/${h('b')}-gtkplus-3.0`, references: [] },
  ] }));
  const r = await runStrata(['publish', closure, '--store-root', dir, '--to', `oci:${join(dir, 'out')}`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /packages "gtk\+" and "gtkplus" would both be published as repository gtkplus/);
  assert.ok(!existsSync(join(dir, 'out')), 'nothing written');
});
