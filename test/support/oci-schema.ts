/**
 * Checks that what strata writes is valid by the OCI image-spec's own JSON schemas (vendored in
 * test/fixtures/oci-schema/, validated with ajv's draft-04 class, offline) plus stricter checks of
 * our own: digests are sha256 and well formed, sizes are non-negative safe integers and equal the
 * blobs' real sizes, media types are known and in the right places, blobs hash to their names.
 *
 * Every failure is an AssertionError naming what was checked, the JSON path, and the problem.
 */
import { AssertionError } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import AjvDraft04Module from 'ajv-draft-04';
import type { ErrorObject, ValidateFunction } from 'ajv-draft-04';
import { repoRoot } from './paths.js';

// ---------------------------------------------------------------------------------------------
// Media types
// ---------------------------------------------------------------------------------------------

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';

const MANIFEST_TYPES = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);
const INDEX_TYPES = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);
const CONFIG_TYPES = new Set([OCI_CONFIG, DOCKER_CONFIG]);
/** Layer media types, with the compression each names. */
const LAYER_TYPES = new Map<string, 'none' | 'gzip' | 'zstd'>([
  ['application/vnd.oci.image.layer.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
  ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
  ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.diff.tar.zstd', 'zstd'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
]);

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Gives a blob's real size by digest, or undefined when there is no such blob. */
export type BlobSize = (digest: string) => number | undefined;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

// ---------------------------------------------------------------------------------------------
// The schemas
// ---------------------------------------------------------------------------------------------

export const schemaDir = join(repoRoot, 'test', 'fixtures', 'oci-schema');

/**
 * The URLs each schema file is known by: image-spec's schema/schema.go `specURLs` (generated from
 * each schema's "id" and the relative $refs that resolve against it). Files that others $ref come
 * first, so that each is registered before anything refers to it.
 */
const SPEC_URLS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['defs.json', [
    'https://opencontainers.org/schema/defs.json',
    'https://opencontainers.org/schema/image/defs.json',
    'https://opencontainers.org/schema/image/descriptor/defs.json',
  ]],
  ['defs-descriptor.json', [
    'https://opencontainers.org/schema/image/descriptor/mediaType',
    'https://opencontainers.org/schema/defs-descriptor.json',
    'https://opencontainers.org/schema/image/defs-descriptor.json',
  ]],
  ['content-descriptor.json', [
    'https://opencontainers.org/schema/descriptor',
    'https://opencontainers.org/schema/image/content-descriptor.json',
  ]],
  ['config-schema.json', ['https://opencontainers.org/schema/image/config']],
  ['image-index-schema.json', ['https://opencontainers.org/schema/image/index']],
  ['image-layout-schema.json', ['https://opencontainers.org/schema/image/layout']],
  ['image-manifest-schema.json', ['https://opencontainers.org/schema/image/manifest']],
];

const SCHEMA_IDS = {
  config: 'https://opencontainers.org/schema/image/config',
  index: 'https://opencontainers.org/schema/image/index',
  layout: 'https://opencontainers.org/schema/image/layout',
  manifest: 'https://opencontainers.org/schema/image/manifest',
} as const;

function eachObject(x: Json, f: (o: Record<string, Json>) => void): void {
  if (Array.isArray(x)) for (const y of x) eachObject(y, f);
  else if (x !== null && typeof x === 'object') {
    f(x);
    for (const y of Object.values(x)) eachObject(y, f);
  }
}

/** RFC 3339 date-time (what the OCI config's "created" must be). */
const DATE_TIME = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

let validators: Record<keyof typeof SCHEMA_IDS, ValidateFunction> | undefined;

