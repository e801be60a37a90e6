/**
 * Base images for the "build on top of an existing image" end-to-end tests, made from the
 * published formats with GNU tar, GNU gzip and sha256 — never with strata's own writers or
 * readers, so a misunderstanding shared by strata's writer and reader cannot make a test pass.
 *
 * The base root filesystem is two layers:
 *   0 "os":      /bin/busybox (Debian's static busybox) with /bin/sh, /bin/cat, … linked to it
 *   1 "release": /etc/base-release, /etc/keep-me, /opt/conf/{old.txt,sub/keep.txt}
 * which is enough to run a shell in podman and to see removals and opaque directories.
 *
 * Every builder stages the archive's members in a directory and packs it with GNU tar; a
 * `mutate` hook may change the staged files first, which is how the tests make broken bases
 * (a missing file, a manifest that lies) from the same published layout.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePackages } from './tools.js';

export const BASE_RELEASE = 'strata-e2e-base 1.0\n';
export const BASE_KEEP = 'this file stays\n';
/** Files under /opt/conf in the base, sorted: what an opaque whiteout must hide. */
export const BASE_CONF_FILES = ['old.txt', 'sub'];
/** The base config's PATH, so `sh -c 'cat …'` finds busybox's applets. */
export const BASE_PATH = '/bin';
/** Applets linked to /bin/busybox in the base. */
const APPLETS = ['sh', 'cat', 'ls', 'test', 'echo', 'find', 'sort'];

export type Dig = `sha256:${string}`;

