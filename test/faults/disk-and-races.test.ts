/**
 * Issue 19, part 4: a full disk gives a clear error naming the output and leaves nothing; two
 * builds to one output path, and two writers adding to one OCI layout, at once end with a valid
 * result — one whole image, or both refs — never a mix, and no temporary file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { cliPath, repoRoot } from '../support/paths.js';
import { checkLayout } from '../support/oci-schema.js';

const BIG = '/nix/store/0bigbigbigbigbigbigbigbigbigbig0-big-1.0';
let dir: string;
let closure: string;
let root: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-disk-'));
  root = join(dir, 'root');
  mkdirSync(join(root, BIG), { recursive: true });
  writeFileSync(join(root, BIG, 'blob'), randomBytes(12 << 20));
  closure = join(dir, 'closure.json');
  writeFileSync(closure, JSON.stringify({ version: 1, paths: [{ path: BIG, references: [], narSize: 12 << 20 }] }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a full disk (a 4 MiB tmpfs): one line naming the output and the full disk, nothing left on it', async () => {
  const fs = join(dir, 'small');
  mkdirSync(fs);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', fs]);
  try {
    for (const [out, flags] of [[join(fs, 'out.tar'), []], [join(fs, 'out'), ['--format', 'oci', '--compress', 'none']], [`oci:${join(fs, 'layout')}:1`, ['--compress', 'none']]] as const) {
      const r = await runStrata(['build', closure, '--store-root', root, '--no-cache', '-o', out, ...flags]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /^strata: error: output .* no space left on the device/);
      assert.ok(r.stderr.includes(out), `names ${out}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.deepEqual(readdirSync(fs), [], 'nothing left on the full disk');
    }
  } finally {
    execFileSync('umount', [fs]);
  }
});

const demo = ['build', join(repoRoot, 'closures', 'demo', 'closure.json'), '--store-root', join(repoRoot, 'closures', 'demo', 'root'), '--no-cache'];

function strataAsync(args: readonly string[]): Promise<number | null> {
  return new Promise((res) => spawn(process.execPath, [cliPath, ...args], { stdio: 'ignore' }).on('close', res));
}

test('two builds to one output path at once: the output is one of the two images, whole', async () => {
  const work = join(dir, 'race');
  mkdirSync(work);
  const out = join(work, 'same.tar');
  const codes = await Promise.all(['A', 'B'].map((v) => strataAsync([...demo, '--env', `WHO=${v}`, '--tag', `race:${v}`, '-o', out])));
  assert.deepEqual(codes, [0, 0]);
  const r = await runStrata(['inspect', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const env = (JSON.parse(r.stdout) as { config: { Env?: string[] } }).config.Env ?? [];
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' })) as { RepoTags: string[] }[];
  const who = env.find((e) => e.startsWith('WHO='))!.slice(4);
  assert.deepEqual(manifest[0]!.RepoTags, [`race:${who}`], 'the config and the names are of the same build');
  assert.deepEqual(readdirSync(work), ['same.tar'], 'no temporary file');
});

test('adding to a layout another strata is just making (blobs/ and its oci-layout temp file) works; a foreign directory is refused', async () => {
  // The moment the three-writer race below can catch: blobs/ made, oci-layout still a temp file.
  const making = join(dir, 'making');
  mkdirSync(join(making, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(making, '.oci-layout.strata-0123456789ab.tmp'), '{"imageLayoutVersion":"1.0.0"}');
  const ok = await runStrata([...demo, '-o', `oci:${making}:x`]);
  assert.equal(ok.code, 0, ok.stderr);
  // A file of someone else's beside blobs/: not a layout, nothing added.
  const foreign = join(dir, 'foreign');
  mkdirSync(join(foreign, 'blobs'), { recursive: true });
  writeFileSync(join(foreign, 'notes.txt'), 'mine');
  const refused = await runStrata([...demo, '-o', `oci:${foreign}:x`]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /not empty and not an OCI layout/);
  assert.deepEqual(readdirSync(foreign).sort(), ['blobs', 'notes.txt']);
});

test('two writers adding to one OCI layout at once: both refs are there, the layout valid', async () => {
  const layout = join(dir, 'shared');
  const codes = await Promise.all(['one', 'two', 'three'].map((v) => strataAsync([...demo, '--env', `WHO=${v}`, '-o', `oci:${layout}:${v}`])));
  assert.deepEqual(codes, [0, 0, 0]);
  const refs = (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] }).manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']).sort();
  assert.deepEqual(refs, ['one', 'three', 'two']);
  checkLayout(layout);
  assert.equal(existsSync(join(layout, 'index.json.lock')), false);
  assert.deepEqual(readdirSync(join(layout, 'blobs', 'sha256')).filter((n) => n.startsWith('.')), [], 'no incoming blob left');
});
