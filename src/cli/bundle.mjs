#!/usr/bin/env node
/**
 * Bundles the compiled CLI — dist/src/cli/main.js and every module it imports, yargs included —
 * into one file, dist/src/cli/strata.mjs, which is the `strata` command (package.json's bin).
 *
 * Why: start-up is part of every build's time, and a warm rebuild in place takes a few hundred
 * milliseconds, of which Node's ES module loader resolving, reading and linking ~200 files was
 * about a third. One file is one read and one compile. The library (dist/src/index.js) and the
 * unbundled main.js stay as they are, for anyone who imports strata or debugs it.
 *
 * What stays outside: packages that find files of their own next to their code at run time
 * (sql.js and libdeflate load their .wasm from their package directory), the native addon and
 * the zstd module (found from import.meta.url, see copy-range.ts and zstd-block.ts: the bundle
 * lies one directory below dist/src, as every module it replaces does, so their relative paths
 * hold), and the worker threads' entry files (tar/tar-worker.js, compress/block-worker.js),
 * which run as modules of their own.
 *
 *   node src/cli/bundle.mjs [DIST]     (default: dist)
 */
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * string-width (yargs' help layout, through cliui) makes an Intl.Segmenter when it loads: ~15 ms
 * of ICU data on every run, for text strata only prints on --help, and which its own ASCII fast
 * path never uses. Made on first use instead. If string-width's source changes shape, the bundle
 * fails here rather than shipping unpatched.
 */
const lazySegmenter = {
  name: 'lazy-segmenter',
  setup(b) {
    b.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const made = 'const segmenter = new Intl.Segmenter();';
      const used = 'segmenter.segment(';
      if (source.split(made).length !== 2 || source.split(used).length !== 2) {
        throw new Error(`${args.path}: expected one \`${made}\` and one \`${used}\`; update src/cli/bundle.mjs`);
      }
      const contents = source.replace(made, 'let segmenter;').replace(used, '(segmenter ??= new Intl.Segmenter()).segment(');
      return { contents, loader: 'js' };
    });
  },
};

const dist = process.argv[2] ?? 'dist';
await build({
  entryPoints: [join(dist, 'src', 'cli', 'main.js')],
  outfile: join(dist, 'src', 'cli', 'strata.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['sql.js', 'libdeflate'],
  // Bundled CommonJS packages (fast-glob, tar-stream) call require() for Node's own modules.
  banner: { js: "import { createRequire as strataRequire } from 'node:module';\nconst require = strataRequire(import.meta.url);" },
  plugins: [lazySegmenter],
  logLevel: 'warning',
});
