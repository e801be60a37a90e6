import { StrataError } from '../../util/errors.js';
import { isDigest, type Digest } from '../../image/digest.js';

/**
 * A parsed image reference: `host[:port]/repo[:tag|@digest]`, with or without `docker://`.
 * Names follow docker's normaliser (distribution/reference `ParseNormalizedNamed`) so that a
 * reference means here what it means to `docker pull` and `podman pull`.
 */
export interface RegistryReference {
  /** The registry as users name it: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** The host[:port] the API is served from (`registry-1.docker.io` for `docker.io`). */
  readonly apiHost: string;
  /** Repository path inside the registry, e.g. `library/alpine`, `team/app`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API = 'registry-1.docker.io';

// Grammar from distribution/reference/regexp.go, written out once here.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN = /^(?:\[[0-9a-fA-F:.%]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$/;

/** Parses `docker://host/repo:tag`, `host/repo@sha256:…` or a bare `repo` (Docker Hub). */
export function parseRegistryReference(input: string): RegistryReference {
  const original = input;
  const fail = (why: string): never => {
    throw new StrataError(`invalid registry reference ${JSON.stringify(original)}: ${why}`);
  };
  let s = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  if (s.includes('://')) fail('only the docker:// transport names a registry');
  if (s === '') fail('it is empty');

  let digest: Digest | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    const d = s.slice(at + 1);
    if (!isDigest(d)) fail(`${JSON.stringify(d)} is not a sha256 digest (sha256: followed by 64 lowercase hex digits)`);
    digest = d as Digest;
    s = s.slice(0, at);
  }

  // A tag is the text after the last ':' when that ':' comes after the last '/' (else it is a port).
  let tag: string | undefined;
  const colon = s.lastIndexOf(':');
  if (colon > s.lastIndexOf('/')) {
    tag = s.slice(colon + 1);
    s = s.slice(0, colon);
    if (!TAG.test(tag)) fail(`tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-] and not start with '.' or '-'`);
  }

  // docker's rule: the first component is a registry host only when it looks like one
  // (has a '.' or ':', is `localhost`, or has upper-case letters, which no repository may).
  let registry = DOCKER_HUB;
  let path = s;
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const first = s.slice(0, slash);
    if (/[.:]/.test(first) || first === 'localhost' || first.startsWith('[') || first !== first.toLowerCase()) {
      registry = first;
      path = s.slice(slash + 1);
    }
  }
  if (!DOMAIN.test(registry)) fail(`${JSON.stringify(registry)} is not a valid registry host[:port]`);
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (path === '') fail('the repository name is missing');
  for (const part of path.split('/')) {
    if (!PATH_COMPONENT.test(part)) {
      fail(`repository component ${JSON.stringify(part)} must be lowercase letters and digits, separated by '.', '_', '__' or '-'`);
    }
  }
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > 255) fail('the name is longer than 255 characters');
  if (tag === undefined && digest === undefined) tag = 'latest';

  return {
    registry,
    apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry,
    repository: path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** `registry/repository[:tag][@digest]`, the form skopeo and podman print. */
export function formatReference(ref: RegistryReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Tag or digest to use in a `/manifests/<reference>` URL (a digest wins: it pins the bytes). */
export function manifestReference(ref: RegistryReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** True for hosts that may be spoken to over plain HTTP without being named: the loopback ones. */
export function isLoopbackHost(hostPort: string): boolean {
  const host = hostPort.startsWith('[') ? hostPort.slice(0, hostPort.indexOf(']') + 1) : hostPort.replace(/:\d+$/, '');
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}

/** The source's repository when source and destination are in the same registry (blobs can be mounted). */
export function sameRegistryRepository(source: string, destination: string): string | undefined {
  if (!source.startsWith('docker://') || !destination.startsWith('docker://')) return undefined;
  const s = parseRegistryReference(source);
  const d = parseRegistryReference(destination);
  return s.apiHost === d.apiHost && s.repository !== d.repository ? s.repository : undefined;
}
