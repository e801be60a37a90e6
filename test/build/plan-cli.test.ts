import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot, tempDir } from '../support/paths.js';

/**
 * `strata plan --layering popularity` against the order nixpkgs' own closure-graph.py printed for
 * a 60-path graph (test/fixtures/popularity/random-60.json), with nixpkgs' budget rule applied by
 * hand here: max-layers M leaves M-1 store layers; the first M-2 paths get one layer each and the
 * rest share the last.
 */
const fixture = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/popularity/random-60.json'), 'utf8')) as { graph: unknown[]; expectedOrder: string[] };

for (const maxLayers of [100, 25, 2]) {
  test(`strata plan --layering popularity --max-layers ${maxLayers} equals nixpkgs' order and split`, async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'graph.json');
    writeFileSync(file, JSON.stringify({ closure: fixture.graph }));
    const r = await runStrata(['plan', file, '--layering', 'popularity', '--max-layers', String(maxLayers), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as { layers: { paths: string[] }[] };
    const order = fixture.expectedOrder;
    const budget = maxLayers - 1;
    const expected = order.length <= budget
      ? order.map((p) => [p])
      : [...order.slice(0, budget - 1).map((p) => [p]), order.slice(budget - 1).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))];
    assert.deepEqual(plan.layers.map((l) => l.paths), expected);
  });
}
