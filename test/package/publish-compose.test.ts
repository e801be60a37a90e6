/**
 * Issue 15: package-as-layer distribution. A real Nix closure (test/support/nix-store.ts, built by
 * nix-build) is published to a real registry and to an OCI layout; a second release in which one
 * leaf changed uploads only what changed; package images run alone in podman; a composition's
 * layers are exactly the published blobs, mounted, and the image equals what `strata build
 * --layering per-path` makes of the same closure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { makeNixPackageStore, removeNixPackageStore, type NixPackageStore } from '../support/nix-store.js';
import { checkLayout, checkRegistryImage } from '../support/oci-schema.js';
import { startRegistry, type StartedRegistry } from '../support/registry.js';
import { E2E_PACKAGES, ensurePackages, podman, podmanEnv, skopeo, umoci } from '../support/tools.js';
import { lowercaseTempDir } from '../e2e-base/helpers.js';

interface Published {
  storePath: string;
  pname: string;
  version: string;
  reference: string;
  tagged: string[];
  manifestDigest: string;
  layerDigest: string;
  reused: boolean;
}
interface PublishOut { packages: Published[]; upload?: { blobsUploaded: number; blobsMounted: number } }
interface ComposeOut { imageId: string; manifestDigest: string; layers: { digest: string }[]; resolved: { request: string; tag: string; digest: string }[]; upload?: { blobsUploaded: number } }

async function strata(args: readonly string[]): Promise<string> {
  const r = await runStrata(args);
  assert.equal(r.code, 0, `strata ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
  return r.stdout;
}
const json = async <T>(args: readonly string[]): Promise<T> => JSON.parse(await strata([...args, '--json'])) as T;

/** The blob digests the registry log shows uploads of (PUT …/blobs/uploads/…?digest=…), in order. */
function uploadedDigests(log: string): string[] {
  return log.split('\n').flatMap((l) => {
    if (!/"PUT \/v2\/[^ ]*\/blobs\/uploads\//.test(l)) return [];
    const m = /digest=(sha256(?:%3A|:)[0-9a-f]{64})/.exec(l);
    return m ? [m[1]!.replace('%3A', ':')] : ['(unknown)'];
  });
}

const byName = (out: PublishOut, pname: string): Published => {
  const p = out.packages.find((x) => x.pname === pname);
  assert.ok(p, `no ${pname} in ${JSON.stringify(out.packages.map((x) => x.pname))}`);
  return p;
};

describe('package-as-layer distribution', { timeout: 600_000 }, () => {
  let dir: string;
  let store: NixPackageStore;
  let reg: StartedRegistry;
  let env: NodeJS.ProcessEnv;
  let first: PublishOut;

  before(async () => {
    await ensurePackages(E2E_PACKAGES);
    dir = lowercaseTempDir('strata-pkg');
    store = await makeNixPackageStore(join(dir, 'nix'));
    reg = await startRegistry();
    env = podmanEnv(join(dir, 'podman'));
  });
  after(async () => {
    await reg?.stop();
    if (dir) {
      await removeNixPackageStore(join(dir, 'nix'));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const publishTo = (release: 0 | 1, to: string, extra: string[] = []) =>
    json<PublishOut>(['publish', store.releases[release].closureFile, '--store-root', store.storeRoot, '--to', to, '--no-cache', ...extra]);

  describe('through a registry', () => {
    test('publish: one layer and one runnable package image per store path, annotated', async () => {
      first = await publishTo(0, `docker://${reg.host}/pkgs`);
      const r1 = store.releases[0];
      assert.deepEqual(first.packages.map((p) => p.pname).sort(), ['busybox', 'greeting-data', 'hello', 'shout']);
      assert.ok(first.packages.every((p) => !p.reused), 'a first publish makes everything');
      assert.equal(new Set(first.packages.map((p) => p.layerDigest)).size, 4, 'one distinct blob per store path');
      const hello = byName(first, 'hello');
      assert.equal(hello.storePath, r1.paths.hello);
      assert.deepEqual(hello.tagged, [`2.1-${r1.paths.hello.slice(11, 19)}`, '2.1']);
      for (const p of first.packages) await checkRegistryImage(reg.host, `pkgs/${p.pname}`, p.tagged[0]!);

      // The manifest and every layer descriptor say what they hold.
      const res = await fetch(`http://${reg.host}/v2/pkgs/hello/manifests/2.1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      const m = (await res.json()) as { annotations: Record<string, string>; layers: { digest: string; annotations: Record<string, string> }[] };
      assert.equal(m.annotations['dev.strata.nix.store-path'], r1.paths.hello);
      assert.equal(m.annotations['dev.strata.nix.pname'], 'hello');
      assert.equal(m.annotations['dev.strata.nix.version'], '2.1');
      assert.equal(m.annotations['dev.strata.nix.references'], [r1.paths.busybox, r1.paths.data].sort().join(' '));
      assert.match(m.annotations['dev.strata.nix.nar-hash']!, /^sha256-/);
      assert.deepEqual(m.layers.map((l) => l.annotations['dev.strata.nix.store-path']).sort(), [r1.paths.busybox, r1.paths.data, r1.paths.hello].sort());
      assert.equal(m.layers.at(-1)!.annotations['dev.strata.nix.store-path'], r1.paths.hello, 'dependencies first');
      for (const l of m.layers) {
        const own = first.packages.find((p) => p.storePath === l.annotations['dev.strata.nix.store-path'])!;
        assert.equal(l.digest, own.layerDigest, `the layer of ${own.pname} in hello's image is ${own.pname}'s own blob`);
      }

      assert.equal((await podman(['run', '--rm', '--tls-verify=false', `${reg.host}/pkgs/hello:2.1`, 'hello'], env)).stdout, r1.helloOutput);
      assert.equal((await podman(['run', '--rm', '--tls-verify=false', `${reg.host}/pkgs/shout:0.3`, 'shout', 'hi'], env)).stdout, 'SHOUT: hi\n');
    });

    test('a second release uploads only the changed store paths, and the plain version tag stays', async () => {
      const before = uploadedDigests(reg.log()).length;
      const second = await publishTo(1, `docker://${reg.host}/pkgs`);
      const uploaded = uploadedDigests(reg.log()).slice(before);
      assert.deepEqual(second.packages.filter((p) => p.reused).map((p) => p.pname).sort(), ['busybox', 'shout']);
      const changed = ['greeting-data', 'hello'].map((n) => byName(second, n).layerDigest);
      const unchanged = ['busybox', 'shout'].map((n) => byName(first, n).layerDigest);
      for (const d of changed) assert.ok(uploaded.includes(d), `${d} (a changed path) was uploaded`);
      for (const d of [...unchanged, ...first.packages.map((p) => p.layerDigest)]) assert.ok(!uploaded.includes(d), `${d} was uploaded again`);
      // Besides the two new layers, only the two new package images' configs.
      assert.equal(uploaded.length, 4, `uploads: ${uploaded.join(', ')}`);
      const hello2 = byName(second, 'hello');
      assert.deepEqual(hello2.tagged, [`2.1-${store.releases[1].paths.hello.slice(11, 19)}`], 'hello 2.1 is taken: only the build tag is new');
      assert.equal(byName(second, 'greeting-data').tagged.at(-1), '1.1');
      const tags = (await (await fetch(`http://${reg.host}/v2/pkgs/hello/tags/list`)).json()) as { tags: string[] };
      assert.deepEqual(tags.tags.sort(), ['2.1', hello2.tagged[0]!, byName(first, 'hello').tagged[0]!].sort());
      const plain = await fetch(`http://${reg.host}/v2/pkgs/hello/manifests/2.1`, { method: 'HEAD', headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(plain.headers.get('docker-content-digest'), byName(first, 'hello').manifestDigest, 'the plain tag stays on the first build');
      assert.equal((await podman(['run', '--rm', '--tls-verify=false', `${reg.host}/pkgs/hello:${hello2.tagged[0]}`, 'hello'], env)).stdout, store.releases[1].helloOutput);
    });

    test('compose: the published blobs, mounted; the image runs and equals build --layering per-path', async () => {
      const r1 = store.releases[0];
      const before = uploadedDigests(reg.log()).length;
      const composed = await json<ComposeOut>(['compose', 'hello@^2', 'shout', '--registry', `docker://${reg.host}/pkgs`, '--bin', 'hello', '--bin', 'shout', '--push', `${reg.host}/app:1`]);
      const uploaded = uploadedDigests(reg.log()).slice(before);
      const storeLayers = composed.layers.slice(0, -1).map((l) => l.digest);
      assert.deepEqual([...storeLayers].sort(), first.packages.map((p) => p.layerDigest).sort(), 'the store layers are exactly the published blobs');
      for (const d of storeLayers) assert.ok(!uploaded.includes(d), `store layer ${d} was uploaded instead of mounted`);
      assert.equal(uploaded.length, 2, `only the config and the customisation layer are new: ${uploaded.join(', ')}`);
      assert.deepEqual(composed.resolved.map((r) => [r.request, r.tag]), [['hello@^2', '2.1'], ['shout', '0.3']]);
      await checkRegistryImage(reg.host, 'app', '1');
      assert.equal((await podman(['run', '--rm', '--tls-verify=false', `${reg.host}/app:1`, '/bin/hello'], env)).stdout, r1.helloOutput);

      const built = await json<ComposeOut>(['build', r1.closureFile, '--store-root', store.storeRoot, '--layering', 'per-path', '--no-cache',
        '--bin', r1.paths.hello, '--bin', r1.paths.shout, '--push', `${reg.host}/built:1`]);
      assert.deepEqual(built.layers.map((l) => l.digest), composed.layers.map((l) => l.digest), 'layer for layer, in the same order');
      assert.equal(built.imageId, composed.imageId, 'the same config, so the same image id');

      // Composing again into the same registry uploads nothing at all.
      const again = uploadedDigests(reg.log()).length;
      const second = await json<ComposeOut>(['compose', 'hello@^2', 'shout', '--registry', `docker://${reg.host}/pkgs`, '--bin', 'hello', '--bin', 'shout', '--push', `${reg.host}/app:2`]);
      assert.equal(second.manifestDigest, composed.manifestDigest, 'a composition is reproducible');
      assert.deepEqual(uploadedDigests(reg.log()).slice(again), [], 'no bytes uploaded');
    });

    test('a layer budget merges the least popular paths into the one new layer, exactly as build does', async () => {
      const r1 = store.releases[0];
      const composed = await runStrata(['compose', 'hello', 'shout', '--registry', `docker://${reg.host}/pkgs`, '--max-layers', '3', '-o', `oci:${dir}/merged:app`, '--json']);
      assert.equal(composed.code, 0, composed.stderr);
      assert.match(composed.stderr, /merged 3 store paths into one new layer; hello, shout no longer share/);
      const out = JSON.parse(composed.stdout) as ComposeOut;
      const built = await json<ComposeOut>(['build', r1.closureFile, '--store-root', store.storeRoot, '--layering', 'per-path', '--max-layers', '3', '--no-cache', '-o', `oci:${dir}/merged-built:app`]);
      assert.equal(out.layers.length, 3);
      assert.deepEqual(out.layers.map((l) => l.digest), built.layers.map((l) => l.digest), 'the merged layer is byte for byte the built one');
      assert.equal(out.imageId, built.imageId);
      checkLayout(join(dir, 'merged'));
    });
  });

  describe('through an OCI layout', () => {
    test('publish to and compose from a layout; republishing changes nothing', async () => {
      const layout = join(dir, 'layout');
      const pub = await publishTo(0, `oci:${layout}`);
      checkLayout(layout);
      const index = readFileSync(join(layout, 'index.json'));
      const names = (JSON.parse(index.toString()) as { manifests: { annotations: Record<string, string> }[] }).manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']);
      assert.ok(names.includes('hello:2.1') && names.includes('busybox:1.36'), `index.json names ${names.join(', ')}`);
      // The same blobs as in the registry: a layer depends only on its store path and the mtime.
      assert.deepEqual(pub.packages.map((p) => p.layerDigest).sort(), first.packages.map((p) => p.layerDigest).sort());

      const again = await publishTo(0, `oci:${layout}`);
      assert.ok(again.packages.every((p) => p.reused));
      assert.deepEqual(readFileSync(join(layout, 'index.json')), index, 'nothing to do, nothing written');

      const inspect = JSON.parse((await skopeo(['inspect', `oci:${layout}:hello:2.1`])).stdout) as { Layers: string[] };
      assert.equal(inspect.Layers.length, 3, 'skopeo reads a package image by its name:tag');

      const out = join(dir, 'composed');
      const composed = await json<ComposeOut>(['compose', 'hello', 'shout@~0.3', '--registry', `oci:${layout}`, '--bin', 'hello', '-o', `oci:${out}:app`]);
      assert.deepEqual(composed.layers.slice(0, -1).map((l) => l.digest).sort(), pub.packages.map((p) => p.layerDigest).sort());
      checkLayout(out);
      assert.equal((await podman(['run', '--rm', `oci:${out}:app`, '/bin/hello'], env)).stdout, store.releases[0].helloOutput);
      // umoci unpacks it to the same tree: the /bin link, and every store path's files.
      const bundle = join(dir, 'bundle');
      await umoci(['unpack', ...(process.getuid?.() === 0 ? [] : ['--rootless']), '--image', `${out}:app`, bundle]);
      const hello = store.releases[0].paths.hello;
      assert.equal(readlinkSync(join(bundle, 'rootfs', 'bin', 'hello')), `${hello}/bin/hello`);
      assert.deepEqual(readFileSync(join(bundle, 'rootfs', hello, 'bin', 'hello')), readFileSync(join(store.storeRoot, hello, 'bin', 'hello')));
    });

    test('publishing is reproducible: with and without the layer cache, from another directory, the same manifests', async () => {
      const a = join(dir, 'repro-a');
      const b = join(dir, 'repro-b');
      const one = await publishTo(0, `oci:${a}`);
      const cacheDir = join(dir, 'cache');
      const r = await runStrata(['publish', store.releases[0].closureFile, '--store-root', store.storeRoot, '--to', `oci:${b}`, '--cache-dir', cacheDir, '--json'], { cwd: dir, env: { ...process.env, TZ: 'Pacific/Chatham' } });
      assert.equal(r.code, 0, r.stderr);
      const two = JSON.parse(r.stdout) as PublishOut;
      assert.deepEqual(two.packages.map((p) => [p.pname, p.manifestDigest]), one.packages.map((p) => [p.pname, p.manifestDigest]));
      assert.ok(existsSync(cacheDir));
    });
  });
});
