#!/usr/bin/env node
/**
 * Bundles the compiled CLI — dist/src/cli/main.js and every module it imports, yargs included —
 * into one CommonJS script, dist/src/cli/strata.cjs, records V8's code cache for it
 * (strata.cjs.v8cache), and writes the `strata` command (package.json's bin),
 * dist/src/cli/strata.mjs, which starts the script from that cache (src/cli/launch.ts).
 *
 * Why: start-up is part of every build's time, and a warm rebuild in place takes a few hundred
 * milliseconds, of which Node's ES module loader resolving, reading and linking ~200 files was
 * about a third, and compiling what they hold much of the rest. One file is one read, and
 * bytecode from the cache needs no compile. The library (dist/src/index.js) and the unbundled
 * main.js stay as they are, for anyone who imports strata or debugs it.
 *
 * Why CommonJS: Node 20 caches code only for scripts (vm.Script), not for ES modules. The
 * sources' `import.meta.url` becomes the script's own file URL, so every path found from it
 * (below) is what the module it replaces found.
 *
 * What stays outside: packages that find files of their own next to their code at run time
 * (sql.js and libdeflate load their .wasm from their package directory), the native addon and
 * the zstd module (found from import.meta.url, see copy-range.ts and zstd-block.ts: the bundle
 * lies one directory below dist/src, as every module it replaces does, so their relative paths
 * hold), and the worker threads' entry files (tar/tar-worker.js, compress/block-worker.js),
 * which run as modules of their own.
 *
 * The code cache is recorded by running the demo build once (npm start's, into a temporary
 * directory): V8 then holds bytecode for every function a build runs. It is only ever a cache:
 * V8 refuses it for another source, Node or set of flags, and the command compiles afresh.
 * Its bytes differ from one recording to the next (which functions V8 has compiled when it is
 * taken), so a build that must be reproducible sets STRATA_CODE_CACHE=off (flake.nix does) and
 * gets the command without it: the same program, compiled at each start.
 *
 *   node src/cli/bundle.mjs [DIST]     (default: dist)
 */
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * string-width (yargs' help layout, through cliui) makes an Intl.Segmenter (~15 ms of ICU data)
 * and compiles /^\p{RGI_Emoji}$/v (~30 ms: the property is thousands of strings) when it loads,
 * on every run, for text strata only prints on --help, and which its own ASCII fast path never
 * uses. Both are made on first use instead (the older string-width under cliui and wrap-ansi has
 * only the segmenter). If string-width's source changes shape, the bundle fails here rather than
 * shipping unpatched.
 */
const LAZY = [
  { every: true, made: 'const segmenter = new Intl.Segmenter();', as: 'let segmenter;', used: 'segmenter.segment(', by: '(segmenter ??= new Intl.Segmenter()).segment(' },
  { made: 'const rgiEmojiRegex = /^\\p{RGI_Emoji}$/v;', as: 'let rgiEmojiRegex;', used: 'rgiEmojiRegex.test(', by: '(rgiEmojiRegex ??= /^\\p{RGI_Emoji}$/v).test(' },
];
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, async (args) => {
      let contents = await readFile(args.path, 'utf8');
      for (const { every, made, as, used, by } of LAZY) {
        if (!every && !contents.includes(made)) continue;
        if (contents.split(made).length !== 2 || contents.split(used).length !== 2) {
          throw new Error(`${args.path}: expected one \`${made}\` and one \`${used}\`; update src/cli/bundle.mjs`);
        }
        contents = contents.replace(made, as).replace(used, by);
      }
      return { contents, loader: 'js' };
    });
  },
};

const dist = process.argv[2] ?? 'dist';
const cliDir = join(dist, 'src', 'cli');
const program = join(cliDir, 'strata.cjs');
const command = join(cliDir, 'strata.mjs');
// A cache is only ever recorded from the program beside it (launch.ts checks the source's digest too).
rmSync(`${program}.v8cache`, { force: true });

await build({
  entryPoints: [join(cliDir, 'main.js')],
  outfile: program,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['sql.js', 'libdeflate'],
  define: { 'import.meta.url': 'strataModuleUrl' },
  banner: { js: "const strataModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [lazyStringWidth],
  logLevel: 'warning',
});
// main.js's #! line is not JavaScript inside launch.ts's function wrapper; a comment keeps the
// line numbers of stack traces. Each import() (libdeflate's glue, an ES module) becomes the
// importModule the wrapper is given: see launch.ts, run().
writeFileSync(program, readFileSync(program, 'utf8').replace(/^#!/, '//').replace(/(?<![\w$.])import\(/g, 'importModule('));

await build({
  stdin: {
    contents: "import { fileURLToPath } from 'node:url';\nimport { launch } from './launch.js';\nlaunch(fileURLToPath(new URL('./strata.cjs', import.meta.url)));\n",
    resolveDir: cliDir,
    sourcefile: 'command.mjs',
  },
  outfile: command,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});

if (process.env.STRATA_CODE_CACHE !== 'off') recordCodeCache();

/** Runs the demo build once with the command just written, which then records its code cache. */
function recordCodeCache() {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const demo = join(repo, 'closures', 'demo');
  const out = mkdtempSync(join(tmpdir(), 'strata-bundle-'));
  try {
    const r = spawnSync(process.execPath, [command, 'build', join(demo, 'closure.json'), '--store-root', join(demo, 'root'), '--tag', 'demo:latest', '-o', join(out, 'demo.tar'), '--cache-dir', join(out, 'cache')], {
      env: { ...process.env, STRATA_RECORD_CODE_CACHE: '1' },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`bundle.mjs: the demo build that records the code cache failed:\n${r.stderr}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