function schemaValidators(): Record<keyof typeof SCHEMA_IDS, ValidateFunction> {
  if (validators) return validators;
  // ajv-draft-04 is CommonJS whose module.exports is the class and also carries it as .default.
  const Ajv = AjvDraft04Module.default;
  // strict: false because the spec's schemas carry keywords ajv does not know ("media" in defs.json).
  const ajv = new Ajv({ allErrors: true, strict: false });
  // image-layout-schema.json names its meta-schema by https:, the others by http:.
  const require = createRequire(import.meta.url);
  const meta = JSON.parse(readFileSync(require.resolve('ajv-draft-04/dist/refs/json-schema-draft-04.json'), 'utf8'));
  ajv.addMetaSchema({ ...meta, id: 'https://json-schema.org/draft-04/schema#' });
  // The formats the schemas use; without them ajv refuses to compile.
  ajv.addFormat('date-time', DATE_TIME);
  ajv.addFormat('uri', { type: 'string', validate: (s: string) => URL.canParse(s) });

  const registered = new Set<string>();
  for (const [file, urls] of SPEC_URLS) {
    const original = JSON.parse(readFileSync(join(schemaDir, file), 'utf8'));
    // Draft-04: every other member of an object holding "$ref" is ignored, an "id" too (ajv would
    // take it as the base the $ref resolves against, which image-spec's Go validator does not).
    eachObject(original, (o) => { if ('$ref' in o) delete o.id; });
    const nestedIds = new Set<string>();
    eachObject(original, (o) => { if (o !== original && typeof o.id === 'string') nestedIds.add(o.id); });
    let first = true;
    for (const url of urls) {
      // defs-descriptor.json is "known by" its mediaType definition's own id: that one is
      // registered with the file, as the subschema it is.
      if (registered.has(url) || nestedIds.has(url)) continue;
      const copy = structuredClone(original);
      // A second copy under another URL must not repeat the nested ids the first one registered.
      if (!first) eachObject(copy, (o) => { delete o.id; });
      copy.id = url;
      eachObject(copy, (o) => { if (typeof o.id === 'string') registered.add(o.id); });
      ajv.addSchema(copy);
      first = false;
    }
  }
  const get = (id: string): ValidateFunction => {
    const v = ajv.getSchema(id);
    if (!v) throw new Error(`OCI schema ${id} is not registered`);
    return v;
  };
  validators = { config: get(SCHEMA_IDS.config), index: get(SCHEMA_IDS.index), layout: get(SCHEMA_IDS.layout), manifest: get(SCHEMA_IDS.manifest) };
  return validators;
}

// ---------------------------------------------------------------------------------------------
// Failing
// ---------------------------------------------------------------------------------------------

function fail(what: string, path: string, message: string): never {
  throw new AssertionError({ message: `${what}: ${path || '/'}: ${message}` });
}

function schemaErrorText(e: ErrorObject): string {
  const extra = e.keyword === 'additionalProperties' ? ` (${(e.params as { additionalProperty?: string }).additionalProperty})`
    : e.keyword === 'enum' ? ` (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)})` : '';
  return `${e.instancePath || '/'}: ${e.message ?? e.keyword}${extra} [schema ${e.schemaPath}]`;
}

function validate(kind: keyof typeof SCHEMA_IDS, doc: Json, what: string): void {
  const v = schemaValidators()[kind];
  if (!v(doc)) {
    const errors = v.errors ?? [];
    throw new AssertionError({ message: `${what}: does not validate against the OCI ${kind} schema: ${errors.map(schemaErrorText).join('; ')}` });
  }
}

