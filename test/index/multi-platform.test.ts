/**
 * Issue 13: one closure built for amd64 and arm64, combined with `strata index create` in an OCI
 * layout and in a real registry, read back by skopeo and podman with their own platform rules;
 * the same inputs give the same index bytes; copies keep manifest digests (Docker ones too); and
 * every bad input is named, exits non-zero and leaves the destination as it was.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { checkIndex, checkLayout, checkRegistryImage } from '../support/oci-schema.js';
import { repoRoot } from '../support/paths.js';
import { startRegistry, type StartedRegistry } from '../support/registry.js';
import { E2E_PACKAGES, ensurePackages, podman, podmanEnv, skopeo } from '../support/tools.js';

const closure = join(repoRoot, 'closures', 'demo', 'closure.json');
const storeRoot = join(repoRoot, 'closures', 'demo', 'root');

async function strata(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await runStrata(args, env ? { env } : {});
  assert.equal(r.code, 0, `strata ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
  return r.stdout;
}

/** The two per-arch builds, each labelled with its arch so a reader shows which child it got. */
async function buildArch(arch: 'amd64' | 'arm64', out: string[]): Promise<void> {
  await strata(['build', closure, '--store-root', storeRoot, '--arch', arch, '--label', `arch=${arch}`, '--no-cache', ...out]);
}

async function failing(args: readonly string[]): Promise<string> {
  const r = await runStrata(args);
  assert.notEqual(r.code, 0, `strata ${args.join(' ')} should have failed`);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, `a user error must not print a stack:\n${r.stderr}`);
  return r.stderr;
}

