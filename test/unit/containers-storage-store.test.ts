/**
 * The image store strata writes into a host image (src/transports/containers-storage): the plan,
 * the records as containers-storage's Go code marshals them (checked against what podman 4.3.1
 * wrote on this machine for a pull of a 2-layer image), the stored layer tars with each whiteout
 * mode, and the metadata layer's determinism.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { Image } from '../../src/image/image.js';
import type { Layer } from '../../src/image/layer.js';
import { sha256Digest, type Digest } from '../../src/image/digest.js';
import { readTarStream } from '../../src/tar/read-stream.js';
import { storedLayerTar, type WhiteoutMode } from '../../src/transports/containers-storage/layer-tar.js';
import { metadataTar } from '../../src/transports/containers-storage/metadata.js';
import { planStore, type StoreImage } from '../../src/transports/containers-storage/plan.js';
import { goJson, imagesJson, layersJson } from '../../src/transports/containers-storage/records.js';
import { StrataError } from '../../src/util/errors.js';
import { tarBuffer, type Entry } from '../transports-read/helpers.js';

const ROOT = 'usr/lib/containers/storage';

function layerOf(tar: Buffer): Layer {
  const d = sha256Digest(tar);
  return { diffId: d, digest: d, size: tar.length, mediaType: 'application/vnd.oci.image.layer.v1.tar', compression: 'none', open: async () => Readable.from([tar]) };
}

/** A fake layer that is only digests (the planner never opens a layer). */
function digestLayer(diffId: Digest, digest: Digest, size: number): Layer {
  return { diffId, digest, size, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', compression: 'gzip', open: async () => { throw new Error('not opened'); } };
}

function imageOf(layers: Layer[], created = '2024-01-02T03:04:05Z'): Image {
  const config = { architecture: 'amd64', os: 'linux', created, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } };
  const configBytes = Buffer.from(JSON.stringify(config));
  return { config, configBytes, configDigest: sha256Digest(configBytes), layers } as Image;
}

const app = (name: string, image: Image): StoreImage => ({ source: `oci:/somewhere:${name}`, names: [name], image });

async function members(tar: AsyncIterable<Buffer>) {
  const out = [];
  for await (const m of readTarStream(tar, 'test tar')) {
    const body = [];
    for await (const c of m.body()) body.push(c as Buffer);
    out.push({ name: m.header.name, type: m.type, mode: m.header.mode, dev: `${m.header.devmajor}:${m.header.devminor}`, pax: m.header.pax, body: Buffer.concat(body).toString() });
  }
  return out;
}

test('records: layers.json and images.json as containers-storage marshals them (podman 4.3.1, 2-layer pull)', () => {
  // The digests of the image podman pulled; its records are below, less what strata leaves out.
  const base = digestLayer('sha256:0667ccdfa8b8d61a1e22afd3b15635dfb48734a204af0a20929e0ca4bf0bcf0a', 'sha256:314b19c3678b4220fb7ae2ecb3ce99728542db7909e9d4d4593916cb42277413', 1028085);
  const top = digestLayer('sha256:4d62c2c18b3c4d34f016af0d6a6923bd170f2db30232a2b99d277522240ec643', 'sha256:4d62c2c18b3c4d34f016af0d6a6923bd170f2db30232a2b99d277522240ec643', 10240);
  const plan = planStore([app('example.com/test/hello:v1', imageOf([base, top]))], ROOT);
  const sizes = new Map([[plan.layers[0]!.id, { diffSize: 1986560 }], [plan.layers[1]!.id, { diffSize: 10240 }]]);
  const layers = JSON.parse(layersJson(plan, sizes, '1970-01-01T00:00:01Z').toString()) as Record<string, unknown>[];
  // podman: {"id","parent","created","compressed-diff-digest","compressed-size","diff-digest","diff-size","compression","uidset","gidset"}
  assert.deepEqual(layers.map((l) => Object.keys(l)), [
    ['id', 'created', 'compressed-diff-digest', 'compressed-size', 'diff-digest', 'diff-size', 'compression'],
    ['id', 'parent', 'created', 'compressed-diff-digest', 'compressed-size', 'diff-digest', 'diff-size', 'compression'],
  ]);
  assert.equal(layers[1]!.id, '60112821723f98edbea5925d24dd13a5a60a5de1fff05acad897075e1ad61d0f');
  assert.equal(layers[1]!.parent, '0667ccdfa8b8d61a1e22afd3b15635dfb48734a204af0a20929e0ca4bf0bcf0a');
  assert.equal(layers[0]!.compression, 2, 'gzip is archive.Gzip (2)');
  assert.equal(layers[0]!['diff-size'], 1986560);

  const images = JSON.parse(imagesJson(plan, '1970-01-01T00:00:01Z').toString()) as Record<string, unknown>[];
  // podman: {"id","digest","names","names-history","layer","metadata","big-data-names","big-data-sizes","big-data-digests","created"}
  assert.deepEqual(Object.keys(images[0]!), ['id', 'digest', 'names', 'names-history', 'layer', 'big-data-names', 'big-data-sizes', 'big-data-digests', 'created']);
  const image = images[0]! as { 'big-data-names': string[]; 'big-data-sizes': Record<string, number>; layer: string; created: string };
  assert.equal(image.layer, layers[1]!.id);
  assert.equal(image.created, '2024-01-02T03:04:05Z', 'from the image config');
  assert.deepEqual(image['big-data-names'].map((n) => n.replace(/[0-9a-f]{64}/, 'H')), ['sha256:H', 'manifest-sha256:H', 'manifest']);
  assert.deepEqual(Object.keys(image['big-data-sizes']), [...Object.keys(image['big-data-sizes'])].sort(), 'Go sorts map keys');
});