function parse(bytes: Buffer, what: string): Json {
  let doc: Json;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    fail(what, '', `not JSON: ${(e as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) fail(what, '', 'not a JSON object');
  return doc;
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

// ---------------------------------------------------------------------------------------------
// Strict checks of our own
// ---------------------------------------------------------------------------------------------

function checkDigest(value: unknown, what: string, path: string): void {
  if (typeof value !== 'string' || !DIGEST.test(value)) fail(what, path, `digest ${JSON.stringify(value)} is not sha256:<64 lowercase hex>`);
}

function checkSize(value: unknown, what: string, path: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(what, path, `size ${JSON.stringify(value)} is not a non-negative safe integer`);
}

function checkDescriptor(d: Json, what: string, path: string, allowed: ReadonlySet<string> | ReadonlyMap<string, unknown>, kind: string, blobSize?: BlobSize): void {
  if (d === null || typeof d !== 'object' || Array.isArray(d)) fail(what, path, 'descriptor is not an object');
  if (typeof d.mediaType !== 'string') fail(what, `${path}/mediaType`, 'missing mediaType');
  if (!allowed.has(d.mediaType)) fail(what, `${path}/mediaType`, `${JSON.stringify(d.mediaType)} is not a ${kind} media type`);
  checkDigest(d.digest, what, `${path}/digest`);
  checkSize(d.size, what, `${path}/size`);
  if (d.urls !== undefined) fail(what, `${path}/urls`, 'strata never writes foreign-layer urls');
  if (d.annotations !== undefined) checkAnnotations(d.annotations, what, `${path}/annotations`);
  if (blobSize) {
    const real = blobSize(d.digest);
    if (real === undefined) fail(what, `${path}/digest`, `blob ${d.digest} does not exist`);
    if (real !== d.size) fail(what, `${path}/size`, `size ${d.size} is not the blob's real size ${real} (${d.digest})`);
  }
}

function checkAnnotations(a: Json, what: string, path: string): void {
  if (a === null || typeof a !== 'object' || Array.isArray(a)) fail(what, path, 'annotations are not an object');
  for (const [k, v] of Object.entries(a)) {
    if (k === '') fail(what, path, 'empty annotation key');
    if (typeof v !== 'string') fail(what, `${path}/${k}`, 'annotation value is not a string');
  }
}

function checkSchemaVersion(doc: Json, what: string): void {
  if (doc.schemaVersion !== 2) fail(what, '/schemaVersion', `schemaVersion ${JSON.stringify(doc.schemaVersion)} is not 2`);
}

/** An image config (OCI or Docker): the OCI config schema, plus sha256 diff_ids matching the history. */
export function checkConfig(bytes: Buffer, what: string): Json {
  const doc = parse(bytes, what);
  validate('config', doc, what);
  if (doc.rootfs.type !== 'layers') fail(what, '/rootfs/type', `${JSON.stringify(doc.rootfs.type)} is not "layers"`);
  (doc.rootfs.diff_ids as unknown[]).forEach((d, i) => checkDigest(d, what, `/rootfs/diff_ids/${i}`));
  if (typeof doc.architecture !== 'string' || doc.architecture === '') fail(what, '/architecture', 'empty architecture');
  if (typeof doc.os !== 'string' || doc.os === '') fail(what, '/os', 'empty os');
  if (Array.isArray(doc.history)) {
    const nonEmpty = (doc.history as Json[]).filter((h) => !h.empty_layer).length;
    if (nonEmpty !== doc.rootfs.diff_ids.length) fail(what, '/history', `${nonEmpty} non-empty history entries for ${doc.rootfs.diff_ids.length} diff_ids`);
  }
  if (doc.config?.Env !== undefined && doc.config.Env !== null) {
    (doc.config.Env as unknown[]).forEach((e, i) => { if (typeof e !== 'string' || !e.includes('=')) fail(what, `/config/Env/${i}`, `${JSON.stringify(e)} is not NAME=value`); });
  }
  return doc;
}

/**
 * An image manifest: the OCI manifest schema (unless it is a Docker schema2 manifest, which gets
 * the strict checks only), a config descriptor of a config media type, layers of layer types, and
 * with `blobSize` every descriptor's size is its blob's.
 */
