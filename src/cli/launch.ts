/**
 * Starts the bundled CLI (dist/src/cli/strata.cjs, made by src/cli/bundle.mjs) from V8's code
 * cache. The `strata` command (dist/src/cli/strata.mjs) is this module and nothing else.
 *
 * Why: compiling the ~1 MB bundle, and then each function it runs, was ~40 ms of compile and
 * ~100 ms of CPU in all on every run — a third of a warm rebuild in place. Node 22 has a module
 * compile cache; Node 20 has none for ES modules, so the bundle is a CommonJS script compiled
 * through `vm.Script` with the bytecode that `npm run build` recorded (`strata.cjs.v8cache`,
 * made by running the demo build once). V8 checks the cache against its own version and flags
 * and compiles afresh when either differs (another Node, `--cpu-prof`), but of the source it
 * checks only the length: a cache left from another build of the same length would run that
 * build's code. So the cache starts with the sha256 of the source it was recorded from, and is
 * not given to V8 unless that is this source's (~1 ms for the bundle). The cache can make
 * start-up faster, never change what runs. It lies beside the code, so it is exactly as trusted
 * as the code; nothing is written at run time unless bundle.mjs asks for a new cache.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname } from 'node:path';
import vm from 'node:vm';
import { tempBeside } from '../util/output-path.js';

/** How the cache fared: V8 used it, it was refused (another source, Node or flags), or there was none. */
export type CodeCache = 'accepted' | 'rejected' | 'missing';

/** The code cache recorded for `program`. */
export const cachePathOf = (program: string): string => `${program}.v8cache`;

export interface Program {
  cache: CodeCache;
  /**
   * Runs the program as Node runs a CommonJS module (its own require, __filename, __dirname).
   * import() inside a vm.Script needs a loader callback, which Node 20 loses when the script
   * comes from a code cache (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), and whose main-context
   * form prints an ExperimentalWarning; so the program imports through this module's import().
   */
  run(): void;
  /** The cache to write: the source's digest, then the bytecode of everything compiled so far (after a run, what it ran). */
  record(): Buffer;
}

/** The cache's first bytes: the sha256 of the source it was recorded from. */
const SOURCE_DIGEST_BYTES = 32;

/** Compiles the CommonJS script `program`, from its code cache when it is this source's and V8 accepts it. */
export function compileProgram(program: string): Program {
  const bytes = readFileSync(program);
  const digest = createHash('sha256').update(bytes).digest();
  const cached = readIfPresent(cachePathOf(program));
  const ours = cached !== undefined && cached.length > SOURCE_DIGEST_BYTES && digest.equals(cached.subarray(0, SOURCE_DIGEST_BYTES));
  const cachedData = ours ? cached.subarray(SOURCE_DIGEST_BYTES) : undefined;
  // Node's own module wrapper, on the first line so line numbers in stack traces hold, and one
  // more argument: the program's import() (bundle.mjs renames it importModule, see run()).
  const source = `(function (exports, require, module, __filename, __dirname, importModule) {${bytes.toString('utf8')}\n})`;
  // The script's name is its file's name only: V8 keeps the name the cache was recorded under
  // (the build tree, for the cache an npm package ships), so a full path would name that tree in
  // the stack traces of every installed copy whose cache is accepted, and only theirs.
  const script = new vm.Script(source, {
    filename: basename(program),
    ...(cachedData ? { cachedData } : {}),
  });
  const cache: CodeCache = cached === undefined ? 'missing' : !cachedData || script.cachedDataRejected ? 'rejected' : 'accepted';
  return {
    cache,
    run() {
      const module = { exports: {} };
      const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
      const importModule = (specifier: string): Promise<unknown> => import(specifier);
      wrapper.call(module.exports, module.exports, createRequire(program), module, program, dirname(program), importModule);
    },
    record: () => Buffer.concat([digest, script.createCachedData()]),
  };
}

function readIfPresent(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Runs `program`. With STRATA_RECORD_CODE_CACHE=1 (set by bundle.mjs only), the bytecode of the
 * run is written to the cache when the process exits, under a temporary name renamed into place
 * (removed if the write fails: a half-written cache is never left beside the program).
 */
export function launch(program: string): void {
  const compiled = compileProgram(program);
  if (process.env.STRATA_RECORD_CODE_CACHE === '1') {
    process.once('exit', () => {
      const temp = tempBeside(cachePathOf(program));
      try {
        writeFileSync(temp, compiled.record());
        renameSync(temp, cachePathOf(program));
      } catch (err) {
        rmSync(temp, { force: true });
        throw err;
      }
    });
  }
  compiled.run();
}
