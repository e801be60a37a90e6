import type { Readable } from 'node:stream';
import { MAX_ARCHIVE_MANIFEST_BYTES } from '../../image/limits.js';
import type { ImageConfig } from '../../image/config.js';
import { isDigest, sha256Digest, type Digest } from '../../image/digest.js';
import type { Image } from '../../image/image.js';
import type { Layer } from '../../image/layer.js';
import { ociLayerMediaType, type Compression } from '../../image/media-types.js';
import { StrataError } from '../../util/errors.js';
import { canonicalJsonBytes } from '../../util/json.js';
import { normalizeImageRef } from '../../image/tag.js';
import { indexTarFile, openMember, readMember, readMemberHead, resolveMember, type TarIndex, type TarMember } from '../tar-index.js';
import type { ImageSource } from '../types.js';
import { hashBlob, parseImageConfig, sniffCompression, verifyBytes, verifyingLayerStream } from '../verify.js';

/**
 * Reads a `docker save` style archive without extracting it. Three generations exist:
 * - manifest.json + legacy `<v1id>/{json,layer.tar}` dirs (Docker <= 24, skopeo: `<diffid>.tar`
 *   files with the legacy dirs as symlinks, nixpkgs: `<hash>/layer.tar`);
 * - manifest.json + an OCI layout (`blobs/sha256/…`, Docker >= 25);
 * - legacy dirs + `repositories` only (very old Docker): the layer order comes from the parent chain.
 * Loaders order layers by manifest.json, so when it is present it wins over the legacy files.
 */

interface ManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** A base layer stored as a member of the archive. */
class ArchiveLayer implements Layer {
  constructor(
    private readonly index: TarIndex,
    private readonly member: TarMember,
    readonly diffId: Digest,
    readonly digest: Digest,
    readonly compression: Compression,
    private readonly what: string,
  ) {}

  get size(): number {
    return this.member.size;
  }

  get mediaType(): string {
    return ociLayerMediaType(this.compression);
  }

  async open(): Promise<Readable> {
    return verifyingLayerStream(openMember(this.index, this.member), {
      digest: this.digest, diffId: this.diffId, size: this.size, compression: this.compression, what: this.what,
    });
  }
}

