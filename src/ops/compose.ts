/**
 * `strata compose NAME@RANGE...`: an image made of published packages and nothing else. Each
 * request is resolved against the package repository's tags (Nix's version order), the closure
 * is read from the package images' annotations alone (no store, no Nix), and the image is what
 * `strata build --layering per-path` makes of that union closure — the same layers in the same
 * order — except that every store layer is the published blob itself, carried (mounted), never
 * re-tarred. Only a budget merge and the customisation layer are new blobs.
 */
import type { BinLister, CustomisationSpec } from '../builder/customisation.js';
import { buildClosure } from '../closure/build-closure.js';
import { compareVersions, parseVersionRange, highestInRange, type VersionRange } from '../closure/nix-name.js';
import { repositoryName, versionTags } from '../closure/package.js';
import type { Closure } from '../closure/types.js';
import { layerTar } from '../image/layer-tar.js';
import { manifestOf } from '../image/manifest.js';
import { readPackage, type PathLayer, type PublishedPackage } from '../image/package.js';
import { scanTarStream } from '../tar/read-stream.js';
import { normalizeMemberName } from '../tar/read.js';
import { openPackageRepository, type PackageRepository } from '../transports/package-repository.js';
import { closeNames } from '../util/close-names.js';
import { StrataError } from '../util/errors.js';
import { build, type BuildRequest, type BuildSummary } from './build.js';
import { readLock, writeLock, type LockEntry } from './lock-file.js';

export interface ComposeRequest extends Omit<BuildRequest, 'closure' | 'storeRoot' | 'layering' | 'previous' | 'planIn' | 'from' | 'published' | 'listBin' | 'customisation'> {
  /** `NAME`, `NAME@RANGE` (`curl@^8`, `openssl@=1.1.1k`, `bash@>=5.2 <6`). */
  readonly packages: readonly string[];
  /** The package repository: `docker://HOST/PREFIX` or `oci:DIR`. */
  readonly repository: string;
  /** `--bin NAME`: link the commands of the composed package NAME into /bin. */
  readonly bins?: readonly string[];
  readonly customisation?: Partial<Omit<CustomisationSpec, 'bins'>>;
  /** Lock file: resolutions are taken from it where they still hold, and written back. */
  readonly lock?: string;
  /** With `lock`: fail instead of changing any resolution (or the file). */
  readonly frozen?: boolean;
}

export interface Resolution extends LockEntry {
  readonly reference: string;
}

export interface ComposeSummary extends BuildSummary {
  readonly resolved: readonly Resolution[];
  /** Store paths the layer budget merged into one new layer, and the packages that needed them. */
  readonly merged: { readonly paths: readonly string[]; readonly packages: readonly string[] } | undefined;
}

interface Wanted {
  readonly text: string;
  readonly name: string;
  readonly repo: string;
  readonly range: VersionRange;
}

export async function compose(request: ComposeRequest): Promise<ComposeSummary> {
  if (request.packages.length === 0) throw new StrataError('compose: name at least one package (NAME or NAME@RANGE)');
  if (request.frozen && request.lock === undefined) throw new StrataError('--frozen needs --lock FILE: it keeps the resolutions that file records');
  const wanted = request.packages.map(parseRequest);
  const repository = await openPackageRepository(request.repository, request.registry ? { registry: request.registry } : {});
  const locked = request.lock !== undefined ? await readLock(request.lock) : new Map<string, LockEntry>();
  if (request.frozen) {
    // Entries are keyed by the request as written: `hello` and `hello@^2` are different requests.
    const stale = [...locked.values()].filter((e) => !wanted.some((w) => w.text === e.request));
    if (stale.length > 0) {
      const say = (e: LockEntry) => {
        const same = wanted.find((w) => w.name === e.name);
        return same ? `${JSON.stringify(e.request)} (this compose asks for ${JSON.stringify(same.text)})` : JSON.stringify(e.request);
      };
      throw new StrataError(`--frozen: ${request.lock} locks ${stale.map(say).join(', ')}, which this compose does not request`);
    }
  }

  const resolved: Resolution[] = [];
  const packages: PublishedPackage[] = [];
  for (const w of wanted) {
    const { resolution, pkg } = await resolveOne(repository, w, locked.get(w.text), request);
    resolved.push(resolution);
    packages.push(pkg);
  }

  const published = unionLayers(packages);
  const closure = unionClosure(published);
  const bins = binPaths(request.bins ?? [], wanted, packages);
  const summary = await build({
    ...request,
    closure,
    layering: 'per-path',
    published,
    listBin: binLister(published),
    customisation: { ...(request.customisation ?? {}), bins, shadowBins: request.allowShadow ?? false },
  });
  if (request.lock !== undefined && !request.frozen) await writeLock(request.lock, resolved.map(({ reference: _r, ...entry }) => entry));
  return { ...summary, resolved, merged: mergedOf(summary, packages, wanted) };
}

function parseRequest(text: string): Wanted {
  const at = text.indexOf('@');
  const name = at < 0 ? text : text.slice(0, at);
  if (name === '') throw new StrataError(`package request ${JSON.stringify(text)}: no package name before '@'`);
  const range = parseVersionRange(at < 0 ? '*' : text.slice(at + 1), `package request ${JSON.stringify(text)}`);
  return { text, name, repo: repositoryName(name), range };
}