export function checkManifest(bytes: Buffer, what: string, blobSize?: BlobSize): Json {
  const doc = parse(bytes, what);
  if (doc.mediaType !== undefined && !MANIFEST_TYPES.has(doc.mediaType)) fail(what, '/mediaType', `${JSON.stringify(doc.mediaType)} is not a manifest media type`);
  if (doc.mediaType !== DOCKER_MANIFEST) validate('manifest', doc, what);
  checkSchemaVersion(doc, what);
  if (doc.mediaType === undefined) fail(what, '/mediaType', 'missing mediaType (strata always writes it)');
  checkDescriptor(doc.config, what, '/config', CONFIG_TYPES, 'config', blobSize);
  if (!Array.isArray(doc.layers) || doc.layers.length === 0) fail(what, '/layers', 'no layers');
  (doc.layers as Json[]).forEach((l, i) => checkDescriptor(l, what, `/layers/${i}`, LAYER_TYPES, 'layer', blobSize));
  if (doc.mediaType === DOCKER_MANIFEST) {
    if (doc.config.mediaType !== DOCKER_CONFIG) fail(what, '/config/mediaType', `a Docker manifest's config must be ${DOCKER_CONFIG}`);
    (doc.layers as Json[]).forEach((l, i) => { if (!String(l.mediaType).startsWith('application/vnd.docker.')) fail(what, `/layers/${i}/mediaType`, `${l.mediaType} in a Docker manifest`); });
  }
  if (doc.subject !== undefined) checkDescriptor(doc.subject, what, '/subject', MANIFEST_TYPES, 'manifest');
  if (doc.annotations !== undefined) checkAnnotations(doc.annotations, what, '/annotations');
  return doc;
}

/**
 * An image index (or Docker manifest list, strict checks only): the OCI index schema, children of
 * manifest or index media types, and with `blobSize` every child's size is its blob's.
 */
export function checkIndex(bytes: Buffer, what: string, blobSize?: BlobSize): Json {
  const doc = parse(bytes, what);
  if (doc.mediaType !== undefined && !INDEX_TYPES.has(doc.mediaType)) fail(what, '/mediaType', `${JSON.stringify(doc.mediaType)} is not an index media type`);
  if (doc.mediaType !== DOCKER_MANIFEST_LIST) validate('index', doc, what);
  checkSchemaVersion(doc, what);
  if (!Array.isArray(doc.manifests)) fail(what, '/manifests', 'missing manifests');
  const children = new Set([...MANIFEST_TYPES, ...INDEX_TYPES]);
  (doc.manifests as Json[]).forEach((m, i) => {
    checkDescriptor(m, what, `/manifests/${i}`, children, 'manifest or index', blobSize);
    if (m.platform !== undefined) {
      if (typeof m.platform?.architecture !== 'string' || m.platform.architecture === '') fail(what, `/manifests/${i}/platform/architecture`, 'missing architecture');
      if (typeof m.platform?.os !== 'string' || m.platform.os === '') fail(what, `/manifests/${i}/platform/os`, 'missing os');
    }
  });
  if (doc.annotations !== undefined) checkAnnotations(doc.annotations, what, '/annotations');
  return doc;
}

/**
 * The sha256 of a layer's uncompressed bytes (a diff_id). zstd is decoded by zstd(1) (libzstd),
 * not by strata's reader: callers with zstd layers install the zstd package first.
 */
