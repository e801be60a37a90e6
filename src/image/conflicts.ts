/**
 * Paths that two stacked images both provide. When two sources put different files at one path,
 * the upper one silently shadows the lower (two libcs in one image, one package then broken), so
 * a stack refuses it unless told to let the upper one win. Directories in several layers merge
 * and are never a conflict. Strata's own store layers are compared by store path without being
 * read — a store path's name is its content — so checking them downloads nothing.
 */
import { StrataError } from '../util/errors.js';
import { placedUnder } from '../tar/rewrite.js';
import { squashView } from '../tar/squash.js';
import type { LayerMember } from './layer-scan.js';

/** What one layer contributes, as far as the check needs: its members, or its store paths. */
export type LayerContents = { readonly members: readonly LayerMember[] } | { readonly storePaths: readonly string[] };

/** One source's final non-directory paths (tar names, at its placement) and what each holds. */
export interface SourceFiles {
  readonly name: string;
  readonly files: ReadonlyMap<string, string>;
}

/** A path of `lower` that `upper` replaces with something else. */
export interface Shadow {
  readonly path: string;
  readonly lower: string;
  readonly upper: string;
}

/**
 * The files a source leaves visible, from the layers it adds to the stack (bottom first), placed
 * under `at`: its own whiteouts and replacements are applied first, as its image would show it.
 */
export function sourceFiles(name: string, at: string, layers: readonly LayerContents[]): SourceFiles {
  const place = (p: string): string => placedUnder(at, p);
  const files = new Map<string, string>();
  const scanned = layers.filter((l): l is { members: readonly LayerMember[] } => 'members' in l).map((l) => l.members);
  const view = squashView(scanned);
  scanned.forEach((members, i) => {
    for (const m of members) if (m.content !== undefined && view.get(m.name) === i) files.set(place(m.name), m.content);
  });
  for (const l of layers) {
    if ('storePaths' in l) for (const p of l.storePaths) files.set(place(p.replace(/^\/+/, '')), `store path ${p}`);
  }
  return { name, files };
}

/** Every path an upper source replaces with different content, lowest first. */
export function findShadows(sources: readonly SourceFiles[]): Shadow[] {
  const owner = new Map<string, { name: string; content: string }>();
  const shadows: Shadow[] = [];
  for (const s of sources) {
    for (const [path, content] of s.files) {
      const below = owner.get(path);
      if (below && below.name !== s.name && below.content !== content) shadows.push({ path, lower: below.name, upper: s.name });
      owner.set(path, { name: s.name, content });
    }
  }
  return shadows;
}

/** Refuses a stack with shadowed paths, naming each path and both sources. */
export function refuseShadows(shadows: readonly Shadow[]): void {
  if (shadows.length === 0) return;
  const shown = shadows.slice(0, 10).map((s) => `  /${s.path}: ${s.upper} replaces ${s.lower}'s`);
  const more = shadows.length > 10 ? [`  … and ${shadows.length - 10} more`] : [];
  throw new StrataError(
    `${shadows.length} path${shadows.length === 1 ? '' : 's'} would be provided by two sources with different content (the upper one would silently win):\n${[...shown, ...more].join('\n')}\npass --allow-shadow to let the upper source win`,
  );
}
