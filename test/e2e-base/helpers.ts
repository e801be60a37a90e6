/**
 * Shared steps of the "build on a base image" end-to-end tests. Outputs are read back with GNU tar,
 * skopeo and podman — never with strata's readers — so the tests see what real loaders see.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { tmpdir } from 'node:os';
import { runStrata, type RunResult } from '../support/cli.js';
import { cliPath } from '../support/paths.js';
import { makeBusyboxStore, type BusyboxStore } from '../support/busybox-store.js';
import { E2E_PACKAGES, ensurePackages, skopeo } from '../support/tools.js';
import {
  legacyDockerArchive, makeBaseLayers, manifestDockerArchive, ociLayoutBase,
  type BaseLayer, type LegacyArchive, type ManifestArchive, type OciBase,
} from '../support/base-images.js';

export const TAG = 'strata-on-base:1';

/**
 * A fresh directory with a short lowercase name. Lowercase: podman 4.3 names an image run from
 * `oci:DIR` after DIR's path and rejects capitals (mkdtemp's random suffix has them). Short:
 * measured here, when the podmanEnv directory (`<dir>/podman`) is 47 characters or longer, every
 * `podman run` waits ~20 s for an exit status that never comes (conmon's socket paths under the
 * run root outgrow the unix socket limit), while 46 characters run in well under a second.
 */
export function lowercaseTempDir(prefix: string): string {
  const name = `${prefix}-${randomBytes(6).toString('hex')}`;
  const dir = join(tmpdir().length + name.length < 32 ? tmpdir() : '/tmp', name);
  assert.ok(dir.length <= 32, `temp dir ${dir} is too long for podman's socket paths; use a shorter prefix`);
  mkdirSync(dir);
  return dir;
}

/** Installs the tools and builds the fixture store; fails (never skips) when a tool cannot be had. */
export async function setup(dir: string): Promise<BusyboxStore> {
  await ensurePackages([...E2E_PACKAGES, 'gzip', 'tar']);
  assert.ok(existsSync(cliPath), `the strata CLI is not built: ${cliPath} is missing`);
  return makeBusyboxStore(join(dir, 'fixture'));
}

/** An entrypoint that shows a base file and runs our store path: both must be in the image. */
export function bothEntrypoint(store: BusyboxStore): string {
  return JSON.stringify(['/bin/sh', '-c', `cat /etc/base-release; exec ${store.entrypoint}`]);
}

export interface BuildRun {
  /** The output file or directory. */
  out: string;
  result: RunResult;
}

let seq = 0;

/**
 * `strata build` in a fresh, empty working directory with a private TMPDIR, so that anything
 * strata leaves behind (an extracted base file, a temp file) shows up. Asserts success and that
 * the working directory then holds exactly the output and the TMPDIR nothing.
 */
export async function buildOn(work: string, args: {
  closure: string;
  storeRoot: string;
  from?: string;
  format?: 'docker-archive' | 'oci' | 'oci-archive';
  extra?: readonly string[];
  name?: string;
}): Promise<BuildRun> {
  const format = args.format ?? 'docker-archive';
  const dir = join(work, `build-${seq++}`);
  const cwd = join(dir, 'cwd');
  const tmp = join(dir, 'tmp');
  mkdirSync(cwd, { recursive: true });
  mkdirSync(tmp);
  const name = args.name ?? (format === 'oci' ? 'layout' : 'image.tar');
  const out = join(cwd, name);
  const argv = ['build', args.closure, '--store-root', args.storeRoot, '-o', out, '--format', format, '--tag', TAG,
    ...(args.from !== undefined ? ['--from', args.from] : []), ...(args.extra ?? [])];
  const result = await runStrata(argv, { cwd, env: { ...process.env, TMPDIR: tmp } });
  assert.equal(result.code, 0, `strata ${argv.join(' ')} failed (exit ${result.code}):\n${result.stderr}`);
  assert.deepEqual(readdirSync(cwd), [name], 'the working directory should hold the output and nothing else');
  assert.deepEqual(readdirSync(tmp), [], 'strata left files in TMPDIR');
  return { out, result };
}

/** The `org.opencontainers.image.ref.name` strata gave its image in an OCI layout's index.json. */
export function ociRef(layout: string): string {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
  const refs = index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((r): r is string => !!r);
  assert.equal(refs.length, 1, `index.json of ${layout} should tag one manifest: ${JSON.stringify(refs)}`);
  return refs[0]!;
}

