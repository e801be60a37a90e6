/**
 * What a stack of layers leaves visible, computed from member names alone: the data-in/data-out
 * half of a squash. Given each layer's members (bottom layer first), it says which layer supplies
 * the final version of each path, applying the OCI rules: an upper member replaces a lower one of
 * the same name; an upper non-directory hides everything below that lived under its name; an
 * upper whiteout deletes a lower path and all under it; an opaque whiteout hides a directory's
 * lower children. Directories of several layers merge.
 */
import type { MemberType } from './read.js';
import { ancestorsOf, whiteoutOf } from './whiteout.js';

export interface ViewMember {
  /** Normalised name ('' for the root). */
  readonly name: string;
  readonly type: MemberType;
}

/** Name → index of the layer whose member of that name is the one left visible. */
export type SquashView = ReadonlyMap<string, number>;

export function squashView(layers: readonly (readonly ViewMember[])[]): SquashView {
  const winner = new Map<string, number>();
  // What the layers above the one being looked at delete, replace by a non-directory, or make opaque.
  const deleted = new Set<string>();
  const opaque = new Set<string>();
  const hidden = (name: string): boolean => {
    if (deleted.has(name)) return true;
    const ancestors = ancestorsOf(name);
    for (let i = 1; i < ancestors.length; i++) if (deleted.has(ancestors[i]!)) return true;
    return ancestors.some((a) => opaque.has(a));
  };
  for (let i = layers.length - 1; i >= 0; i--) {
    const removes: string[] = [];
    const opaques: string[] = [];
    for (const m of layers[i]!) {
      const wh = whiteoutOf(m.name);
      if (wh?.kind === 'opaque') opaques.push(wh.dir);
      else if (wh) removes.push(wh.path);
      else if (!winner.has(m.name) && !hidden(m.name)) {
        winner.set(m.name, i);
        // A file, link or device replaces whatever tree lower layers had at its name.
        if (m.type !== 'directory') removes.push(m.name);
      }
    }
    // A layer's whiteouts and replacements apply to the layers below it only.
    for (const r of removes) deleted.add(r);
    for (const o of opaques) opaque.add(o);
  }
  return winner;
}
