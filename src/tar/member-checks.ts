/**
 * What a layer may not do to the tree it is unpacked into, checked member by member as the layer
 * streams past (design notes §11; moby and containerd CVEs): a name that climbs out with `..`, a
 * member written through a symlink the same layer made (symlink-then-file), a hardlink whose
 * target climbs out or goes through such a symlink, and the same path twice in one layer (which of
 * the two a runtime keeps is up to it). Runtimes defend themselves against these; strata refuses
 * them in layers it reads, rather than pass them on into the images it writes. Absolute names are
 * accepted: nixpkgs' streamLayeredImage writes `/nix/store/…`, and every runtime reads a leading
 * `/` as the root the layer is unpacked at.
 */
import { StrataError } from '../util/errors.js';
import { checkMemberName, type MemberType } from './read.js';
import { ancestorsOf, whiteoutOf } from './whiteout.js';

export interface MemberCheckOptions {
  /** Refuse the same path twice in one layer (a rewrite of layers already read need not). */
  readonly duplicates?: boolean;
  /**
   * Refuse character and block devices other than 0:0 (an overlay whiteout): a layer placed at a
   * path or embedded makes them under a tree where no runtime expects device nodes.
   */
  readonly devices?: boolean;
}

export class MemberChecks {
  private readonly seen = new Map<string, MemberType>();
  private readonly symlinks = new Set<string>();

  constructor(private readonly what: string, private readonly opts: MemberCheckOptions = { duplicates: true }) {}

  /** Checks one member; returns its normalised name. */
  check(rawName: string, type: MemberType, linkname?: string, device?: { major: number; minor: number }): string {
    const what = this.what;
    const name = checkMemberName(rawName, what);
    if (this.opts.devices && (type === 'char' || type === 'block') && !(type === 'char' && device?.major === 0 && device.minor === 0)) {
      throw new StrataError(`${what}: ${JSON.stringify(name)} is a ${type} device (${device?.major ?? '?'}:${device?.minor ?? '?'}); strata does not carry device nodes into a layer it places elsewhere`);
    }
    // A directory given twice only says its metadata again (strata's own chardev whiteouts do,
    // to add the opaque xattr); a file, link or device given twice is two different contents.
    if (this.opts.duplicates && name !== '' && whiteoutOf(name) === undefined) {
      const before = this.seen.get(name);
      if (before !== undefined && !(before === 'directory' && type === 'directory')) {
        throw new StrataError(`${what}: ${JSON.stringify(name)} appears twice in the layer (a ${before}, then a ${type}); which one a runtime keeps is up to it`);
      }
      this.seen.set(name, type);
    }
    this.beneathSymlink(name, 'member');
    if (type === 'hardlink' && linkname !== undefined) {
      const target = checkMemberName(linkname, what, `hardlink target of ${JSON.stringify(rawName)}`);
      this.beneathSymlink(target, `hardlink target of ${JSON.stringify(name)}`);
    }
    if (type === 'symlink') this.symlinks.add(name);
    else this.symlinks.delete(name);
    return name;
  }

  private beneathSymlink(name: string, field: string): void {
    if (this.symlinks.size === 0) return;
    for (const dir of ancestorsOf(name)) {
      if (this.symlinks.has(dir)) {
        throw new StrataError(`${this.what}: ${field} ${JSON.stringify(name)} lies beneath the symlink ${JSON.stringify(dir)} of the same layer; unpacked, it would be written through the link, outside the layer's tree`);
      }
    }
  }
}
