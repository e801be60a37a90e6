/**
 * A closure straight from Nix: `strata build ./result` (or a store path) runs
 * `nix path-info --json --recursive` itself, so `nix build .#app && strata build ./result` is
 * the whole step. Whatever Nix prints is read as any closure file is (parseClosure).
 */
import { spawn } from 'node:child_process';
import { lstat, readlink, stat } from 'node:fs/promises';
import { isAbsolute, resolve, dirname } from 'node:path';
import { StrataError } from '../util/errors.js';
import { parseClosure, type ReadClosureOptions } from './read.js';
import type { Closure } from './types.js';

/**
 * The top-level store path `arg` names, when it names one rather than a closure file: a path
 * under `storeDir` that is not a regular file here (a directory, or absent because it lives in
 * another store), or a symlink such as `./result` pointing at one. Undefined otherwise.
 */
export async function storePathArgument(arg: string, storeDir: string): Promise<string | undefined> {
  const st = await stat(arg).catch(() => undefined);
  if (st?.isFile()) return undefined;
  const prefix = `${storeDir.replace(/\/+$/, '')}/`;
  const top = (p: string): string | undefined => {
    if (!p.startsWith(prefix)) return undefined;
    const name = p.slice(prefix.length).split('/')[0];
    return name ? `${prefix}${name}` : undefined;
  };
  const direct = top(resolve(arg));
  if (direct) return direct;
  const l = await lstat(arg).catch(() => undefined);
  if (!l?.isSymbolicLink()) return undefined;
  const target = await readlink(arg);
  return top(isAbsolute(target) ? target : resolve(dirname(arg), target));
}

export interface NixQueryOptions extends ReadClosureOptions {
  /** Passed to nix as `--store` (a chroot store, a remote store URL). */
  readonly nixStore?: string;
}

/** Runs `nix path-info --json --recursive STOREPATH` and reads its closure; the root is the path asked for. */
export async function queryClosure(storePath: string, opts: NixQueryOptions = {}): Promise<Closure> {
  const args = ['path-info', '--json', '--recursive', '--extra-experimental-features', 'nix-command', ...(opts.nixStore ? ['--store', opts.nixStore] : []), storePath];
  const { code, stdout, stderr } = await run('nix', args);
  if (code === undefined) throw new StrataError(`${storePath} is a store path, and strata asks Nix for its closure, but there is no \`nix\` command here: install Nix, or give a closure file (nix path-info --json --recursive ${storePath} > closure.json)`);
  if (code !== 0) throw new StrataError(`nix path-info --json --recursive ${storePath} failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' ') || 'no message'}`);
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch (e) {
    throw new StrataError(`nix path-info --json --recursive ${storePath} printed something that is not JSON: ${(e as Error).message}`);
  }
  return parseClosure(json, `nix path-info of ${storePath}`, { ...opts, roots: opts.roots ?? [storePath] });
}

function run(cmd: string, args: readonly string[]): Promise<{ code: number | undefined; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', () => res({ code: undefined, stdout: '', stderr: '' }));
    child.on('close', (code) => res({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}
