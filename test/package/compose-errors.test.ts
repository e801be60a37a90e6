/**
 * `strata publish` and `strata compose` when something is wrong: each failure is a clear error
 * naming the culprit (the package, the range, the store path, the blob, the lock entry), a
 * non-zero exit without a stack trace, and nothing written or pushed — no image under the output
 * reference, no tag in the destination repository. The packages are real Nix store paths
 * (test/support/nix-store.ts), published once into OCI layouts shared by the tests; a test that
 * has to spoil a repository works on its own copy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runStrata } from '../support/cli.js';
import { makeNixPackageStore, removeNixPackageStore, type NixPackageStore } from '../support/nix-store.js';
import { startRegistry, type StartedRegistry } from '../support/registry.js';
import { openOciLayout } from '../../src/transports/oci-layout/read.js';
import { openOciLayoutAppendDestination } from '../../src/transports/oci-layout/write.js';
import { packageImage, readPackage, PackageAnnotations } from '../../src/image/package.js';

interface Descriptor { digest: string; size: number; mediaType: string; annotations?: Record<string, string> }
interface Manifest { config: Descriptor; layers: Descriptor[]; annotations?: Record<string, string> }

const REF_NAME = 'org.opencontainers.image.ref.name';
const STORE_DIR = '/nix/store';

async function strata(args: readonly string[]): Promise<string> {
  const r = await runStrata(args);
  assert.equal(r.code, 0, `strata ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
  return r.stdout;
}

/** A failing run: non-zero, no stack trace, one `strata: error:` line; returns stderr. */
async function failing(args: readonly string[]): Promise<string> {
  const r = await runStrata(args);
  assert.notEqual(r.code, 0, `strata ${args.join(' ')} should have failed:\n${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, `a user error must not print a stack:\n${r.stderr}`);
  assert.match(r.stderr, /^strata: error: /m, `expected a strata error line:\n${r.stderr}`);
  return r.stderr;
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;
const blobPath = (layout: string, digest: string) => join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));

function refNames(layout: string): string[] {
  const index = readJson<{ manifests: Descriptor[] }>(join(layout, 'index.json'));
  return index.manifests.map((m) => m.annotations?.[REF_NAME] ?? '');
}

function manifestDigest(layout: string, ref: string): string {
  const index = readJson<{ manifests: Descriptor[] }>(join(layout, 'index.json'));
  const entry = index.manifests.find((m) => m.annotations?.[REF_NAME] === ref);
  assert.ok(entry, `${layout} names no image ${ref}; it has ${refNames(layout).join(', ')}`);
  return entry.digest;
}

function manifestOf(layout: string, ref: string): Manifest {
  return readJson<Manifest>(blobPath(layout, manifestDigest(layout, ref)));
}

/** `-o oci:OUT:REF` wrote nothing: OUT is not there, or its index.json does not name REF. */
function assertNoImage(out: string, ref: string): void {
  if (!existsSync(out)) return;
  const index = join(out, 'index.json');
  if (!existsSync(index)) return;
  assert.ok(!refNames(out).includes(ref), `${out} names ${ref} after a failed run`);
}

/** `--push HOST/REPO:TAG` pushed nothing: the repository has no tags. */
async function assertNoTags(host: string, repo: string): Promise<void> {
  const res = await fetch(`http://${host}/v2/${repo}/tags/list`);
  const body = await res.text();
  if (res.status === 404) return;
  assert.equal(res.status, 200, `GET /v2/${repo}/tags/list: ${res.status} ${body}`);
  const tags = (JSON.parse(body) as { tags?: string[] | null }).tags ?? [];
  assert.deepEqual(tags, [], `${host}/${repo} has tags after a failed push: ${body}`);
}

const hash8 = (storePath: string) => storePath.slice(STORE_DIR.length + 1, STORE_DIR.length + 9);

/** A copy of a layout (or any directory) that a test may spoil. */
function copyDir(from: string, to: string): string {
  execFileSync('cp', ['-a', from, to]);
  return to;
}

// Not tempDir(): Nix's read-only store directories need removeNixPackageStore.
let dir: string;
let store: NixPackageStore;
let registry: StartedRegistry | undefined;
/** Release 1 published. */
let l1: string;
/** Releases 1 and 2 published into one layout: two builds of hello-2.1. */
let l12: string;
let n = 0;
/** A fresh path under the fixture directory (not created). */
const fresh = (label: string) => join(dir, `${label}-${++n}`);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-compose-errors-'));
  const started = startRegistry();
  started.catch(() => undefined);
  store = await makeNixPackageStore(join(dir, 'nix'));
  const [r1, r2] = store.releases;
  l1 = join(dir, 'l1');
  l12 = join(dir, 'l12');
  await Promise.all([
    strata(['publish', r1.closureFile, '--store-root', store.storeRoot, '--to', `oci:${l1}`, '--no-cache']),
    (async () => {
      await strata(['publish', r1.closureFile, '--store-root', store.storeRoot, '--to', `oci:${l12}`, '--no-cache']);
      await strata(['publish', r2.closureFile, '--store-root', store.storeRoot, '--to', `oci:${l12}`, '--no-cache']);
    })(),
  ]);
  registry = await started;
});

