import { posix } from 'node:path';
import { produceStore, squashTop } from '../builder/embed.js';
import { checkProducibleCompression } from '../compress/compression.js';
import { assembleImage, type ImageSettings } from '../image/assemble.js';
import type { Image } from '../image/image.js';
import { LayerScanner } from '../image/layer-scan.js';
import { manifestOf } from '../image/manifest.js';
import { formatPlatform, normalizePlatform, samePlatformAnyVersion, type Platform } from '../image/platform.js';
import { configPlatform, imagePlatform } from '../image/select.js';
import { MAX_STACK_LAYERS } from '../image/stack.js';
import { parseTag } from '../image/tag.js';
import type { WhiteoutMode } from '../transports/containers-storage/layer-tar.js';
import { MAX_STORE_LAYERS, planStore, type StoreImage, type StorePlan } from '../transports/containers-storage/plan.js';
import { defaultCompression } from '../transports/open-destination.js';
import { openImageSource } from '../transports/open-source.js';
import type { ImageSource } from '../transports/types.js';
import { StrataError } from '../util/errors.js';
import { openOutput, type OutputRequest, writing } from './commit.js';
import { defaultCreated, resolveEpoch } from './defaults.js';
import type { SourceAccess } from './inputs.js';

/** Where physically bound images usually live; bootc owns /usr/lib/bootc/storage (its logically bound images). */
export const DEFAULT_STORE = '/usr/lib/containers/storage';

/** The app images to put in a host image's read-only image store, and how. */
export interface StoreRequest {
  /** App image references, in any form `--from` takes. */
  readonly apps: readonly string[];
  /** Names for apps whose source records none (or to rename them): app reference → NAME[:TAG]. */
  readonly names?: Readonly<Record<string, string>>;
  /** Absolute path of the store in the host image (default /usr/lib/containers/storage). */
  readonly store?: string;
  /** What app-layer whiteouts become (default: refused). */
  readonly whiteouts?: WhiteoutMode;
  /** Squash an app's layers from the N-th on into one, so apps of more than 58 layers fit. */
  readonly maxAppLayers?: number;
}

/** A store planned and its apps opened; `close` releases the apps. */
export interface PreparedStore {
  readonly plan: StorePlan;
  readonly whiteouts: WhiteoutMode;
  close(): Promise<void>;
}

/**
 * The store's tar name from its absolute path, refusing paths a store must not take: relative
 * or unnormalised ones, the root, /var (not part of the image a bootc host updates) and
 * /usr/lib/bootc/storage (bootc's own).
 */
export function storeTarName(path: string): string {
  const flag = `--store ${JSON.stringify(path)}`;
  if (!path.startsWith('/')) throw new StrataError(`${flag}: the store's path must be absolute`);
  const norm = posix.normalize(path).replace(/\/+$/, '');
  if (norm !== path.replace(/\/+$/, '') || norm === '') throw new StrataError(`${flag}: give the store's path in normal form${norm ? ` (${norm})` : ''}, not the root`);
  const within = (dir: string) => norm === dir || norm.startsWith(`${dir}/`);
  if (within('/usr/lib/bootc/storage')) throw new StrataError(`${flag}: /usr/lib/bootc/storage belongs to bootc (its logically bound images); physically bound images usually go in ${DEFAULT_STORE}`);
  if (within('/var')) throw new StrataError(`${flag}: /var is not updated with the host image; put the store under /usr (usually ${DEFAULT_STORE})`);
  return norm.slice(1);
}

/**
 * Opens the apps for `platform` (the host's), names each, squashes where asked, and plans the
 * store. Every check that can fail on the input runs here, before anything is written.
 */
export async function prepareStore(request: StoreRequest, access: SourceAccess, platform: Platform): Promise<PreparedStore> {
  const root = storeTarName(request.store ?? DEFAULT_STORE);
  const max = request.maxAppLayers;
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 1 || max > MAX_STORE_LAYERS)) {
    throw new StrataError(`--max-app-layers ${max}: give a whole number from 1 to ${MAX_STORE_LAYERS}`);
  }
  if (request.apps.length === 0) throw new StrataError('nothing to embed: name at least one app image');
  const names = request.names ?? {};
  for (const src of Object.keys(names)) if (!request.apps.includes(src)) throw new StrataError(`--name ${src}=${names[src]}: ${src} is not one of the images to embed`);

  const opened: ImageSource[] = [];
  const close = async () => void (await Promise.all(opened.map((s) => s.close())));
  try {
    const scanner = new LayerScanner();
    const images: StoreImage[] = [];
    for (const ref of request.apps) {
      const source = await openImageSource(ref, { ...access, platform: access.platform ?? platform });
      opened.push(source);
      checkPlatform(source, platform);
      const image: StoreImage = { source: source.name, names: appNames(ref, source, names[ref]), image: source.image };
      images.push(max !== undefined ? await squashTop(image, max, scanner) : image);
    }
    return { plan: planStore(images, root), whiteouts: request.whiteouts ?? 'refuse', close };
  } catch (e) {
    await close();
    throw e;
  }
}