export function sha256(b: Buffer | string): Dig {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export function hexOf(d: string): string {
  return d.replace(/^sha256:/, '');
}

export function sha256File(path: string): Dig {
  return sha256(readFileSync(path));
}

/** One base layer: an uncompressed tar file and its digest (the DiffID). */
export interface BaseLayer {
  /** Path of the uncompressed layer tar on the host. */
  tar: string;
  diffId: Dig;
  /** Short label, for created_by and error messages. */
  label: string;
}

/** Deterministic GNU tar of `members` (relative to `dir`), sorted, owned by root, mtime 1. */
export function gnuTar(dir: string, members: readonly string[], out: string, extra: readonly string[] = []): void {
  execFileSync('tar', ['--sort=name', '--format=gnu', '--mtime=@1', '--owner=0', '--group=0', '--numeric-owner',
    ...extra, '-C', dir, '-cf', out, '--', ...members], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** GNU gzip without name or timestamp, so the compressed bytes only depend on the input. */
export function gnuGzip(file: string, out: string): void {
  writeFileSync(out, execFileSync('gzip', ['-n', '-9', '-c', file], { maxBuffer: 1 << 30 }));
}

/** The two base layer tars, written under `dir`. */
export async function makeBaseLayers(dir: string): Promise<BaseLayer[]> {
  await ensurePackages(['busybox-static']);
  const os = join(dir, 'rootfs-os');
  mkdirSync(join(os, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(os, 'bin', 'busybox'));
  chmodSync(join(os, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) symlinkSync('busybox', join(os, 'bin', a));

  const rel = join(dir, 'rootfs-release');
  mkdirSync(join(rel, 'etc'), { recursive: true });
  mkdirSync(join(rel, 'opt', 'conf', 'sub'), { recursive: true });
  writeFileSync(join(rel, 'etc', 'base-release'), BASE_RELEASE);
  writeFileSync(join(rel, 'etc', 'keep-me'), BASE_KEEP);
  writeFileSync(join(rel, 'opt', 'conf', 'old.txt'), 'old configuration\n');
  writeFileSync(join(rel, 'opt', 'conf', 'sub', 'keep.txt'), 'old sub file\n');

  const layers: BaseLayer[] = [];
  for (const [label, root, members] of [['os', os, ['bin']], ['release', rel, ['etc', 'opt']]] as const) {
    const tar = join(dir, `layer-${label}.tar`);
    gnuTar(root, members, tar);
    layers.push({ tar, diffId: sha256File(tar), label });
  }
  return layers;
}

function baseConfig(diffIds: readonly string[], labels: readonly string[]): Record<string, unknown> {
  return {
    architecture: 'amd64',
    os: 'linux',
    created: '2020-01-01T00:00:00Z',
    config: { Env: [`PATH=${BASE_PATH}`], Cmd: ['/bin/sh'], Labels: { 'base.made-by': 'hand' } },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: labels.map((l) => ({ created: '2020-01-01T00:00:00Z', created_by: `hand: ${l} layer` })),
  };
}

export interface ArchiveOptions {
  /** Changes the staged members before packing (to make a broken base). */
  mutate?: (stage: string) => void;
  /** Extra GNU tar arguments for packing (e.g. `-P --transform` to store a `../` name). */
  tarArgs?: readonly string[];
}

export interface LegacyArchive {
  file: string;
  /** v1 ids, bottom layer first. */
  ids: string[];
  repoTag: string;
}

/**
 * An old-style (Docker <= 1.9) `docker save` archive: `repositories` naming the top v1 id and
 * `<id>/{VERSION,json,layer.tar}` with parent links, and no manifest.json. The ids are arbitrary
 * hex, as old Docker's were random; the top layer's json carries the container config.
 */
export function legacyDockerArchive(dir: string, layers: readonly BaseLayer[], opts: ArchiveOptions & { loop?: boolean; name?: string } = {}): LegacyArchive {
  const stage = join(dir, `stage-${opts.name ?? 'legacy-base'}`);
  mkdirSync(stage, { recursive: true });
  const ids = layers.map((l) => hexOf(sha256(`legacy v1 id of ${l.label}`)));
  for (const [i, l] of layers.entries()) {
    const id = ids[i]!;
    const top = i === layers.length - 1;
    mkdirSync(join(stage, id));
    writeFileSync(join(stage, id, 'VERSION'), '1.0');
    copyFileSync(l.tar, join(stage, id, 'layer.tar'));
    // A loop: the bottom layer names the top one as its parent.
    const parent = i > 0 ? ids[i - 1] : opts.loop ? ids[ids.length - 1] : undefined;
    const json: Record<string, unknown> = {
      id,
      ...(parent ? { parent } : {}),
      created: `2015-01-0${i + 1}T00:00:00Z`,
      container_config: { Cmd: ['/bin/sh', '-c', `#(nop) ADD ${l.label}`] },
      os: 'linux',
      ...(top ? { architecture: 'amd64', config: { Env: [`PATH=${BASE_PATH}`], Cmd: ['/bin/sh'] } } : {}),
    };
    writeFileSync(join(stage, id, 'json'), JSON.stringify(json));
  }
  writeFileSync(join(stage, 'repositories'), JSON.stringify({ 'legacy-base': { '1': ids[ids.length - 1] } }));
  opts.mutate?.(stage);
  const file = join(dir, `${opts.name ?? 'legacy-base'}.tar`);
  gnuTar(stage, readdirSync(stage), file, opts.tarArgs);
  return { file, ids, repoTag: 'legacy-base:1' };
}

export interface ManifestArchive {
  file: string;
  /** The config bytes and their digest (= the image ID). */
  config: Buffer;
  configDigest: Dig;
  /** Layer file names in the archive, bottom first. */
  layerNames: string[];
  diffIds: Dig[];
  repoTag: string;
}

/**
 * A new-style docker-archive with manifest.json only (no `repositories`, no legacy `<id>/json`):
 * `<diffid hex>.tar` layers and `<config digest hex>.json`, as skopeo names them.
 */
export function manifestDockerArchive(dir: string, layers: readonly BaseLayer[], opts: ArchiveOptions & { name?: string } = {}): ManifestArchive {
  const name = opts.name ?? 'manifest-base';
  const stage = join(dir, `stage-${name}`);
  mkdirSync(stage, { recursive: true });
  const diffIds = layers.map((l) => l.diffId);
  const config = Buffer.from(JSON.stringify(baseConfig(diffIds, layers.map((l) => l.label))));
  const configDigest = sha256(config);
  const layerNames = diffIds.map((d) => `${hexOf(d)}.tar`);
  for (const [i, l] of layers.entries()) copyFileSync(l.tar, join(stage, layerNames[i]!));
  writeFileSync(join(stage, `${hexOf(configDigest)}.json`), config);
  const repoTag = `localhost/${name}:1`;
  writeFileSync(join(stage, 'manifest.json'), JSON.stringify([{ Config: `${hexOf(configDigest)}.json`, RepoTags: [repoTag], Layers: layerNames }]));
  opts.mutate?.(stage);
  const file = join(dir, `${name}.tar`);
  gnuTar(stage, readdirSync(stage), file, opts.tarArgs);
  return { file, config, configDigest, layerNames, diffIds, repoTag };
}

export interface OciDescriptor { mediaType: string; digest: Dig; size: number; annotations?: Record<string, string> }

export interface OciBase {
  /** The layout directory. */
  dir: string;
  /** `org.opencontainers.image.ref.name` of the image in index.json. */
  ref: string;
  manifest: Buffer;
  manifestDigest: Dig;
  layers: OciDescriptor[];
  config: Buffer;
  configDigest: Dig;
  diffIds: Dig[];
}

const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  tar: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
};

/**
 * An OCI image layout directory (image-spec image-layout.md) whose bottom layer is gzipped with
 * GNU gzip and whose other layers are plain tars: both media types in one base.
 */
export function ociLayoutBase(dir: string, layers: readonly BaseLayer[], opts: { name?: string; gzipAll?: boolean } = {}): OciBase {
  const layout = join(dir, opts.name ?? 'oci-base');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const putBlob = (bytes: Buffer): Dig => {
    const d = sha256(bytes);
    writeFileSync(join(blobs, hexOf(d)), bytes);
    return d;
  };
  const descriptors: OciDescriptor[] = layers.map((l, i) => {
    const gz = i === 0 || opts.gzipAll === true;
    let bytes = readFileSync(l.tar);
    if (gz) {
      const tmp = join(dir, `${l.label}.tar.gz`);
      gnuGzip(l.tar, tmp);
      bytes = readFileSync(tmp);
    }
    return { mediaType: gz ? MT.gzip : MT.tar, digest: putBlob(bytes), size: bytes.length };
  });
  const diffIds = layers.map((l) => l.diffId);
  const config = Buffer.from(JSON.stringify(baseConfig(diffIds, layers.map((l) => l.label))));
  const configDigest = putBlob(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.manifest,
    config: { mediaType: MT.config, digest: configDigest, size: config.length },
    layers: descriptors,
  }));
  const manifestDigest = putBlob(manifest);
  const ref = 'base';
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.index,
    manifests: [{ mediaType: MT.manifest, digest: manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': ref } }],
  }));
  return { dir: layout, ref, manifest, manifestDigest, layers: descriptors, config, configDigest, diffIds };
}

/** Packs an OCI layout directory into an `oci-archive` tar (the layout's files at the root). */
export function ociArchiveOf(layout: string, out: string): void {
  gnuTar(layout, readdirSync(layout), out);
}
