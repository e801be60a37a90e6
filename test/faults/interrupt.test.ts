/**
 * Issue 19, part 4: SIGINT or SIGTERM in the middle of writing leaves no partial output and no
 * temporary file — beside the output, in the OCI layout added to, in the cache, in TMPDIR — and a
 * registry tag as it was. Each run is stopped once its first temporary file has grown past a few
 * bytes (the signal lands while layer bytes are being written), at several sizes.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath } from '../support/paths.js';
import { startRegistry, type StartedRegistry } from '../support/registry.js';
import { treeDigest } from '../cache/fixture.js';

const BIG = '/nix/store/0bigbigbigbigbigbigbigbigbigbig0-big-1.0';

/** A store of one path with 96 MB of incompressible bytes: gzip takes seconds to get through it. */
function makeBigStore(dir: string): { closure: string; root: string } {
  const root = join(dir, 'root');
  const share = join(root, BIG, 'share');
  mkdirSync(share, { recursive: true });
  for (let i = 0; i < 6; i++) writeFileSync(join(share, `blob-${i}`), randomBytes(16 << 20));
  const closure = join(dir, 'closure.json');
  writeFileSync(closure, JSON.stringify({ version: 1, paths: [{ path: BIG, references: [], narSize: 96 << 20 }] }));
  return { closure, root };
}

/** Every file and directory below `dir` whose name marks it temporary. */
function temporaries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (/\.tmp$|\.tmp\.|\.incoming-|strata-push-|strata-stdout-|\.lock$/.test(e.name)) out.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** The size of the largest temporary file below `dir` (0 when there is none). */
function largestTemporary(dir: string): number {
  let max = 0;
  for (const p of temporaries(dir)) {
    const walk = (q: string): void => {
      const st = statSync(q, { throwIfNoEntry: false });
      if (!st) return;
      if (st.isDirectory()) for (const n of readdirSync(q)) walk(join(q, n));
      else max = Math.max(max, st.size);
    };
    walk(p);
  }
  return max;
}

/**
 * Runs strata, and sends `signal` once a temporary file below `watch` holds more than `bytes`
 * bytes. Resolves with the exit code and stderr; fails if the run ended before it was signalled.
 */
function interrupted(args: readonly string[], watch: string, bytes: number, signal: NodeJS.Signals, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout.resume();
    const poll = setInterval(() => {
      if (!sent && largestTemporary(watch) > bytes) {
        sent = true;
        child.kill(signal);
      }
    }, 5);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      if (!sent) return reject(new Error(`strata ${args.join(' ')} ended (exit ${code}) before it could be interrupted:\n${stderr}`));
      resolve({ code, stderr });
    });
  });
}

const EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

