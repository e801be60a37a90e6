/**
 * Package images: one store path P published with its closure, one layer per store path, each
 * layer descriptor naming the store path it holds and that path's references. The annotations
 * are the whole contract between `publish` and `compose`: a composition's closure is read from
 * them alone, without a store or Nix.
 *
 * Layer descriptors:  dev.strata.nix.store-path, dev.strata.nix.references (space-separated),
 *                     dev.strata.nix.nar-hash (when known).
 * The manifest:       the same three for P, plus dev.strata.nix.pname, dev.strata.nix.version,
 *                     dev.strata.nix.output (when known), org.opencontainers.image.title/.version.
 */
import type { PackageId } from '../closure/package.js';
import { StrataError } from '../util/errors.js';
import { assembleImage, type DescribedLayer, type ImageSettings } from './assemble.js';
import { storeLayerHistory } from './history.js';
import type { Image } from './image.js';
import { describedAs, type Layer } from './layer.js';

export const PackageAnnotations = {
  storePath: 'dev.strata.nix.store-path',
  references: 'dev.strata.nix.references',
  narHash: 'dev.strata.nix.nar-hash',
  pname: 'dev.strata.nix.pname',
  version: 'dev.strata.nix.version',
  output: 'dev.strata.nix.output',
} as const;

const TITLE = 'org.opencontainers.image.title';
const VERSION = 'org.opencontainers.image.version';

/** A store path as the registry records it: what a package layer's descriptor says. */
export interface PathRecord {
  readonly storePath: string;
  /** Sorted, self-reference removed. */
  readonly references: readonly string[];
  readonly narHash?: string;
}

/** One layer of a package image: the store path it holds and the blob. */
export interface PathLayer extends PathRecord {
  readonly layer: Layer;
}

/** A package image read back: its own path, its package name, and every layer of its closure. */
export interface PublishedPackage extends PathRecord {
  readonly pkg: PackageId;
  /** Dependencies first, the package's own path among them. */
  readonly layers: readonly PathLayer[];
}

function pathAnnotations(r: PathRecord): Record<string, string> {
  return {
    [PackageAnnotations.storePath]: r.storePath,
    [PackageAnnotations.references]: r.references.join(' '),
    ...(r.narHash !== undefined ? { [PackageAnnotations.narHash]: r.narHash } : {}),
  };
}

/** The layer with its descriptor annotated as holding `r` (the layer itself when it already is). */
export function annotatedLayer(layer: Layer, r: PathRecord): Layer {
  const want = pathAnnotations(r);
  const have = layer.annotations ?? {};
  if (Object.keys(want).length === Object.keys(have).length && Object.entries(want).every(([k, v]) => have[k] === v)) return layer;
  return describedAs(layer, { storePaths: [r.storePath], annotations: want });
}

/** Store layers of a composed or package image, each annotated and described by its store paths. */
export function describedPathLayers(layers: readonly PathLayer[]): DescribedLayer[] {
  return layers.map((l) => ({ layer: annotatedLayer(l.layer, l), ...storeLayerHistory([l.storePath]) }));
}

/**
 * The package image of `top`: its closure's layers in the order given (perPathOrder, so every
 * package image and every composition orders shared paths alike), PATH set to its bin directory
 * so that the image runs its commands alone, and the manifest annotated with what it is.
 */
export function packageImage(top: PathRecord & { pkg: PackageId }, layers: readonly PathLayer[], settings: ImageSettings): Image {
  if (!layers.some((l) => l.storePath === top.storePath)) throw new StrataError(`internal: package ${top.storePath} is not among its layers`);
  const { pkg } = top;
  const annotations: Record<string, string> = {
    ...pathAnnotations(top),
    [PackageAnnotations.pname]: pkg.pname,
    [PackageAnnotations.version]: pkg.version,
    ...(pkg.output !== undefined ? { [PackageAnnotations.output]: pkg.output } : {}),
    [TITLE]: pkg.pname,
    ...(pkg.version !== '' ? { [VERSION]: pkg.version } : {}),
  };
  return assembleImage(undefined, describedPathLayers(layers), { ...settings, env: [`PATH=${top.storePath}/bin`, ...(settings.env ?? [])] }, annotations);
}

/** A space-separated reference list as written by pathAnnotations. */
function splitReferences(text: string): string[] {
  return text === '' ? [] : text.split(' ');
}

/**
 * Reads a package image back, checking what compose relies on: the manifest and every layer
 * name their store paths, each layer holds one path, and the layers are the package's whole
 * closure. `name` names the image in every error.
 */
export function readPackage(image: Image, name: string): PublishedPackage {
  const a = image.annotations ?? {};
  const storePath = a[PackageAnnotations.storePath];
  const pname = a[PackageAnnotations.pname];
  if (storePath === undefined || pname === undefined) {
    throw new StrataError(`${name} is not a strata package image: its manifest has no ${PackageAnnotations.storePath} and ${PackageAnnotations.pname} annotations (publish it with strata publish)`);
  }
  const layers: PathLayer[] = image.layers.map((layer, i) => {
    const la = layer.annotations ?? {};
    const path = la[PackageAnnotations.storePath];
    const refs = la[PackageAnnotations.references];
    if (path === undefined || refs === undefined) {
      throw new StrataError(`${name}: layer ${i + 1} (${layer.digest}) has no ${PackageAnnotations.storePath} and ${PackageAnnotations.references} annotations, so its store path is unknown`);
    }
    const narHash = la[PackageAnnotations.narHash];
    return { storePath: path, references: splitReferences(refs), ...(narHash !== undefined ? { narHash } : {}), layer };
  });
  const present = new Set(layers.map((l) => l.storePath));
  if (present.size !== layers.length) throw new StrataError(`${name}: two layers claim the same store path`);
  for (const l of layers) {
    for (const r of l.references) {
      if (!present.has(r)) throw new StrataError(`${name}: store path ${l.storePath} refers to ${r}, which no layer of the image holds`);
    }
  }
  const own = layers.find((l) => l.storePath === storePath);
  if (own === undefined) throw new StrataError(`${name}: the package's store path ${storePath} is in none of its layers`);
  const version = a[PackageAnnotations.version] ?? '';
  const output = a[PackageAnnotations.output];
  return {
    storePath,
    references: own.references,
    ...(own.narHash !== undefined ? { narHash: own.narHash } : {}),
    pkg: { pname, version, ...(output !== undefined ? { output } : {}) },
    layers,
  };
}
