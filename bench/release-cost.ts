/**
 * What a release costs to rebuild (issue 17): the strata CLI on the synthetic closure
 * (bench/synthetic-store.ts, ~850 MB, 184 paths), a cold build of release 1 with an empty
 * cache, then release 2 — one leaf file changed, in a private hard-linked copy of the store —
 * built warm into the same output, per output format. Printed as warm/cold ratios measured in the
 * same run (the machines are shared and noisy; nothing is asserted).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/release-cost.js
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSyntheticStore, firstFile } from './synthetic-store.js';
import { startRegistry } from '../test/support/registry.js';

const WORK = '/tmp/strata-bench-release';
const cli = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'src', 'cli', 'main.js');

interface Run { seconds: number; cache: { trusted: number; hashed: number; hits: number; misses: number } }

function strata(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(process.execPath, [cli, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      if (code !== 0) return rej(new Error(`strata ${args.join(' ')}: ${err}`));
      res({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, cache: (JSON.parse(out) as { cache: Run['cache'] }).cache });
    });
  });
}


const store = await ensureSyntheticStore((s) => console.error(s));
rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
const cases = [
  { name: 'docker-archive (default)', out: 'image.tar', flags: [] as string[] },
  // The same with copies through user space: what the kernel copies (copy_file_range) save.
  { name: 'docker-archive, no kernel copies', out: 'image-user.tar', flags: [] as string[], env: { ...process.env, STRATA_NO_KERNEL_COPY: '1' } },
  { name: 'OCI layout, uncompressed, in place', out: 'layout-none', flags: ['--format', 'oci', '--compress', 'none'] },
  { name: 'OCI layout, gzip, in place', out: 'layout-gzip', flags: ['--format', 'oci', '--compress', 'gzip'] },
  { name: 'OCI layout, zstd, in place', out: 'layout-zstd', flags: ['--format', 'oci', '--compress', 'zstd'] },
  // --push to a registry on 127.0.0.1 (gzip): a warm release sends only the changed layer, and
  // layers the registry has are taken by a HEAD, without reading the cache's copy.
  { name: 'push to a local registry (gzip)', out: 'push', flags: [] as string[], push: true },
];
const registry = await startRegistry();
console.log(`synthetic store: ${(store.totalBytes / 1e6).toFixed(0)} MB, ${store.storePaths.length} paths; node ${process.version}`);
for (const c of cases) {
  const root = join(WORK, 'root');
  rmSync(root, { recursive: true, force: true });
  if (spawnSync('cp', ['-al', store.root, root]).status !== 0) throw new Error('cp -al failed');
  const target = 'push' in c ? ['--push', `${registry.host}/bench/app:1`] : ['-o', join(WORK, c.out)];
  const args = [store.closurePath, '--store-root', root, ...target, '--cache-dir', join(WORK, `cache-${c.out}`), ...c.flags];
  const env = 'env' in c ? c.env : process.env;
  const cold = await strata(['build', ...args], env);
  // Release 2: one file of a leaf (a path nothing refers to) changes.
  const closure = (JSON.parse(readFileSync(store.closurePath, 'utf8')) as { paths: { path: string; references: string[] }[] }).paths;
  const referenced = new Set(closure.flatMap((p) => p.references));
  const leaf = closure.map((p) => p.path).filter((p) => !referenced.has(p)).sort()[0]!;
  const f = firstFile(join(root, leaf));
  const content = readFileSync(f);
  unlinkSync(f);
  writeFileSync(f, Buffer.concat([content, Buffer.from('changed\n')]));
  const warm = await strata(['build', ...args], env);
  const again = await strata(['build', ...args], env);
  console.log(`${c.name.padEnd(36)} cold ${cold.seconds.toFixed(2)} s; release 2 warm ${warm.seconds.toFixed(2)} s = ${(warm.seconds / cold.seconds).toFixed(2)}× cold (${warm.cache.trusted} trusted, ${warm.cache.hashed} hashed); unchanged rebuild ${(again.seconds / cold.seconds).toFixed(2)}× cold (${again.cache.trusted} trusted, ${again.cache.hashed} hashed)`);
}
await registry.stop();
rmSync(WORK, { recursive: true, force: true });