after(async () => {
  if (registry) await registry.stop();
  if (dir) await removeNixPackageStore(dir);
});

describe('compose: requests that resolve to nothing', () => {
  test('an unknown package is named, with the close name there is', async () => {
    const out = fresh('out');
    const err = await failing(['compose', 'helo', '--registry', `oci:${l1}`, '-o', `oci:${out}:app`]);
    assert.match(err, /unknown package "helo"/, err);
    assert.match(err, /close names: [^\n]*\bhello\b/, err);
    assert.ok(!existsSync(out), `${out} was made by a failed compose`);
  });

  test('a range no version satisfies is named, with the versions there are', async () => {
    const out = fresh('out');
    const err = await failing(['compose', 'hello@^3', '--registry', `oci:${l1}`, '-o', `oci:${out}:app`]);
    assert.match(err, /no version of hello in range "\^3"/, err);
    assert.match(err, /it has 2\.1\b/, err);
    // Build tags are not versions: the list names 2.1 only.
    assert.doesNotMatch(err, new RegExp(`2\\.1-${hash8(store.releases[0].paths.hello)}`), err);
    assert.ok(!existsSync(out), `${out} was made by a failed compose`);
  });
});

describe('compose: a repository that is not what publish makes', () => {
  test('a package image missing a dependency\'s layer names the path and what needs it', async () => {
    const { paths } = store.releases[0];
    const layout = copyDir(l1, fresh('layout'));
    const source = await openOciLayout(layout, { ref: 'hello:2.1' });
    try {
      const pkg = readPackage(source.image, 'hello:2.1');
      const layers = pkg.layers.filter((l) => l.storePath !== paths.data);
      assert.equal(layers.length, pkg.layers.length - 1, 'the published hello image holds greeting-data');
      const image = packageImage({ storePath: pkg.storePath, references: pkg.references, ...(pkg.narHash ? { narHash: pkg.narHash } : {}), pkg: pkg.pkg }, layers, {
        created: '1970-01-01T00:00:01Z',
        architecture: source.image.config.architecture ?? 'amd64',
        os: 'linux',
      });
      const dest = await openOciLayoutAppendDestination(layout, { refNames: ['hello:9.9'], compression: 'gzip' });
      for (const l of layers) await dest.addLayer(l.layer);
      await dest.commit(image, []);
    } finally {
      await source.close();
    }
    const broken = manifestOf(layout, 'hello:9.9');
    assert.equal(broken.annotations?.[PackageAnnotations.storePath], paths.hello);
    assert.ok(broken.layers.every((l) => l.annotations?.[PackageAnnotations.storePath] !== paths.data));

    const out = fresh('out');
    const err = await failing(['compose', 'hello@9.9', '--registry', `oci:${layout}`, '-o', `oci:${out}:app`]);
    assert.ok(err.includes(paths.data), `the error names the missing store path ${paths.data}:\n${err}`);
    assert.ok(err.includes(paths.hello), `the error names the path that needs it, ${paths.hello}:\n${err}`);
    assert.ok(err.includes('hello:9.9'), `the error names the package image:\n${err}`);
    assertNoImage(out, 'app');
  });

  test('an image without strata\'s annotations is "not a strata package image"', async () => {
    const layout = copyDir(l1, fresh('layout'));
    await strata(['build', store.releases[0].closureFile, '--store-root', store.storeRoot, '-o', `oci:${layout}:plain:1.0`, '--no-cache']);
    assert.ok(refNames(layout).includes('plain:1.0'));
    const out = fresh('out');
    const err = await failing(['compose', 'plain', '--registry', `oci:${layout}`, '-o', `oci:${out}:app`]);
    assert.match(err, /plain:1\.0 is not a strata package image/, err);
    assert.ok(err.includes(PackageAnnotations.storePath), `the error names the missing annotations:\n${err}`);
    assertNoImage(out, 'app');
  });

  /** A copy of release 1's layout whose hello layer blob is rewritten by `spoil` (same length). */
  function spoiltLayout(spoil: (bytes: Buffer) => void): { layout: string; digest: string } {
    const { paths } = store.releases[0];
    const layout = copyDir(l1, fresh('layout'));
    const layer = manifestOf(layout, 'hello:2.1').layers.find((l) => l.annotations?.[PackageAnnotations.storePath] === paths.hello);
    assert.ok(layer, 'hello:2.1 has a layer of its own path');
    const file = blobPath(layout, layer.digest);
    const bytes = readFileSync(file);
    spoil(bytes);
    chmodSync(file, 0o644);
    writeFileSync(file, bytes);
    assert.equal(statSync(file).size, layer.size);
    return { layout, digest: layer.digest };
  }

  test('a store layer blob whose bytes do not match its digest is refused, and nothing is pushed', async () => {
    // Still a valid gzip stream of the same tar (only the header's MTIME and OS bytes change),
    // so only the digest can tell: the diffId and every tar header are as published.
    const { layout, digest } = spoiltLayout((b) => {
      assert.deepEqual([...b.subarray(0, 3)], [0x1f, 0x8b, 0x08], 'a gzip layer');
      b[4] = b[4]! ^ 0x01;
      b[9] = b[9] === 3 ? 7 : 3;
    });
    assert.ok(registry);
    const err = await failing(['compose', 'hello', '--registry', `oci:${layout}`, '--push', `${registry.host}/app:1`]);
    assert.ok(err.includes(digest), `the error names the spoilt blob ${digest}:\n${err}`);
    assert.match(err, /digest mismatch/, err);
    assert.ok(err.includes(store.releases[0].paths.hello), `the error names the store path whose layer is spoilt:\n${err}`);
    await assertNoTags(registry.host, 'app');

    const out = fresh('out');
    const err2 = await failing(['compose', 'hello', '--registry', `oci:${layout}`, '-o', `oci:${out}:app`]);
    assert.ok(err2.includes(digest) && /digest mismatch/.test(err2), err2);
    assertNoImage(out, 'app');
  });

  test('a store layer blob overwritten with garbage of the same length is refused, naming it; nothing is pushed', async () => {
    const { layout, digest } = spoiltLayout((b) => b.fill(0x5a));
    assert.ok(registry);
    const err = await failing(['compose', 'hello', '--registry', `oci:${layout}`, '--push', `${registry.host}/app2:1`]);
    assert.ok(err.includes(digest), `the error names the spoilt blob ${digest}:\n${err}`);
    assert.ok(err.includes(layout), `the error names the repository:\n${err}`);
    await assertNoTags(registry.host, 'app2');
  });
});

