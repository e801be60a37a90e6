import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stablePlan } from '../../src/layering/stable.js';
import type { LayerPlan } from '../../src/layering/types.js';
import { repoRoot } from '../support/paths.js';
import { decodePlan, fingerprint, goldenClosures, planRequests, previousFor, type RecordedPlan } from '../fixtures/stable/cases.js';

/**
 * stablePlan must keep making exactly the plans recorded in golden.json (from an earlier
 * implementation; see test/fixtures/stable/README.md), so that speed work on the merge step
 * cannot silently change which layers users get. A previous assignment that is another
 * request's plan is taken from the fixture, not from this run.
 */
const golden = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/stable/golden.json'), 'utf8')) as {
  fingerprints: Record<string, string>;
  plans: RecordedPlan[];
};

test('stable golden: the generators still make the recorded closures', () => {
  const closures = goldenClosures();
  assert.deepEqual([...closures.keys()].sort(), Object.keys(golden.fingerprints).sort());
  for (const [id, c] of closures) assert.equal(fingerprint(c), golden.fingerprints[id], `closure ${id} changed: the fixture no longer applies`);
});

test('stable golden: every recorded plan is reproduced exactly', () => {
  const closures = goldenClosures();
  const requests = planRequests();
  assert.deepEqual(requests.map((r) => r.id), golden.plans.map((p) => p.id), 'the requests match the recorded ones');
  const recorded = new Map<string, LayerPlan>();
  requests.forEach((request, k) => {
    const closure = closures.get(request.closure)!;
    const expected = decodePlan(closure, golden.plans[k]!);
    const actual = stablePlan(closure, request.budget, previousFor(request, closures, recorded));
    assert.deepEqual(actual, expected, `plan ${request.id}`);
    recorded.set(request.id, expected);
  });
});
