/**
 * Hand-made base images for the reader tests, built from the published formats with tar-stream
 * and node:crypto — never with strata's own writers, so a shared misunderstanding cannot make
 * a reader test pass.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import type { Readable } from 'node:stream';
import assert from 'node:assert/strict';
import { StrataError } from '../../src/util/errors.js';

export type Dig = `sha256:${string}`;

export function sha(b: Buffer | string): Dig {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export function hex(d: Dig): string {
  return d.slice(7);
}

export interface Entry {
  name: string;
  content?: Buffer | string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
}

/** Packs entries into a tar buffer with fixed metadata. */
export async function tarBuffer(entries: readonly Entry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name, type, mode: type === 'directory' ? 0o755 : 0o644, mtime: new Date(1000), uid: 0, gid: 0,
      uname: 'root', gname: 'root', ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      if (type === 'file') pack.entry(header, Buffer.from(e.content ?? ''), (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function writeTar(path: string, entries: readonly Entry[]): Promise<Buffer> {
  const b = await tarBuffer(entries);
  writeFileSync(path, b);
  return b;
}

/** A small layer tar holding a store path, the way nixpkgs writes it (absolute names). */
export async function storeLayer(name: string, extra: readonly Entry[] = []): Promise<Buffer> {
  return tarBuffer([
    { name: `/nix/store/${name}`, type: 'directory' },
    { name: `/nix/store/${name}/bin/${name.split('-').slice(1).join('-') || 'x'}`, content: `#!/bin/sh\necho ${name}\n` },
    ...extra,
  ]);
}

export function gzip(b: Buffer): Buffer {
  return gzipSync(b);
}

export function configJson(diffIds: readonly string[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map(() => ({ created: '1970-01-01T00:00:01Z', created_by: 'hand' })),
    ...extra,
  }, null, 2));
}

export async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Reads a stream to its end and returns the error it ends with (or undefined). */
export async function drainError(s: Readable): Promise<Error | undefined> {
  try {
    await readAll(s);
    return undefined;
  } catch (e) {
    return e as Error;
  }
}

/** Asserts that `p` rejects with a StrataError whose message matches every pattern. */
export async function rejectsNaming(p: Promise<unknown>, ...patterns: (RegExp | string)[]): Promise<StrataError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof StrataError, `expected a StrataError, got ${String(err)}`);
  for (const pat of patterns) {
    if (typeof pat === 'string') assert.ok(err.message.includes(pat), `${JSON.stringify(err.message)} should name ${pat}`);
    else assert.match(err.message, pat);
  }
  return err;
}

/** A docker-archive of one image with one layer (its DiffID the layer's sha256 unless given), written to `file`. */
export async function oneLayerArchive(file: string, layer: Buffer, opts: { diffId?: string; repoTag?: string } = {}): Promise<string> {
  const cfg = configJson([opts.diffId ?? sha(layer)]);
  await writeTar(file, [
    { name: 'manifest.json', content: JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: [opts.repoTag ?? 'image:1'], Layers: ['layer.tar'] }]) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: 'layer.tar', content: layer },
  ]);
  return file;
}