describe('publish: a closure whose store paths are not all there', () => {
  test('a store path missing from the store root is named, and nothing is published', async () => {
    const { closureFile, paths } = store.releases[0];
    const root = fresh('root');
    execFileSync('mkdir', ['-p', join(root, 'nix', 'store')]);
    for (const p of [paths.busybox, paths.hello, paths.shout]) execFileSync('cp', ['-a', join(store.storeRoot, p), join(root, 'nix', 'store')]);

    const layout = fresh('layout');
    const err = await failing(['publish', closureFile, '--store-root', root, '--to', `oci:${layout}`, '--no-cache']);
    assert.ok(err.includes(paths.data), `the error names the missing path ${paths.data}:\n${err}`);
    assert.ok(err.includes(root), `the error names the store root:\n${err}`);
    if (existsSync(join(layout, 'index.json'))) assert.deepEqual(refNames(layout), []);

    assert.ok(registry);
    const err2 = await failing(['publish', closureFile, '--store-root', root, '--to', `docker://${registry.host}/pkgs`, '--no-cache']);
    assert.ok(err2.includes(paths.data), err2);
    for (const repo of ['busybox', 'greeting-data', 'hello', 'shout']) await assertNoTags(registry.host, `pkgs/${repo}`);
  });
});

describe('compose --bin: two builds of one package', () => {
  test('--bin of both collides naming both store paths; --allow-shadow lets the later win', async () => {
    const h1 = store.releases[0].paths.hello;
    const h2 = store.releases[1].paths.hello;
    assert.notEqual(h1, h2);
    const requests = [`hello@=2.1-${hash8(h1)}`, `hello@=2.1-${hash8(h2)}`];
    const out = fresh('out');
    const err = await failing(['compose', ...requests, '--bin', 'hello', '--registry', `oci:${l12}`, '-o', `oci:${out}:app`]);
    assert.ok(err.includes(h1) && err.includes(h2), `the error names both store paths:\n${err}`);
    assert.match(err, /\/bin\/hello/, err);
    assert.match(err, /--allow-shadow/, err);
    assertNoImage(out, 'app');

    const json = JSON.parse(await strata(['compose', ...requests, '--bin', 'hello', '--allow-shadow', '--registry', `oci:${l12}`, '-o', `oci:${out}:app`, '--json'])) as {
      resolved: { request: string; storePath: string }[];
    };
    assert.deepEqual(json.resolved.map((r) => [r.request, r.storePath]), [[requests[0], h1], [requests[1], h2]]);
    assert.ok(refNames(out).includes('app'));
  });
});

