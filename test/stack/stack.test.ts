/**
 * Issue 14: stacking images into combined images that share blobs, and importing foreign images
 * at a path. Foreign images are made here with GNU tar and gzip (never by strata); results are
 * read by podman, GNU tar, the OCI schemas and a real registry's log.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { repoRoot } from '../support/paths.js';
import { gnuTar, makeBaseLayers, ociLayoutBase, sha256File, type BaseLayer, type OciBase } from '../support/base-images.js';
import { checkLayout, checkRegistryImage } from '../support/oci-schema.js';
import { startRegistry, type StartedRegistry } from '../support/registry.js';
import { E2E_PACKAGES, ensurePackages, podman, podmanEnv } from '../support/tools.js';
import { lowercaseTempDir } from '../e2e-base/helpers.js';

interface Json { [k: string]: unknown }
interface Descriptor { digest: string; size: number; mediaType: string }
interface Manifest { config: Descriptor; layers: Descriptor[] }

async function strata(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await runStrata(args, opts);
  assert.equal(r.code, 0, `strata ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
  return r.stdout;
}

/** A failing run: non-zero, no stack trace; returns stderr. */
async function failing(args: readonly string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await runStrata(args, opts);
  assert.notEqual(r.code, 0, `strata ${args.join(' ')} should have failed:\n${r.stdout}`);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, `a user error must not print a stack:\n${r.stderr}`);
  return r.stderr;
}

/** One layer tar of `files` (path → content; a trailing '/' makes a directory), made with GNU tar. */
function layer(dir: string, label: string, files: Record<string, string>, tarArgs: readonly string[] = []): BaseLayer {
  const root = join(dir, `stage-${label}`);
  mkdirSync(root, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    if (path.endsWith('/')) {
      mkdirSync(join(root, path), { recursive: true });
      continue;
    }
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
    if (path.includes('bin/')) chmodSync(join(root, path), 0o755);
  }
  const tar = join(dir, `${label}.tar`);
  gnuTar(root, readdirSync(root).sort(), tar, tarArgs);
  return { tar, diffId: sha256File(tar), label };
}

const blobPath = (layout: string, digest: string) => join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
const readJson = (file: string): Json => JSON.parse(readFileSync(file, 'utf8')) as Json;

