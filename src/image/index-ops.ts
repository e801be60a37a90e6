import { StrataError } from '../util/errors.js';
import type { Descriptor } from './descriptor.js';
import { isIndex, type Image, type ImageIndex } from './image.js';
import { childOf, childrenOf, makeIndex, type IndexChild } from './make-index.js';
import { isIndexMediaType, MediaTypes } from './media-types.js';
import { formatPlatform, isAttestation, matchesPlatform, normalizePlatform, samePlatform, type Platform } from './platform.js';
import { configPlatform } from './select.js';

/**
 * `strata index` as functions from models to models: sources in, an ImageIndex out. Nothing here
 * reads or writes a transport; children open lazily through the nodes they came from.
 */

/** One source of children: an image or index read from somewhere, and what the user said of it. */
export interface IndexSource {
  /** The reference it was read from, for messages (`docker://reg/app:amd64`). */
  readonly name: string;
  readonly node: Image | ImageIndex;
  /** `--platform SRC=P`: replaces the platform of the children this source gives. */
  readonly platform?: Platform;
  /** `--manifest-annotation SRC=K=V`: added to the descriptors of the children this source gives. */
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface IndexOptions {
  /** `oci` (default) writes an OCI index; `docker` a Docker manifest list (Docker children only). */
  readonly format?: 'oci' | 'docker';
  /** Annotations of the index itself. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Keep an index source as one nested entry instead of contributing its children. */
  readonly noFlatten?: boolean;
}

/** A child and the source it came from (for naming both sides of a conflict). */
interface Sourced {
  readonly child: IndexChild;
  readonly from: string;
}

const REFERENCE_DIGEST = 'vnd.docker.reference.digest';

/** A new index over the sources' children, in the order given, then each source index's order. */
export async function createIndex(sources: readonly IndexSource[], opts: IndexOptions = {}): Promise<ImageIndex> {
  const children: Sourced[] = [];
  for (const s of sources) for (const c of await contribute(s, opts)) addChild(children, c, false);
  return finish(children, opts);
}

/**
 * `existing` with the sources' children added after its own. A new child whose platform an old
 * one has is an error naming both, unless `replace`: then it takes the old one's place.
 */
export async function appendIndex(existing: ImageIndex, existingName: string, sources: readonly IndexSource[], opts: IndexOptions & { replace?: boolean } = {}): Promise<ImageIndex> {
  const children: Sourced[] = childrenOf(existing).map((child) => ({ child, from: existingName }));
  for (const s of sources) for (const c of await contribute(s, opts)) addChild(children, c, opts.replace ?? false);
  return finish(children, { ...opts, annotations: { ...(existing.annotations ?? {}), ...(opts.annotations ?? {}) }, format: opts.format ?? formatOf(existing) });
}

/** `index` without the children matching any of `platforms` (and their attestations). */
export function removePlatforms(index: ImageIndex, name: string, platforms: readonly Platform[]): ImageIndex {
  const images = imageChildren(index);
  const kept = images.filter((d) => !platforms.some((p) => matchesPlatform(d.platform, p)));
  if (kept.length === images.length) throw new StrataError(`${name}: no child matches ${platforms.map(formatPlatform).join(', ')} — it has ${listPlatforms(index.children)}`);
  return keepOnly(index, kept);
}

/** `index` with only the children matching one of `platforms` (all when none is given) and none of `exclude`. */
export function filterIndex(index: ImageIndex, name: string, platforms: readonly Platform[], exclude: readonly Platform[] = []): ImageIndex {
  const keep = (d: Descriptor) => (platforms.length === 0 || platforms.some((p) => matchesPlatform(d.platform, p))) && !exclude.some((p) => matchesPlatform(d.platform, p));
  const kept = imageChildren(index).filter(keep);
  if (kept.length === 0) throw new StrataError(`${name}: no child is left after filtering — it has ${listPlatforms(index.children)}`);
  return keepOnly(index, kept);
}

/** The children that are not attestations. */
function imageChildren(index: ImageIndex): Descriptor[] {
  return index.children.filter((d) => !isAttestation(d.platform, d.annotations));
}

/** Keeps the `kept` children, each attestation only with its subject, index media type and annotations as they were. */
function keepOnly(index: ImageIndex, kept: readonly Descriptor[]): ImageIndex {
  const subjects = new Set(kept.map((d) => d.digest as string));
  const children = childrenOf(index).filter((c) => {
    const d = c.descriptor;
    return isAttestation(d.platform, d.annotations) ? subjects.has(d.annotations?.[REFERENCE_DIGEST] ?? '') : kept.includes(d);
  });
  return makeIndex(children, { mediaType: index.manifest.mediaType, ...(index.annotations ? { annotations: index.annotations } : {}) });
}

/** The children one source gives: an image is one child; an index its children (or itself, unflattened). */
async function contribute(s: IndexSource, opts: IndexOptions): Promise<Sourced[]> {
  const extra = (d: Descriptor | undefined, platform: Platform | undefined) => {
    const annotations = { ...(d?.annotations ?? {}), ...(s.annotations ?? {}) };
    return { ...(platform ? { platform } : {}), ...(Object.keys(annotations).length > 0 ? { annotations } : {}) };
  };
  if (!isIndex(s.node)) {
    const platform = s.platform ?? platformFromConfig(s.node, s.name);
    return [{ child: childOf(s.node, extra(undefined, platform)), from: s.name }];
  }
  if (opts.noFlatten) return [{ child: childOf(s.node, extra(undefined, s.platform)), from: s.name }];
  const index = s.node;
  const out: Sourced[] = [];
  for (const c of childrenOf(index)) {
    const d = c.descriptor;
    if (isAttestation(d.platform, d.annotations)) {
      out.push({ child: c, from: s.name });
      continue;
    }
    let platform = s.platform ?? d.platform;
    if (platform === undefined && !isIndexMediaType(d.mediaType)) {
      const node = await c.open();
      if (!isIndex(node)) platform = platformFromConfig(node, `${s.name}@${d.digest}`);
    }
    const descriptor: Descriptor = { ...d, ...extra(d, platform) };
    out.push({ child: { descriptor, open: c.open }, from: s.name });
  }
  return out;
}

function platformFromConfig(image: Image, name: string): Platform {
  const p = configPlatform(image);
  if (p === undefined) throw new StrataError(`${name}: its config names no os and architecture; give one with --platform ${name}=OS/ARCH`);
  return normalizePlatform(p);
}

/** Adds a child, refusing (or, with `replace`, replacing) one whose platform is already there. */
function addChild(children: Sourced[], c: Sourced, replace: boolean): void {
  const d = c.child.descriptor;
  if (isAttestation(d.platform, d.annotations) || d.platform === undefined) {
    if (!children.some((o) => o.child.descriptor.digest === d.digest)) children.push(c);
    return;
  }
  const at = children.findIndex((o) => !isAttestation(o.child.descriptor.platform, o.child.descriptor.annotations) && samePlatform(o.child.descriptor.platform, d.platform));
  if (at < 0) {
    children.push(c);
    return;
  }
  const old = children[at]!;
  if (!replace) {
    throw new StrataError(`two children for platform ${formatPlatform(d.platform)}: ${old.from} (${old.child.descriptor.digest}) and ${c.from} (${d.digest}); give each a different --platform, or use index append --replace`);
  }
  // The old child's attestations go with it.
  const oldDigest = old.child.descriptor.digest;
  children[at] = c;
  for (let i = children.length - 1; i >= 0; i--) {
    const o = children[i]!.child.descriptor;
    if (isAttestation(o.platform, o.annotations) && o.annotations?.[REFERENCE_DIGEST] === oldDigest) children.splice(i, 1);
  }
}

function finish(children: readonly Sourced[], opts: IndexOptions): ImageIndex {
  if (children.length === 0) throw new StrataError('an index needs at least one child');
  const docker = opts.format === 'docker';
  if (docker) {
    for (const c of children) {
      const t = c.child.descriptor.mediaType;
      if (t !== MediaTypes.dockerManifest && t !== MediaTypes.dockerManifestList) {
        throw new StrataError(`--format docker: ${c.from} (${c.child.descriptor.digest}) is ${t || 'of unknown media type'}; a Docker manifest list holds only Docker schema 2 manifests (use --format oci, or a Docker image)`);
      }
      if (c.child.descriptor.platform === undefined) throw new StrataError(`--format docker: ${c.from} has no platform; a Docker manifest list needs one for every child`);
    }
  }
  return makeIndex(children.map((c) => c.child), {
    mediaType: docker ? MediaTypes.dockerManifestList : MediaTypes.ociIndex,
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  });
}

function formatOf(index: ImageIndex): 'oci' | 'docker' {
  return index.manifest.mediaType === MediaTypes.dockerManifestList ? 'docker' : 'oci';
}

function listPlatforms(children: readonly Descriptor[]): string {
  const ps = children.filter((d) => !isAttestation(d.platform, d.annotations)).map((d) => formatPlatform(d.platform));
  return ps.length ? ps.join(', ') : 'no children';
}