describe('interrupted writes leave nothing behind', { timeout: 300_000 }, () => {
  let dir: string;
  let store: { closure: string; root: string };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'strata-interrupt-'));
    store = makeBigStore(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const cases = [
    { name: 'build to a docker-archive', out: 'image.tar', flags: ['--compress', 'gzip'] },
    { name: 'build to a fresh OCI layout', out: 'layout', flags: ['--format', 'oci'] },
    { name: 'build added to an existing OCI layout', out: 'shared', flags: [], existing: true },
    { name: 'OCI layout rebuilt in place', out: 'rebuilt', flags: ['--format', 'oci'], inPlace: true },
  ];
  for (const c of cases) {
    for (const [signal, bytes] of [['SIGINT', 1 << 10], ['SIGTERM', 8 << 20]] as const) {
      test(`${c.name}, ${signal} after ${bytes} bytes: no output, no temporary file anywhere, the cache and TMPDIR clean`, async () => {
        const work = join(dir, `${c.out}-${signal}`);
        const tmp = join(work, 'tmp');
        mkdirSync(tmp, { recursive: true });
        const env = { ...process.env, TMPDIR: tmp, XDG_CACHE_HOME: join(work, 'xdg') };
        const output = c.existing ? `oci:${join(work, c.out)}:new` : join(work, c.out);
        let before: string | undefined;
        if (c.inPlace) {
          // The layout a previous release built at this output: the rebuild must leave it as it was.
          const seed = spawn(process.execPath, [cliPath, 'build', store.closure, '--store-root', store.root, '--compress', 'none', '--no-cache', '--env', 'RELEASE=1', '-o', join(work, c.out), '--format', 'oci'], { stdio: 'ignore' });
          assert.equal(await new Promise((res) => seed.on('close', res)), 0);
          before = treeDigest(join(work, c.out));
        }
        if (c.existing) {
          // A layout that already holds an image: it must come out exactly as it was.
          mkdirSync(join(work, c.out));
          const seed = spawn(process.execPath, [cliPath, 'build', store.closure, '--store-root', store.root, '--compress', 'none', '--no-cache', '-o', `oci:${join(work, c.out)}:old`], { stdio: 'ignore' });
          assert.equal(await new Promise((res) => seed.on('close', res)), 0);
          before = treeDigest(join(work, c.out));
        }
        const r = await interrupted(['build', store.closure, '--store-root', store.root, '-o', output, ...c.flags], work, bytes, signal, env);
        assert.equal(r.code, EXIT[signal], r.stderr);
        assert.match(r.stderr, new RegExp(`interrupted by ${signal}`));
        assert.doesNotMatch(r.stderr, /\n\s+at /);
        assert.deepEqual(temporaries(work), [], 'no temporary file or directory left');
        if (c.existing || c.inPlace) assert.equal(treeDigest(join(work, c.out)), before, 'the layout is as it was');
        else assert.equal(existsSync(join(work, c.out)), false, 'no output');
        assert.deepEqual(readdirSync(tmp), [], 'TMPDIR is clean');
        const cacheTmp = join(work, 'xdg', 'strata', 'v1', 'tmp');
        assert.deepEqual(existsSync(cacheTmp) ? readdirSync(cacheTmp) : [], [], 'the cache has no temporary file');
      });
    }
  }

  test('a stack and an index write interrupted leave no output and no temporary file', async () => {
    const work = join(dir, 'stack-index');
    const tmp = join(work, 'tmp');
    mkdirSync(tmp, { recursive: true });
    const env = { ...process.env, TMPDIR: tmp, XDG_CACHE_HOME: join(work, 'xdg') };
    const big = `oci:${join(work, 'big')}:1`;
    const seed = spawn(process.execPath, [cliPath, 'build', store.closure, '--store-root', store.root, '--compress', 'none', '--no-cache', '-o', big], { stdio: 'ignore' });
    assert.equal(await new Promise((res) => seed.on('close', res)), 0);
    const before = treeDigest(join(work, 'big'));
    for (const [args, out] of [
      [['stack', big, '--squash', '--compress', 'gzip', '-o', join(work, 'stacked.tar')], join(work, 'stacked.tar')],
      [['index', 'create', '-o', `oci-archive:${join(work, 'index.tar')}`, big], join(work, 'index.tar')],
    ] as const) {
      const r = await interrupted(args, work, 1 << 10, 'SIGINT', env);
      assert.equal(r.code, 130, r.stderr);
      assert.equal(existsSync(out), false, `no ${out}`);
      assert.deepEqual(temporaries(work), [], 'no temporary file');
    }
    assert.equal(treeDigest(join(work, 'big')), before, 'the source layout untouched');
    assert.deepEqual(readdirSync(tmp), []);
  });

  test('a push interrupted mid-upload leaves the tag on the image it named, and no spool file', async () => {
    const reg: StartedRegistry = await startRegistry();
    try {
      const work = join(dir, 'push');
      const tmp = join(work, 'tmp');
      mkdirSync(tmp, { recursive: true });
      const env = { ...process.env, TMPDIR: tmp, XDG_CACHE_HOME: join(work, 'xdg') };
      const ref = `${reg.host}/big/app:1`;
      const small = join(work, 'small.txt');
      writeFileSync(small, 'the first image\n');
      // Tag 1 names a small image first.
      const seed = spawn(process.execPath, [cliPath, 'build', '--add', `${small}:/small.txt`, '--arch', 'amd64', '--push', ref], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      assert.equal(await new Promise((res) => seed.on('close', res)), 0);
      const head = async () => (await fetch(`http://${reg.host}/v2/big/app/manifests/1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } })).headers.get('docker-content-digest');
      const tagged = await head();
      assert.ok(tagged);
      const r = await interrupted(['build', store.closure, '--store-root', store.root, '--push', ref], tmp, 1 << 20, 'SIGINT', env);
      assert.equal(r.code, 130, r.stderr);
      assert.equal(await head(), tagged, 'the tag still names the image it named');
      assert.deepEqual(readdirSync(tmp), [], 'no spool file left in TMPDIR');
    } finally {
      await reg.stop();
    }
  });
});
