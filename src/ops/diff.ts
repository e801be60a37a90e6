import { layersWithHistoryPaths } from '../image/history.js';
import type { Image } from '../image/image.js';
import { LayerScanner } from '../image/layer-scan.js';
import { canonicalJson } from '../util/json.js';
import { compareBytes } from '../util/byte-order.js';
import { openImageSource } from '../transports/open-source.js';
import type { SourceAccess } from './inputs.js';

export interface DiffLayer {
  readonly digest: string;
  readonly size: number;
  readonly storePaths: readonly string[];
}

export interface ImageDiff {
  readonly from: string;
  readonly to: string;
  /** Layers of `to` that `from` has too (by blob digest): a client that has `from` keeps them. */
  readonly kept: readonly DiffLayer[];
  /** Layers of `to` that `from` does not have: what such a client downloads. */
  readonly added: readonly DiffLayer[];
  /** Layers of `from` that `to` no longer has. */
  readonly removed: readonly DiffLayer[];
  /** Bytes a client that has `from` downloads for `to` (the added layers' blob sizes). */
  readonly downloadBytes: number;
  readonly storePaths: { readonly added: readonly string[]; readonly removed: readonly string[] };
  /** Runtime config fields (Env, Cmd, …) whose value differs. */
  readonly configChanged: readonly string[];
}

/**
 * What changes from image `from` to image `to` (any transports): which layers a client that has
 * `from` keeps and downloads, the bytes that costs, the store paths added and removed, and the
 * runtime config fields that differ. Store paths come from strata's history records, else from
 * reading the layer's headers (under `storeDir`).
 */
export async function diffImages(from: string, to: string, opts: SourceAccess & { storeDir?: string } = {}): Promise<ImageDiff> {
  const a = await openImageSource(from, opts);
  try {
    const b = await openImageSource(to, opts);
    try {
      const scanner = new LayerScanner();
      const [la, lb] = [await described(a.image, a.name, scanner, opts.storeDir), await described(b.image, b.name, scanner, opts.storeDir)];
      const inA = new Set(la.map((l) => l.digest));
      const inB = new Set(lb.map((l) => l.digest));
      const added = lb.filter((l) => !inA.has(l.digest));
      const pathsA = new Set(la.flatMap((l) => l.storePaths));
      const pathsB = new Set(lb.flatMap((l) => l.storePaths));
      return {
        from: a.name,
        to: b.name,
        kept: lb.filter((l) => inA.has(l.digest)),
        added,
        removed: la.filter((l) => !inB.has(l.digest)),
        downloadBytes: added.reduce((s, l) => s + l.size, 0),
        storePaths: {
          added: [...pathsB].filter((p) => !pathsA.has(p)).sort(compareBytes),
          removed: [...pathsA].filter((p) => !pathsB.has(p)).sort(compareBytes),
        },
        configChanged: changedFields(a.image, b.image),
      };
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}

async function described(image: Image, name: string, scanner: LayerScanner, storeDir = '/nix/store'): Promise<DiffLayer[]> {
  const out: DiffLayer[] = [];
  for (const l of layersWithHistoryPaths(image)) {
    const storePaths = l.storePaths ?? (await scanner.storePaths(l, storeDir, name));
    out.push({ digest: l.digest, size: l.size, storePaths });
  }
  return out;
}

function changedFields(a: Image, b: Image): string[] {
  const ca = (a.config.config ?? {}) as Record<string, unknown>;
  const cb = (b.config.config ?? {}) as Record<string, unknown>;
  const keys = new Set([...Object.keys(ca), ...Object.keys(cb)]);
  return [...keys].filter((k) => canonicalJson(ca[k] ?? null) !== canonicalJson(cb[k] ?? null)).sort(compareBytes);
}
