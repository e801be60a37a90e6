/**
 * The host-image layer that carries one stored layer: the image layer's files, member for member,
 * under `<store>/overlay/<id>/diff/`, then the layer's `link` and `lower` files and its tar-split
 * record (overlay-layers/<id>.tar-split.gz). Its bytes depend
 * only on the image layer, its parents' IDs, the store's path and the mtime — so an app layer
 * that did not change gives the same host layer, and a host update downloads only what changed.
 */
import { StrataError } from '../../util/errors.js';
import type { HeaderFields } from '../../tar/header.js';
import { END_OF_ARCHIVE } from '../../tar/header.js';
import { BLOCK_SIZE } from '../../compress/block-size.js';
import { loadMemberCompressor } from '../../compress/deflate-block.js';
import { directoryMember, fileMember } from '../../tar/members.js';
import { rewriteTars, type TarInput, type WhiteoutRewrite } from '../../tar/rewrite.js';
import { OSTREE_WHITEOUT_PREFIX } from '../../tar/whiteout.js';
import type { StoredLayer } from './plan.js';
import type { LayerFacts } from './records.js';
import { TarSplitter } from './tar-split.js';

/**
 * What an image layer's whiteouts become inside the store. They cannot stay as they are: the
 * host's own unpacker would apply them to the host. `refuse` fails naming the options; `chardev`
 * writes what containers-storage itself makes of them (a 0:0 character device, and the overlay
 * opaque xattr on a directory), right for hosts unpacked by GNU tar or containers-storage vfs;
 * `ostree` writes `.ostree-wh.<name>` files, which ostree (≥ 2022.6) deploys as those devices.
 */
export type WhiteoutMode = 'refuse' | 'chardev' | 'ostree';
export const WHITEOUT_MODES: readonly WhiteoutMode[] = ['refuse', 'chardev', 'ostree'];

const OPAQUE_XATTR = 'SCHILY.xattr.trusted.overlay.opaque';

/** The tar name of a stored layer's directory under the store root. */
export function layerDir(root: string, id: string): string {
  return `${root}/overlay/${id}`;
}

export interface StoredLayerTarOptions {
  readonly root: string;
  readonly mtime: number;
  readonly whiteouts: WhiteoutMode;
}

/**
 * The host layer's tar for `layer`, whose image-layer tar `input` opens. The image layer is read
 * once: as its bytes pass they are counted and packed into its tar-split, and `done` gets what
 * that showed before the last member is written.
 */
export async function* storedLayerTar(layer: StoredLayer, input: TarInput, opts: StoredLayerTarOptions, done: (facts: LayerFacts) => void): AsyncGenerator<Buffer> {
  const dir = layerDir(opts.root, layer.id);
  const splitter = new TarSplitter(input.what);
  let diffSize = 0;
  const watched: TarInput = {
    what: input.what,
    open: async () => {
      const tar = await input.open();
      return (async function* () {
        for await (const chunk of tar) {
          diffSize += chunk.length;
          splitter.feed(chunk);
          yield chunk;
        }
      })();
    },
  };
  // containers-storage makes diff/ 0555; a layer that has a root entry gives it its own mode.
  yield* rewriteTars([watched], { prefix: `${dir}/diff`, mtime: opts.mtime, rootMode: 0o555, whiteouts: whiteoutRewrite(opts.whiteouts), open: true });
  yield fileMember(`${dir}/link`, Buffer.from(layer.link), opts.mtime);
  if (layer.lower.length > 0) yield fileMember(`${dir}/lower`, Buffer.from(layer.lower.map((l) => `l/${l}`).join(':')), opts.mtime);
  yield directoryMember(`${opts.root}/overlay-layers`, opts.mtime);
  yield fileMember(`${opts.root}/overlay-layers/${layer.id}.tar-split.gz`, await gzipped(splitter.finish()), opts.mtime);
  done({ diffSize });
  yield Buffer.alloc(END_OF_ARCHIVE);
}

/** Gzip with strata's reproducible member compressor (deflate-block.ts), whatever zlib the host has. */
async function gzipped(data: Buffer): Promise<Buffer> {
  const compress = await loadMemberCompressor();
  const members: Buffer[] = [];
  for (let i = 0; i < data.length; i += BLOCK_SIZE) members.push(Buffer.from(compress(data.subarray(i, i + BLOCK_SIZE))));
  return Buffer.concat(members);
}

function whiteoutRewrite(mode: WhiteoutMode): WhiteoutRewrite {
  return (w, placed, directory, what) => {
    const marker = placed.name.slice(placed.name.lastIndexOf('/') + 1);
    const parent = placed.name.slice(0, placed.name.lastIndexOf('/'));
    if (mode === 'refuse') {
      const meaning = w.kind === 'opaque' ? `an opaque-directory marker for /${w.dir}` : `a whiteout deleting /${w.path}`;
      throw new StrataError(
        `${what} has ${meaning}, which cannot be carried into the host image as it is (the host's own unpacking would apply it to the host): pass --whiteouts chardev for hosts unpacked by GNU tar or containers-storage vfs, or --whiteouts ostree for ostree/bootc hosts`,
      );
    }
    if (w.kind === 'opaque') {
      // The directory's own header again, now with the opaque xattr (unpackers apply a repeated
      // directory's metadata to the one already there).
      const own = directory(parent) ?? { ...placed, name: parent, typeflag: '5', mode: 0o755, size: 0 };
      const pax = new Map(own.pax ?? []);
      pax.set(OPAQUE_XATTR, Buffer.from('y'));
      return [{ ...own, pax }];
    }
    const target = marker.slice('.wh.'.length);
    const base: HeaderFields = { ...placed, size: 0, mode: 0, devmajor: 0, devminor: 0 };
    delete (base as { pax?: unknown }).pax;
    return mode === 'chardev'
      ? [{ ...base, name: `${parent}/${target}`, typeflag: '3' }]
      : [{ ...base, name: `${parent}/${OSTREE_WHITEOUT_PREFIX}${target}`, typeflag: '0' }];
  };
}
