/**
 * The host-image layer with the store's metadata, on top of the stored layers: the layer and
 * image records, each image's big data, the overlay/l/ links, and the empty lock files a
 * read-only store needs (containers-storage 1.43 fails without them). Every list is sorted and
 * every time comes from the images or the mtime, never the clock, so the same images give the
 * same bytes.
 */
import { rfc3339 } from '../../image/assemble.js';
import { compareBytes } from '../../util/byte-order.js';
import { END_OF_ARCHIVE } from '../../tar/header.js';
import { directoryMember, fileMember, symlinkMember } from '../../tar/members.js';
import type { StorePlan } from './plan.js';
import { imagesJson, layersJson, type LayerFacts } from './records.js';

type Member = { name: string; bytes: () => Buffer };

/** The metadata layer's tar, whole: it is small (records and manifests, no layer content). */
export function metadataTar(plan: StorePlan, facts: ReadonlyMap<string, LayerFacts>, mtime: number): Buffer {
  const root = plan.root;
  const fallback = rfc3339(mtime);
  const members: Member[] = [];
  const dir = (name: string) => members.push({ name, bytes: () => directoryMember(name, mtime) });
  const file = (name: string, body: Buffer) => members.push({ name, bytes: () => fileMember(name, body, mtime) });

  const parts = root.split('/');
  parts.forEach((_, i) => dir(parts.slice(0, i + 1).join('/')));
  for (const d of ['overlay', 'overlay/l', 'overlay-layers', 'overlay-images']) dir(`${root}/${d}`);
  for (const l of plan.layers) members.push({ name: `${root}/overlay/l/${l.link}`, bytes: () => symlinkMember(`${root}/overlay/l/${l.link}`, `../${l.id}/diff`, mtime) });
  file(`${root}/overlay-layers/layers.json`, layersJson(plan, facts, fallback));
  file(`${root}/overlay-layers/layers.lock`, Buffer.alloc(0));
  file(`${root}/overlay-images/images.json`, imagesJson(plan, fallback));
  file(`${root}/overlay-images/images.lock`, Buffer.alloc(0));
  for (const image of plan.images) {
    dir(`${root}/overlay-images/${image.id}`);
    for (const b of image.bigData) file(`${root}/overlay-images/${image.id}/${b.file}`, b.bytes);
  }
  // Bytewise name order puts every directory before what it holds.
  members.sort((a, b) => compareBytes(a.name, b.name));
  return Buffer.concat([...members.map((m) => m.bytes()), Buffer.alloc(END_OF_ARCHIVE)]);
}