/** `blobs/sha256/<hex>` or `<hex>.json` / `<hex>.tar`: names that claim a content digest. */
function digestFromName(name: string): Digest | undefined {
  const m = /(?:^|\/)(?:blobs\/sha256\/([0-9a-f]{64})|([0-9a-f]{64})\.(?:json|tar))$/.exec(name);
  const hex = m?.[1] ?? m?.[2];
  return hex === undefined ? undefined : `sha256:${hex}`;
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new StrataError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

export interface DockerArchiveOptions {
  /** `name:tag` (matched after docker normalisation) or `@N` (index in manifest.json). */
  readonly ref?: string;
  /** An index already built by auto-detection, so the archive is scanned once. */
  readonly index?: TarIndex;
}

export async function openDockerArchive(file: string, opts: DockerArchiveOptions = {}): Promise<ImageSource> {
  const index = opts.index ?? (await indexTarFile(file));
  const name = `docker-archive:${file}${opts.ref !== undefined ? `:${opts.ref}` : ''}`;
  const { image, names } = index.members.has('manifest.json')
    ? await readFromManifest(index, name, opts.ref)
    : { image: await readFromParentChain(index, name, opts.ref), names: [] };
  return { name, image, ...(names.length > 0 ? { names } : {}), close: async () => undefined };
}

function describeChoices(choices: readonly string[]): string {
  return choices.length === 0 ? '(none)' : choices.join(', ');
}

/** The chosen entry's image, and the names its RepoTags give it (fully qualified, as podman loads them). */
async function readFromManifest(index: TarIndex, source: string, ref: string | undefined): Promise<{ image: Image; names: string[] }> {
  const file = index.file;
  const raw = parseJson(await readMember(index, resolveMember(index, 'manifest.json', 'manifest.json'), MAX_ARCHIVE_MANIFEST_BYTES), `${file}: manifest.json`);
  if (!Array.isArray(raw) || raw.length === 0) throw new StrataError(`${file}: manifest.json is not a non-empty JSON array`);
  const entries = raw.map((e: unknown, i): ManifestEntry => {
    const o = e as Partial<ManifestEntry> | null;
    if (o === null || typeof o !== 'object' || typeof o.Config !== 'string' || !Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string')) {
      throw new StrataError(`${file}: manifest.json entry ${i} lacks Config or Layers`);
    }
    return o as ManifestEntry;
  });
  const tagsOf = (e: ManifestEntry): string[] => (Array.isArray(e.RepoTags) ? e.RepoTags.filter((t) => typeof t === 'string') : []);
  const choices = entries.map((e, i) => (tagsOf(e).length > 0 ? tagsOf(e).join(' ') : `@${i}`));
  let entryIndex: number;
  if (ref === undefined) {
    if (entries.length !== 1) {
      throw new StrataError(`${file} holds ${entries.length} images; pick one with docker-archive:${file}:NAME:TAG — choices: ${describeChoices(choices)}`);
    }
    entryIndex = 0;
  } else if (/^@\d+$/.test(ref)) {
    entryIndex = Number(ref.slice(1));
    if (entryIndex >= entries.length) throw new StrataError(`${file}: no image ${ref} — choices: ${describeChoices(choices)}`);
  } else {
    const want = normalizeImageRef(ref);
    const hits = entries.flatMap((e, i) => (tagsOf(e).some((t) => normalizeImageRef(t) === want) ? [i] : []));
    if (hits.length === 0) throw new StrataError(`${file}: no image tagged ${ref} — choices: ${describeChoices(choices)}`);
    if (hits.length > 1) throw new StrataError(`${file}: ${hits.length} images are tagged ${ref}`);
    entryIndex = hits[0]!;
  }
  const entry = entries[entryIndex]!;
  // resolveMember prefixes the archive path itself.
  const where = `manifest.json[${entryIndex}]`;

  const configMember = resolveMember(index, entry.Config, `manifest.json Config`);
  const configBytes = await readMember(index, configMember);
  // Config files are named by their digest; a mismatch means a corrupt or tampered archive.
  for (const n of new Set([entry.Config, configMember.name])) {
    const claimed = digestFromName(n);
    if (claimed !== undefined) verifyBytes(configBytes, claimed, `${file}: config ${n}`);
  }
  const config = parseImageConfig(configBytes, `${source} (config ${entry.Config})`, entry.Layers.length);
  const diffIds = config.rootfs.diff_ids;

  const layers: Layer[] = [];
  for (const [i, layerPath] of entry.Layers.entries()) {
    const member = resolveMember(index, layerPath, `${where} Layers[${i}]`);
    const what = `layer ${i} (${layerPath}, diff ID ${diffIds[i]}) of ${source}`;
    const compression = sniffCompression(await readMemberHead(index, member, 4));
    const diffId = diffIds[i]!;
    let digest: Digest;
    if (compression === 'none') {
      digest = diffId; // verified against the bytes when the layer is opened
      const claimed = digestFromName(member.name) ?? digestFromName(layerPath);
      if (claimed !== undefined && claimed !== diffId) {
        throw new StrataError(`${what}: the file is named by digest ${claimed} but the config's diff ID is ${diffId}`);
      }
    } else {
      // Docker >= 25 names compressed blobs by digest; other writers do not, so hash the file once.
      digest = digestFromName(member.name) ?? (await hashBlob(openMember(index, member), 'none', what)).digest;
    }
    const named = digest === diffId ? what : `layer ${i} (${layerPath}, digest ${digest}, diff ID ${diffId}) of ${source}`;
    layers.push(new ArchiveLayer(index, member, diffId, digest, compression, named));
  }
  const names = [...new Set(tagsOf(entry).map(normalizeImageRef))];
  return { image: { config, configBytes, configDigest: sha256Digest(configBytes), layers }, names };
}

interface LegacyJson {
  id?: string;
  parent?: string;
  created?: string;
  container_config?: { Cmd?: string[] };
  [k: string]: unknown;
}

function stripSha(id: string): string {
  return id.startsWith('sha256:') ? id.slice('sha256:'.length) : id;
}

/**
 * Very old archives: `repositories` maps name → tag → top v1 id; each `<id>/json` names its
 * parent. The config (with diff IDs) is rebuilt the way Docker converted v1 images: the top
 * layer's JSON minus the v1 linkage fields, plus rootfs and history.
 */
async function readFromParentChain(index: TarIndex, source: string, ref: string | undefined): Promise<Image> {
  const file = index.file;
  const tops = new Map<string, string>(); // "name:tag" → id
  if (index.members.has('repositories')) {
    const repos = parseJson(await readMember(index, resolveMember(index, 'repositories', 'repositories')), `${file}: repositories`);
    if (repos === null || typeof repos !== 'object') throw new StrataError(`${file}: repositories is not a JSON object`);
    for (const [repo, tags] of Object.entries(repos as Record<string, unknown>)) {
      if (tags === null || typeof tags !== 'object') continue;
      for (const [tag, id] of Object.entries(tags as Record<string, unknown>)) {
        if (typeof id === 'string') tops.set(`${repo}:${tag}`, stripSha(id));
      }
    }
  }
  const legacyIds = [...index.members.keys()].flatMap((n) => (/^[^/]+\/json$/.test(n) ? [n.slice(0, -'/json'.length)] : []));
  if (tops.size === 0 && legacyIds.length === 0) {
    throw new StrataError(`${file}: not a docker archive (no manifest.json, no repositories, no <id>/json)`);
  }

  let top: string;
  const choices = [...tops.keys()];
  if (ref !== undefined) {
    const want = normalizeImageRef(ref);
    const hit = choices.find((c) => normalizeImageRef(c) === want);
    if (hit === undefined) throw new StrataError(`${file}: no image tagged ${ref} in repositories — choices: ${describeChoices(choices)}`);
    top = tops.get(hit)!;
  } else {
    const distinct = [...new Set(tops.values())];
    if (distinct.length === 1) top = distinct[0]!;
    else if (distinct.length > 1) throw new StrataError(`${file} holds ${distinct.length} images; pick one with docker-archive:${file}:NAME:TAG — choices: ${describeChoices(choices)}`);
    else top = await findOnlyTop(index, legacyIds);
  }

  // Walk parent links from the top down, refusing loops (a corrupt archive would spin forever).
  const chain: { id: string; json: LegacyJson }[] = [];
  const seen = new Set<string>();
  for (let id: string | undefined = top; id !== undefined && id !== ''; ) {
    if (seen.has(id)) {
      throw new StrataError(`${file}: the parent chain loops: ${[...chain.map((c) => c.id), id].join(' → ')}`);
    }
    seen.add(id);
    const json = await readLegacyJson(index, id);
    chain.push({ id, json });
    id = typeof json.parent === 'string' ? stripSha(json.parent) : undefined;
  }
  chain.reverse();

  const layers: Layer[] = [];
  const diffIds: Digest[] = [];
  for (const [i, { id }] of chain.entries()) {
    const member = resolveMember(index, `${id}/layer.tar`, `layer ${i} (v1 id ${id})`);
    const what = `layer ${i} (${id}/layer.tar) of ${source}`;
    const compression = sniffCompression(await readMemberHead(index, member, 4));
    // No config records diff IDs here: hashing every layer is the only way to learn them.
    const h = await hashBlob(openMember(index, member), compression, what);
    diffIds.push(h.diffId);
    layers.push(new ArchiveLayer(index, member, h.diffId, h.digest, compression, `layer ${i} (${id}/layer.tar, digest ${h.digest}) of ${source}`));
  }

  const topJson = chain[chain.length - 1]!.json;
  const config: Record<string, unknown> = { ...topJson };
  for (const k of ['id', 'parent', 'Size', 'parent_id', 'layer_id', 'throwaway']) delete config[k];
  config['architecture'] ??= 'amd64';
  config['os'] ??= 'linux';
  config['rootfs'] = { type: 'layers', diff_ids: diffIds };
  config['history'] = chain.map(({ json }) => ({
    ...(typeof json.created === 'string' ? { created: json.created } : {}),
    ...(Array.isArray(json.container_config?.Cmd) ? { created_by: json.container_config.Cmd.join(' ') } : {}),
  }));
  const configBytes = canonicalJsonBytes(config);
  return { config: config as ImageConfig, configBytes, configDigest: sha256Digest(configBytes), layers };
}

async function readLegacyJson(index: TarIndex, id: string): Promise<LegacyJson> {
  if (!/^[0-9a-f]{64}$/.test(id) && !isDigest(id)) throw new StrataError(`${index.file}: bad v1 layer id ${JSON.stringify(id)}`);
  const member = resolveMember(index, `${id}/json`, `v1 layer ${id}`);
  const json = parseJson(await readMember(index, member), `${index.file}: ${id}/json`);
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new StrataError(`${index.file}: ${id}/json is not a JSON object`);
  return json as LegacyJson;
}

/** Without `repositories`, the image is the one layer no other layer names as parent. */
async function findOnlyTop(index: TarIndex, ids: readonly string[]): Promise<string> {
  const parents = new Set<string>();
  for (const id of ids) {
    const p = (await readLegacyJson(index, id)).parent;
    if (typeof p === 'string') parents.add(stripSha(p));
  }
  const tops = ids.filter((id) => !parents.has(id));
  if (tops.length !== 1) {
    throw new StrataError(`${index.file}: no manifest.json or repositories, and ${tops.length} top layers (${describeChoices(tops)}); cannot tell which image to read`);
  }
  return tops[0]!;
}
