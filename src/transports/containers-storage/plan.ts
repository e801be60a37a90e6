/**
 * Planning an image store (containers-storage, overlay driver) that holds given images: which
 * layers it stores, under which IDs and link names, and what its image records say. Pure, data
 * in and data out: the layers' bytes are streamed later (layer-tar.ts), the metadata written
 * from this plan and the sizes seen then (metadata.ts).
 */
import { StrataError } from '../../util/errors.js';
import { compareBytes } from '../../util/byte-order.js';
import { digestHex } from '../../image/digest.js';
import type { Image } from '../../image/image.js';
import type { Layer } from '../../image/layer.js';
import { manifestOf } from '../../image/manifest.js';
import { bigDataFileName, linkName, storageLayerIds } from './names.js';

/**
 * The most layers containers-storage 1.43 mounts from an additional store: past one 4 KiB page
 * of absolute lower paths it falls back to relative ones that do not exist (design notes §7).
 */
export const MAX_STORE_LAYERS = 58;

/** One image to store, and what it is called there. */
export interface StoreImage {
  /** The reference it was read from, for messages. */
  readonly source: string;
  /** Fully qualified names (`reg.example/app:1`); at least one. */
  readonly names: readonly string[];
  readonly image: Image;
}

/** A layer as the store keeps it. */
export interface StoredLayer {
  readonly id: string;
  readonly parent?: string;
  /** Its name under overlay/l/. */
  readonly link: string;
  /** The links of every layer below it, nearest first (overlay/<id>/lower). */
  readonly lower: readonly string[];
  /** The image layer whose files it holds. */
  readonly layer: Layer;
  /** The first image that has it: where it was read from (for messages), its name in the store, and the layer's index in it. */
  readonly source: string;
  readonly imageName: string;
  readonly index: number;
  /** That image's created time (undefined when it has none a store could parse). */
  readonly created?: string;
}

/** One piece of an image's "big data": a file beside its record. */
export interface BigData {
  readonly key: string;
  /** The file name containers-storage gives the key. */
  readonly file: string;
  readonly bytes: Buffer;
}

export interface StoredImage {
  /** The config digest's hex: the ID `podman images` shows. */
  readonly id: string;
  readonly names: readonly string[];
  /** The manifest digest. */
  readonly digest: string;
  /** ID of its top layer. */
  readonly layer: string;
  readonly bigData: readonly BigData[];
  /** RFC 3339, from the image config (undefined when it has none a store could parse). */
  readonly created?: string;
  readonly source: string;
}

export interface StorePlan {
  /** Tar name of the store's root (`usr/lib/containers/storage`). */
  readonly root: string;
  /** Images by ID. */
  readonly images: readonly StoredImage[];
  /** Every layer once, in image order, each image's bottom first (so parents come before children). */
  readonly layers: readonly StoredLayer[];
}

/**
 * Plans a store of `images` under `root`. Images are ordered by name, so the layers (and the
 * host layers made of them) come in the same order however the images were given; an image given
 * twice, or under several names, is stored once with all its names; a layer two images share
 * (the same ID: the same content on the same parents) is stored once.
 */
export function planStore(images: readonly StoreImage[], root: string): StorePlan {
  const byId = new Map<string, { names: string[]; image: StoreImage }>();
  const owner = new Map<string, string>();
  for (const s of images) {
    if (s.names.length === 0) throw new StrataError(`internal: ${s.source} has no name`);
    checkLayerCount(s);
    const id = digestHex(s.image.configDigest);
    for (const n of s.names) {
      const other = owner.get(n);
      if (other !== undefined && other !== id) throw new StrataError(`two images would be called ${n} in the store: ${byId.get(other)!.image.source} and ${s.source} (name one with --name SRC=NAME:TAG)`);
      owner.set(n, id);
    }
    const entry = byId.get(id);
    if (entry) entry.names.push(...s.names.filter((n) => !entry.names.includes(n)));
    else byId.set(id, { names: [...s.names], image: s });
  }
  const ordered = [...byId.values()].sort((a, b) => compareBytes(a.names[0]!, b.names[0]!));

  const layers: StoredLayer[] = [];
  const stored = new Set<string>();
  const records = ordered.map(({ names, image: s }): StoredImage => {
    const created = storeTime(s.image.config.created);
    const ids = storageLayerIds(s.image.layers.map((l) => l.diffId));
    ids.forEach((id, j) => {
      if (stored.has(id)) return;
      stored.add(id);
      const parent = ids[j - 1];
      layers.push({
        id,
        ...(parent !== undefined ? { parent } : {}),
        link: linkName(id),
        lower: ids.slice(0, j).reverse().map(linkName),
        layer: s.image.layers[j]!,
        source: s.source,
        imageName: names[0]!,
        index: j,
        ...(created !== undefined ? { created } : {}),
      });
    });
    const top = ids.at(-1);
    if (top === undefined) throw new StrataError(`${s.source} has no layers: an image store cannot hold an empty image`);
    const manifest = manifestOf(s.image);
    return {
      id: digestHex(s.image.configDigest),
      names,
      digest: manifest.digest,
      layer: top,
      bigData: [
        bigData(s.image.configDigest, s.image.configBytes),
        bigData(`manifest-${manifest.digest}`, manifest.bytes),
        bigData('manifest', manifest.bytes),
      ],
      ...(created !== undefined ? { created } : {}),
      source: s.source,
    };
  });
  return { root, images: records.sort((a, b) => compareBytes(a.id, b.id)), layers };
}

function checkLayerCount(s: StoreImage): void {
  const n = s.image.layers.length;
  if (n > MAX_STORE_LAYERS) {
    throw new StrataError(
      `${s.source} has ${n} layers, more than the ${MAX_STORE_LAYERS} containers-storage mounts from an additional image store; pass --max-app-layers N (at most ${MAX_STORE_LAYERS}) to squash its top layers into one`,
    );
  }
}

function bigData(key: string, bytes: Buffer): BigData {
  return { key, file: bigDataFileName(key), bytes };
}

// What Go's time.Time accepts in JSON (RFC 3339): anything else would make the whole
// images.json unreadable, and containers-storage then silently shows an empty store.
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)$/;

function storeTime(created: unknown): string | undefined {
  return typeof created === 'string' && RFC3339.test(created) ? created : undefined;
}
