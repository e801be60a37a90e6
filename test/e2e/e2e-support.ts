/**
 * Shared steps of the end-to-end tests: a busybox store, strata builds of it, and reading back
 * what strata says about its own output (to compare with what the real tools say).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { tmpdir } from 'node:os';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { cliPath } from '../support/paths.js';
import { makeBusyboxStore, type BusyboxStore } from '../support/busybox-store.js';
import { E2E_PACKAGES, ensurePackages } from '../support/tools.js';

export const TAG = 'strata-e2e:1';

/** Installs the tools and builds the fixture store; fails (never skips) when a tool cannot be had. */
export async function setupE2E(dir: string): Promise<BusyboxStore> {
  await ensurePackages(E2E_PACKAGES);
  assert.ok(existsSync(cliPath), `the strata CLI is not built: ${cliPath} is missing`);
  return makeBusyboxStore(dir);
}

export interface E2EFixture {
  /** A fresh directory for the test file; the busybox store is under `fixture/`. */
  readonly dir: string;
  readonly store: BusyboxStore;
}

/** The busybox store (setupE2E) in a fresh directory, for the tests of one file: made before them, removed after. */
export function e2eFixture(prefix: string): E2EFixture {
  const fixture = {} as { dir: string; store: BusyboxStore };
  before(async () => {
    fixture.dir = join(tmpdir(), `${prefix}-${randomBytes(6).toString('hex')}`);
    mkdirSync(fixture.dir);
    fixture.store = await setupE2E(join(fixture.dir, 'fixture'));
  });
  after(() => {
    if (fixture.dir) rmSync(fixture.dir, { recursive: true, force: true });
  });
  return fixture;
}

/** `strata build` of the fixture; asserts success and shows strata's stderr when it fails. */
export async function buildImage(store: BusyboxStore, out: string, extra: readonly string[] = []): Promise<void> {
  const args = ['build', store.closureFile, '--store-root', store.storeRoot, '-o', out, '--tag', TAG,
    '--entrypoint', store.entrypoint, ...extra];
  const r = await runStrata(args);
  assert.equal(r.code, 0, `strata ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
  assert.ok(existsSync(out), `strata build reported success but wrote nothing at ${out}`);
}

export interface InspectedLayer { digest: string; diffId: string; size: number; storePaths: string[] }

/** `strata inspect TARGET --json`, checked for the fields the tests rely on. */
export async function strataInspect(target: string): Promise<{ layers: InspectedLayer[]; config: unknown }> {
  const r = await runStrata(['inspect', target, '--json']);
  assert.equal(r.code, 0, `strata inspect ${target} --json failed (exit ${r.code}):\n${r.stderr}`);
  const j = JSON.parse(r.stdout) as { layers?: unknown; config?: unknown };
  assert.ok(Array.isArray(j.layers), `strata inspect --json printed no layers array: ${r.stdout.slice(0, 500)}`);
  for (const l of j.layers as InspectedLayer[]) {
    assert.match(l.digest, /^sha256:[0-9a-f]{64}$/, 'layer digest');
    assert.match(l.diffId, /^sha256:[0-9a-f]{64}$/, 'layer diffId');
    assert.ok(Array.isArray(l.storePaths), 'layer storePaths');
  }
  return j as { layers: InspectedLayer[]; config: unknown };
}

/**
 * The name under which the layout's index tags our image (`org.opencontainers.image.ref.name`),
 * as `oci:DIR:NAME` wants it. Read from index.json rather than assumed: by convention it is the
 * tag alone (`1`, as skopeo writes it) but the full `name:tag` is also seen; both must end in the tag.
 */
export function ociRefName(layoutDir: string): string {
  const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as {
    manifests?: { mediaType?: string; annotations?: Record<string, string> }[];
  };
  const names = (index.manifests ?? []).map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((n): n is string => !!n);
  assert.equal(names.length, 1, `index.json should tag exactly one manifest, found ${JSON.stringify(names)}`);
  const name = names[0]!;
  assert.ok(name === '1' || name === TAG, `ref name ${JSON.stringify(name)} does not name tag ${TAG}`);
  return name;
}

/**
 * Checks an OCI layout directory the way a careful reader would, independently of strata's own
 * reader: every file under blobs/sha256 hashes to its name, and every descriptor reachable from
 * index.json names an existing blob of exactly the size it claims. (Tools such as skopeo inspect
 * never read layer blobs, so a truncated layer would otherwise go unnoticed until a pull.)
 */
export function assertLayoutBlobsIntact(layoutDir: string): void {
  const blobDir = join(layoutDir, 'blobs', 'sha256');
  for (const name of readdirSync(blobDir)) {
    const hex = createHash('sha256').update(readFileSync(join(blobDir, name))).digest('hex');
    assert.equal(hex, name, `blob ${name} of ${layoutDir} does not hash to its name`);
  }
  const checkDescriptor = (d: { digest: string; size: number }, what: string) => {
    const p = join(blobDir, d.digest.replace(/^sha256:/, ''));
    assert.ok(existsSync(p), `${what}: blob ${d.digest} is missing`);
    assert.equal(statSync(p).size, d.size, `${what}: blob ${d.digest} size`);
    return p;
  };
  const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number }[] };
  for (const md of index.manifests) {
    const manifest = JSON.parse(readFileSync(checkDescriptor(md, 'index.json manifest'), 'utf8')) as {
      config: { digest: string; size: number }; layers: { digest: string; size: number }[];
    };
    checkDescriptor(manifest.config, 'manifest config');
    manifest.layers.forEach((l, i) => checkDescriptor(l, `manifest layer ${i}`));
  }
}
