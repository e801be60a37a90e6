/**
 * The short, seeded fuzz pass CI runs (issue 19, part 2): a few hundred generated and mutated
 * inputs per reader (test/fuzz/targets.ts), none of which may crash (an exception other than a
 * StrataError, or a refusal that does not name its input) or hang. `npm run fuzz` is the long pass.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { attempt, makeCorpus, targets, type Corpus, type Target } from './targets.js';
import { StrataError } from '../../src/util/errors.js';

let corpus: Corpus;
before(async () => {
  corpus = await makeCorpus();
});
after(async () => corpus.close());

test('every reader survives a seeded pass of generated and mutated inputs', async () => {
  for (const [i, t] of targets(corpus).entries()) {
    const runs = t.name.includes('archive') || t.name.includes('layout') ? 60 : 300;
    const crashes: string[] = [];
    let refused = 0;
    for (const input of fc.sample(t.input, { numRuns: runs, seed: 1000 + i })) {
      const o = await attempt(t, input);
      if (o === 'hang') crashes.push(`hang on ${JSON.stringify(input)?.slice(0, 200)}`);
      else if (typeof o === 'object') crashes.push(`${o.crash.split('\n')[0]} on ${JSON.stringify(input)?.slice(0, 200)}`);
      else if (o === 'refused') refused++;
    }
    assert.deepEqual(crashes, [], `${t.name}: ${crashes.length} crashes`);
    assert.ok(refused > 0, `${t.name}: the inputs reach the refusals`);
  }
});

test('the harness tells a crash, an unnamed refusal and a hang from a refusal', async () => {
  const base: Omit<Target<number>, 'run'> = { name: 'probe', input: fc.nat(), culprit: () => 'probe input' };
  assert.equal(await attempt({ ...base, run: async () => { throw new StrataError('probe input is bad'); } }, 1), 'refused');
  assert.ok(typeof (await attempt({ ...base, run: async () => { throw new TypeError('x is undefined'); } }, 1)) === 'object');
  assert.ok(typeof (await attempt({ ...base, run: async () => { throw new StrataError('something is bad'); } }, 1)) === 'object');
  assert.equal(await attempt({ ...base, run: () => new Promise(() => undefined) }, 1, 50), 'hang');
});
