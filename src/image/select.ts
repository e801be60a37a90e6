import { StrataError } from '../util/errors.js';
import type { Descriptor } from './descriptor.js';
import { isIndex, type Image, type ImageIndex } from './image.js';
import { isIndexMediaType } from './media-types.js';
import { choosePlatform, formatPlatform, isAttestation, matchesPlatform, normalizePlatform, type Platform } from './platform.js';

/** What a multi-platform source resolves to when no platform is asked for. */
export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

const MAX_DEPTH = 8;

/**
 * The image a root (image or index) stands for on `want`: an image is itself; an index gives the
 * child the one platform matcher picks (containers/image's rules, the same for every transport),
 * looking into nested indexes when no direct child matches. A child whose descriptor has no
 * platform (skopeo writes none into layouts) is judged by its config.
 */
export async function resolveImage(root: Image | ImageIndex, want: Platform | undefined, name: string): Promise<Image> {
  if (!isIndex(root)) return root;
  const wanted = want ?? DEFAULT_PLATFORM;
  const seen: string[] = [];
  const found = await pick(root, wanted, name, 0, seen);
  if (found === undefined) {
    throw new StrataError(`${name}: no image for platform ${formatPlatform(wanted)} — available: ${seen.length ? [...new Set(seen)].join(', ') : '(none)'}`);
  }
  return found;
}

async function pick(index: ImageIndex, want: Platform, name: string, depth: number, seen: string[]): Promise<Image | undefined> {
  if (depth >= MAX_DEPTH) throw new StrataError(`${name}: image indexes nest more than ${MAX_DEPTH} levels deep`);
  const images: { d: Descriptor; platform: Platform | undefined }[] = [];
  const nested: Descriptor[] = [];
  for (const d of index.children) {
    if (isAttestation(d.platform, d.annotations)) continue;
    if (isIndexMediaType(d.mediaType)) {
      nested.push(d);
      continue;
    }
    if (d.platform !== undefined && d.mediaType !== '') {
      images.push({ d, platform: d.platform });
      continue;
    }
    const node = await index.child(d);
    if (isIndex(node)) nested.push(d);
    else images.push({ d, platform: configPlatform(node) });
  }
  for (const e of images) seen.push(formatPlatform(e.platform));
  const hit = choosePlatform(images, want, (e) => e.platform, (e) => e.d.annotations);
  if (hit !== undefined) return (await index.child(hit.d)) as Image;
  for (const d of nested) {
    if (d.platform !== undefined && !matchesPlatform(d.platform, want)) {
      seen.push(formatPlatform(d.platform));
      continue;
    }
    const sub = await index.child(d);
    const found = isIndex(sub) ? await pick(sub, want, name, depth + 1, seen) : undefined;
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The platform an image's config declares (os.version and os.features included). */
/** An image's platform from its config, normalised (arm64 ≡ arm64/v8); os and architecture '' when the config names none. */
export function imagePlatform(image: Image): Platform {
  return normalizePlatform(configPlatform(image) ?? { os: '', architecture: '' });
}

export function configPlatform(image: Image): Platform | undefined {
  const c = image.config;
  if (typeof c.os !== 'string' || typeof c.architecture !== 'string') return undefined;
  const osVersion = c['os.version'];
  const osFeatures = c['os.features'];
  return {
    os: c.os,
    architecture: c.architecture,
    ...(typeof c.variant === 'string' && c.variant !== '' ? { variant: c.variant } : {}),
    ...(typeof osVersion === 'string' && osVersion !== '' ? { osVersion } : {}),
    ...(Array.isArray(osFeatures) && osFeatures.length > 0 && osFeatures.every((f) => typeof f === 'string') ? { osFeatures: osFeatures as string[] } : {}),
  };
}