// ---------------------------------------------------------------------------------------------
// Reading a docker-archive with GNU tar

export interface TarMemberInfo { name: string; type: string; link?: string }

/** Members of a tar with their type and link target (GNU tar's verbose listing). */
export function tarListing(archive: string): TarMemberInfo[] {
  const r = spawnSync('tar', ['--numeric-owner', '-tvf', archive], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `tar -tvf ${archive}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((line) => {
    // "lrwxrwxrwx 0/0 0 1970-01-01 00:00 name -> target"
    const m = /^(\S)\S*\s+\S+\s+\d+\s+\S+\s+\S+\s+(.*)$/.exec(line);
    assert.ok(m, `cannot parse tar listing line ${JSON.stringify(line)}`);
    const type = m[1]!;
    let name = m[2]!;
    let link: string | undefined;
    if (type === 'l') [name, link] = name.split(' -> ') as [string, string];
    else if (type === 'h') [name, link] = name.split(' link to ') as [string, string];
    return { name: name.replace(/^\.\//, '').replace(/\/$/, ''), type, ...(link !== undefined ? { link } : {}) };
  });
}

/** The bytes of one member (GNU tar), following one level of symlink the way loaders do. */
export function tarMemberBytes(archive: string, name: string, listing = tarListing(archive)): Buffer {
  const m = listing.find((x) => x.name === name);
  assert.ok(m, `${archive} has no member ${name}`);
  const target = m.type === 'l' ? posix.normalize(posix.join(posix.dirname(name), m.link!)) : name;
  const real = listing.find((x) => x.name === target);
  assert.ok(real, `${archive}: ${name} links to ${target}, which is missing`);
  const r = spawnSync('tar', ['-xOf', archive, real.name], { maxBuffer: 1 << 30 });
  assert.equal(r.status, 0, `tar -xOf ${archive} ${real.name}: ${r.stderr}`);
  return r.stdout;
}

export function sha(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export interface DockerArchiveView {
  listing: TarMemberInfo[];
  manifest: { Config: string; RepoTags: string[]; Layers: string[] };
  config: { rootfs: { diff_ids: string[] }; config?: Record<string, unknown>; history?: { created_by?: string; empty_layer?: boolean }[] };
  /** sha256 of each Layers[i] member's bytes, as stored (compressed or not). */
  layerDigests: string[];
}

export function readDockerArchive(archive: string): DockerArchiveView {
  const listing = tarListing(archive);
  const manifests = JSON.parse(tarMemberBytes(archive, 'manifest.json', listing).toString('utf8')) as DockerArchiveView['manifest'][];
  assert.equal(manifests.length, 1, 'one image in the output');
  const manifest = manifests[0]!;
  const config = JSON.parse(tarMemberBytes(archive, manifest.Config, listing).toString('utf8')) as DockerArchiveView['config'];
  const layerDigests = manifest.Layers.map((l) => sha(tarMemberBytes(archive, l, listing)));
  return { listing, manifest, config, layerDigests };
}

/**
 * Checks the legacy half of a docker-archive the way an old Docker would walk it: `repositories`
 * names the top v1 id; every `<id>/json` names an existing parent (or none, once: the bottom);
 * following parents from the top visits every v1 dir exactly once; the chain has one link per
 * layer; and bottom-to-top the chain's layer.tar files are the manifest's layers in order.
 */
export function checkLegacyChain(archive: string): void {
  const view = readDockerArchive(archive);
  const { listing } = view;
  const ids = listing.flatMap((m) => (/^[0-9a-f]{64}\/json$/.test(m.name) ? [m.name.slice(0, 64)] : []));
  assert.ok(ids.length > 0, 'the output has no legacy <v1id>/json files');
  const jsons = new Map(ids.map((id) => [id, JSON.parse(tarMemberBytes(archive, `${id}/json`, listing).toString('utf8')) as { id: string; parent?: string }]));
  for (const [id, j] of jsons) {
    assert.equal(j.id, id, `${id}/json names id ${j.id}`);
    if (j.parent !== undefined) assert.ok(jsons.has(j.parent), `${id}/json names parent ${j.parent}, which has no json in the archive`);
    assert.equal(tarMemberBytes(archive, `${id}/VERSION`, listing).toString('utf8'), '1.0', `${id}/VERSION`);
  }
  const bottoms = [...jsons.values()].filter((j) => j.parent === undefined);
  assert.equal(bottoms.length, 1, `exactly one v1 layer without a parent, found ${bottoms.length}`);

  const repos = JSON.parse(tarMemberBytes(archive, 'repositories', listing).toString('utf8')) as Record<string, Record<string, string>>;
  const tops = Object.values(repos).flatMap((tags) => Object.values(tags));
  assert.ok(tops.length > 0, 'repositories names no image');
  const top = tops[0]!;
  for (const t of tops) assert.equal(t, top, 'every tag in repositories names the same top id');

  const chain: string[] = [];
  for (let id: string | undefined = top; id !== undefined; id = jsons.get(id)!.parent) {
    assert.ok(jsons.has(id), `chain reaches ${id}, which has no json`);
    assert.ok(!chain.includes(id), `the parent chain loops at ${id}`);
    chain.push(id);
  }
  chain.reverse();
  assert.equal(chain.length, view.manifest.Layers.length, 'chain length equals the number of layers');
  assert.equal(chain.length, view.config.rootfs.diff_ids.length, 'chain length equals the number of diff_ids');
  assert.deepEqual([...chain].sort(), [...ids].sort(), 'the chain covers every v1 dir');
  const chainLayers = chain.map((id) => sha(tarMemberBytes(archive, `${id}/layer.tar`, listing)));
  assert.deepEqual(chainLayers, view.layerDigests, 'bottom-to-top, the chain\'s layer.tar files are manifest.json\'s layers');
}

// ---------------------------------------------------------------------------------------------
// skopeo

export interface RawManifest {
  config: { digest: string; size: number; mediaType: string };
  layers: { digest: string; size: number; mediaType: string }[];
}

/** `skopeo inspect --raw` of a reference: the manifest as containers/image sees it. */
export async function skopeoRaw(ref: string): Promise<RawManifest> {
  const m = JSON.parse((await skopeo(['inspect', '--raw', ref])).stdout) as RawManifest;
  assert.ok(Array.isArray(m.layers), `skopeo inspect --raw ${ref}: no layers`);
  return m;
}

/** `skopeo inspect --config` of a reference. */
export async function skopeoConfig(ref: string): Promise<{ rootfs: { diff_ids: string[] }; config?: Record<string, unknown> }> {
  return JSON.parse((await skopeo(['inspect', '--config', ref])).stdout) as { rootfs: { diff_ids: string[] } };
}

/** A closure file holding only some of the fixture's paths (for a lower strata image). */
export function subClosure(store: BusyboxStore, keep: readonly string[], out: string): string {
  const all = JSON.parse(readFileSync(store.closureFile, 'utf8')) as { path: string; references: string[] }[];
  const kept = all.filter((p) => keep.includes(p.path));
  for (const p of kept) for (const r of p.references) assert.ok(keep.includes(r), `sub-closure of ${basename(p.path)} misses ${r}`);
  writeFileSync(out, JSON.stringify(kept, null, 2));
  return out;
}

/** Names of the store paths (top-level `nix/store/<name>` directories) each layer of a docker-archive or OCI blob list holds. */
export function storePathsInLayerBytes(layer: Buffer, gz: boolean): string[] {
  const r = spawnSync('tar', [gz ? '-tzf' : '-tf', '-'], { input: layer, encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `tar -t of a layer: ${r.stderr}`);
  const names = new Set<string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^\/?(?:\.\/)?nix\/store\/([^/]+)/.exec(line);
    if (m) names.add(`/nix/store/${m[1]}`);
  }
  return [...names].sort();
}

export interface HandMadeBases {
  layers: BaseLayer[];
  legacy: LegacyArchive;
  newStyle: ManifestArchive;
  oci: OciBase;
}

/** The same two base layers as (a) a parent-chain-only archive, (b) a manifest.json-only one, (c) an OCI layout. */
export async function handMadeBases(dir: string): Promise<HandMadeBases> {
  const bases = join(dir, 'bases');
  mkdirSync(bases);
  const layers = await makeBaseLayers(bases);
  return { layers, legacy: legacyDockerArchive(bases, layers), newStyle: manifestDockerArchive(bases, layers), oci: ociLayoutBase(bases, layers) };
}
