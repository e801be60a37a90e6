import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot, tempDir } from '../support/paths.js';

const demoRoot = join(repoRoot, 'closures', 'demo', 'root');
const demoClosure = join(repoRoot, 'closures', 'demo', 'closure.json');
const HELLO_OLD = '/nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0';
const HELLO_NEW = '/nix/store/zzzzri27awhf97vii49wzlf792npyffib-demo-hello-1.1';

interface Inspected { layers: { digest: string; storePaths: string[] }[] }

async function ok(args: string[]): Promise<string> {
  const r = await runStrata(args);
  assert.equal(r.code, 0, `strata ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}

/** Release N+1 of the demo: the application changed, so Nix gave it a new store path. */
function nextRelease(dir: string): { closure: string; root: string } {
  const root = join(dir, 'root-next');
  cpSync(demoRoot, root, { recursive: true, verbatimSymlinks: true });
  renameSync(join(root, HELLO_OLD), join(root, HELLO_NEW));
  const script = join(root, HELLO_NEW, 'bin', 'hello');
  writeFileSync(script, `${readFileSync(script, 'utf8')}echo version 1.1\n`);
  const closure = join(dir, 'closure-next.json');
  writeFileSync(closure, readFileSync(demoClosure, 'utf8').replaceAll(HELLO_OLD, HELLO_NEW));
  return { closure, root };
}

test('stable layering: release N+1 built with --previous reuses every layer whose paths did not change, as the same blobs', async (t) => {
  const dir = tempDir(t);
  const next = nextRelease(dir);
  const common = ['--layering', 'stable', '--max-layers', '4', '--no-cache'];
  const n = join(dir, 'n.tar');
  const n1 = join(dir, 'n1.tar');
  await ok(['build', demoClosure, '--store-root', demoRoot, '-o', n, ...common]);
  await ok(['build', next.closure, '--store-root', next.root, '-o', n1, '--previous', n, ...common]);

  const before = JSON.parse(await ok(['inspect', n, '--json'])) as Inspected;
  const after = JSON.parse(await ok(['inspect', n1, '--json'])) as Inspected;
  const storeLayers = (i: Inspected) => i.layers.filter((l) => l.storePaths.length > 0);
  assert.equal(storeLayers(after).length, 3, 'budget: 4 layers minus the customisation layer');

  const oldDigests = new Map(before.layers.map((l) => [l.digest, l.storePaths.join(' ')]));
  let reused = 0;
  for (const layer of storeLayers(after)) {
    if (layer.storePaths.includes(HELLO_NEW)) {
      assert.ok(!oldDigests.has(layer.digest), 'the layer with the changed application is new');
      continue;
    }
    // Unchanged paths: the very same blob as in release N, with the same paths.
    assert.ok(oldDigests.has(layer.digest), `layer with ${layer.storePaths.join(', ')} was not reused`);
    assert.equal(oldDigests.get(layer.digest), layer.storePaths.join(' '));
    reused++;
  }
  assert.ok(reused >= 1, 'some layer was reused');

  // inspect --previous marks the same layers as reused, and counts only the rest as new bytes.
  const diff = JSON.parse(await ok(['inspect', n1, '--previous', n, '--json'])) as { layers: { inPrevious: boolean; size: number; storePaths: string[] }[]; newBytes: number };
  // The customisation layer (no store paths) is the same in both releases too.
  assert.equal(diff.layers.filter((l) => l.inPrevious && l.storePaths.length > 0).length, reused);
  assert.equal(diff.layers.filter((l) => l.inPrevious && l.storePaths.length === 0).length, 1);
  assert.equal(diff.newBytes, diff.layers.filter((l) => !l.inPrevious).reduce((s, l) => s + l.size, 0));
  assert.match(await ok(['inspect', n1, '--previous', n]), /reused/);

  // The plan says the same, from the image (--previous) and from a plan file (--plan-in).
  const planPrev = JSON.parse(await ok(['plan', next.closure, '--previous', n, '--json', ...common.filter((a) => a !== '--no-cache')])) as { layers: { paths: string[]; reusedFrom?: number }[] };
  assert.equal(planPrev.layers.filter((l) => l.reusedFrom !== undefined).length, reused);
  const planN = join(dir, 'plan-n.json');
  writeFileSync(planN, await ok(['plan', demoClosure, '--json', '--layering', 'stable', '--max-layers', '4']));
  const planIn = JSON.parse(await ok(['plan', next.closure, '--plan-in', planN, '--json', '--layering', 'stable', '--max-layers', '4'])) as typeof planPrev;
  assert.deepEqual(planIn.layers, planPrev.layers);
});

test('--previous with an image strata did not build is a clear error', async (t) => {
  const dir = tempDir(t);
  const r = await runStrata(['plan', demoClosure, '--layering', 'stable', '--previous', join(dir, 'missing.tar')]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /missing\.tar/);
});
