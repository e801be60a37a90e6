import { canonicalJson, canonicalJsonBytes } from '../../util/json.js';
import { chainIds, digestHex, sha256Digest, type Digest } from '../../image/digest.js';
import { CONTAINERD_NAME } from '../../image/descriptor.js';
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
      // `docker-archive:FILE:NAME:TAG` names the image as skopeo does, before any --tag.
      const named = opts.tag !== undefined ? [opts.tag, ...refs.filter((r) => r !== opts.tag)] : refs;
      const entries = isIndex(root) ? await namedImages(root, path, blobs) : [{ image: root, refs: named }];
      const { byDigest, duplicates } = await blobs.placeAll();
      for (const d of duplicates) await blobs.archive.nameMember(d.member, `${digestHex(d.digest)}.tar`);
      await writeDockerArchiveMetadata(blobs.archive, entries, byDigest);
      await blobs.archive.commit();
    },
    abort: () => blobs.abort(),
  };
}


/**
 * The images of an index whose children are all named (`io.containerd.image.name`), as `docker
 * save A B` holds several: each one entry of manifest.json under its names, each layer blob once.
 * Their layers are added to the archive here. Any other index (a multi-platform one) is refused:
 * a docker-archive has no platforms to choose between.
 */
async function namedImages(index: ImageIndex, path: string, blobs: ArchiveBlobs): Promise<{ image: Image; refs: string[] }[]> {
  const refuse = (): never => {
    throw new StrataError(`docker-archive:${path}: a docker-archive holds single images (or several named ones, as strata merge writes), not an index; write the index to oci:DIR, oci-archive:FILE or docker://REF`);
  };
  const out: { image: Image; refs: string[] }[] = [];
  // By DiffID: the same content compressed two ways (one image from an archive, one from a gzip
  // layout) is still one layer, stored once; loaders check the DiffID, not the blob.
  const added = new Set<string>();
  for (const d of index.children) {
    const name = d.annotations?.[CONTAINERD_NAME];
    if (name === undefined) refuse();
    const node = await index.child(d);
    if (isIndex(node)) refuse();
    const image = node as Image;
    for (const layer of image.layers) {
      if (added.has(layer.diffId)) continue;
      added.add(layer.diffId);
      await blobs.addLayer(layer);
    }
    out.push({ image, refs: name!.split(',') });
  }
  return out;
}

async function writeDockerArchiveMetadata(
  archive: ArchiveFile,
  entries: readonly { image: Image; refs: readonly string[] }[],
  byDigest: Map<Digest, ReservedMember>,
): Promise<void> {
  // Shared by every image: a layer blob is named once, and a v1 directory (the same chain of
  // layers below) is written once, however many images have it.
  // Two maps, not one: an uncompressed blob's digest is its DiffID, which may also be the DiffID
  // of another, compressed blob of the same content.
  const firstPathOf = new Map<Digest, string>(); // by blob digest
  const pathOfContent = new Map<Digest, string>(); // by DiffID
  const v1Written = new Set<string>();
  const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const configs = new Set<string>();
  for (const { image, refs } of entries) {
    const tags = refs.map(parseTag);
    const v1Ids = legacyIds(image);
    const layerPaths: string[] = [];
    for (const [i, layer] of image.layers.entries()) {
      const dir = v1Ids[i]!.id;
      const member = byDigest.get(layer.digest);
      // A blob written is named once; a layer whose blob was not written (merge keeps one blob
      // per DiffID) is the blob of the same content written for another image.
      const earlier = firstPathOf.get(layer.digest) ?? (member === undefined ? pathOfContent.get(layer.diffId) : undefined);
      if (earlier === undefined) {
        if (!member) throw new StrataError(`internal: layer ${layer.digest} was never written to ${archive.finalPath}`);
        // The layer's bytes were streamed into place before its v1 id was known; name them now.
        await archive.nameMember(member, `${dir}/layer.tar`);
        firstPathOf.set(layer.digest, `${dir}/layer.tar`);
        if (!pathOfContent.has(layer.diffId)) pathOfContent.set(layer.diffId, `${dir}/layer.tar`);
        layerPaths.push(`${dir}/layer.tar`);
      } else {
        // The same blob twice (e.g. two empty layers): one copy, linked the way `docker save` does.
        // manifest.json names the regular file, since skopeo reports a symlink's size as 0.
        if (earlier !== `${dir}/layer.tar` && !v1Written.has(dir)) await archive.addSymlink(`${dir}/layer.tar`, `../${earlier}`);
        layerPaths.push(earlier);
      }
    }
    for (const v1 of v1Ids) {
      if (v1Written.has(v1.id)) continue;
      v1Written.add(v1.id);
      await archive.addDirectory(v1.id);
      await archive.addFile(`${v1.id}/VERSION`, Buffer.from('1.0'));
      await archive.addFile(`${v1.id}/json`, canonicalJsonBytes(v1.json));
    }
    const configName = `${digestHex(image.configDigest)}.json`;
    if (!configs.has(configName)) {
      configs.add(configName);
      await archive.addFile(configName, image.configBytes);
    }
    manifest.push({ Config: configName, RepoTags: tags.map((t) => t.full), Layers: layerPaths });
    const top = v1Ids.at(-1)?.id;
    if (top !== undefined) for (const t of tags) (repositories[t.name] ??= {})[t.tag] = top;
  }
  await archive.addFile('manifest.json', Buffer.from(canonicalJson(manifest)));
  if (Object.keys(repositories).length > 0) await archive.addFile('repositories', Buffer.from(canonicalJson(repositories)));
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
