import { createHash } from 'node:crypto';
import { MemberChecks } from '../tar/member-checks.js';
import { readTarStream } from '../tar/read-stream.js';
import { checkMemberName, type MemberType } from '../tar/read.js';
import type { Layer } from './layer.js';
import { layerTar } from './layer-tar.js';
import { storePathsInLayer, storePathsOf } from './store-paths.js';

/** One member of a layer as a conflict check and a squash see it. */
export interface LayerMember {
  /** Normalised name ('' for the root). */
  readonly name: string;
  readonly type: MemberType;
  /**
   * What the member holds, for telling whether two members of one name are the same: a file's
   * permission bits and sha256, a link's target, a device's numbers. Unset for directories.
   */
  readonly content?: string;
}

/**
 * Every member of a layer, read once, streaming: bodies are hashed as they pass and never held.
 * The blob's digest is verified on the way (the transports' readers do that), and a member name
 * that would escape with `..` is refused, naming the layer.
 */
export async function scanLayer(layer: Layer, what: string): Promise<LayerMember[]> {
  const members: LayerMember[] = [];
  const checks = new MemberChecks(what);
  for await (const m of readTarStream(layerTar(layer, what), what)) {
    const name = checks.check(m.header.name, m.type, m.type === 'hardlink' ? m.header.linkname : undefined);
    const h = m.header;
    let content: string | undefined;
    switch (m.type) {
      case 'directory':
        break;
      case 'file': {
        const hash = createHash('sha256');
        for await (const chunk of m.body()) hash.update(chunk);
        content = `file ${(h.mode & 0o7777).toString(8)} sha256:${hash.digest('hex')}`;
        break;
      }
      case 'symlink':
        content = `symlink → ${h.linkname}`;
        break;
      case 'hardlink':
        content = `hardlink → ${checkMemberName(h.linkname, what, `hardlink target of ${JSON.stringify(h.name)}`)}`;
        break;
      default:
        content = `${m.type} ${h.devmajor}:${h.devminor}`;
    }
    members.push(content === undefined ? { name, type: m.type } : { name, type: m.type, content });
  }
  return members;
}

/**
 * Scans made once per operation: a layer that several checks need (a conflict check, a squash,
 * the store paths a base carries) is read once, and a strata layer's store paths are taken from
 * its record without reading it at all.
 */
export class LayerScanner {
  private readonly scans = new Map<string, Promise<LayerMember[]>>();

  members(layer: Layer, what: string): Promise<LayerMember[]> {
    let scan = this.scans.get(layer.digest);
    if (scan === undefined) {
      scan = scanLayer(layer, what);
      this.scans.set(layer.digest, scan);
    }
    return scan;
  }

  /** The store paths a layer carries: recorded, from a scan already made, or read from its headers. */
  async storePaths(layer: Layer, storeDir: string, source?: string): Promise<string[]> {
    if (layer.storePaths !== undefined) return storePathsInLayer(layer, storeDir, source);
    const scan = this.scans.get(layer.digest);
    if (scan !== undefined) return storePathsOf((await scan).map((m) => m.name), storeDir);
    return storePathsInLayer(layer, storeDir, source);
  }
}
