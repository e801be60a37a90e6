/**
 * `compose --lock FILE`: what each request resolved to — the exact tag and the manifest digest it
 * named — so that the next compose takes the same packages (and `--frozen` refuses to change them).
 * Written canonically, requests sorted, so the file only changes when a resolution does.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { holdTemp, releaseTemp } from '../util/temp-paths.js';
import { StrataError } from '../util/errors.js';
import { canonicalJson } from '../util/json.js';
import { isDigest } from '../image/digest.js';
import { compareBytes } from '../util/byte-order.js';

export interface LockEntry {
  /** The request as given (`hello@^2`). */
  readonly request: string;
  readonly name: string;
  /** The tag it resolved to. */
  readonly tag: string;
  /** The package's version, from its manifest. */
  readonly version: string;
  readonly digest: string;
  readonly storePath: string;
}

const VERSION = 1;

/** The entries of a lock file, by request; none when the file does not exist. */
export async function readLock(file: string): Promise<Map<string, LockEntry>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new StrataError(`lock file ${file}: ${(e as Error).message}`);
  }
  const fail = (why: string): never => {
    throw new StrataError(`lock file ${file}: ${why}; delete it to resolve afresh`);
  };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`);
  }
  const doc = v as { version?: unknown; packages?: unknown };
  if (doc === null || typeof doc !== 'object' || doc.version !== VERSION || !Array.isArray(doc.packages)) fail(`expected {"version": ${VERSION}, "packages": [...]}`);
  const out = new Map<string, LockEntry>();
  (doc.packages as unknown[]).forEach((p, i) => {
    const e = p as Record<string, unknown>;
    const fields = ['request', 'name', 'tag', 'version', 'digest', 'storePath'] as const;
    if (e === null || typeof e !== 'object' || fields.some((f) => typeof e[f] !== 'string')) fail(`packages[${i}] needs string fields ${fields.join(', ')}`);
    if (!isDigest(e['digest'])) fail(`packages[${i}].digest is not a sha256 digest`);
    out.set(e['request'] as string, e as unknown as LockEntry);
  });
  return out;
}

/** Writes the lock atomically: a temp file beside it, renamed over it. */
export async function writeLock(file: string, entries: readonly LockEntry[]): Promise<void> {
  const sorted = [...entries].sort((a, b) => compareBytes(a.request, b.request));
  const tmp = `${file}.strata-${process.pid}.tmp`;
  holdTemp(tmp);
  try {
    await writeFile(tmp, pretty({ version: VERSION, packages: sorted }) + '\n');
    await rename(tmp, file);
    releaseTemp(tmp);
  } catch (e) {
    await rm(tmp, { force: true });
    releaseTemp(tmp);
    throw new StrataError(`lock file ${file}: cannot write it: ${(e as Error).message}`);
  }
}

/** Indented JSON with sorted keys (canonical content, readable in a diff). */
function pretty(value: unknown): string {
  return JSON.stringify(JSON.parse(canonicalJson(value)), null, 2);
}
