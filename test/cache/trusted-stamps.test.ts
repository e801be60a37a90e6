/**
 * Issue 17, parts 1 and 3: a cached blob whose file is unchanged since it was verified (same
 * inode, size, mtime and ctime) is used without being hashed, and an OCI layout rebuilt in place
 * takes its unchanged blobs by a hard link instead of a copy. The bytes are always those of a
 * build without the cache; an edit that restores the mtime is still caught (ctime); the layout
 * keeps only what its index reaches, and a failed rebuild leaves it as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot, tempDir } from '../support/paths.js';
import { checkLayout } from '../support/oci-schema.js';
import { treeDigest } from './fixture.js';

const demoRoot = join(repoRoot, 'closures', 'demo', 'root');
const demoClosure = join(repoRoot, 'closures', 'demo', 'closure.json');

interface CacheStats { hits: number; trusted: number; hashed: number; misses: number; corrupt: number }
interface BuildOut { manifestDigest: string; layers: { digest: string }[]; cache?: CacheStats }

async function build(output: string, extra: readonly string[] = []): Promise<BuildOut> {
  mkdirSync(dirname(output), { recursive: true });
  const r = await runStrata(['build', demoClosure, '--store-root', demoRoot, '-o', output, '--json', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as BuildOut;
}

// A docker-archive copies every trusted layer into its one file without hashing it; layouts link them.
const FORMATS = [
  { name: 'docker-archive', out: (d: string) => join(d, 'image.tar'), flags: [] as string[], trusts: true },
  { name: 'OCI layout, uncompressed', out: (d: string) => join(d, 'layout'), flags: ['--format', 'oci', '--compress', 'none'], trusts: true },
  { name: 'OCI layout, gzip', out: (d: string) => join(d, 'layout'), flags: ['--format', 'oci', '--compress', 'gzip'], trusts: true },
  { name: 'OCI layout, zstd', out: (d: string) => join(d, 'layout'), flags: ['--format', 'oci', '--compress', 'zstd'], trusts: true },
];

for (const f of FORMATS) {
  test(`${f.name}: a rebuild from trusted stamps hashes nothing it trusts and gives the bytes of --no-cache`, async (t) => {
    const dir = tempDir(t);
    const cache = ['--cache-dir', join(dir, 'cache')];
    const reference = f.out(join(dir, 'ref'));
    await build(reference, [...f.flags, '--no-cache']);
    const out = f.out(join(dir, 'out'));
    const cold = await build(out, [...f.flags, ...cache]);
    assert.equal(cold.cache?.trusted, 0);
    // Twice: the second warm build uses what the first one linked into the output.
    for (const round of [1, 2]) {
      const warm = await build(out, [...f.flags, ...cache]);
      assert.equal(warm.manifestDigest, cold.manifestDigest);
      assert.equal(treeDigest(out), treeDigest(reference), 'same bytes as a build without the cache');
      assert.equal(warm.cache!.misses, 0, `round ${round}: ${JSON.stringify(warm.cache)}`);
      assert.equal(warm.cache!.hits, warm.layers.length);
      if (f.trusts) {
        assert.equal(warm.cache!.hashed, 0, `round ${round}: nothing hashed: ${JSON.stringify(warm.cache)}`);
        assert.ok(warm.cache!.trusted >= warm.layers.length);
      }
    }
    const verified = await build(out, [...f.flags, ...cache, '--verify-cache']);
    assert.equal(verified.cache!.trusted, 0, '--verify-cache trusts nothing');
    assert.ok(verified.cache!.hashed >= verified.layers.length);
    assert.equal(verified.manifestDigest, cold.manifestDigest);
  });
}

test('the cache named by a relative path, from another working directory, trusts the stamps an absolute path recorded', async (t) => {
  const dir = tempDir(t);
  const flags = ['--format', 'oci', '--compress', 'none'];
  const layout = join(dir, 'layout');
  await build(layout, [...flags, '--cache-dir', join(dir, 'cache')]);
  const r = await runStrata(['build', demoClosure, '--store-root', demoRoot, '-o', 'layout', '--json', ...flags, '--cache-dir', 'cache'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const warm = JSON.parse(r.stdout) as BuildOut;
  assert.equal(warm.cache!.misses, 0, JSON.stringify(warm.cache));
  assert.equal(warm.cache!.hashed, 0, `nothing hashed: ${JSON.stringify(warm.cache)}`);
});

/** The layout's layer blob files, by digest. */
function layerFiles(layout: string, out: BuildOut): string[] {
  return out.layers.map((l) => join(layout, 'blobs', 'sha256', l.digest.slice('sha256:'.length)));
}

