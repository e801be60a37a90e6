/**
 * Issue 16: physically bound images. App images built by strata from a real Nix closure are
 * embedded in a host image as a read-only containers-storage; the host image is unpacked with GNU
 * tar as root, as a bootc host's deployment would be, and the real podman lists the apps as
 * read-only images and runs them from that store.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { layoutLayers, unpackWithGnuTar, withReadOnlyStore, type StorePodman } from '../support/host-store.js';
import { makeNixPackageStore, removeNixPackageStore, type NixPackageStore } from '../support/nix-store.js';
import { checkLayout } from '../support/oci-schema.js';
import { startRegistry } from '../support/registry.js';
import { E2E_PACKAGES, ensurePackages, skopeo } from '../support/tools.js';
import { lowercaseTempDir } from '../e2e-base/helpers.js';

const STORE = 'usr/lib/containers/storage';

async function strata(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await runStrata(args, env ? { env } : {});
  assert.equal(r.code, 0, `strata ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
  return r.stdout;
}

interface EmbedOut { imageId: string; manifestDigest: string; images: { id: string; names: string[] }[]; layers: { digest: string }[] }
const embedJson = async (args: readonly string[], env?: NodeJS.ProcessEnv): Promise<EmbedOut> => JSON.parse(await strata(['embed', ...args, '--json'], env)) as EmbedOut;

/** A failing strata run: non-zero, one clear line naming `needles`, no stack, nothing at `output`. */
async function refused(args: readonly string[], output: string, ...needles: string[]): Promise<string> {
  const r = await runStrata(args);
  assert.notEqual(r.code, 0, `strata ${args.join(' ')} should fail`);
  for (const n of needles) assert.ok(r.stderr.includes(n), `stderr should name ${n}:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(existsSync(output), false, `${output} must not be written`);
  return r.stderr;
}

interface PodmanImage { Id: string; Names?: string[]; ReadOnly?: boolean }

/** `podman images` as JSON. */
async function images(podman: StorePodman): Promise<PodmanImage[]> {
  return JSON.parse((await podman(['images', '--format', 'json'])).stdout) as PodmanImage[];
}

const runApp = async (podman: StorePodman, name: string): Promise<string> => (await podman(['run', '--rm', '--pull=never', '--net=none', name])).stdout;

function configDigestOf(layout: string, ref: string): string {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref)!;
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', entry.digest.slice(7)), 'utf8')) as { config: { digest: string } };
  return manifest.config.digest;
}

/**
 * An OCI layout holding `app`'s image with `extra` more tiny layers on top (one file each), named
 * only by `io.containerd.image.name`: an app too tall for a store, and a name from a layout.
 */
function tallImage(layout: string, ref: string, extra: number, out: string, name: string): void {
  const blobs = join(out, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  cpSync(join(layout, 'blobs', 'sha256'), blobs, { recursive: true });
  const put = (bytes: Buffer): { digest: string; size: number } => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref)!;
  const manifest = JSON.parse(readFileSync(join(blobs, entry.digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: object[] };
  const config = JSON.parse(readFileSync(join(blobs, manifest.config.digest.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] }; history?: object[] };
  const stage = join(out, '..', `${ref}-stage`);
  for (let i = 0; i < extra; i++) {
    mkdirSync(join(stage, 'tall'), { recursive: true });
    rmSync(join(stage, 'tall'), { recursive: true });
    mkdirSync(join(stage, 'tall'));
    writeFileSync(join(stage, 'tall', `layer-${i}`), `${i}\n`);
    const tar = execFileSync('tar', ['-c', '-C', stage, '--owner=0', '--group=0', '--mtime=@1', '--sort=name', 'tall']);
    const d = put(tar);
    manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...d });
    config.rootfs.diff_ids.push(d.digest);
    config.history?.push({ created_by: `tall layer ${i}` });
  }
  const c = put(Buffer.from(JSON.stringify(config)));
  manifest.config = { ...manifest.config, ...c };
  const m = put(Buffer.from(JSON.stringify(manifest)));
  writeFileSync(join(out, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(out, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'io.containerd.image.name': name } }],
  }));
}

describe('embedding app images in a host image (physically bound images)', { timeout: 900_000 }, () => {
  let dir: string;
  let nix: NixPackageStore;
  let apps: string;
  let host: string;
  let hello: string;
  let shout: string;

  before(async () => {
    dir = lowercaseTempDir('emb');
    await ensurePackages(E2E_PACKAGES);
    nix = await makeNixPackageStore(join(dir, 'nix'));
    const r1 = nix.releases[0];
    ({ hello, shout } = r1.paths);
    apps = join(dir, 'apps');
    host = join(dir, 'host');
    const closure = [r1.closureFile, '--store-root', nix.storeRoot];
    // The host: busybox alone. The apps: hello built from the closure, with a note as its top layer.
    await strata(['build', ...closure, '--root', r1.paths.busybox, '-o', `oci:${host}:base`, '--tag', 'host:base']);
    for (const v of ['a', 'b']) {
      writeFileSync(join(dir, `note-${v}`), `note ${v}\n`);
      await strata(['build', ...closure, '--entrypoint', `${hello}/bin/hello`, '--add', `${join(dir, `note-${v}`)}:/etc/note`, '-o', `oci:${apps}:hello-${v}`, '--tag', 'reg.example/hello:1']);
    }
    // shout shares every layer of hello-a and adds its own; wh deletes hello-a's /etc/note (a whiteout).
    await strata(['build', '--from', `oci:${apps}:hello-a`, '--entrypoint', `${shout}/bin/shout`, '--cmd', 'embedded', '-o', `oci:${apps}:shout`, '--tag', 'reg.example/shout:1']);
    await strata(['build', '--from', `oci:${apps}:hello-a`, '--remove', '/etc/note', '--entrypoint', `${r1.paths.busybox}/bin/sh`, '--cmd', '["-c", "test ! -e /etc/note && echo note-gone"]', '-o', `oci:${apps}:wh`, '--tag', 'reg.example/wh:1']);
  });

  after(async () => {
    if (dir) {
      await removeNixPackageStore(join(dir, 'nix'));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('podman lists the embedded app read-only, by its config digest, and runs it from the store', async () => {
    const out = join(dir, 'out1');
    const result = await embedJson([`oci:${apps}:hello-a`, '--into', `oci:${host}:base`, '-o', `oci:${out}:1`]);
    checkLayout(out);
    await skopeo(['inspect', `oci:${out}:1`]);
    const appId = configDigestOf(apps, 'hello-a');
    assert.deepEqual(result.images.map((i) => [`sha256:${i.id}`, i.names]), [[appId, ['reg.example/hello:1']]]);

    const unpacked = join(dir, 'unpacked1');
    await unpackWithGnuTar(out, '1', unpacked);
    // Unchanged host files, and the store where the issue puts it.
    assert.ok(existsSync(join(unpacked, nix.releases[0].paths.busybox.slice(1), 'bin', 'busybox')));
    const layersJson = JSON.parse(readFileSync(join(unpacked, STORE, 'overlay-layers', 'layers.json'), 'utf8')) as { id: string }[];
    assert.equal(layersJson.length, layoutLayers(apps, 'hello-a').length);

    await withReadOnlyStore(join(unpacked, STORE), join(dir, 'p1'), async (podman) => {
      const listed = await images(podman);
      assert.equal(listed.length, 1, JSON.stringify(listed));
      assert.equal(`sha256:${listed[0]!.Id.replace(/^sha256:/, '')}`, appId);
      assert.deepEqual(listed[0]!.Names, ['reg.example/hello:1']);
      assert.equal(listed[0]!.ReadOnly, true);
      assert.equal(await runApp(podman, 'reg.example/hello:1'), nix.releases[0].helloOutput);
      // podman gives each layer's tar back from diff/ and its tar-split: the app's own DiffIDs.
      const saved = join(dir, 'saved.tar');
      await podman(['save', '--format', 'docker-archive', '-o', saved, 'reg.example/hello:1']);
      const inspected = JSON.parse((await skopeo(['inspect', '--config', `docker-archive:${saved}`])).stdout) as { rootfs: { diff_ids: string[] } };
      const appConfig = JSON.parse(readFileSync(join(apps, 'blobs', 'sha256', appId.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] } };
      assert.deepEqual(inspected.rootfs.diff_ids, appConfig.rootfs.diff_ids);
    });
  });

  test('an app whose layers are zstd is embedded (decoded, stored by DiffID) and runs from the store', async () => {
    const r1 = nix.releases[0];
    await strata(['build', r1.closureFile, '--store-root', nix.storeRoot, '--entrypoint', `${hello}/bin/hello`, '--compress', 'zstd', '-o', `oci:${apps}:hello-zstd`, '--tag', 'reg.example/hello-zstd:1']);
    const out = join(dir, 'out-zstd');
    await embedJson([`oci:${apps}:hello-zstd`, '--into', `oci:${host}:base`, '-o', `oci:${out}:1`]);
    const unpacked = join(dir, 'unpacked-zstd');
    await unpackWithGnuTar(out, '1', unpacked);
    await withReadOnlyStore(join(unpacked, STORE), join(dir, 'pz'), async (podman) => {
      assert.equal(await runApp(podman, 'reg.example/hello-zstd:1'), r1.helloOutput);
      // (An OCI archive: podman will not write zstd layers in the docker format.)
      const saved = join(dir, 'saved-zstd.tar');
      await podman(['save', '--format', 'oci-archive', '-o', saved, 'reg.example/hello-zstd:1']);
      const inspected = JSON.parse((await skopeo(['inspect', '--config', `oci-archive:${saved}`])).stdout) as { rootfs: { diff_ids: string[] } };
      const appConfig = JSON.parse(readFileSync(join(apps, 'blobs', 'sha256', configDigestOf(apps, 'hello-zstd').slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] } };
      assert.deepEqual(inspected.rootfs.diff_ids, appConfig.rootfs.diff_ids);
    });
  });

  test('the same apps give the same bytes, and an app whose top layer changed changes two host layers', async () => {
    const a1 = await embedJson([`oci:${apps}:hello-a`, '--into', `oci:${host}:base`, '-o', `oci:${join(dir, 'same1')}:1`]);
    // Elsewhere, from copies at other paths, another working directory and temp dir: same bytes.
    const copies = join(dir, 'copies');
    cpSync(apps, join(copies, 'apps'), { recursive: true });
    cpSync(host, join(copies, 'host'), { recursive: true });
    const tmp = join(dir, 'tmp2');
    mkdirSync(tmp);
    const a2 = await embedJson([`oci:${join(copies, 'apps')}:hello-a`, '--into', `oci:${join(copies, 'host')}:base`, '-o', `oci:${join(dir, 'same2')}:1`], { ...process.env, TMPDIR: tmp });
    assert.equal(a2.manifestDigest, a1.manifestDigest);
    assert.equal(a2.imageId, a1.imageId);

    const b = await embedJson([`oci:${apps}:hello-b`, '--into', `oci:${host}:base`, '-o', `oci:${join(dir, 'same3')}:1`]);
    assert.equal(b.layers.length, a1.layers.length);
    const before = new Set(a1.layers.map((l) => l.digest));
    const changed = b.layers.map((l, i) => (before.has(l.digest) ? undefined : i)).filter((i) => i !== undefined);
    // The note layer's host layer and the metadata layer; the host's and the other app layers keep their digests.
    assert.deepEqual(changed, [b.layers.length - 2, b.layers.length - 1]);
  });

  test('two apps sharing layers store them once, and both run', async () => {
    const out = join(dir, 'two');
    const result = await embedJson([`oci:${apps}:shout`, `oci:${apps}:hello-a`, '--into', `oci:${host}:base`, '-o', `oci:${out}:1`]);
    const helloLayers = layoutLayers(apps, 'hello-a').length;
    const shoutLayers = layoutLayers(apps, 'shout').length;
    assert.ok(shoutLayers > helloLayers, 'shout is built on hello-a');
    const hostLayers = layoutLayers(host, 'base').length;
    // Every stored layer once: shout's, which include all of hello-a's, plus the metadata layer.
    assert.equal(result.layers.length, hostLayers + shoutLayers + 1);
    assert.deepEqual(result.images.flatMap((i) => i.names).sort(), ['reg.example/hello:1', 'reg.example/shout:1']);

    const unpacked = join(dir, 'unpacked-two');
    await unpackWithGnuTar(out, '1', unpacked);
    await withReadOnlyStore(join(unpacked, STORE), join(dir, 'p2'), async (podman) => {
      assert.equal((await images(podman)).length, 2);
      assert.equal(await runApp(podman, 'reg.example/hello:1'), nix.releases[0].helloOutput);
      assert.equal(await runApp(podman, 'reg.example/shout:1'), 'SHOUT: embedded\n');
    });
  });

  test('an app with whiteouts is refused by default; with --whiteouts chardev podman sees the file deleted', async () => {
    const refusedOut = join(dir, 'wh-refused');
    await refused(['embed', `oci:${apps}:wh`, '--into', `oci:${host}:base`, '-o', `oci:${refusedOut}:1`], refusedOut, 'whiteout deleting /etc/note', '--whiteouts chardev', '--whiteouts ostree');

    const out = join(dir, 'wh');
    await strata(['embed', `oci:${apps}:wh`, '--whiteouts', 'chardev', '--into', `oci:${host}:base`, '-o', `oci:${out}:1`]);
    const unpacked = join(dir, 'unpacked-wh');
    await unpackWithGnuTar(out, '1', unpacked);
    await withReadOnlyStore(join(unpacked, STORE), join(dir, 'p3'), async (podman) => {
      assert.equal(await runApp(podman, 'reg.example/wh:1'), 'note-gone\n');
    });
  });

  test('an app of more than 58 layers needs --max-app-layers, which squashes its top layers; the result runs', async () => {
    const tall = join(dir, 'tall');
    tallImage(apps, 'hello-a', 60, tall, 'reg.example/tall:1');
    const out = join(dir, 'tall-out');
    await refused(['embed', `oci:${tall}`, '--into', `oci:${host}:base`, '-o', `oci:${out}:1`], out, 'oci:', 'layers', '58', '--max-app-layers');

    const result = await embedJson([`oci:${tall}`, '--max-app-layers', '20', '--into', `oci:${host}:base`, '-o', `oci:${out}:1`]);
    assert.deepEqual(result.images.flatMap((i) => i.names), ['reg.example/tall:1']);
    const unpacked = join(dir, 'unpacked-tall');
    await unpackWithGnuTar(out, '1', unpacked);
    const layersJson = JSON.parse(readFileSync(join(unpacked, STORE, 'overlay-layers', 'layers.json'), 'utf8')) as unknown[];
    assert.equal(layersJson.length, 20);
    await withReadOnlyStore(join(unpacked, STORE), join(dir, 'p4'), async (podman) => {
      assert.equal(await runApp(podman, 'reg.example/tall:1'), nix.releases[0].helloOutput);
      const ls = await podman(['run', '--rm', '--pull=never', '--net=none', '--entrypoint', `${nix.releases[0].paths.busybox}/bin/ls`, 'reg.example/tall:1', '/tall']);
      assert.equal(ls.stdout.split('\n').filter(Boolean).length, 60, 'every squashed layer\'s file is there');
    });
  });

  test('strata build --embed puts the same store layers on top of a build, and the host runs the app', async () => {
    const r1 = nix.releases[0];
    const embedded = await embedJson([`oci:${apps}:shout`, '--into', `oci:${host}:base`, '-o', `oci:${join(dir, 'by-embed')}:1`]);
    const out = join(dir, 'by-build');
    const built = JSON.parse(await strata(['build', r1.closureFile, '--store-root', nix.storeRoot, '--root', r1.paths.busybox, '--embed', `oci:${apps}:shout`, '-o', `oci:${out}:1`, '--json'])) as { layers: { digest: string }[] };
    const storeLayers = layoutLayers(apps, 'shout').length + 1;
    assert.deepEqual(built.layers.slice(-storeLayers).map((l) => l.digest), embedded.layers.slice(-storeLayers).map((l) => l.digest));
    const unpacked = join(dir, 'unpacked-build');
    await unpackWithGnuTar(out, '1', unpacked);
    await withReadOnlyStore(join(unpacked, STORE), join(dir, 'p5'), async (podman) => {
      assert.equal(await runApp(podman, 'reg.example/shout:1'), 'SHOUT: embedded\n');
    });
    const stray = join(dir, 'stray');
    await refused(['build', r1.closureFile, '--store-root', nix.storeRoot, '--whiteouts', 'chardev', '-o', `oci:${stray}:1`], stray, '--whiteouts', '--embed');
  });

  test('an app read from a registry keeps the reference it was read by as its name, and runs', async () => {
    const reg = await startRegistry();
    try {
      await strata(['push', `oci:${apps}:hello-a`, `docker://${reg.host}/team/hello:7`]);
      const out = join(dir, 'from-registry');
      const result = await embedJson([`docker://${reg.host}/team/hello:7`, '--into', `oci:${host}:base`, '-o', `oci:${out}:1`]);
      assert.deepEqual(result.images.map((i) => [`sha256:${i.id}`, i.names]), [[configDigestOf(apps, 'hello-a'), [`${reg.host}/team/hello:7`]]]);
      const same = await embedJson([`oci:${apps}:hello-a`, '--name', `oci:${apps}:hello-a=${reg.host}/team/hello:7`, '--into', `oci:${host}:base`, '-o', `oci:${join(dir, 'from-layout')}:1`]);
      assert.equal(same.manifestDigest, result.manifestDigest, 'the same image under the same name: the same host image, wherever it was read from');
      const unpacked = join(dir, 'unpacked-registry');
      await unpackWithGnuTar(out, '1', unpacked);
      await withReadOnlyStore(join(unpacked, STORE), join(dir, 'p6'), async (podman) => {
        assert.equal(await runApp(podman, `${reg.host}/team/hello:7`), nix.releases[0].helloOutput);
      });
    } finally {
      await reg.stop();
    }
  });

  test('bad input: a store path bootc owns, under /var, relative or not normal; an app that cannot be read or has no name', async () => {
    const out = join(dir, 'bad');
    const app = `oci:${apps}:hello-a`;
    const into = ['--into', `oci:${host}:base`, '-o', `oci:${out}:1`];
    await refused(['embed', app, '--store', '/usr/lib/bootc/storage', ...into], out, '/usr/lib/bootc/storage', 'bootc');
    await refused(['embed', app, '--store', '/usr/lib/bootc/storage/sub', ...into], out, 'bootc');
    await refused(['embed', app, '--store', '/var/lib/containers/storage', ...into], out, '/var');
    await refused(['embed', app, '--store', 'usr/lib/containers/storage', ...into], out, 'absolute');
    await refused(['embed', app, '--store', '/usr/lib/../lib/containers/storage', ...into], out, 'normal form');
    await refused(['embed', `oci:${apps}:nope`, ...into], out, 'nope');
    await refused(['embed', `oci:${join(dir, 'missing')}`, ...into], out, join(dir, 'missing'));
    await refused(['embed', app, '--max-app-layers', '59', ...into], out, '--max-app-layers', '58');
    await refused(['embed', app, '--name', 'oci:other=x:1', ...into], out, 'oci:other', 'not one of');
    await refused(['embed', app, '--name', `${app}=Bad Name`, ...into], out, 'Bad Name');
    // A layout entry without io.containerd.image.name: the store needs a name for it.
    const bare = join(dir, 'bare');
    cpSync(apps, bare, { recursive: true });
    const index = JSON.parse(readFileSync(join(bare, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    for (const m of index.manifests) delete m.annotations?.['io.containerd.image.name'];
    writeFileSync(join(bare, 'index.json'), JSON.stringify(index));
    await refused(['embed', `oci:${bare}:hello-a`, ...into], out, `--name oci:${bare}:hello-a=NAME:TAG`);
    await strata(['embed', `oci:${bare}:hello-a`, '--name', `oci:${bare}:hello-a=localhost/renamed:2`, ...into]);
    assert.ok(existsSync(join(out, 'index.json')));
  });
});
