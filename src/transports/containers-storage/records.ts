/**
 * containers-storage's record files as its Go code writes them (layers.go, images.go, 1.43):
 * json.Marshal of structs, so fields in struct order, map keys sorted, one line, `<>&` escaped.
 * Writing them the same way keeps the store byte-stable and readable by every version.
 */
import { sha256Digest } from '../../image/digest.js';
import { compareBytes } from '../../util/byte-order.js';
import type { Compression } from '../../image/media-types.js';
import type { StorePlan, StoredImage, StoredLayer } from './plan.js';

/** What streaming a stored layer's tar found out: its uncompressed size. */
export interface LayerFacts {
  readonly diffSize: number;
}

// archive.Compression in containers-storage: Uncompressed 0 (omitted), Bzip2 1, Gzip 2, Xz 3, Zstd 4.
const COMPRESSION_CODE: Record<Compression, number | undefined> = { none: undefined, gzip: 2, zstd: 4 };

/** overlay-layers/layers.json: every layer, by ID. */
export function layersJson(plan: StorePlan, facts: ReadonlyMap<string, LayerFacts>, fallbackCreated: string): Buffer {
  const records = [...plan.layers].sort((a, b) => compareBytes(a.id, b.id)).map((l) => layerRecord(l, facts, fallbackCreated));
  return goJson(records);
}

function layerRecord(l: StoredLayer, facts: ReadonlyMap<string, LayerFacts>, fallbackCreated: string): Record<string, unknown> {
  const size = facts.get(l.id)?.diffSize;
  if (size === undefined) throw new Error(`internal: no size for stored layer ${l.id}`);
  const code = COMPRESSION_CODE[l.layer.compression];
  return {
    id: l.id,
    ...(l.parent !== undefined ? { parent: l.parent } : {}),
    created: l.created ?? fallbackCreated,
    'compressed-diff-digest': l.layer.digest,
    'compressed-size': l.layer.size,
    'diff-digest': l.layer.diffId,
    'diff-size': size,
    ...(code !== undefined ? { compression: code } : {}),
  };
}

/** overlay-images/images.json: every image, by ID. */
export function imagesJson(plan: StorePlan, fallbackCreated: string): Buffer {
  return goJson(plan.images.map((i) => imageRecord(i, fallbackCreated)));
}

function imageRecord(i: StoredImage, fallbackCreated: string): Record<string, unknown> {
  const sorted = [...i.bigData].sort((a, b) => compareBytes(a.key, b.key));
  return {
    id: i.id,
    digest: i.digest,
    names: i.names,
    'names-history': i.names,
    layer: i.layer,
    'big-data-names': i.bigData.map((b) => b.key),
    'big-data-sizes': Object.fromEntries(sorted.map((b) => [b.key, b.bytes.length])),
    'big-data-digests': Object.fromEntries(sorted.map((b) => [b.key, sha256Digest(b.bytes)])),
    created: i.created ?? fallbackCreated,
  };
}

/** json.Marshal's bytes for plain data: JSON.stringify plus Go's HTML-safe escapes. */
export function goJson(value: unknown): Buffer {
  const text = JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(text, 'utf8');
}