test('an OCI layout rebuilt in place keeps its unchanged blobs untouched; an edit that keeps size and mtime is still caught and rebuilt', async (t) => {
  const dir = tempDir(t);
  const layout = join(dir, 'layout');
  const flags = ['--format', 'oci', '--compress', 'none', '--cache-dir', join(dir, 'cache')];
  const first = await build(layout, flags);
  // Inode and ctime: a link made or removed would change the ctime (and so the blob's stamp).
  const files = (out: BuildOut) => layerFiles(layout, out).map((p) => { const st = statSync(p, { bigint: true }); return `${st.ino}:${st.ctimeNs}`; });
  const stamps = join(dir, 'cache', 'v1', 'stamps');
  const stampTimes = () => readdirSync(stamps).map((n) => `${n}:${statSync(join(stamps, n), { bigint: true }).mtimeNs}`);
  const before = files(first);
  const stampsBefore = stampTimes();
  const second = await build(layout, flags);
  assert.equal(second.manifestDigest, first.manifestDigest);
  // All store layers (not the customisation layer, which is always made) are the same files, untouched.
  assert.deepEqual(files(second).slice(0, -1), before.slice(0, -1), 'the same inodes, never linked again');
  assert.deepEqual(stampTimes(), stampsBefore, 'no stamp written again: every one still holds');
  assert.equal(second.cache!.hashed, 0, JSON.stringify(second.cache));

  // Flip a byte of the largest store layer in place, keeping its size, then put its mtime back.
  const victim = layerFiles(layout, second).slice(0, -1).sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
  const st = statSync(victim, { bigint: true });
  const fd = openSync(victim, 'r+');
  const at = Math.floor(Number(st.size) / 2);
  const byte = readFileSync(victim).subarray(at, at + 1);
  writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
  closeSync(fd);
  const ns = st.mtimeNs;
  execFileSync('touch', ['-m', '-d', `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, victim]);
  assert.equal(statSync(victim, { bigint: true }).mtimeNs, ns, 'the mtime is put back exactly');

  const repaired = await build(layout, flags);
  assert.ok(repaired.cache!.corrupt >= 1, `the edit is found: ${JSON.stringify(repaired.cache)}`);
  assert.equal(repaired.manifestDigest, first.manifestDigest, 'and the layer made again, byte for byte');
  const reference = join(dir, 'ref');
  await build(reference, ['--format', 'oci', '--compress', 'none', '--no-cache']);
  assert.equal(treeDigest(layout), treeDigest(reference));
  checkLayout(layout);
});

test('an OCI layout rebuilt in place keeps only the blobs its index reaches; a failed rebuild leaves it as it was', async (t) => {
  const dir = tempDir(t);
  const layout = join(dir, 'layout');
  const flags = ['--format', 'oci', '--compress', 'none', '--cache-dir', join(dir, 'cache')];
  await build(layout, [...flags, '--env', 'RELEASE=1']);
  const second = await build(layout, [...flags, '--env', 'RELEASE=2']);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.deepEqual(index.manifests.map((m) => m.digest), [second.manifestDigest]);
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', second.manifestDigest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const reachable = new Set([second.manifestDigest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)].map((d) => d.slice(7)));
  assert.deepEqual(readdirSync(join(layout, 'blobs', 'sha256')).sort(), [...reachable].sort(), 'no blob of the first build is left');

  const kept = treeDigest(layout);
  const r = await runStrata(['build', demoClosure, '--store-root', demoRoot, '-o', layout, ...flags, '--add', `${join(dir, 'missing')}:/x`]);
  assert.notEqual(r.code, 0);
  assert.equal(treeDigest(layout), kept, 'the previous layout is intact');
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp')), [], 'no temporary left beside it');
});

test('an OCI layout rebuilt in place without the cache puts every blob it makes over the old name: a blob edited in place is repaired', async (t) => {
  const dir = tempDir(t);
  const layout = join(dir, 'layout');
  const flags = ['--format', 'oci', '--compress', 'none', '--no-cache'];
  const first = await build(layout, flags);
  const victim = layerFiles(layout, first).sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
  const fd = openSync(victim, 'r+');
  writeSync(fd, Buffer.from('X'), 0, 1, 600); // inside the first member's data, size kept
  closeSync(fd);
  const second = await build(layout, flags);
  assert.equal(second.manifestDigest, first.manifestDigest);
  const reference = join(dir, 'ref');
  await build(reference, flags);
  assert.equal(treeDigest(layout), treeDigest(reference), 'the same bytes as a fresh build: the edited blob was replaced');
  assert.deepEqual(readdirSync(join(layout, 'blobs', 'sha256')).filter((n) => n.startsWith('.')), [], 'no temporary blob left');
  checkLayout(layout);
});

test('cache prune drops the stamps of the blobs it removes', async (t) => {
  const dir = tempDir(t);
  const cacheDir = join(dir, 'cache');
  await build(join(dir, 'layout'), ['--format', 'oci', '--compress', 'gzip', '--cache-dir', cacheDir]);
  const stamps = join(cacheDir, 'v1', 'stamps');
  assert.ok(readdirSync(stamps).length > 0);
  const r = await runStrata(['cache', 'prune', '--max-size', '0', '--cache-dir', cacheDir]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(stamps), []);
});