test('records: one line, Go\'s escapes; a created a store could not parse falls back to the mtime, never the clock', () => {
  assert.equal(goJson({ a: '<&>\u2028' }).toString(), '{"a":"\\u003c\\u0026\\u003e\\u2028"}');
  const plan = planStore([app('reg.example/x:1', imageOf([layerOf(Buffer.from('a'))], 'last tuesday'))], ROOT);
  const images = JSON.parse(imagesJson(plan, '1970-01-01T00:00:01Z').toString()) as { created: string }[];
  assert.equal(images[0]!.created, '1970-01-01T00:00:01Z');
  assert.ok(!imagesJson(plan, 'x').includes('\n'));
});

test('plan: shared layers once, parents first; the same image under two names is one record; the order of the apps does not matter', () => {
  const [a, b, c] = ['a', 'b', 'c'].map((s) => layerOf(Buffer.from(s))) as [Layer, Layer, Layer];
  const one = imageOf([a, b]);
  const two = imageOf([a, c]);
  const plan = planStore([app('reg.example/two:1', two), app('reg.example/one:1', one), { ...app('reg.example/alias:1', one) }], ROOT);
  assert.equal(plan.layers.length, 3, 'a is stored once');
  assert.deepEqual(plan.images.map((i) => i.names.length).sort(), [1, 2]);
  for (const l of plan.layers) if (l.parent) assert.ok(plan.layers.findIndex((p) => p.id === l.parent) < plan.layers.indexOf(l));
  const top = plan.layers.find((l) => l.parent !== undefined)!;
  assert.deepEqual(top.lower, [plan.layers[0]!.link], 'lower lists the layers below, nearest first');
  const three = planStore([app('reg.example/three:1', imageOf([a, b, c]))], ROOT).layers;
  assert.deepEqual(three[2]!.lower, [three[1]!.link, three[0]!.link]);
  const again = planStore([app('reg.example/one:1', one), { ...app('reg.example/alias:1', one) }, app('reg.example/two:1', two)], ROOT);
  assert.deepEqual(again.layers.map((l) => l.id), plan.layers.map((l) => l.id));
  assert.deepEqual(again.images, plan.images.map((i) => ({ ...i })));
});

test('plan: two images under one name, and an image of no layers, are errors naming them', () => {
  const one = imageOf([layerOf(Buffer.from('a'))]);
  const two = imageOf([layerOf(Buffer.from('b'))]);
  assert.throws(() => planStore([app('reg.example/x:1', one), { ...app('reg.example/x:1', two), source: 'oci:/other:x' }], ROOT),
    (e: unknown) => e instanceof StrataError && e.message.includes('reg.example/x:1') && e.message.includes('oci:/other:x') && e.message.includes('--name'));
  assert.throws(() => planStore([app('reg.example/empty:1', imageOf([]))], ROOT), /no layers/);
});

async function storedMembers(entries: Entry[], mode: WhiteoutMode) {
  const plan = planStore([app('reg.example/w:1', imageOf([layerOf(Buffer.from('base')), layerOf(await tarBuffer(entries))]))], ROOT);
  const stored = plan.layers[1]!;
  const input = { what: 'layer L of W', open: async () => (await stored.layer.open()) as AsyncIterable<Buffer> };
  let facts: { diffSize: number } | undefined;
  const list = await members(storedLayerTar(stored, input, { root: ROOT, mtime: 7, whiteouts: mode }, (f) => (facts = f)));
  assert.equal(facts?.diffSize, stored.layer.size);
  return { stored, list };
}