/** Every file under a directory with its bytes' hash: "unchanged" made checkable. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out[p.slice(dir.length)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

const labelOf = (inspect: string) => (JSON.parse(inspect) as { Labels?: Record<string, string> }).Labels?.['arch'];

describe('multi-platform index in an OCI layout', () => {
  let dir: string;
  let layout: string;
  before(async () => {
    await ensurePackages(E2E_PACKAGES);
    // Lowercase on purpose: podman names an image pulled from `oci:DIR:REF` after DIR's path and
    // rejects capitals, which mkdtemp's random suffix has.
    dir = join(tmpdir(), `strata-index-${randomBytes(8).toString('hex')}`);
    mkdirSync(dir);
    layout = join(dir, 'out');
    await buildArch('amd64', ['-o', `oci:${layout}:amd64`]);
    await buildArch('arm64', ['-o', `oci:${layout}:arm64`]);
    await strata(['index', 'create', '-o', `oci:${layout}:multi`, `oci:${layout}:amd64`, `oci:${layout}:arm64`]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('index.json names all three; the layout and the index validate', () => {
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']), ['amd64', 'arm64', 'multi']);
    checkLayout(layout);
  });

  test('skopeo picks each child by its own platform rules', async () => {
    const arm = await skopeo(['inspect', '--override-arch', 'arm64', '--override-variant', 'v8', `oci:${layout}:multi`]);
    assert.equal(labelOf(arm.stdout), 'arm64');
    const amd = await skopeo(['inspect', '--override-arch', 'amd64', `oci:${layout}:multi`]);
    assert.equal(labelOf(amd.stdout), 'amd64');
  });

  test('podman pull --platform linux/arm64 gets the arm64 child', async () => {
    const env = podmanEnv(join(dir, 'podman'));
    await podman(['pull', '--platform', 'linux/arm64', `oci:${layout}:multi`], env);
    const images = await podman(['images', '--format', '{{.ID}}'], env);
    const ids = images.stdout.trim().split('\n');
    assert.equal(ids.length, 1, `one image pulled, podman lists ${images.stdout}`);
    const id = ids[0]!;
    const arch = await podman(['image', 'inspect', '--format', '{{.Architecture}}', id], env);
    assert.equal(arch.stdout.trim(), 'arm64');
  });

  test('strata inspect lists the children; --platform reads the arm64 one', async () => {
    const info = JSON.parse(await strata(['inspect', `oci:${layout}:multi`, '--json'])) as { children: { platform: string }[] };
    assert.deepEqual(info.children.map((c) => c.platform), ['linux/amd64', 'linux/arm64']);
    const arm = JSON.parse(await strata(['inspect', `oci:${layout}:multi`, '--platform', 'linux/arm64/v8', '--json'])) as { config: { Labels: Record<string, string> } };
    assert.equal(arm.config.Labels['arch'], 'arm64');
  });

  test('same inputs, other conditions → the same index bytes', async () => {
    const second = join(dir, 'second');
    cpSync(layout, second, { recursive: true });
    const env = { ...process.env, TZ: 'Pacific/Kiritimati', LANG: 'de_DE.UTF-8', SOURCE_DATE_EPOCH: '1700000000' };
    const a = JSON.parse(await strata(['index', 'create', '-o', `oci:${second}:again`, `oci:${second}:amd64`, `oci:${second}:arm64`, '--json'], env)) as { digest: string };
    const first = JSON.parse(await strata(['inspect', `oci:${layout}:multi`, '--json'])) as { digest: string };
    assert.equal(a.digest, first.digest);
  });

  test('index filter and remove keep only what is asked; append refuses a duplicate platform unless --replace', async () => {
    const f = JSON.parse(await strata(['index', 'filter', `oci:${layout}:multi`, '-o', `oci:${layout}:armonly`, '--platform', 'linux/arm64', '--json'])) as { children: { platform: string }[] };
    assert.deepEqual(f.children.map((c) => c.platform), ['linux/arm64']);
    await strata(['index', 'create', '-o', `oci:${layout}:edit`, `oci:${layout}:amd64`, `oci:${layout}:arm64`]);
    const removed = JSON.parse(await strata(['index', 'remove', `oci:${layout}:edit`, '--platform', 'linux/amd64', '--json'])) as { children: { platform: string }[] };
    assert.deepEqual(removed.children.map((c) => c.platform), ['linux/arm64']);
    const stderr = await failing(['index', 'append', `oci:${layout}:edit`, `oci:${layout}:armonly`]);
    assert.match(stderr, /two children for platform linux\/arm64/);
    const replaced = JSON.parse(await strata(['index', 'append', `oci:${layout}:edit`, `oci:${layout}:amd64`, '--json'])) as { children: { platform: string }[] };
    assert.deepEqual(replaced.children.map((c) => c.platform), ['linux/arm64', 'linux/amd64']);
  });

  test('annotations, --no-flatten, and the fully qualified containerd name', async () => {
    const out = JSON.parse(await strata(['index', 'create', '-o', `oci:${layout}:annotated`, `oci:${layout}:amd64`, `oci:${layout}:arm64`,
      '--annotation', 'org.opencontainers.image.version=1.0', '--manifest-annotation', `oci:${layout}:arm64=team=arm`, '--json'])) as { digest: string };
    const index = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', out.digest.slice(7)), 'utf8')) as { annotations: Record<string, string>; manifests: { annotations?: Record<string, string> }[] };
    assert.equal(index.annotations['org.opencontainers.image.version'], '1.0');
    assert.deepEqual(index.manifests.map((m) => m.annotations?.['team']), [undefined, 'arm']);

    const nested = JSON.parse(await strata(['index', 'create', '--no-flatten', '-o', `oci:${layout}:nested`, `oci:${layout}:multi`, '--json'])) as { children: { mediaType: string }[] };
    assert.deepEqual(nested.children.map((c) => c.mediaType), ['application/vnd.oci.image.index.v1+json']);
    const arm = await skopeo(['inspect', '--override-arch', 'arm64', `oci:${layout}:nested`]);
    assert.equal(labelOf(arm.stdout), 'arm64');

    const named = join(dir, 'named');
    await buildArch('amd64', ['-o', `oci:${named}:1`, '--tag', 'app:1']);
    const entry = (JSON.parse(readFileSync(join(named, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] }).manifests[0]!;
    assert.deepEqual(entry.annotations, { 'org.opencontainers.image.ref.name': '1', 'io.containerd.image.name': 'docker.io/library/app:1' });
  });

  test('builds adding to one layout at once lose no index.json entry (the lock)', async () => {
    const shared = join(dir, 'shared');
    const names = ['a', 'b', 'c', 'd'];
    await Promise.all(names.map((n) => buildArch(n === 'b' || n === 'd' ? 'arm64' : 'amd64', ['-o', `oci:${shared}:${n}`])));
    const index = JSON.parse(readFileSync(join(shared, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
    assert.deepEqual(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']).sort(), names);
    assert.ok(!readdirSync(shared).some((f) => f.includes('lock') || f.endsWith('.tmp')), 'no lock or temp file left');
    checkLayout(shared);
  });

  test('bad input: named, non-zero, no stack, destination unchanged', async () => {
    const before = snapshot(layout);
    assert.match(await failing(['index', 'create', '-o', `oci:${layout}:dup`, `oci:${layout}:amd64`, `oci:${layout}:amd64`]),
      new RegExp(`two children for platform linux/amd64: oci:${layout}:amd64 .* and oci:${layout}:amd64`));
    assert.match(await failing(['index', 'create', '-o', `oci:${layout}:bad`, `oci:${layout}:amd64`, '--platform', `oci:${layout}:amd64=linux`]),
      /--platform .*"linux": expected OS\/ARCH\[\/VARIANT\]/);
    assert.match(await failing(['index', 'create', '-o', `oci:${layout}:bad`, `oci:${layout}:nope`]), /source oci:.*:nope: .*no image named "nope"/);
    assert.match(await failing(['index', 'create', '--format', 'docker', '-o', `oci:${layout}:bad`, `oci:${layout}:amd64`]),
      /--format docker: .* is application\/vnd\.oci\.image\.manifest\.v1\+json; a Docker manifest list holds only Docker schema 2 manifests/);
    assert.deepEqual(snapshot(layout), before, 'a failed index command must leave the layout as it was');

    const corrupt = join(dir, 'corrupt');
    cpSync(layout, corrupt, { recursive: true });
    writeFileSync(join(corrupt, 'index.json'), '{"manifests": [');
    const was = snapshot(corrupt);
    assert.match(await failing(['index', 'create', '-o', `oci:${corrupt}:x`, `oci:${layout}:amd64`]), /corrupt\/index\.json is not valid JSON/);
    assert.match(await failing(['build', closure, '--store-root', storeRoot, '-o', `oci:${corrupt}:y`]), /corrupt\/index\.json is not valid JSON/);
    assert.deepEqual(snapshot(corrupt), was);

    assert.match(await failing(['build', closure, '--store-root', storeRoot, '-o', join(dir, 'no', 'such', 'dir', 'x.tar')]), /parent directory .*no\/such\/dir does not exist/);
  });
});

describe('multi-platform index in a registry', () => {
  let reg: StartedRegistry;
  let reg2: StartedRegistry;
  before(async () => {
    await ensurePackages(E2E_PACKAGES);
    reg = await startRegistry();
    reg2 = await startRegistry();
    await buildArch('amd64', ['--push', `${reg.host}/app:amd64`]);
    await buildArch('arm64', ['--push', `${reg.host}/app:arm64`]);
  });
  after(async () => {
    await reg?.stop();
    await reg2?.stop();
  });

  const uploadsIn = (log: string) => log.split('\n').filter((l) => /"(POST|PATCH|PUT) \/v2\/[^ ]*\/blobs\/uploads/.test(l)).length;

  test('children already in the repository: 0 blob bytes uploaded, and readers pick each child', async () => {
    const logBefore = uploadsIn(reg.log());
    const out = JSON.parse(await strata(['index', 'create', '-o', `docker://${reg.host}/app:multi`, `docker://${reg.host}/app:amd64`, `docker://${reg.host}/app:arm64`, '--json'])) as { digest: string; upload: { blobBytesUploaded: number; blobsUploaded: number } };
    assert.equal(out.upload.blobBytesUploaded, 0);
    assert.equal(out.upload.blobsUploaded, 0);
    assert.equal(uploadsIn(reg.log()), logBefore, 'the registry log must show no blob upload');
    await checkRegistryImage(reg.host, 'app', 'multi');

    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app:multi`]);
    assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, out.digest);
    checkIndex(Buffer.from(raw.stdout), 'pushed index');
    const arm = await skopeo(['inspect', '--tls-verify=false', '--override-arch', 'arm64', '--override-variant', 'v8', `docker://${reg.host}/app:multi`]);
    assert.equal(labelOf(arm.stdout), 'arm64');
    const amd = await skopeo(['inspect', '--tls-verify=false', '--override-arch', 'amd64', `docker://${reg.host}/app:multi`]);
    assert.equal(labelOf(amd.stdout), 'amd64');

    const env = podmanEnv(mkdtempSync(join(tmpdir(), 'strata-index-podman-')));
    await podman(['pull', '--tls-verify=false', '--platform', 'linux/arm64', `${reg.host}/app:multi`], env);
    const arch = await podman(['image', 'inspect', '--format', '{{.Architecture}}', `${reg.host}/app:multi`], env);
    assert.equal(arch.stdout.trim(), 'arm64');
  });

  test('from a second registry the blobs are streamed across, and the index keeps its digest', async () => {
    const here = JSON.parse(await strata(['index', 'create', '-o', `docker://${reg.host}/app:multi2`, `docker://${reg.host}/app:amd64`, `docker://${reg.host}/app:arm64`, '--json'])) as { digest: string };
    const there = JSON.parse(await strata(['index', 'create', '-o', `docker://${reg2.host}/copy:multi`, `docker://${reg.host}/app:amd64`, `docker://${reg.host}/app:arm64`, '--json'])) as { digest: string; upload: { blobsUploaded: number; blobBytesUploaded: number } };
    assert.equal(there.digest, here.digest);
    assert.ok(there.upload.blobsUploaded > 0 && there.upload.blobBytesUploaded > 0, 'the second registry had none of the blobs');
    assert.ok(uploadsIn(reg2.log()) > 0);
    await checkRegistryImage(reg2.host, 'copy', 'multi');
    const arm = await skopeo(['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${reg2.host}/copy:multi`]);
    assert.equal(labelOf(arm.stdout), 'arm64');
  });

  test('strata push keeps manifest digests: an index, a strata image, and a Docker schema 2 image made by skopeo', async () => {
    const digestOf = async (ref: string) => {
      const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
      return { digest: `sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, mediaType: (JSON.parse(raw.stdout) as { mediaType: string }).mediaType };
    };
    await strata(['push', `docker://${reg.host}/app:multi`, `docker://${reg.host}/copied:multi`]);
    assert.deepEqual(await digestOf(`${reg.host}/copied:multi`), await digestOf(`${reg.host}/app:multi`));
    await strata(['push', `docker://${reg.host}/app:amd64`, `docker://${reg2.host}/copied:amd64`]);
    assert.deepEqual(await digestOf(`${reg2.host}/copied:amd64`), await digestOf(`${reg.host}/app:amd64`));

    await skopeo(['copy', '--format', 'v2s2', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/app:amd64`, `docker://${reg.host}/docker:1`]);
    const docker = await digestOf(`${reg.host}/docker:1`);
    assert.equal(docker.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    await strata(['push', `docker://${reg.host}/docker:1`, `docker://${reg2.host}/docker:1`]);
    assert.deepEqual(await digestOf(`${reg2.host}/docker:1`), docker);

    // A Docker manifest list over Docker children.
    await skopeo(['copy', '--format', 'v2s2', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/app:arm64`, `docker://${reg.host}/docker:arm`]);
    const list = JSON.parse(await strata(['index', 'create', '--format', 'docker', '-o', `docker://${reg.host}/docker:list`, `docker://${reg.host}/docker:1`, `docker://${reg.host}/docker:arm`, '--json'])) as { mediaType: string; digest: string };
    assert.equal(list.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.deepEqual(await digestOf(`${reg.host}/docker:list`), { digest: list.digest, mediaType: list.mediaType });
  });
});