/** One request's package: from the lock when it still names the same image, else the highest tag in range. */
async function resolveOne(repository: PackageRepository, w: Wanted, lock: LockEntry | undefined, request: ComposeRequest): Promise<{ resolution: Resolution; pkg: PublishedPackage }> {
  const tags = await repository.tags(w.repo);
  if (tags.length === 0) {
    const close = closeNames(w.repo, await repository.packages());
    throw new StrataError(`unknown package ${JSON.stringify(w.name)}: ${repository.name} has no ${w.repo} repository${close.length > 0 ? `; close names: ${close.join(', ')}` : ''}`);
  }
  if (lock !== undefined && tags.includes(lock.tag)) {
    const opened = await openPackage(repository, w, lock.tag);
    if (opened.resolution.digest === lock.digest) return opened;
    if (request.frozen) throw new StrataError(`--frozen: ${opened.resolution.reference} now names ${opened.resolution.digest}, but ${request.lock} locks ${lock.digest}`);
  } else if (lock !== undefined && request.frozen) {
    throw new StrataError(`--frozen: ${w.text} is locked to tag ${lock.tag}, which ${repository.name}/${w.repo} no longer has`);
  }
  if (request.frozen) throw new StrataError(`--frozen: ${w.text} is not in ${request.lock}; run without --frozen to resolve and record it`);
  return openPackage(repository, w, pickTag(w, tags, repository));
}

/** The tag a request takes: an exact tag when `=TAG` names one (build tags too), else the newest version in range. */
function pickTag(w: Wanted, tags: readonly string[], repository: PackageRepository): string {
  const only = w.range.alternatives.length === 1 && w.range.alternatives[0]!.length === 1 ? w.range.alternatives[0]![0]! : undefined;
  if (only?.op === '=' && tags.includes(only.version)) return only.version;
  const versions = versionTags(tags);
  const best = highestInRange(versions, w.range);
  if (best === undefined) {
    const listed = [...versions].sort(compareVersions).join(', ');
    throw new StrataError(`no version of ${w.name} in range ${JSON.stringify(w.range.text)} in ${repository.name}; it has ${listed}`);
  }
  return best;
}

async function openPackage(repository: PackageRepository, w: Wanted, tag: string): Promise<{ resolution: Resolution; pkg: PublishedPackage }> {
  const reference = repository.reference(w.repo, tag);
  const source = await repository.open(w.repo, tag);
  try {
    const pkg = readPackage(source.image, reference);
    if (repositoryName(pkg.pkg.pname) !== w.repo) throw new StrataError(`${reference} is package ${pkg.pkg.pname}, not ${w.name}`);
    const resolution = { request: w.text, name: w.name, tag, version: pkg.pkg.version, digest: manifestOf(source.image).digest, storePath: pkg.storePath, reference };
    return { resolution, pkg };
  } finally {
    await source.close();
  }
}

/** Every store path of the packages once, with the blob of the first package that holds it. */
function unionLayers(packages: readonly PublishedPackage[]): Map<string, PathLayer> {
  const out = new Map<string, PathLayer>();
  for (const p of packages) for (const l of p.layers) if (!out.has(l.storePath)) out.set(l.storePath, l);
  return out;
}

/** The union closure, from the annotations; a path two packages record differently is refused (buildClosure). */
function unionClosure(layers: ReadonlyMap<string, PathLayer>): Closure {
  const first = layers.keys().next().value as string;
  const storeDir = first.slice(0, first.lastIndexOf('/'));
  const entries = [...layers.values()].map((l) => ({ path: l.storePath, references: l.references, narHash: l.narHash }));
  return buildClosure(entries, { source: 'the composed packages', storeDir });
}

/** `--bin NAME` → the store paths of every request for NAME (two versions then collide, by name, in binLinks). */
function binPaths(names: readonly string[], wanted: readonly Wanted[], packages: readonly PublishedPackage[]): string[] {
  return names.flatMap((name) => {
    const hits = wanted.flatMap((w, i) => (w.name === name || w.repo === repositoryName(name) ? [packages[i]!.storePath] : []));
    if (hits.length === 0) throw new StrataError(`--bin ${name}: not one of the composed packages (${wanted.map((w) => w.name).join(', ')})`);
    return hits;
  });
}

/** Lists a store path's bin/ from its published layer's headers: compose never has the store. */
function binLister(layers: ReadonlyMap<string, PathLayer>): BinLister {
  return async (storePath) => {
    const l = layers.get(storePath)!;
    const dir = normalizeMemberName(`${storePath}/bin`);
    const names: string[] = [];
    let found = false;
    const what = `the layer of ${storePath}`;
    await scanTarStream(layerTar(l.layer, what), what, (e) => {
      const name = normalizeMemberName(e.name);
      if (name === dir) found = true;
      else if (name.startsWith(`${dir}/`) && !name.slice(dir.length + 1).includes('/')) names.push(name.slice(dir.length + 1));
    });
    if (!found) throw new StrataError(`--bin: ${storePath} has no bin/ directory`);
    return names;
  };
}

/** What a budget merge did: the merged paths, and which requested packages needed them. */
function mergedOf(summary: BuildSummary, packages: readonly PublishedPackage[], wanted: readonly Wanted[]): ComposeSummary['merged'] {
  const merged = summary.plan.layers.find((l) => l.paths.length > 1)?.paths;
  if (merged === undefined) return undefined;
  const set = new Set(merged);
  const affected = packages.flatMap((p, i) => (p.layers.some((l) => set.has(l.storePath)) ? [wanted[i]!.text] : []));
  return { paths: merged, packages: affected };
}
