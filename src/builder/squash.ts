/**
 * Layers squashed into one tar, made on demand: each layer scanned once for which member of
 * each path is left visible (squashView), then, each time the tar is asked for, the layers read
 * again and that member written — whiteouts applied, not carried. What an app squashed to fit an
 * image store and an exported filesystem are made of.
 */
import type { Layer } from '../image/layer.js';
import type { LayerMember, LayerScanner } from '../image/layer-scan.js';
import { layerTar } from '../image/layer-tar.js';
import { rewriteTars, type TarInput } from '../tar/rewrite.js';
import { squashView } from '../tar/squash.js';

export interface Squash {
  /** Each layer's members, as the scan saw them (bottom first). */
  readonly members: readonly (readonly LayerMember[])[];
  /** The squashed tar, streamed; every call reads the layers anew and gives the same bytes. */
  tar(): AsyncGenerator<Buffer>;
}

/** `layers` (bottom first) squashed; `what` names each in messages. */
export async function squashLayers(layers: readonly Layer[], what: (layer: Layer) => string, scanner: LayerScanner): Promise<Squash> {
  const members: LayerMember[][] = [];
  for (const l of layers) members.push(await scanner.members(l, what(l)));
  const view = squashView(members);
  const inputs = layers.map((l): TarInput => ({ what: what(l), open: async () => layerTar(l, what(l)) }));
  return { members, tar: () => rewriteTars(inputs, { prefix: '', mtime: 0, view }) };
}
