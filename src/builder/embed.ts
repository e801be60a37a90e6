/**
 * Producing an image store inside a host image: one host layer per stored layer (the app layer's
 * files under the store), then the metadata layer. The store is planned from digests alone
 * (planStore); what only streaming can tell — each layer's uncompressed size — is gathered as the
 * layers are made, and the metadata written last from both.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { lazyCompressPool } from '../compress/block-pool.js';
import type { DescribedLayer } from '../image/assemble.js';
import type { HistoryEntry, ImageConfig } from '../image/config.js';
import { sha256Digest, type Digest } from '../image/digest.js';
import { layerHistory } from '../image/history.js';
import type { Image } from '../image/image.js';
import type { Layer } from '../image/layer.js';
import type { LayerScanner } from '../image/layer-scan.js';
import { layerTar } from '../image/layer-tar.js';
import { ociLayerMediaType, type Compression } from '../image/media-types.js';
import type { TarInput } from '../tar/rewrite.js';
import { squashLayers } from './squash.js';
import { whiteoutOf } from '../tar/whiteout.js';
import { storedLayerTar, type WhiteoutMode } from '../transports/containers-storage/layer-tar.js';
import { metadataTar } from '../transports/containers-storage/metadata.js';
import type { StoreImage, StorePlan } from '../transports/containers-storage/plan.js';
import type { LayerFacts } from '../transports/containers-storage/records.js';
import type { ImageDestination } from '../transports/types.js';
import { StrataError } from '../util/errors.js';
import { canonicalJsonBytes } from '../util/json.js';
import { produceStreamedLayer } from './stream-layer.js';

export interface ProduceStoreOptions {
  readonly compression: Compression;
  readonly mtime: number;
  readonly whiteouts: WhiteoutMode;
}

/** The store's host layers into `dest`, in plan order, the metadata layer last, each with its history entry. */
export async function produceStore(plan: StorePlan, dest: ImageDestination, opts: ProduceStoreOptions): Promise<DescribedLayer[]> {
  const compressors = lazyCompressPool();
  try {
    const out: DescribedLayer[] = [];
    const facts = new Map<string, LayerFacts>();
    const at = `/${plan.root}`;
    for (const stored of plan.layers) {
      const what = `layer ${stored.layer.digest} of ${stored.source}`;
      const input: TarInput = { what, open: async () => layerTar(stored.layer, what) };
      const tar = storedLayerTar(stored, input, { root: plan.root, mtime: opts.mtime, whiteouts: opts.whiteouts }, (f) => facts.set(stored.id, f));
      const layer = await produceStreamedLayer(tar, dest, opts.compression, compressors.get);
      out.push({ layer, createdBy: `strata: store layer ${stored.id} (${stored.imageName} layer ${stored.index}) in ${at}` });
    }
    const metadata = metadataTar(plan, facts, opts.mtime);
    const layer = await produceStreamedLayer(once(metadata), dest, opts.compression, compressors.get);
    const names = plan.images.flatMap((i) => i.names).sort();
    out.push({ layer, createdBy: `strata: image store ${at} metadata`, comment: `images: ${names.join(' ')}` });
    return out;
  } finally {
    await compressors.close();
  }
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/**
 * The image with its layers from the `keep`-th on squashed into one, so that it fits the layers
 * a store can mount: the layers below are kept as they are, the squash is one uncompressed layer
 * made on demand, and the config and manifest are new (so is the image ID). The squash is hashed
 * first, streaming, because its DiffID names the stored layer before any of it is written.
 * Squashed layers with whiteouts are refused: they would delete files of the layers kept below.
 */
export async function squashTop(s: StoreImage, keep: number, scanner: LayerScanner): Promise<StoreImage> {
  const layers = s.image.layers;
  if (layers.length <= keep) return s;
  const kept = layers.slice(0, keep - 1);
  const top = layers.slice(keep - 1);
  const what = (l: Layer) => `layer ${l.digest} of ${s.source}`;
  const squash = await squashLayers(top, what, scanner);
  squash.members.forEach((list, i) => {
    const w = list.find((m) => whiteoutOf(m.name) !== undefined);
    if (w) throw new StrataError(`${what(top[i]!)} has the whiteout ${JSON.stringify(w.name)}, so the layers from ${keep} on cannot be squashed without it deleting files below: raise --max-app-layers or rebuild the image with fewer layers`);
  });
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of squash.tar()) {
    hash.update(chunk);
    size += chunk.length;
  }
  const diffId: Digest = `sha256:${hash.digest('hex')}`;
  const layer: Layer = { diffId, digest: diffId, size, mediaType: ociLayerMediaType('none'), compression: 'none', open: async () => Readable.from(squash.tar()) };
  return { ...s, image: squashedImage(s.image, kept, layer, top.length) };
}

function squashedImage(image: Image, kept: readonly Layer[], layer: Layer, squashedCount: number): Image {
  const history = layerHistory(image.config.history, image.layers.length);
  const keptHistory = history.slice(0, kept.length).map((h): HistoryEntry => h ?? {});
  const created = history.slice(kept.length).map((h) => h?.created).filter((c): c is string => typeof c === 'string').sort().at(-1);
  const entry: HistoryEntry = {
    ...(created ? { created } : {}),
    created_by: `strata: squash of the top ${squashedCount} layers, to fit an image store`,
    comment: `layers: ${image.layers.slice(kept.length).map((l) => l.digest).join(' ')}`,
  };
  const config: ImageConfig = { ...image.config, rootfs: { type: 'layers', diff_ids: [...kept.map((l) => l.diffId), layer.diffId] }, history: [...keptHistory, entry] };
  const configBytes = canonicalJsonBytes(config);
  return { config, configBytes, configDigest: sha256Digest(configBytes), layers: [...kept, layer] };
}
