// Builds the kernel-copy helper (copy_range.c) with the node-gyp that npm ships, at `npm ci`.
// Optional: where it cannot be built (no compiler, no Node headers), strata copies through user
// space instead, so this prints why and exits 0 rather than failing the install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const gyp = process.env.npm_config_node_gyp;
if (process.platform !== 'linux') {
  console.error('strata: copy_file_range is Linux-only; copies go through user space');
  process.exit(0);
}
if (!gyp || !existsSync(gyp)) {
  console.error('strata: npm did not say where node-gyp is; the kernel-copy helper is not built (copies go through user space)');
  process.exit(0);
}
const nodedir = process.env.npm_config_nodedir;
const args = [gyp, 'rebuild', '--directory', here, ...(nodedir ? ['--nodedir', nodedir] : [])];
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (r.status !== 0 || !existsSync(join(here, 'build', 'Release', 'copy_range.node'))) {
  const why = (r.stderr ?? '').split('\n').filter((l) => /error|ERR!/i.test(l)).slice(0, 3).join('; ');
  console.error(`strata: the kernel-copy helper could not be built (${why || `node-gyp exited ${r.status}`}); copies go through user space`);
}
