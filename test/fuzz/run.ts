/**
 * `npm run fuzz`: the long pass over every fuzz target (test/fuzz/targets.ts). Prints, per target,
 * the inputs tried, how many were accepted and refused, the crashes (with the first few inputs
 * that caused them) and hangs, and the peak memory of the run. Exits non-zero on any crash or hang.
 *
 *   node dist/test/fuzz/run.js [--runs 100000] [--seed 1]
 */
import fc from 'fast-check';
import { attempt, makeCorpus, targets } from './targets.js';

const argv = process.argv.slice(2);
const get = (flag: string, d: string) => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1]! : d;
};
const runs = Number(get('--runs', '100000'));
const seed = Number(get('--seed', '1'));

const corpus = await makeCorpus();
let bad = 0;
try {
  const all = targets(corpus);
  // The slow readers (files on disk) get fewer inputs than the in-memory ones.
  const weights = all.map((t) => (t.name.includes('archive') || t.name.includes('layout') ? 1 : 6));
  const total = weights.reduce((a, b) => a + b, 0);
  let tried = 0;
  for (const [i, t] of all.entries()) {
    const n = Math.max(1, Math.round((runs * weights[i]!) / total));
    const counts = { accepted: 0, refused: 0, crash: 0, hang: 0 };
    const examples: string[] = [];
    const started = Date.now();
    for (const input of fc.sample(t.input, { numRuns: n, seed: seed + i })) {
      const o = await attempt(t, input);
      if (o === 'accepted' || o === 'refused' || o === 'hang') counts[o]++;
      else {
        counts.crash++;
        if (examples.length < 3) examples.push(`${o.crash.split('\n').slice(0, 3).join(' | ')}\n      input: ${JSON.stringify(input)?.slice(0, 300)}`);
      }
    }
    tried += n;
    bad += counts.crash + counts.hang;
    console.log(`${t.name.padEnd(28)} ${String(n).padStart(7)} inputs  ${counts.accepted} accepted, ${counts.refused} refused, ${counts.crash} crashes, ${counts.hang} hangs  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    for (const e of examples) console.log(`    crash: ${e}`);
  }
  console.log(`${tried} inputs in all; peak memory ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; seed ${seed}`);
} finally {
  await corpus.close();
}
process.exitCode = bad > 0 ? 1 : 0;
