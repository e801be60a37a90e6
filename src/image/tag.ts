import { StrataError } from '../util/errors.js';

/** An image name with its tag, as docker-archive RepoTags and OCI ref names want it. */
export interface ImageTag {
  /** Repository part, e.g. `localhost:5000/team/app`. */
  readonly name: string;
  readonly tag: string;
  /** `name:tag`. */
  readonly full: string;
  /** The fully qualified reference, as `docker save` names it: `docker.io/library/app:1` for `app:1`. */
  readonly qualified: string;
}

const NAME_RE = /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

/**
 * Parses `name[:tag]`; a missing tag means `latest`, as docker and crane do. docker-archive
 * loaders reject RepoTags without a tag, so we never write one.
 */
export function parseTag(ref: string): ImageTag {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const hasTag = colon > slash;
  const name = hasTag ? ref.slice(0, colon) : ref;
  const tag = hasTag ? ref.slice(colon + 1) : 'latest';
  if (ref.includes('@')) throw new StrataError(`--tag ${JSON.stringify(ref)}: a tag cannot name a digest`);
  if (!NAME_RE.test(name)) throw new StrataError(`--tag ${JSON.stringify(ref)}: invalid image name ${JSON.stringify(name)} (lowercase letters, digits, separators . _ - /)`);
  if (!TAG_RE.test(tag)) throw new StrataError(`--tag ${JSON.stringify(ref)}: invalid tag ${JSON.stringify(tag)}`);
  return { name, tag, full: `${name}:${tag}`, qualified: normalizeImageRef(`${name}:${tag}`) };
}

/** Normalises an image reference the way docker does, so `foo:1` matches `docker.io/library/foo:1`. */
export function normalizeImageRef(ref: string): string {
  let name = ref;
  let suffix = '';
  const at = name.indexOf('@');
  if (at !== -1) {
    suffix = name.slice(at);
    name = name.slice(0, at);
  }
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) {
    suffix = name.slice(colon) + suffix;
    name = name.slice(0, colon);
  } else if (suffix === '') {
    suffix = ':latest';
  }
  const first = name.split('/')[0]!;
  const hasDomain = name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasDomain) name = name.includes('/') ? `docker.io/${name}` : `docker.io/library/${name}`;
  return `${name}${suffix}`;
}
