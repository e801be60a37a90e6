/**
 * Issue 13 §3: `import { build } from 'strata'` works from the packed package, in a project of its
 * own, in a few lines — and gives the same image the CLI gives for the same inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { checkLayout } from '../support/oci-schema.js';
import { repoRoot, tempDir } from '../support/paths.js';
import { run } from '../support/tools.js';

test('the packed package installs and builds an image through its library entry point', { timeout: 600_000 }, async (t) => {
  const dir = tempDir(t, 'strata-pack-');
  // --ignore-scripts: dist is already built by `npm test`; `prepare` would rewrite it under the other tests.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repoRoot });
  const tarball = join(dir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  const project = join(dir, 'project');
  await run('mkdir', ['-p', project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'uses-strata', version: '1.0.0', type: 'module', private: true }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: project });

  const closure = join(repoRoot, 'closures', 'demo', 'closure.json');
  const storeRoot = join(repoRoot, 'closures', 'demo', 'root');
  const viaLibrary = join(dir, 'lib-layout');
  writeFileSync(join(project, 'build.mjs'), [
    "import { build, inspect } from 'strata';",
    `const result = await build({ closure: ${JSON.stringify(closure)}, storeRoot: ${JSON.stringify(storeRoot)},`,
    `  output: ${JSON.stringify(`oci:${viaLibrary}:demo`)}, settings: { architecture: 'amd64', labels: { via: 'library' } }, cache: false });`,
    'const info = await inspect(result.destination);',
    'console.log(JSON.stringify({ imageId: result.image.configDigest, manifest: result.manifestDigest, layers: info.layers.length }));',
  ].join('\n'));
  const out = await run(process.execPath, ['build.mjs'], { cwd: project });
  const lib = JSON.parse(out.stdout) as { imageId: string; manifest: string; layers: number };
  checkLayout(viaLibrary);
  assert.ok(lib.layers > 1);

  // The CLI over the same inputs: the same image, byte for byte.
  const viaCli = join(dir, 'cli-layout');
  const r = await runStrata(['build', closure, '--store-root', storeRoot, '--arch', 'amd64', '--label', 'via=library', '--no-cache', '-o', `oci:${viaCli}:demo`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const cli = JSON.parse(r.stdout) as { imageId: string; manifestDigest: string };
  assert.deepEqual({ imageId: lib.imageId, manifest: lib.manifest }, { imageId: cli.imageId, manifest: cli.manifestDigest });
  assert.equal(readFileSync(join(viaLibrary, 'index.json'), 'utf8'), readFileSync(join(viaCli, 'index.json'), 'utf8'));
});