describe('compose --lock and --frozen', () => {
  interface Lock { version: number; packages: { request: string; name: string; tag: string; version: string; digest: string; storePath: string }[] }
  interface Summary { imageId: string; manifestDigest: string; resolved: { request: string; tag: string; digest: string; storePath: string }[] }
  const compose = async (args: readonly string[]): Promise<Summary> => JSON.parse(await strata(['compose', ...args, '--registry', `oci:${l1}`, '--json'])) as Summary;

  test('--frozen without --lock is refused with a clear message', async () => {
    const out = fresh('out');
    const err = await failing(['compose', 'hello', '--frozen', '--registry', `oci:${l1}`, '-o', `oci:${out}:app`]);
    assert.match(err, /--frozen needs --lock/, err);
    assert.ok(!existsSync(out), `${out} was made by a refused compose`);
  });

  test('a lock records the resolutions; --frozen keeps them; requests outside it are refused', async () => {
    const { paths } = store.releases[0];
    const lock = join(dir, `lock-${++n}.json`);
    const first = await compose(['hello', 'shout', '--lock', lock, '-o', `oci:${fresh('out')}:app`]);

    const written = readJson<Lock>(lock);
    assert.equal(written.version, 1);
    assert.deepEqual(written.packages, [
      { request: 'hello', name: 'hello', tag: '2.1', version: '2.1', digest: manifestDigest(l1, 'hello:2.1'), storePath: paths.hello },
      { request: 'shout', name: 'shout', tag: '0.3', version: '0.3', digest: manifestDigest(l1, 'shout:0.3'), storePath: paths.shout },
    ]);
    const bytes = readFileSync(lock);

    const frozen = await compose(['hello', 'shout', '--lock', lock, '--frozen', '-o', `oci:${fresh('out')}:app`]);
    assert.deepEqual(frozen.resolved, first.resolved);
    assert.equal(frozen.imageId, first.imageId);
    assert.equal(frozen.manifestDigest, first.manifestDigest);
    assert.deepEqual(readFileSync(lock), bytes, '--frozen leaves the lock file as it was');

    let out = fresh('out');
    let err = await failing(['compose', 'hello', 'shout', 'greeting-data', '--lock', lock, '--frozen', '--registry', `oci:${l1}`, '-o', `oci:${out}:app`]);
    assert.match(err, /--frozen: greeting-data is not in /, err);
    assert.ok(err.includes(lock), `the error names the lock file:\n${err}`);
    assertNoImage(out, 'app');
    assert.deepEqual(readFileSync(lock), bytes);

    out = fresh('out');
    err = await failing(['compose', 'hello', '--lock', lock, '--frozen', '--registry', `oci:${l1}`, '-o', `oci:${out}:app`]);
    assert.match(err, /locks "shout", which this compose does not request/, err);
    assert.ok(err.includes(lock), `the error names the lock file:\n${err}`);
    assertNoImage(out, 'app');
    assert.deepEqual(readFileSync(lock), bytes);

    // A request is matched as written; the message says which request stands in its place.
    out = fresh('out');
    err = await failing(['compose', 'hello@^2', 'shout', '--lock', lock, '--frozen', '--registry', `oci:${l1}`, '-o', `oci:${out}:app`]);
    assert.match(err, /locks "hello" \(this compose asks for "hello@\^2"\)/, err);
    assertNoImage(out, 'app');

    const grown = await compose(['hello', 'shout', 'greeting-data', '--lock', lock, '-o', `oci:${fresh('out')}:app`]);
    const grownLock = readJson<Lock>(lock);
    assert.deepEqual(grownLock.packages.map((p) => p.request), ['greeting-data', 'hello', 'shout']);
    assert.deepEqual(grownLock.packages.filter((p) => p.request !== 'greeting-data'), written.packages, 'the old resolutions stay');
    const data = grownLock.packages.find((p) => p.request === 'greeting-data')!;
    assert.equal(data.storePath, paths.data);
    assert.equal(data.version, '1.0');
    assert.equal(data.digest, manifestDigest(l1, `greeting-data:${data.tag}`));
    assert.deepEqual(grown.resolved.map((r) => r.storePath), [paths.hello, paths.shout, paths.data]);
  });
});
