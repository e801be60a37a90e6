import { createHash } from 'node:crypto';
import { StrataError } from '../util/errors.js';

/** An OCI content digest. strata only produces and accepts sha256. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** Parses a digest string, naming `what` in the error when it is not a sha256 digest. */
export function parseDigest(s: unknown, what: string): Digest {
  if (!isDigest(s)) throw new StrataError(`${what}: ${JSON.stringify(s)} is not a sha256 digest`);
  return s;
}

export function sha256Digest(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}

/**
 * ChainID as defined by the OCI image spec:
 * ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).
 */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : sha256Digest(`${prev} ${d}`));
  }
  return out;
}
