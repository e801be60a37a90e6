/**
 * Issue 18: a docker-archive built without --tag is named after its root package, with a tag
 * from its content (as nixpkgs tags an image with its hash), so `podman load` gives a named
 * image, and the same content gets the same name on every rebuild.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot, tempDir } from '../support/paths.js';
import { E2E_PACKAGES, ensurePackages, podman, podmanEnv } from '../support/tools.js';
import { tarMemberText } from '../support/archive.js';

const demoRoot = join(repoRoot, 'closures', 'demo', 'root');
const demoClosure = join(repoRoot, 'closures', 'demo', 'closure.json');

test('no --tag: the archive is named <root package>:<content hash>, the same on a rebuild, and podman load gives that name', async (t) => {
  await ensurePackages(E2E_PACKAGES);
  const dir = tempDir(t);
  const build = async (out: string, cwd: string) => {
    const r = await runStrata(['build', demoClosure, '--store-root', demoRoot, '-o', out, '--json'], { cwd });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { imageId: string; tags: string[] };
  };
  const first = await build(join(dir, 'a.tar'), repoRoot);
  const second = await build(join(dir, 'b.tar'), dir);
  assert.deepEqual(second.tags, first.tags, 'the same name for the same content');
  assert.deepEqual(first.tags, [`demo-hello:${first.imageId.slice('sha256:'.length, 'sha256:'.length + 32)}`]);
  const manifest = JSON.parse(tarMemberText(join(dir, 'a.tar'), 'manifest.json')) as { RepoTags: string[] }[];
  assert.deepEqual(manifest[0]!.RepoTags, first.tags);

  const env = podmanEnv(join(dir, 'podman'));
  await podman(['load', '-i', join(dir, 'a.tar')], env);
  const listed = (await podman(['images', '--format', '{{.Repository}}:{{.Tag}}'], env)).stdout.split('\n').filter(Boolean);
  assert.ok(listed.some((n) => n.endsWith(`/${first.tags[0]}`)), `podman lists ${JSON.stringify(listed)}`);

  // An explicit --tag wins, and nothing else is added.
  const tagged = await runStrata(['build', demoClosure, '--store-root', demoRoot, '-o', join(dir, 'c.tar'), '--tag', 'mine:1', '--json']);
  assert.deepEqual((JSON.parse(tagged.stdout) as { tags: string[] }).tags, ['mine:1']);
});
