import { MemberChecks } from '../tar/member-checks.js';
import { scanTarStream } from '../tar/read-stream.js';
import { normalizeMemberName } from '../tar/read.js';
import { storeMemberPrefix, storePathMember } from '../tar/segments.js';
import type { Layer } from './layer.js';
import { layerTar } from './layer-tar.js';
import { compareBytes } from '../util/byte-order.js';

/**
 * The top-level store paths a layer carries: `<storeDir>/<name>` for every member named
 * `nix/store/<name>[/…]`, `/nix/store/…` or `./nix/store/…` (the spellings nixpkgs, strata and
 * GNU tar use). Reads the layer once, headers only, to its end — so a base layer's digests are
 * verified on the way. Whiteouts (`.wh.*`) delete rather than carry, and are left out.
 */
export async function storePathsInLayer(layer: Layer, storeDir: string, source?: string): Promise<string[]> {
  const what = `layer ${layer.digest}${source ? ` of ${source}` : ''}`;
  if (layer.storePaths !== undefined) return [...layer.storePaths].sort(compareBytes);
  const names: string[] = [];
  const checks = new MemberChecks(what);
  await scanTarStream(layerTar(layer, what), what, (e) => names.push(checks.check(e.name, e.type, e.linkname)));
  return storePathsOf(names, storeDir);
}

/** The top-level store paths among member names (any spelling: `nix/store/…`, `/nix/…`, `./nix/…`), sorted. */
export function storePathsOf(names: Iterable<string>, storeDir: string): string[] {
  const prefix = storeMemberPrefix(storeDir);
  const found = new Set<string>();
  for (const name of names) {
    const top = storePathMember(normalizeMemberName(name), prefix);
    if (top === undefined || top.length === prefix.length || top.startsWith('.wh.', prefix.length)) continue;
    found.add(`/${top}`);
  }
  return [...found].sort(compareBytes);
}
