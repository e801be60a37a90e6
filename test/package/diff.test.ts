/**
 * Issue 18: `strata diff` between two releases of a real Nix closure reports the layers and store
 * paths that changed and the bytes a client that has the first downloads for the second — the
 * same figure `inspect --previous` gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { nixStoreFixture } from '../support/nix-store.js';

const fixture = nixStoreFixture('diff');

async function strata(args: readonly string[]): Promise<string> {
  const r = await runStrata(args);
  assert.equal(r.code, 0, `strata ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}

const closurePaths = (file: string) => (JSON.parse(readFileSync(file, 'utf8')) as { path: string }[]).map((p) => p.path);

test('diff of release N and N+1: the store paths Nix changed, the layers that carry them, the bytes inspect --previous reports', async () => {
  const { dir, store } = fixture;
  const [r1, r2] = store.releases;
  const layout = join(dir, 'out');
  await strata(['build', r1.closureFile, '--store-root', store.storeRoot, '-o', `oci:${layout}:1`]);
  await strata(['build', r2.closureFile, '--store-root', store.storeRoot, '--previous', `oci:${layout}:1`, '-o', `oci:${layout}:2`]);
  const d = JSON.parse(await strata(['diff', `oci:${layout}:1`, `oci:${layout}:2`, '--json'])) as {
    kept: { digest: string }[]; added: { digest: string; size: number; storePaths: string[] }[]; removed: unknown[];
    downloadBytes: number; storePaths: { added: string[]; removed: string[] };
  };
  const inspected = JSON.parse(await strata(['inspect', `oci:${layout}:2`, '--previous', `oci:${layout}:1`, '--json'])) as { newBytes: number; layers: unknown[] };
  assert.equal(d.downloadBytes, inspected.newBytes);
  assert.equal(d.kept.length + d.added.length, inspected.layers.length);
  const before = new Set(closurePaths(r1.closureFile));
  const after = new Set(closurePaths(r2.closureFile));
  assert.deepEqual(d.storePaths.added, [...after].filter((p) => !before.has(p)).sort());
  assert.deepEqual(d.storePaths.removed, [...before].filter((p) => !after.has(p)).sort());
  assert.ok(d.storePaths.added.includes(r2.paths.data), 'greeting-data 1.1 is new');
  assert.ok(d.kept.length > 0, 'busybox\'s layer is kept');
  // Every added store path is in an added layer.
  for (const p of d.storePaths.added) assert.ok(d.added.some((l) => l.storePaths.includes(p)), p);

  const text = await strata(['diff', `oci:${layout}:1`, `oci:${layout}:2`]);
  assert.match(text, /download {3}.* for a client that has/);
  assert.ok(text.includes(`+ ${r2.paths.data}`));
  assert.ok(text.includes(`- ${r1.paths.data}`));
});
