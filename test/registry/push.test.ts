import { childOf, makeIndex } from '../../src/image/make-index.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type StartedRegistry } from '../support/registry.js';
import { E2E_PACKAGES, ensurePackages, podman, podmanEnv, skopeo } from '../support/tools.js';
import { makeBigLayer, makeImage, makeLayer, push, sha256File, type FileLayer } from './fixtures.js';
import { newRegistryStats, openRegistryDestination, openRegistrySource } from '../../src/transports/registry/index.js';
import type { Layer } from '../../src/image/layer.js';

let reg: StartedRegistry;
let dir: string;
let busybox: FileLayer;
let hello1: FileLayer;
let hello2: FileLayer;

before(async () => {
  reg = await startRegistry();
  dir = mkdtempSync(join(tmpdir(), 'strata-registry-test-'));
  busybox = makeLayer(dir, 'busybox', { 'bin/busybox': { copyFrom: '/bin/busybox' } });
  hello1 = makeLayer(dir, 'hello1', { 'hello.txt': 'hello from strata v1\n' });
  hello2 = makeLayer(dir, 'hello2', { 'hello.txt': 'hello from strata v2\n' });
});
after(async () => {
  await reg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function inspect(ref: string): Promise<{ Digest: string; Layers: string[]; Architecture: string }> {
  const r = await skopeo(['inspect', '--tls-verify=false', `docker://${ref}`]);
  return JSON.parse(r.stdout) as { Digest: string; Layers: string[]; Architecture: string };
}

async function rawManifest(ref: string): Promise<Buffer> {
  const r = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return Buffer.from(r.stdout, 'utf8');
}

const hashOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('push: skopeo reads the image; a second push sends zero blob bytes; a one-layer change sends only that layer', async () => {
  const v1 = makeImage([busybox, hello1]);
  const first = await push(`docker://${reg.host}/team/app:1`, v1);
  assert.equal(first.blobBytesUploaded, busybox.size + hello1.size + v1.configBytes.length);
  assert.equal(first.blobsUploaded, 3);

  const info = await inspect(`${reg.host}/team/app:1`);
  assert.deepEqual(info.Layers, [busybox.digest, hello1.digest]);
  assert.equal(info.Architecture, 'amd64');
  const raw = await rawManifest(`${reg.host}/team/app:1`);
  assert.equal(info.Digest, hashOf(raw));
  const m = JSON.parse(raw.toString('utf8')) as { mediaType: string; config: { digest: string } };
  assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(m.config.digest, hashOf(v1.configBytes));

  const again = await push(`docker://${reg.host}/team/app:1`, v1);
  assert.equal(again.blobBytesUploaded, 0, 'a re-push must upload no blob bytes');
  assert.equal(again.blobsSkipped, 3);

  const v2 = makeImage([busybox, hello2]);
  const changed = await push(`${reg.host}/team/app:2`, v2);
  assert.equal(changed.blobBytesUploaded, hello2.size + v2.configBytes.length, 'only the changed layer and the new config go up');
  assert.deepEqual((await inspect(`${reg.host}/team/app:2`)).Layers, [busybox.digest, hello2.digest]);
});

test('a streamed new layer goes up in chunks as it is written and reads back through the source', async () => {
  const big = makeBigLayer(dir, 'streamed', 3, 'stream');
  const dest = await openRegistryDestination(`${reg.host}/team/streamed:1`, { chunkSize: 1024 * 1024 });
  const w = await dest.beginBlob();
  const bytes = readFileSync(big.path);
  for (let off = 0; off < bytes.length; off += 300_000) await w.write(bytes.subarray(off, off + 300_000));
  const reopen = await w.close(big.digest, big.size);
  const image = makeImage([busybox, big]);
  await dest.addLayer(busybox);
  await dest.commit(image, ['1', `${reg.host}/team/streamed:also`]);

  const back = await reopen();
  const h = createHash('sha256');
  for await (const c of back) h.update(c as Buffer);
  assert.equal(`sha256:${h.digest('hex')}`, big.digest);
  assert.deepEqual((await inspect(`${reg.host}/team/streamed:also`)).Layers, [busybox.digest, big.digest]);

  const src = await openRegistrySource(`docker://${reg.host}/team/streamed:1`);
  assert.deepEqual(src.image.layers.map((l) => [l.digest, l.diffId, l.size]), [[busybox.digest, busybox.diffId, busybox.size], [big.digest, big.diffId, big.size]]);
  assert.equal(hashOf(src.image.configBytes), hashOf(image.configBytes));
  const s = await src.image.layers[1]!.open();
  const h2 = createHash('sha256');
  for await (const c of s) h2.update(c as Buffer);
  assert.equal(`sha256:${h2.digest('hex')}`, sha256File(big.path));
  await src.close();
});

test('pushing on top of a base in another repository of the same registry mounts the base layers', async () => {
  const base = makeImage([busybox, hello1]);
  await push(`${reg.host}/lib/base:1`, base);
  const src = await openRegistrySource(`docker://${reg.host}/lib/base:1`);
  const extra = makeLayer(dir, 'extra', { 'etc/extra.conf': 'x=1\n' });
  const layers: Layer[] = [...src.image.layers, extra];
  const image = makeImage(layers);
  const stats = await push(`${reg.host}/apps/derived:1`, image);
  assert.equal(stats.blobsMounted, 2);
  assert.equal(stats.blobBytesDownloaded, 0, 'base layers must not be downloaded');
  assert.equal(stats.blobBytesUploaded, extra.size + image.configBytes.length);
  assert.deepEqual((await inspect(`${reg.host}/apps/derived:1`)).Layers, [busybox.digest, hello1.digest, extra.digest]);
});

test('an index is pushed with the index media type and the source picks the asked platform', async () => {
  const amd = makeImage([busybox, hello1]);
  const arm = makeImage([hello2], { architecture: 'arm64', variant: 'v8' });
  const dest = await openRegistryDestination(`${reg.host}/multi/app:1`, {});
  const index = makeIndex([
    childOf(amd, { platform: { os: 'linux', architecture: 'amd64' } }),
    childOf(arm, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }),
  ]);
  await dest.commit(index, []);
  const digest = index.manifest.digest;
  const raw = await rawManifest(`${reg.host}/multi/app:1`);
  assert.equal(hashOf(raw), digest);
  assert.equal((JSON.parse(raw.toString()) as { mediaType: string }).mediaType, 'application/vnd.oci.image.index.v1+json');
  const armSrc = await openRegistrySource(`${reg.host}/multi/app:1`, { platform: { os: 'linux', architecture: 'arm64' } });
  assert.deepEqual(armSrc.image.layers.map((l) => l.digest), [hello2.digest]);
  const amdSrc = await openRegistrySource(`${reg.host}/multi/app:1`);
  assert.deepEqual(amdSrc.image.layers.map((l) => l.digest), [busybox.digest, hello1.digest]);
  await assert.rejects(openRegistrySource(`${reg.host}/multi/app:1`, { platform: { os: 'linux', architecture: 's390x' } }), /no image for platform linux\/s390x.*linux\/amd64, linux\/arm64\/v8/);
});

test('podman pulls the pushed image and runs it', async () => {
  await ensurePackages(E2E_PACKAGES);
  await push(`${reg.host}/run/app:1`, makeImage([busybox, hello1]));
  const env = podmanEnv(join(dir, 'podman'));
  await podman(['pull', '--tls-verify=false', `${reg.host}/run/app:1`], env);
  const r = await podman(['run', '--rm', `${reg.host}/run/app:1`], env);
  assert.equal(r.stdout, 'hello from strata v1\n');
});

test('unknown tag and unknown repository give clear errors', async () => {
  await assert.rejects(openRegistrySource(`${reg.host}/team/app:nope`), /manifest unknown.*no such tag in team\/app/);
});

test("blobWrites 'spool': a rebuilt, unchanged layer written through beginBlob is not uploaded again", async () => {
  const big = makeBigLayer(dir, 'spooled', 2, 'spool');
  const bytes = readFileSync(big.path);
  const image = makeImage([big]);
  const pushStreamed = async (tag: string) => {
    const stats = newRegistryStats();
    const dest = await openRegistryDestination(`${reg.host}/team/spooled:${tag}`, { blobWrites: 'spool', chunkSize: 512 * 1024, spoolDir: dir, stats });
    const w = await dest.beginBlob(bytes.length);
    for (let off = 0; off < bytes.length; off += 100_000) await w.write(bytes.subarray(off, off + 100_000));
    const reopen = await w.close(big.digest, big.size);
    await dest.commit(image, []);
    return { stats, reopen };
  };
  const first = await pushStreamed('1');
  assert.equal(first.stats.blobBytesUploaded, big.size + image.configBytes.length);
  const h = createHash('sha256');
  for await (const c of await first.reopen()) h.update(c as Buffer);
  assert.equal(`sha256:${h.digest('hex')}`, sha256File(big.path));
  const second = await pushStreamed('2');
  assert.equal(second.stats.blobBytesUploaded, 0, 'the same layer bytes rebuilt must not go up again');
  assert.deepEqual((await inspect(`${reg.host}/team/spooled:2`)).Layers, [big.digest]);
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('strata-push-')), [], 'spool files are removed');
});
