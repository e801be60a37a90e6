import { arch as hostArch } from 'node:os';
import { rfc3339, type ImageSettings } from '../image/assemble.js';
import type { Image } from '../image/image.js';
import { StrataError } from '../util/errors.js';

/** Defaults a build takes when neither the caller nor a base image says otherwise. */

/** Go's GOARCH names, which image configs use, for Node's process.arch names. */
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The default architecture: the host's, as nixpkgs dockerTools defaults to the build platform's. */
export function defaultArchitecture(): string {
  return GOARCH[hostArch()] ?? hostArch();
}

/**
 * A timestamp flag: unix seconds, an RFC 3339 date, or unset. Unset means SOURCE_DATE_EPOCH
 * when the environment sets it (reproducible-builds.org convention), else 1 (nixpkgs' default:
 * 1970-01-01T00:00:01Z), never the clock.
 */
export function resolveEpoch(flag: string, value: string | number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  if (value === undefined || value === '') {
    const sde = env.SOURCE_DATE_EPOCH;
    if (sde !== undefined && sde !== '') return parseEpoch('SOURCE_DATE_EPOCH', sde);
    return 1;
  }
  return parseEpoch(flag, String(value));
}

function parseEpoch(what: string, s: string): number {
  if (/^\d+$/.test(s)) return Number(s);
  if (s === 'now') return Math.floor(Date.now() / 1000);
  const t = Date.parse(s);
  if (!Number.isNaN(t) && /^\d{4}-\d{2}-\d{2}/.test(s)) return Math.floor(t / 1000);
  throw new StrataError(`${what}: ${JSON.stringify(s)} is not a unix timestamp, an RFC 3339 date or "now"`);
}

/** `created` of a new image when the caller sets none: SOURCE_DATE_EPOCH, else 1, as RFC 3339. */
export function defaultCreated(): string {
  return rfc3339(resolveEpoch('--created', undefined));
}

/** Unset fields of the settings: created from SOURCE_DATE_EPOCH (else 1); platform from the base or first import, else the host. */
export function completeSettings(s: Partial<ImageSettings>, platformFrom: Image | undefined): ImageSettings {
  const inherit = platformFrom !== undefined;
  return {
    ...s,
    created: s.created ?? defaultCreated(),
    ...(s.architecture === undefined ? { architecture: inherit ? platformFrom.config.architecture : defaultArchitecture() } : {}),
    ...(s.os === undefined ? { os: inherit ? platformFrom.config.os : 'linux' } : {}),
  };
}
