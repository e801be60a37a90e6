/**
 * OCI whiteouts (image-spec layer.md): `<dir>/.wh.<name>` deletes `<dir>/<name>` of the layers
 * below, `<dir>/.wh..wh..opq` hides every child `<dir>` had below. Both are empty files, and both
 * apply to lower layers only, never to their own.
 */
import { posix } from 'node:path';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

export type Whiteout = { kind: 'opaque'; dir: string } | { kind: 'delete'; path: string };

/** What a (normalised) member name whites out, or undefined for an ordinary member. */
export function whiteoutOf(name: string): Whiteout | undefined {
  const base = posix.basename(name);
  if (!base.startsWith(WHITEOUT_PREFIX)) return undefined;
  const dir = posix.dirname(name);
  const parent = dir === '.' ? '' : dir;
  if (base === OPAQUE_WHITEOUT) return { kind: 'opaque', dir: parent };
  const target = base.slice(WHITEOUT_PREFIX.length);
  return { kind: 'delete', path: parent === '' ? target : `${parent}/${target}` };
}

/** `a/b/c` → `['', 'a', 'a/b']`: the directories a name lies in, outermost first. */
export function ancestorsOf(name: string): string[] {
  const out = [''];
  let i = name.indexOf('/');
  while (i !== -1) {
    out.push(name.slice(0, i));
    i = name.indexOf('/', i + 1);
  }
  return out;
}

/** ostree (≥ 2022.6) deploys an empty file `.ostree-wh.<name>` as an overlay whiteout of `<name>`. */
export const OSTREE_WHITEOUT_PREFIX = '.ostree-wh.';
