import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapLimit } from '../../src/util/map-limit.js';

test('mapLimit keeps input order and never has more than `limit` calls in flight', async () => {
  let inFlight = 0;
  let peak = 0;
  const items = Array.from({ length: 40 }, (_, i) => i);
  const out = await mapLimit(items, 3, async (n) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await sleep((n * 7) % 5); // finish out of order
    inFlight--;
    return n * 2;
  });
  assert.deepEqual(out, items.map((n) => n * 2));
  assert.equal(peak, 3);
  assert.deepEqual(await mapLimit([], 4, async () => 1), []);
});

test('mapLimit rejects with the first error and starts nothing after it', async () => {
  const started: number[] = [];
  await assert.rejects(mapLimit(Array.from({ length: 20 }, (_, i) => i), 2, async (n) => {
    started.push(n);
    await sleep(1);
    if (n === 3) throw new Error('boom at 3');
    return n;
  }), /boom at 3/);
  assert.ok(started.length <= 5, `started ${started.join(',')}`);
});
