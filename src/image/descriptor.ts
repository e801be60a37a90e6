import { StrataError } from '../util/errors.js';
import { parseDigest, type Digest } from './digest.js';
import type { Platform } from './platform.js';

/**
 * Annotations that name an image where it is kept: the OCI layout's ref name (`oci:DIR:REF`), and
 * the fully qualified name containerd and skopeo record (`docker.io/library/app:1`).
 */
export const REF_NAME = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME = 'io.containerd.image.name';

/**
 * The one content descriptor (OCI image-spec descriptor.md): what every reader parses and every
 * writer serialises, for layers, configs, manifests and index children alike.
 */
export interface Descriptor {
  /** Empty only where a hand-made layout left it out (readers then look at the blob). */
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly urls?: readonly string[];
  readonly artifactType?: string;
}

export interface ParseDescriptorOptions {
  /** Accept a descriptor without mediaType (old OCI layouts): it is returned as ''. */
  readonly mediaTypeOptional?: boolean;
}

/** Parses a descriptor object; errors name `what` (e.g. `oci:dir: index.json manifests[2]`). */
export function parseDescriptor(v: unknown, what: string, opts: ParseDescriptorOptions = {}): Descriptor {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new StrataError(`${what}: not a descriptor object`);
  const o = v as Record<string, unknown>;
  const digest = parseDigest(o['digest'], `${what}: digest`);
  const size = o['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new StrataError(`${what}: size ${JSON.stringify(size)} is not a byte count`);
  const mediaType = o['mediaType'];
  if (typeof mediaType !== 'string' && !(mediaType === undefined && opts.mediaTypeOptional)) {
    throw new StrataError(`${what}: mediaType ${mediaType === undefined ? 'is missing' : `${JSON.stringify(mediaType)} is not a string`}`);
  }
  const platform = parsePlatformObject(o['platform'], `${what}: platform`);
  const annotations = parseAnnotations(o['annotations'], `${what}: annotations`);
  const urls = o['urls'];
  if (urls !== undefined && !(Array.isArray(urls) && urls.every((u) => typeof u === 'string'))) throw new StrataError(`${what}: urls is not a list of strings`);
  const artifactType = o['artifactType'];
  if (artifactType !== undefined && typeof artifactType !== 'string') throw new StrataError(`${what}: artifactType is not a string`);
  return {
    mediaType: mediaType ?? '',
    digest,
    size,
    ...(platform ? { platform } : {}),
    ...(annotations ? { annotations } : {}),
    ...(urls ? { urls: urls as string[] } : {}),
    ...(artifactType !== undefined ? { artifactType } : {}),
  };
}

/** `annotations` of a manifest, index or descriptor: a string-to-string map, or absent. */
export function parseAnnotations(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new StrataError(`${what} is not an object`);
  for (const [k, val] of Object.entries(v)) if (typeof val !== 'string') throw new StrataError(`${what}: ${JSON.stringify(k)} is not a string`);
  return v as Record<string, string>;
}

/** The JSON `platform` object (`os.version` and `os.features` spelled as the spec spells them). */
function parsePlatformObject(v: unknown, what: string): Platform | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new StrataError(`${what} is not an object`);
  const p = v as Record<string, unknown>;
  if (typeof p['os'] !== 'string' || typeof p['architecture'] !== 'string') throw new StrataError(`${what}: os and architecture must be strings`);
  const features = p['os.features'];
  return {
    os: p['os'],
    architecture: p['architecture'],
    ...(typeof p['variant'] === 'string' && p['variant'] !== '' ? { variant: p['variant'] } : {}),
    ...(typeof p['os.version'] === 'string' && p['os.version'] !== '' ? { osVersion: p['os.version'] } : {}),
    ...(Array.isArray(features) && features.every((f) => typeof f === 'string') && features.length > 0 ? { osFeatures: features as string[] } : {}),
  };
}

/** A descriptor as JSON, fields in the spec's spelling; empty optional fields are left out. */
export function descriptorJson(d: Descriptor): Record<string, unknown> {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.platform ? { platform: platformJson(d.platform) } : {}),
    ...(d.annotations && Object.keys(d.annotations).length > 0 ? { annotations: { ...d.annotations } } : {}),
    ...(d.urls && d.urls.length > 0 ? { urls: [...d.urls] } : {}),
    ...(d.artifactType ? { artifactType: d.artifactType } : {}),
  };
}

export function platformJson(p: Platform): Record<string, unknown> {
  return {
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    ...(p.osVersion ? { 'os.version': p.osVersion } : {}),
    ...(p.osFeatures && p.osFeatures.length > 0 ? { 'os.features': [...p.osFeatures] } : {}),
  };
}