function manifestOf(layout: string, ref: string): Manifest {
  const index = readJson(join(layout, 'index.json')) as { manifests: (Descriptor & { annotations?: Record<string, string> })[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref);
  assert.ok(entry, `${layout} has no image named ${ref}`);
  return readJson(blobPath(layout, entry.digest)) as unknown as Manifest;
}

function refNames(layout: string): string[] {
  const index = readJson(join(layout, 'index.json')) as { manifests: { annotations?: Record<string, string> }[] };
  return index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'] ?? '');
}

/** Blob files and their total bytes. */
function blobs(layout: string): { names: string[]; bytes: number } {
  const dir = join(layout, 'blobs', 'sha256');
  const names = readdirSync(dir).sort();
  return { names, bytes: names.reduce((s, n) => s + statSync(join(dir, n)).size, 0) };
}

function layerNames(blob: string): string[] {
  return execFileSync('tar', ['-tzf', blob], { encoding: 'utf8' }).trim().split('\n');
}

const sh = (script: string) => ['--entrypoint', JSON.stringify(['/bin/sh', '-c', script])];

describe('strata stack and --import', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let busybox: OciBase;
  let tool: OciBase;
  let whiteouts: OciBase;
  let osA: OciBase;
  let osB: OciBase;
  const bb = () => `oci:${busybox.dir}:base`;

  before(async () => {
    await ensurePackages([...E2E_PACKAGES, 'gzip', 'tar']);
    dir = lowercaseTempDir('stk');
    env = podmanEnv(join(dir, 'p'));
    const fx = join(dir, 'fx');
    mkdirSync(fx);
    busybox = ociLayoutBase(fx, await makeBaseLayers(fx), { name: 'busybox' });
    tool = ociLayoutBase(fx, [layer(fx, 'tool', { 'bin/tool': '#!/bin/sh\necho tool works\n', 'share/tool/data': 'tool data\n' })], { name: 'tool', gzipAll: true });
    whiteouts = ociLayoutBase(fx, [
      layer(fx, 'wh1', { 'etc/wh-a': 'a\n', 'etc/wh-b': 'b\n', 'data/x': 'x\n' }),
      layer(fx, 'wh2', { 'etc/.wh.wh-a': '', 'data/.wh..wh..opq': '', 'data/y': 'y\n' }),
    ], { name: 'wh' });
    osA = ociLayoutBase(fx, [layer(fx, 'osa', { 'etc/os-release': 'ID=first\n' })], { name: 'osa' });
    osB = ociLayoutBase(fx, [layer(fx, 'osb', { 'etc/os-release': 'ID=second\n' })], { name: 'osb' });
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the stacker example: kernel and ovmf, then combined in the same layout from the very same blobs', async () => {
    const work = join(dir, 'st');
    mkdirSync(join(work, 'kernel'), { recursive: true });
    mkdirSync(join(work, 'ovmf'), { recursive: true });
    writeFileSync(join(work, 'kernel', 'vmlinuz'), 'a kernel\n');
    writeFileSync(join(work, 'ovmf', 'OVMF.fd'), 'a firmware\n');
    // Images with no closure: their content is the --add directory alone.
    await strata(['build', '--add', './kernel:/kernel', '-o', 'oci:out:kernel', '--no-cache'], { cwd: work });
    await strata(['build', '--add', './ovmf:/ovmf', '-o', 'oci:out:ovmf', '--no-cache'], { cwd: work });
    const out = join(work, 'out');
    const kernel = manifestOf(out, 'kernel');
    const ovmf = manifestOf(out, 'ovmf');
    assert.deepEqual(new Set(layerNames(blobPath(out, kernel.layers[0]!.digest)).map((n) => n.split('/')[0])), new Set(['kernel']), 'kernel\'s only top directory is kernel/');

    const before = blobs(out);
    await strata(['stack', 'oci:out:kernel', 'oci:out:ovmf', '-o', 'oci:out:combined'], { cwd: work });
    assert.deepEqual(refNames(out), ['kernel', 'ovmf', 'combined'], 'index.json names all three');
    const combined = manifestOf(out, 'combined');
    assert.deepEqual(combined.layers.map((l) => l.digest), [...kernel.layers, ...ovmf.layers].map((l) => l.digest), 'exactly kernel\'s layer blobs, then ovmf\'s');
    const after = blobs(out);
    const added = after.names.filter((n) => !before.names.includes(n));
    const index = readJson(join(out, 'index.json')) as { manifests: Descriptor[] };
    const combinedDigest = index.manifests[2]!.digest;
    assert.deepEqual(added.sort(), [combinedDigest, combined.config.digest].map((d) => d.slice(7)).sort(), 'only the new manifest and config were added');
    assert.equal(after.bytes - before.bytes, statSync(blobPath(out, combinedDigest)).size + combined.config.size, 'du grows by those two files alone');
    checkLayout(out);

    // On a busybox base, podman sees both trees.
    await strata(['stack', bb(), 'oci:out:kernel', 'oci:out:ovmf', '-o', 'oci:out:onbusybox', ...sh('cat /kernel/vmlinuz /ovmf/OVMF.fd')], { cwd: work });
    const onBusybox = manifestOf(out, 'onbusybox');
    assert.deepEqual(onBusybox.layers.map((l) => l.digest), [...busybox.layers, ...kernel.layers, ...ovmf.layers].map((l) => l.digest));
    const r = await podman(['run', '--rm', `oci:${out}:onbusybox`], env);
    assert.equal(r.stdout, 'a kernel\na firmware\n');
  });

  test('a foreign single-layer image imported at / keeps its layer digest; at /opt it is re-tarred, runs, and imports reproducibly', async () => {
    const work = join(dir, 'imp');
    mkdirSync(work);
    await strata(['build', '--from', bb(), '--import', `oci:${tool.dir}:base`, '-o', `oci:${work}/at-root:app`, ...sh('tool')]);
    const atRoot = manifestOf(join(work, 'at-root'), 'app');
    assert.deepEqual(atRoot.layers.slice(0, 3).map((l) => l.digest), [...busybox.layers, ...tool.layers].map((l) => l.digest), 'the tool layer is reused byte for byte');
    assert.equal((await podman(['run', '--rm', `oci:${work}/at-root:app`], env)).stdout, 'tool works\n');

    const run1 = join(work, 'run1');
    const run2 = join(work, 'run2');
    mkdirSync(join(run1, 'tmp'), { recursive: true });
    mkdirSync(join(run2, 'tmp'), { recursive: true });
    const args = (toolRef: string, out: string) => ['build', '--from', bb(), '--import', `${toolRef}=/opt/tool`, '-o', out, ...sh('/opt/tool/bin/tool; cat /opt/tool/share/tool/data')];
    // Twice, under different conditions: another working directory and TMPDIR, the source named by a relative path.
    await strata(args(`oci:${tool.dir}:base`, 'oci:opt:app'), { cwd: run1, env: { ...process.env, TMPDIR: join(run1, 'tmp') } });
    execFileSync('cp', ['-r', tool.dir, join(run2, 'vendor')]);
    await strata(args('oci:vendor:base', 'oci:opt:app'), { cwd: run2, env: { ...process.env, TMPDIR: join(run2, 'tmp'), SOURCE_DATE_EPOCH: '1' } });
    const a = manifestOf(join(run1, 'opt'), 'app');
    const b = manifestOf(join(run2, 'opt'), 'app');
    assert.deepEqual(a, b, 'importing twice gives identical manifests');
    assert.equal(readFileSync(blobPath(join(run1, 'opt'), a.config.digest), 'utf8'), readFileSync(blobPath(join(run2, 'opt'), b.config.digest), 'utf8'));
    const moved = a.layers[2]!;
    assert.notEqual(moved.digest, tool.layers[0]!.digest, 'a layer placed elsewhere is a new blob');
    assert.ok(layerNames(blobPath(join(run1, 'opt'), moved.digest)).includes('opt/tool/bin/tool'));
    const history = (readJson(blobPath(join(run1, 'opt'), a.config.digest)) as { history: { created_by: string }[] }).history;
    assert.ok(history.some((h) => h.created_by.includes(tool.layers[0]!.digest) && h.created_by.includes('at /opt/tool')), 'the history names the source layer and DEST');
    assert.ok(!JSON.stringify(history).includes(work), 'the history names no host path');
    assert.equal((await podman(['run', '--rm', `oci:${run1}/opt:app`], env)).stdout, 'tool works\ntool data\n');
    checkLayout(join(run1, 'opt'));

    // With a closure too: the imports sit between the base and the store layers, and the image runs.
    const closure = join(repoRoot, 'closures', 'demo', 'closure.json');
    const hello = '/nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0/bin/hello';
    await strata(['build', closure, '--store-root', join(repoRoot, 'closures', 'demo', 'root'), '--from', bb(), '--import', `oci:${tool.dir}:base=/opt/tool`,
      '-o', `oci:${work}/with-closure:app`, '--no-cache', ...sh(`/opt/tool/bin/tool && ${hello}`)]);
    const withClosure = manifestOf(join(work, 'with-closure'), 'app');
    assert.equal(withClosure.layers[2]!.digest, moved.digest, 'the same import gives the same layer in another build');
    assert.ok(withClosure.layers.length > 4, 'store layers and the customisation layer follow');
    assert.equal((await podman(['run', '--rm', `oci:${work}/with-closure:app`], env)).stdout, 'tool works\nHello from a strata-built image!\n');
  });

  test('a multi-layer import with whiteouts, kept and --squash: podman sees the same files', async () => {
    const work = join(dir, 'wh');
    mkdirSync(work);
    const list = sh('find /etc /data | sort');
    await strata(['stack', bb(), `oci:${whiteouts.dir}:base`, '-o', `oci:${work}/l:kept`, ...list]);
    await strata(['stack', bb(), `oci:${whiteouts.dir}:base`, '--squash', '-o', `oci:${work}/l:squashed`, ...list]);
    const kept = await podman(['run', '--rm', `oci:${work}/l:kept`], env);
    const squashed = await podman(['run', '--rm', `oci:${work}/l:squashed`], env);
    assert.equal(squashed.stdout, kept.stdout);
    assert.ok(kept.stdout.includes('/etc/wh-b\n') && kept.stdout.includes('/data/y\n'), kept.stdout);
    assert.ok(!kept.stdout.includes('/etc/wh-a') && !kept.stdout.includes('/data/x'), `whiteouts applied:\n${kept.stdout}`);
    const sq = manifestOf(join(work, 'l'), 'squashed');
    assert.equal(sq.layers.length, 2, 'one layer per squashed source');
    const names = layerNames(blobPath(join(work, 'l'), sq.layers[1]!.digest));
    assert.ok(!names.some((n) => n.includes('.wh.')), `a squash writes no whiteouts: ${names.join(' ')}`);
    checkLayout(join(work, 'l'));
  });

  test('two sources with different /etc/os-release: an error naming both; --allow-shadow lets the upper one win', async () => {
    const work = join(dir, 'sh');
    mkdirSync(work);
    const out = join(work, 'l');
    const args = ['stack', bb(), `oci:${osA.dir}:base`, `oci:${osB.dir}:base`, '-o', `oci:${out}:x`, ...sh('cat /etc/os-release')];
    const err = await failing(args);
    assert.match(err, /\/etc\/os-release/);
    assert.ok(err.includes(osA.dir) && err.includes(osB.dir), `names both sources:\n${err}`);
    assert.ok(!existsSync(out), 'nothing written');
    const r = await runStrata([...args, '--allow-shadow']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /\/etc\/os-release of .*osa.* is shadowed by .*osb/);
    assert.equal((await podman(['run', '--rm', `oci:${out}:x`], env)).stdout, 'ID=second\n');
  });

  test('bad input: relative or .. DEST, a layer escaping DEST, an unreadable source, more than 127 layers → named, nothing written', async () => {
    const work = join(dir, 'bad');
    mkdirSync(work);
    const fx = join(work, 'fx');
    mkdirSync(fx);
    const evil = ociLayoutBase(fx, [layer(fx, 'evil', { 'a/evil': 'x' }, ['-P', '--transform=s,^a/,../,'])], { name: 'evil' });
    const many = ociLayoutBase(fx, Array.from({ length: 64 }, (_, i) => layer(fx, `m${i}`, { [`f${i}`]: `${i}\n` })), { name: 'many' });
    const out = join(work, 'out');
    const cases: [string[], RegExp][] = [
      [['stack', `oci:${tool.dir}:base=opt/tool`], /"opt\/tool" is not an absolute image path/],
      [['stack', `oci:${tool.dir}:base=/opt/../etc`], /'\.\.' is not allowed/],
      [['build', '--import', `oci:${tool.dir}:base=opt`], /--import .*"opt" is not an absolute image path/],
      [['stack', `oci:${evil.dir}:base=/opt/e`], /layer sha256:[0-9a-f]{64} of .*evil.*"\.\.\/evil" has a '\.\.' component/],
      [['build', '--import', `oci:${evil.dir}:base`], /"\.\.\/evil" has a '\.\.' component/],
      [['stack', `oci:${join(work, 'missing')}:base`], /missing/],
      [['stack', `oci:${many.dir}:base=/a`, `oci:${many.dir}:base=/b`], /would have 128 layers, more than the 127/],
      [['build'], /nothing to build/],
    ];
    for (const [args, message] of cases) {
      const err = await failing([...args, '-o', `oci:${out}:x`]);
      assert.match(err, message, `strata ${args.join(' ')}`);
      assert.ok(!existsSync(out), `strata ${args.join(' ')} wrote ${out}`);
    }
  });

  describe('in a registry', () => {
    let reg: StartedRegistry;
    before(async () => {
      reg = await startRegistry();
    });
    after(async () => {
      await reg?.stop();
    });

    test('three images of one registry stacked into a new tag: no layer bytes uploaded, the result valid', async () => {
      const work = join(dir, 'reg');
      mkdirSync(join(work, 'k'), { recursive: true });
      writeFileSync(join(work, 'k', 'vmlinuz'), 'kernel in a registry\n');
      await strata(['push', bb(), `${reg.host}/base:1`]);
      await strata(['push', `oci:${tool.dir}:base`, `${reg.host}/brew/tool:1`]);
      await strata(['build', '--add', `${join(work, 'k')}:/kernel`, '--push', `${reg.host}/kernel:1`, '--no-cache']);
      const layerDigests = [...busybox.layers, ...tool.layers].map((l) => l.digest);
      const uploads = (log: string) => log.split('\n').filter((l) => /"PUT \/v2\/[^ ]*\/blobs\/uploads\//.test(l));
      const before = uploads(reg.log()).length;
      const out = JSON.parse(await strata(['stack', `docker://${reg.host}/base:1`, `docker://${reg.host}/brew/tool:1`, `docker://${reg.host}/kernel:1`,
        '--push', `${reg.host}/both:1`, '--json', ...sh('tool; cat /kernel/vmlinuz')])) as { upload: { blobsUploaded: number; blobsMounted: number }; layers: { digest: string }[] };
      assert.equal(out.layers.length, 4);
      assert.equal(out.upload.blobsUploaded, 1, 'only the new config is uploaded');
      assert.equal(out.upload.blobsMounted, 4, 'every layer is mounted from its repository');
      const put = uploads(reg.log()).slice(before);
      assert.equal(put.length, 1, `the registry log shows one upload (the config):\n${put.join('\n')}`);
      for (const d of [...layerDigests, out.layers[3]!.digest]) assert.ok(!put.some((l) => l.includes(d)), `layer ${d} was uploaded`);
      await checkRegistryImage(reg.host, 'both', '1');
      const r = await podman(['run', '--rm', '--tls-verify=false', `${reg.host}/both:1`], env);
      assert.equal(r.stdout, 'tool works\nkernel in a registry\n');
    });
  });
});
