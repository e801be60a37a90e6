import { spawn } from 'node:child_process';
import { cliPath, repoRoot } from './paths.js';

export interface RunResult { code: number | null; stdout: string; stderr: string; stdoutBytes: Buffer }

/** Runs the compiled strata CLI and collects its output. Never throws on a non-zero exit. */
export function runStrata(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: Buffer } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      cwd: opts.cwd ?? repoRoot,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolvePromise({ code, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
    child.stdin.end(opts.input ?? Buffer.alloc(0));
  });
}
