import { canonicalJson, canonicalJsonBytes } from '../../util/json.js';
import { chainIds, digestHex, sha256Digest, type Digest } from '../../image/digest.js';
import { isIndex, type Image, type ImageIndex } from '../../image/image.js';
import { parseTag } from '../../image/tag.js';
import { StrataError } from '../../util/errors.js';
import type { ImageDestination } from '../types.js';
import { ArchiveFile, type ReservedMember } from '../archive/tar-file.js';
import { ArchiveBlobs, type ArchiveDestinationOptions } from '../archive/archive-blobs.js';

/**
 * Writes a docker-archive ("docker save" format) that every loader reads: manifest.json for
 * Docker >= 1.10, podman and skopeo, and the legacy parent-linked `<v1id>/{VERSION,json,layer.tar}`
 * directories plus `repositories` for old Docker. Both describe the same layers; the v1 ids
 * chain from the bottom layer up, so an image built on a base continues the base's chain.
 */
export async function openDockerArchiveDestination(path: string, opts: ArchiveDestinationOptions & { tag?: string }): Promise<ImageDestination> {
  const blobs = new ArchiveBlobs(await ArchiveFile.create(path, opts.mtime));
  return {
    name: `docker-archive:${path}`,
    compression: opts.compression ?? 'none',
    beginBlob: (expectedSize) => blobs.beginBlob(expectedSize),
    addLayer: (layer) => blobs.addLayer(layer),
    async commit(root: Image | ImageIndex, refs: readonly string[]): Promise<void> {
      if (isIndex(root)) throw new StrataError(`docker-archive:${path}: a docker-archive holds single images, not an index; write the index to oci:DIR, oci-archive:FILE or docker://REF`);
      const image = root;
      const { byDigest, duplicates } = await blobs.placeAll();
      for (const d of duplicates) await blobs.archive.nameMember(d.member, `${digestHex(d.digest)}.tar`);
      // `docker-archive:FILE:NAME:TAG` names the image as skopeo does, before any --tag.
      await writeDockerArchiveMetadata(blobs.archive, image, opts.tag !== undefined ? [opts.tag, ...refs.filter((r) => r !== opts.tag)] : refs, byDigest);
      await blobs.archive.commit();
    },
    abort: () => blobs.abort(),
  };
}

async function writeDockerArchiveMetadata(
  archive: ArchiveFile,
  image: Image,
  refs: readonly string[],
  byDigest: Map<Digest, ReservedMember>,
): Promise<void> {
  const tags = refs.map(parseTag);
  const v1Ids = legacyIds(image);
  const layerPaths: string[] = [];
  const firstPathOf = new Map<Digest, string>();

  for (const [i, layer] of image.layers.entries()) {
    const member = byDigest.get(layer.digest);
    if (!member) throw new StrataError(`internal: layer ${layer.digest} was never written to ${archive.finalPath}`);
    const dir = v1Ids[i]!.id;
    const earlier = firstPathOf.get(layer.digest);
    if (earlier === undefined) {
      // The layer's bytes were streamed into place before its v1 id was known; name them now.
      await archive.nameMember(member, `${dir}/layer.tar`);
      firstPathOf.set(layer.digest, `${dir}/layer.tar`);
      layerPaths.push(`${dir}/layer.tar`);
    } else {
      // The same blob twice (e.g. two empty layers): one copy, linked the way `docker save` does.
      // manifest.json names the regular file, since skopeo reports a symlink's size as 0.
      await archive.addSymlink(`${dir}/layer.tar`, `../${earlier}`);
      layerPaths.push(earlier);
    }
  }
  for (const v1 of v1Ids) {
    await archive.addDirectory(v1.id);
    await archive.addFile(`${v1.id}/VERSION`, Buffer.from('1.0'));
    await archive.addFile(`${v1.id}/json`, canonicalJsonBytes(v1.json));
  }

  const configName = `${digestHex(image.configDigest)}.json`;
  await archive.addFile(configName, image.configBytes);
  const manifest = [{ Config: configName, RepoTags: tags.map((t) => t.full), Layers: layerPaths }];
  await archive.addFile('manifest.json', Buffer.from(canonicalJson(manifest)));
  if (tags.length > 0 && v1Ids.length > 0) {
    const top = v1Ids[v1Ids.length - 1]!.id;
    const repositories: Record<string, Record<string, string>> = {};
    for (const t of tags) (repositories[t.name] ??= {})[t.tag] = top;
    await archive.addFile('repositories', Buffer.from(canonicalJson(repositories)));
  }
}

interface LegacyLayer {
  id: string;
  json: Record<string, unknown>;
}

/**
 * Legacy v1 image ids, computed as Docker's `v1.CreateID` does: sha256 over the layer's legacy JSON
 * (without `id`) plus `layer_id` = the layer's ChainID and `parent` = the parent's v1 id, keys sorted.
 * No current loader checks them, but they must be unique and stable: they are part of our bytes.
 * The top layer's JSON carries the image's config, as `docker save` writes it.
 */
export function legacyIds(image: Image): LegacyLayer[] {
  const chain = chainIds(image.config.rootfs.diff_ids);
  const out: LegacyLayer[] = [];
  let parent: Digest | undefined;
  for (let i = 0; i < chain.length; i++) {
    const top = i === chain.length - 1;
    const body: Record<string, unknown> = {
      created: image.config.created ?? '1970-01-01T00:00:01Z',
      container_config: {},
      os: image.config.os,
      ...(top
        ? {
            architecture: image.config.architecture,
            ...(image.config.variant ? { variant: image.config.variant } : {}),
            ...(image.config.author ? { author: image.config.author } : {}),
            config: image.config.config ?? {},
          }
        : {}),
    };
    const id = digestHex(sha256Digest(canonicalJson({ ...body, layer_id: chain[i], ...(parent ? { parent } : {}) })));
    out.push({ id, json: { ...body, id, ...(parent ? { parent: digestHex(parent) } : {}) } });
    parent = `sha256:${id}`;
  }
  return out;
}
