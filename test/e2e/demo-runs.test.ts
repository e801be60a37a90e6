/**
 * The bundled demo runs (issue 13 §4): exactly what `npm start` builds loads into podman and
 * `podman run --rm demo:latest` prints the greeting. The expected text is derived without strata:
 * the greeting file that closures/demo/src/hello.S names (parsed from the source), read from the
 * demo store tree. A binary that prints nothing, prints something else or exits non-zero fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { repoRoot } from '../support/paths.js';
import { E2E_PACKAGES, ensurePackages, podman, podmanEnv, run } from '../support/tools.js';

const DEMO = join(repoRoot, 'closures', 'demo');
const HELLO = '/nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0/bin/hello';

/** The greeting hello.S prints: the contents of the file whose path its source spells out. */
function expectedGreeting(): string {
  const source = readFileSync(join(DEMO, 'src', 'hello.S'), 'utf8');
  const m = /^greeting_path:\s*\.asciz\s+"([^"]+)"/m.exec(source);
  assert.ok(m, 'closures/demo/src/hello.S no longer names its greeting file (greeting_path: .asciz "…")');
  const text = readFileSync(join(DEMO, 'root', m[1]!), 'utf8');
  assert.ok(text.trim().length > 0, `the demo greeting ${m[1]} is empty`);
  return text;
}

let dir: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  await ensurePackages(E2E_PACKAGES);
  // Lowercase on purpose, as in podman.test.ts.
  dir = join(tmpdir(), `strata-e2e-demo-${randomBytes(8).toString('hex')}`);
  mkdirSync(dir);
  env = podmanEnv(join(dir, 'podman'));
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

test('the demo binary is a static x86_64 ELF, executable, in the store tree', () => {
  const bin = join(DEMO, 'root', HELLO);
  const bytes = readFileSync(bin);
  assert.deepEqual([...bytes.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${HELLO} is not an ELF file`);
  assert.equal(bytes[4], 2, 'ELFCLASS64');
  assert.equal(bytes.readUInt16LE(18), 62, 'e_machine EM_X86_64');
  assert.ok((statSync(bin).mode & 0o111) === 0o111, `${HELLO} is not executable by all`);
});

test('npm start builds demo-image.tar, and podman runs it: the greeting is printed', async () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const start = pkg.scripts?.start;
  assert.ok(start, 'package.json has no start script');
  const out = join(repoRoot, 'demo-image.tar');
  rmSync(out, { force: true }); // a leftover from an earlier run must not pass for this one's output
  // Exactly the start script, as `npm start` runs it: sh -c in the package root.
  const built = await run('sh', ['-c', start], { cwd: repoRoot });
  assert.ok(existsSync(out), `npm start succeeded but wrote no demo-image.tar:\n${built.stdout}${built.stderr}`);
  assert.match(built.stdout + built.stderr, /image id sha256:[0-9a-f]{64}/, 'npm start should print the image id');

  const loaded = await podman(['load', '-i', out], env);
  assert.match(loaded.stdout + loaded.stderr, /demo:latest/, 'podman load should name the loaded image by its tag');
  const arch = await podman(['image', 'inspect', '--format', '{{.Architecture}}', 'demo:latest'], env);
  assert.equal(arch.stdout.trim(), 'amd64', 'the demo image must carry its binary\'s architecture');

  const r = await podman(['run', '--rm', 'demo:latest'], env);
  assert.equal(r.stdout, expectedGreeting());
});