test('stored layer: the files under overlay/<id>/diff (0555 without a root entry), then link and lower', async () => {
  const { stored, list } = await storedMembers([{ name: 'etc/', type: 'directory' }, { name: 'etc/hello', content: 'hi\n' }], 'refuse');
  const dir = `${ROOT}/overlay/${stored.id}`;
  const names = list.map((m) => m.name.replace(/\/$/, ''));
  assert.deepEqual(names, ['usr', 'usr/lib', 'usr/lib/containers', ROOT, `${ROOT}/overlay`, dir, `${dir}/diff`, `${dir}/diff/etc`, `${dir}/diff/etc/hello`, `${dir}/link`, `${dir}/lower`, `${ROOT}/overlay-layers`, `${ROOT}/overlay-layers/${stored.id}.tar-split.gz`]);
  assert.equal(list.find((m) => m.name.replace(/\/$/, '') === `${dir}/diff`)!.mode, 0o555);
  assert.equal(list.find((m) => m.name === `${dir}/diff/etc/hello`)!.body, 'hi\n');
  assert.equal(list.find((m) => m.name === `${dir}/link`)!.body, stored.link);
  assert.equal(list.find((m) => m.name === `${dir}/lower`)!.body, `l/${stored.lower[0]}`);
});

const WHITEOUTS: Entry[] = [{ name: 'etc/', type: 'directory' }, { name: 'etc/.wh.gone' }, { name: 'var/', type: 'directory' }, { name: 'var/.wh..wh..opq' }];

test('stored layer whiteouts: refused naming the options; chardev gives 0:0 devices and the opaque xattr; ostree gives .ostree-wh. files', async () => {
  await assert.rejects(storedMembers(WHITEOUTS, 'refuse'), (e: unknown) => e instanceof StrataError && e.message.includes('layer L of W') && e.message.includes('/etc/gone') && e.message.includes('--whiteouts chardev'));

  const chardev = (await storedMembers(WHITEOUTS, 'chardev')).list.filter((m) => m.name.includes('/diff/'));
  const gone = chardev.find((m) => m.name.endsWith('/diff/etc/gone'))!;
  assert.deepEqual([gone.type, gone.dev, gone.mode], ['char', '0:0', 0]);
  assert.ok(!chardev.some((m) => m.name.includes('.wh.')), 'no marker is carried');
  const opaque = chardev.filter((m) => m.name.replace(/\/$/, '').endsWith('/diff/var'));
  assert.equal(opaque.length, 2, 'the directory, then again with the xattr');
  assert.equal(opaque[1]!.pax?.get('SCHILY.xattr.trusted.overlay.opaque')?.toString(), 'y');

  const ostree = (await storedMembers(WHITEOUTS, 'ostree')).list.filter((m) => m.name.includes('/diff/'));
  const marker = ostree.find((m) => m.name.endsWith('/diff/etc/.ostree-wh.gone'))!;
  assert.deepEqual([marker.type, marker.body], ['file', '']);
  assert.ok(!ostree.some((m) => m.name.endsWith('/diff/etc/gone')));
});

test('metadata layer: the same images give the same bytes; names sorted, directories first, locks empty', async () => {
  const [a, b] = [layerOf(Buffer.from('a')), layerOf(Buffer.from('b'))];
  const imgs = [app('reg.example/b:1', imageOf([a, b])), app('reg.example/a:1', imageOf([a]))];
  const plan = planStore(imgs, ROOT);
  const sizes = new Map(plan.layers.map((l) => [l.id, { diffSize: 1 }]));
  const tar = metadataTar(plan, sizes, 5);
  assert.ok(tar.equals(metadataTar(planStore([...imgs].reverse(), ROOT), sizes, 5)));
  const list = await members(Readable.from([tar]));
  const names = list.map((m) => m.name.replace(/\/$/, ''));
  assert.deepEqual(names, [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
  for (const lock of ['overlay-layers/layers.lock', 'overlay-images/images.lock']) assert.equal(list.find((m) => m.name === `${ROOT}/${lock}`)!.body, '');
  const links = list.filter((m) => m.type === 'symlink');
  assert.equal(links.length, 2);
  assert.ok(metadataTar(plan, sizes, 6).compare(tar) !== 0, 'the mtime is the only time in it');
});

test('stored layer: a member beneath a symlink of its own layer is refused (it would be written through the link into the host)', async () => {
  const escape: Entry[] = [{ name: 'etc', type: 'symlink', linkname: '/' }, { name: 'etc/passwd', content: 'root::0:0::/:/bin/sh\n' }];
  await assert.rejects(storedMembers(escape, 'refuse'), (e: unknown) => e instanceof StrataError && e.message.includes('"etc/passwd"') && e.message.includes('symlink "etc"'));
  const hardlink: Entry[] = [{ name: 'etc', type: 'symlink', linkname: '/' }, { name: 'shadow', type: 'link', linkname: 'etc/shadow' }];
  await assert.rejects(storedMembers(hardlink, 'refuse'), (e: unknown) => e instanceof StrataError && e.message.includes('hardlink target'));
  // A symlink replaced by a directory of the same name is no longer one.
  const replaced: Entry[] = [{ name: 'etc', type: 'symlink', linkname: '/' }, { name: 'etc/', type: 'directory' }, { name: 'etc/ok', content: 'fine' }];
  const { list } = await storedMembers(replaced, 'refuse');
  assert.ok(list.some((m) => m.name.endsWith('/diff/etc/ok')));
});