function diffId(blob: Buffer, compression: 'none' | 'gzip' | 'zstd'): string | undefined {
  if (compression === 'zstd') {
    const r = spawnSync('zstd', ['-dc'], { input: blob, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new AssertionError({ message: `zstd -dc failed on a layer: ${r.error?.message ?? r.stderr.toString()}` });
    return sha256(r.stdout);
  }
  return sha256(compression === 'gzip' ? gunzipSync(blob) : blob);
}

/** The config's diff_ids are the layers' uncompressed digests, one each, in order. */
function checkDiffIds(config: Json, layers: readonly { blob: Buffer; compression: 'none' | 'gzip' | 'zstd' }[], what: string): void {
  const ids = config.rootfs.diff_ids as string[];
  if (ids.length !== layers.length) fail(what, '/rootfs/diff_ids', `${ids.length} diff_ids for ${layers.length} layers`);
  layers.forEach((l, i) => {
    const id = diffId(l.blob, l.compression);
    if (id !== undefined && id !== ids[i]) fail(what, `/rootfs/diff_ids/${i}`, `${ids[i]} is not the layer's uncompressed digest ${id}`);
  });
}

// ---------------------------------------------------------------------------------------------
// OCI layouts and archives
// ---------------------------------------------------------------------------------------------

/**
 * An OCI image layout directory: oci-layout, index.json, and every blob reachable from it (nested
 * indexes, manifests, configs, layers), each hashing to its name with the size its descriptor says.
 */
export function checkLayout(dir: string): void {
  const where = `OCI layout ${dir}`;
  const layoutFile = join(dir, 'oci-layout');
  if (!existsSync(layoutFile)) fail(where, 'oci-layout', 'missing');
  validate('layout', parse(readFileSync(layoutFile), `${where}/oci-layout`), `${where}/oci-layout`);
  const indexFile = join(dir, 'index.json');
  if (!existsSync(indexFile)) fail(where, 'index.json', 'missing');

  const blobPath = (digest: string): string => join(dir, 'blobs', ...digest.split(':'));
  const blobSize: BlobSize = (digest) => {
    if (!DIGEST.test(digest)) return undefined;
    try {
      const s = statSync(blobPath(digest));
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  };
  const blob = (digest: string, size: number, what: string): Buffer => {
    const b = readFileSync(blobPath(digest));
    if (sha256(b) !== digest) fail(what, '', `blob ${digest} hashes to ${sha256(b)}`);
    if (b.length !== size) fail(what, '', `blob ${digest} is ${b.length} bytes, its descriptor says ${size}`);
    return b;
  };

  const seen = new Set<string>();
  const visit = (mediaType: string, digest: string, size: number, from: string): void => {
    if (seen.has(digest)) return;
    seen.add(digest);
    const what = `${where}: ${mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST ? 'index' : 'manifest'} ${digest} (from ${from})`;
    const bytes = blob(digest, size, what);
    const doc = parse(bytes, what);
    if (doc.mediaType !== undefined && doc.mediaType !== mediaType) fail(what, '/mediaType', `${doc.mediaType}, but its descriptor says ${mediaType}`);
    if (INDEX_TYPES.has(mediaType)) {
      const index = checkIndex(bytes, what, blobSize);
      for (const m of index.manifests as Json[]) visit(m.mediaType, m.digest, m.size, digest);
      return;
    }
    const manifest = checkManifest(bytes, what, blobSize);
    const configWhat = `${where}: config ${manifest.config.digest} (of ${digest})`;
    const config = checkConfig(blob(manifest.config.digest, manifest.config.size, configWhat), configWhat);
    const layers = (manifest.layers as Json[]).map((l, i) => ({
      blob: blob(l.digest, l.size, `${where}: layer ${i} ${l.digest} (of ${digest})`),
      compression: LAYER_TYPES.get(l.mediaType)!,
    }));
    checkDiffIds(config, layers, configWhat);
  };

  const index = checkIndex(readFileSync(indexFile), `${where}/index.json`, blobSize);
  for (const m of index.manifests as Json[]) visit(m.mediaType, m.digest, m.size, 'index.json');
}

function extract(file: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'strata-oci-check-'));
  const r = spawnSync('tar', ['-xf', file, '-C', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new AssertionError({ message: `${file}: tar -xf failed: ${r.stderr}` });
  }
  return dir;
}

/** An OCI archive: a tar of an OCI image layout. */
export function checkOciArchive(file: string): void {
  const dir = extract(file);
  try {
    checkLayout(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A `docker save` archive: manifest.json is [{Config, RepoTags, Layers}], each Config validates and
 * hashes to its name, each layer's uncompressed sha256 is the config's diff_id for it. When the
 * archive is also an OCI layout (Docker 25+ writes both), the layout is checked too.
 */
export function checkDockerArchive(file: string): void {
  const dir = extract(file);
  try {
    const where = `docker archive ${file}`;
    const manifestFile = join(dir, 'manifest.json');
    if (!existsSync(manifestFile)) fail(where, 'manifest.json', 'missing');
    let entries: Json;
    try {
      entries = JSON.parse(readFileSync(manifestFile, 'utf8'));
    } catch (e) {
      fail(`${where}/manifest.json`, '', `not JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(entries) || entries.length === 0) fail(`${where}/manifest.json`, '', 'not a non-empty array');
    (entries as Json[]).forEach((e, i) => {
      const what = `${where}/manifest.json`;
      const path = `/${i}`;
      if (e === null || typeof e !== 'object' || Array.isArray(e)) fail(what, path, 'not an object');
      if (typeof e.Config !== 'string' || e.Config === '') fail(what, `${path}/Config`, 'missing Config');
      if (e.RepoTags !== null && !Array.isArray(e.RepoTags)) fail(what, `${path}/RepoTags`, 'not an array');
      for (const [j, tag] of ((e.RepoTags ?? []) as unknown[]).entries()) {
        if (typeof tag !== 'string' || !/^[^\s:]+(:\d+)?(\/[^\s:]+)*:[\w][\w.-]{0,127}$/.test(tag)) fail(what, `${path}/RepoTags/${j}`, `${JSON.stringify(tag)} is not NAME:TAG`);
      }
      if (!Array.isArray(e.Layers) || e.Layers.length === 0) fail(what, `${path}/Layers`, 'missing Layers');
      for (const [key, value] of Object.entries(e)) {
        if (!['Config', 'RepoTags', 'Layers', 'Parent', 'LayerSources'].includes(key)) fail(what, `${path}/${key}`, `unknown member (${typeof value})`);
      }

      const configPath = join(dir, e.Config);
      if (!existsSync(configPath)) fail(what, `${path}/Config`, `${e.Config} is not in the archive`);
      const configBytes = readFileSync(configPath);
      const configWhat = `${where}: config ${e.Config}`;
      const config = checkConfig(configBytes, configWhat);
      const hex = /^([0-9a-f]{64})\.json$/.exec(basename(e.Config))?.[1] ?? (/^blobs\/sha256\/([0-9a-f]{64})$/.exec(e.Config)?.[1]);
      if (hex !== undefined && sha256(configBytes) !== `sha256:${hex}`) fail(configWhat, '', `hashes to ${sha256(configBytes)}, not its name`);

      const layers = (e.Layers as unknown[]).map((l, j) => {
        if (typeof l !== 'string' || l === '') fail(what, `${path}/Layers/${j}`, 'not a file name');
        const p = join(dir, l);
        if (!existsSync(p)) fail(what, `${path}/Layers/${j}`, `${l} is not in the archive`);
        const b = readFileSync(p);
        // docker-archive records no media type: loaders go by the magic number, and so do we.
        const gz = b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
        const zst = b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528;
        return { blob: b, compression: gz ? 'gzip' as const : zst ? 'zstd' as const : 'none' as const };
      });
      checkDiffIds(config, layers, configWhat);
    });
    // The legacy `repositories` file, when written: {name: {tag: <64-hex id of a layer directory>}}.
    const reposFile = join(dir, 'repositories');
    if (existsSync(reposFile)) {
      const what = `${where}/repositories`;
      const repos = parse(readFileSync(reposFile), what);
      for (const [name, tags] of Object.entries(repos as Record<string, Json>)) {
        if (tags === null || typeof tags !== 'object' || Array.isArray(tags)) fail(what, `/${name}`, 'not an object of tags');
        for (const [tag, id] of Object.entries(tags as Record<string, unknown>)) {
          if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id)) fail(what, `/${name}/${tag}`, `${JSON.stringify(id)} is not a 64-hex layer id`);
          if (!existsSync(join(dir, id))) fail(what, `/${name}/${tag}`, `no layer directory ${id} in the archive`);
        }
      }
    }
    if (existsSync(join(dir, 'oci-layout')) || existsSync(join(dir, 'index.json'))) checkLayout(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Registries
// ---------------------------------------------------------------------------------------------

const ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(', ');

/**
 * An image in a plain-HTTP registry on 127.0.0.1: the manifest (or index, then each child by
 * digest), every config fetched and checked, every layer's size by HEAD; the registry's
 * Content-Type and Docker-Content-Digest must agree with the bytes.
 */
export async function checkRegistryImage(host: string, repo: string, ref: string): Promise<void> {
  if (!/^(127\.0\.0\.1|localhost)(:\d+)?$/.test(host)) throw new Error(`checkRegistryImage only talks to a local registry, not ${host}`);
  const base = `http://${host}/v2/${repo}`;
  const where = `registry ${host}/${repo}`;

  const headSize = async (kind: 'blobs' | 'manifests', digest: string): Promise<number | undefined> => {
    const res = await fetch(`${base}/${kind}/${digest}`, { method: 'HEAD', headers: { Accept: ACCEPT } });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new AssertionError({ message: `${where}: HEAD ${kind}/${digest}: HTTP ${res.status}` });
    const len = res.headers.get('content-length');
    return len === null ? undefined : Number(len);
  };
  const sizesOf = async (kind: 'blobs' | 'manifests', descriptors: Json[]): Promise<Map<string, number | undefined>> => {
    const m = new Map<string, number | undefined>();
    for (const d of descriptors) {
      if (typeof d?.digest === 'string' && DIGEST.test(d.digest) && !m.has(d.digest)) m.set(d.digest, await headSize(kind, d.digest));
    }
    return m;
  };

  const seen = new Set<string>();
  const visit = async (reference: string, expectedType: string | undefined): Promise<void> => {
    const res = await fetch(`${base}/manifests/${reference}`, { headers: { Accept: ACCEPT } });
    const bytes = Buffer.from(await res.arrayBuffer());
    const what = `${where}: manifest ${reference}`;
    if (res.status !== 200) fail(what, '', `HTTP ${res.status}: ${bytes.toString('utf8').slice(0, 300)}`);
    const digest = sha256(bytes);
    if (seen.has(digest)) return;
    seen.add(digest);
    if (reference.startsWith('sha256:') && reference !== digest) fail(what, '', `body hashes to ${digest}`);
    const headerDigest = res.headers.get('docker-content-digest');
    if (headerDigest !== null && headerDigest !== digest) fail(what, '', `Docker-Content-Digest ${headerDigest}, body hashes to ${digest}`);
    const doc = parse(bytes, what);
    const contentType = res.headers.get('content-type')?.split(';')[0]?.trim();
    if (contentType !== doc.mediaType) fail(what, '/mediaType', `${doc.mediaType}, served as Content-Type ${contentType}`);
    if (expectedType !== undefined && doc.mediaType !== expectedType) fail(what, '/mediaType', `${doc.mediaType}, but its descriptor says ${expectedType}`);

    if (INDEX_TYPES.has(doc.mediaType)) {
      const sizes = await sizesOf('manifests', Array.isArray(doc.manifests) ? doc.manifests : []);
      const index = checkIndex(bytes, what, (d) => sizes.get(d));
      for (const m of index.manifests as Json[]) await visit(m.digest, m.mediaType);
      return;
    }
    const sizes = await sizesOf('blobs', [doc.config, ...(Array.isArray(doc.layers) ? doc.layers : [])]);
    const manifest = checkManifest(bytes, what, (d) => sizes.get(d));
    const configRes = await fetch(`${base}/blobs/${manifest.config.digest}`);
    const configBytes = Buffer.from(await configRes.arrayBuffer());
    const configWhat = `${where}: config ${manifest.config.digest}`;
    if (configRes.status !== 200) fail(configWhat, '', `HTTP ${configRes.status}`);
    if (sha256(configBytes) !== manifest.config.digest) fail(configWhat, '', `hashes to ${sha256(configBytes)}`);
    const config = checkConfig(configBytes, configWhat);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) fail(configWhat, '/rootfs/diff_ids', `${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`);
  };
  await visit(ref, undefined);
}
