/**
 * The unit a layer tar is made of. A TarEntry says everything that ends up in the tar header
 * (name, type, mode, size, link target, and an owner when the user sets one) and where a file's
 * bytes come from; nothing about the host (owner, times, inode) is carried, so nothing about the
 * host can leak into a layer.
 */
export type EntryType = 'file' | 'directory' | 'symlink';

export interface TarEntry {
  /** Path inside the image, no leading '/', no trailing '/', e.g. 'nix/store/abc-hello/bin/hello'. */
  name: string;
  type: EntryType;
  /** Permission bits only (0..0o7777). */
  mode: number;
  /** Bytes for files, 0 otherwise. */
  size: number;
  /** Symlinks only: the target, written verbatim. */
  linkTarget?: string;
  /** Files only: the physical file to read. A file with neither source nor content must be empty. */
  source?: string;
  /**
   * Files only, instead of `source`: the bytes themselves (small generated files such as
   * /etc/passwd or whiteouts). Its length must equal `size`.
   */
  content?: Uint8Array;
  /** Who owns it in the tar header; unset, root (0:0, `root`) — the default every layer has. */
  owner?: { readonly uid: number; readonly gid: number; readonly uname: string; readonly gname: string };
}

/**
 * How permission bits are derived from what is on disk.
 * - 'store': Nix's canonical NAR rule, so the result never depends on how a store was populated
 *   (umask, hard-link optimisation, ownership): dirs 0555, files 0555/0444, symlinks 0777.
 * - 'normal': content from outside the store (customisation layer): dirs 0755, files 0755/0644,
 *   symlinks 0777. Only the owner-executable bit of the source is consulted.
 */
export type ModePolicy = 'store' | 'normal';

/** Permission bits for an entry of `type` under `policy`; `hostMode` is only read for files. */
export function policyMode(policy: ModePolicy, type: EntryType, hostMode: number): number {
  if (type === 'symlink') return 0o777;
  if (type === 'directory') return policy === 'store' ? 0o555 : 0o755;
  const exec = (hostMode & 0o100) !== 0;
  if (policy === 'store') return exec ? 0o555 : 0o444;
  return exec ? 0o755 : 0o644;
}
