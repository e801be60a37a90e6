/**
 * Rewriting layer tars as streams: members moved under a prefix (an image imported at /opt/x),
 * or several layers squashed into one. Members keep their order and every header field — owner,
 * mode, times, devices, xattrs and other PAX records — so the output depends only on the input
 * bytes, the prefix and `mtime` (given to the directories the prefix creates): rewriting the
 * same layers twice gives the same bytes. Bodies stream through; nothing is held whole.
 */
import { StrataError } from '../util/errors.js';
import { END_OF_ARCHIVE, encodeFields, type HeaderFields } from './header.js';
import { paddedBody, readTarStream, type StreamMember } from './read-stream.js';
import { checkMemberName } from './read.js';
import type { SquashView } from './squash.js';
import { directoryFields } from './members.js';
import { MemberChecks } from './member-checks.js';
import { whiteoutOf, type Whiteout } from './whiteout.js';

/** One input layer: its uncompressed tar, opened when its turn comes. */
export interface TarInput {
  /** Names the layer in messages, e.g. `layer sha256:… of oci:vendor:tool`. */
  readonly what: string;
  open(): Promise<AsyncIterable<Buffer>>;
}

export interface RewriteOptions {
  /** Tar name the members move under (`opt/tool`), or '' to leave them where they are. */
  readonly prefix: string;
  /** mtime of the directories the prefix creates. */
  readonly mtime: number;
  /**
   * For a squash of several inputs: the input whose member of each name is kept (squashView).
   * Whiteouts are then applied, not written. Unset, every member of every input is written.
   */
  readonly view?: SquashView;
  /** Mode of the directory made for the prefix when the inputs bring no root entry (default 0755). */
  readonly rootMode?: number;
  /**
   * What a whiteout member becomes (without a view): the members to write in its place, given
   * the member as placed and the directories written so far. Unset, whiteouts are carried as they are.
   */
  readonly whiteouts?: WhiteoutRewrite;
  /** Leave the archive open (no end-of-archive blocks), for the caller to add members after. */
  readonly open?: boolean;
}

/**
 * Turns a whiteout into the members written in its place. `placed` is the marker member as it
 * would be written (its name under the prefix); `directory(name)` gives the header written for a
 * directory earlier in the same output, if any. May throw to refuse the whiteout.
 */
export type WhiteoutRewrite = (w: Whiteout, placed: HeaderFields, directory: (name: string) => HeaderFields | undefined, what: string) => HeaderFields[];

/** A member name as it is once its layer is placed under `prefix` ('' leaves it; the root becomes the prefix). */
export function placedUnder(prefix: string, name: string): string {
  return prefix === '' ? name : name === '' ? prefix : `${prefix}/${name}`;
}

/** The tar bytes of `inputs` rewritten by `opts`, in chunks, ending with the end-of-archive marker. */
export async function* rewriteTars(inputs: readonly TarInput[], opts: RewriteOptions): AsyncGenerator<Buffer> {
  const prefix = opts.prefix;
  const under = (name: string): string => placedUnder(prefix, name);
  // The prefix's parents are made first; the prefix itself takes the inputs' root entry when one
  // comes first, so a relocated tree keeps its root's mode and owner.
  const parents = prefix === '' ? [] : prefix.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  for (const dir of parents.slice(0, -1)) yield encodeFields(directoryFields(dir, opts.mtime));
  let rootWritten = prefix === '';
  const emitted = new Set<string>();
  const rootDirectory = (): HeaderFields => directoryFields(prefix, opts.mtime, opts.rootMode);
  // Directory headers as written, for whiteout rewrites that mark a directory (names only, no bodies).
  const directories = new Map<string, HeaderFields>();

  const write = (f: HeaderFields): Buffer => {
    if (opts.whiteouts && f.typeflag === '5') directories.set(f.name, f);
    return encodeFields(f);
  };

  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    // A layer placed under a path may not write through its own symlinks: relative to the new
    // root, that would be outside the placed tree.
    const checks = prefix !== '' ? new MemberChecks(input.what, { devices: true }) : undefined;
    for await (const m of readTarStream(await input.open(), input.what)) {
      const name = checkMemberName(m.header.name, input.what);
      checks?.check(m.header.name, m.type, m.type === 'hardlink' ? m.header.linkname : undefined, { major: m.header.devmajor, minor: m.header.devminor });
      if (opts.view !== undefined) {
        if (whiteoutOf(name) !== undefined || opts.view.get(name) !== i) continue;
        // A directory kept from two places of one layer, or a root seen again: once is enough.
        if (emitted.has(name)) continue;
        emitted.add(name);
      }
      if (name === '' && m.type === 'directory') {
        if (rootWritten) continue;
        rootWritten = true;
        yield write(fieldsOf(m, prefix === '' ? '.' : prefix, input.what));
        continue;
      }
      if (!rootWritten) {
        rootWritten = true;
        yield write(rootDirectory());
      }
      const fields = fieldsOf(m, under(name), input.what);
      const whiteout = opts.whiteouts && opts.view === undefined ? whiteoutOf(name) : undefined;
      if (whiteout !== undefined) {
        for (const f of opts.whiteouts!(whiteout, fields, (n) => directories.get(n), input.what)) yield write(f);
        continue;
      }
      if (m.type === 'hardlink') {
        const target = checkMemberName(m.header.linkname, input.what, `hardlink target of ${JSON.stringify(m.header.name)}`);
        if (opts.view !== undefined && !emitted.has(target)) {
          throw new StrataError(`${input.what}: hardlink ${JSON.stringify(name)} → ${JSON.stringify(target)}: its target is not the version left visible, so the layers cannot be squashed`);
        }
        fields.linkname = under(target);
      }
      yield write(fields);
      if (fields.size > 0) yield* paddedBody(m);
    }
  }
  if (!rootWritten) yield write(rootDirectory());
  if (!opts.open) yield Buffer.alloc(END_OF_ARCHIVE);
}

const TYPEFLAGS: Partial<Record<StreamMember['type'], string>> = {
  file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6',
};

function fieldsOf(m: StreamMember, name: string, what: string): HeaderFields {
  const typeflag = TYPEFLAGS[m.type];
  if (typeflag === undefined) {
    throw new StrataError(`${what}: member ${JSON.stringify(m.header.name)} has tar type ${JSON.stringify(m.header.typeflag)}, which strata cannot carry over`);
  }
  const h = m.header;
  return {
    name,
    typeflag,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    uname: h.uname,
    gname: h.gname,
    mtime: h.mtime,
    size: m.type === 'file' ? h.size : 0,
    ...(m.type === 'symlink' ? { linkname: h.linkname } : {}),
    devmajor: m.type === 'char' || m.type === 'block' ? h.devmajor : 0,
    devminor: m.type === 'char' || m.type === 'block' ? h.devminor : 0,
    ...(h.pax ? { pax: h.pax } : {}),
  };
}