function appNames(ref: string, source: ImageSource, given: string | undefined): string[] {
  if (given !== undefined) {
    try {
      return [parseTag(given).qualified];
    } catch (e) {
      throw new StrataError(`--name ${ref}=${given}: ${(e as Error).message.replace(/^--tag "[^"]*": /, '')}`);
    }
  }
  if (source.names && source.names.length > 0) return [...source.names];
  throw new StrataError(`${source.name} records no name for its image, and a store keeps images by name: give it one with --name ${ref}=NAME:TAG`);
}

function checkPlatform(source: ImageSource, host: Platform): void {
  const have = imagePlatform(source.image);
  const want = normalizePlatform(host);
  if (!samePlatformAnyVersion(have, want)) {
    throw new StrataError(`${source.name} is for ${formatPlatform(have)} but the host image is for ${formatPlatform(want)}: a host runs apps of its own platform (pick one with --platform)`);
  }
}

/** The platform a host image's apps must be for. */
export function hostPlatform(image: Image | undefined, settings: Partial<ImageSettings>): Platform {
  const p = image ? configPlatform(image) : undefined;
  return { os: settings.os ?? p?.os ?? 'linux', architecture: settings.architecture ?? p?.architecture ?? 'amd64', ...(p?.variant ? { variant: p.variant } : {}) };
}

/** Everything an embed takes, typed; the settings go on top of the host's config. */
export interface EmbedRequest extends StoreRequest, OutputRequest, SourceAccess {
  /** The host image the store goes into. */
  readonly into: string;
}

export interface EmbedSummary {
  readonly destination: string;
  readonly manifestDigest: string;
  readonly image: Image;
  readonly plan: StorePlan;
}

/**
 * Embeds app images in a host image as a read-only image store (bootc's physically bound
 * images): the host's layers carried byte for byte, one layer per stored app layer, the store's
 * metadata on top. The same apps on the same host give the same bytes.
 */
export async function embed(request: EmbedRequest): Promise<EmbedSummary> {
  return writing(request.output, () => embedUnguarded(request));
}

async function embedUnguarded(request: EmbedRequest): Promise<EmbedSummary> {
  // Checked before the host is read, so a bad --store fails at once.
  storeTarName(request.store ?? DEFAULT_STORE);
  const compression = request.compression ?? defaultCompression(request.output, request.format);
  checkProducibleCompression(compression);
  const mtime = request.mtime ?? resolveEpoch('--mtime', undefined);
  const host = await openImageSource(request.into, request);
  try {
    const store = await prepareStore(request, request, hostPlatform(host.image, {}));
    try {
      const total = host.image.layers.length + store.plan.layers.length + 1;
      if (total > MAX_STACK_LAYERS) {
        throw new StrataError(`the host image would have ${total} layers (${host.image.layers.length} of them the host's), more than the ${MAX_STACK_LAYERS} that overlay-based runtimes mount; embed fewer apps or squash them (--max-app-layers)`);
      }
      const dest = await openOutput(request.output, {
        ...(request.format ? { format: request.format } : {}),
        compression,
        mtime,
        registry: request.registry ?? {},
        sources: [request.into, ...request.apps],
        ...(request.progress ? { progress: request.progress } : {}),
      });
      try {
        for (const layer of host.image.layers) await dest.addLayer(layer);
        const layers = await produceStore(store.plan, dest, { compression, mtime, whiteouts: store.whiteouts });
        const settings = { ...request.settings, created: request.settings?.created ?? defaultCreated() };
        const image = assembleImage(host.image, layers, settings);
        await dest.commit(image, request.tags ?? []);
        return { destination: dest.name, manifestDigest: manifestOf(image).digest, image, plan: store.plan };
      } catch (e) {
        await dest.abort();
        throw e;
      }
    } finally {
      await store.close();
    }
  } finally {
    await host.close();
  }
}
