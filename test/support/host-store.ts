/**
 * Running apps from a read-only image store inside a host image, the way a bootc host does:
 * the host image is unpacked layer by layer with GNU tar as root (xattrs and devices kept), the
 * store bind-mounted read-only, and podman pointed at it as an additional image store of an
 * overlay primary store (design notes §7, §8).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { podmanEnv, run, type ToolResult } from './tools.js';

interface Descriptor { digest: string; mediaType: string }

/** The layer blobs of the image `ref` names in an OCI layout, bottom first. */
export function layoutLayers(layout: string, ref: string): string[] {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: (Descriptor & { annotations?: Record<string, string> })[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref);
  if (!entry) throw new Error(`${layout} has no ref ${ref}`);
  const blob = (d: string) => join(layout, 'blobs', 'sha256', d.slice('sha256:'.length));
  const manifest = JSON.parse(readFileSync(blob(entry.digest), 'utf8')) as { layers: Descriptor[] };
  return manifest.layers.map((l) => blob(l.digest));
}

/** Unpacks the image's layers in order into `into`, as root, with GNU tar (whiteout files are left as they are). */
export async function unpackWithGnuTar(layout: string, ref: string, into: string): Promise<void> {
  mkdirSync(into, { recursive: true });
  for (const layer of layoutLayers(layout, ref)) {
    await run('tar', ['-x', '-f', layer, '--xattrs', "--xattrs-include=*", '-p', '--numeric-owner', '-C', into]);
  }
}

export interface StorePodman {
  (args: readonly string[], opts?: { check?: boolean }): Promise<ToolResult>;
}

/**
 * Runs `fn` with `store` bind-mounted read-only and a podman whose primary store (overlay, under
 * `dir`) takes `store` as its image store; unmounts everything afterwards, whatever happens.
 */
export async function withReadOnlyStore<T>(store: string, dir: string, fn: (podman: StorePodman) => Promise<T>): Promise<T> {
  const env = podmanEnv(join(dir, 'podman'));
  const root = join(dir, 'primary');
  const runroot = join(dir, 'runroot');
  mkdirSync(root, { recursive: true });
  mkdirSync(runroot, { recursive: true });
  await run('mount', ['--bind', store, store]);
  try {
    await run('mount', ['-o', 'remount,bind,ro', store]);
    const podman: StorePodman = (args, opts = {}) =>
      run('podman', ['--root', root, '--runroot', runroot, '--storage-driver', 'overlay', '--storage-opt', `overlay.imagestore=${store}`, ...args], { env, check: opts.check ?? true });
    return await fn(podman);
  } finally {
    const overlay = join(root, 'overlay');
    if (existsSync(overlay)) await run('umount', [overlay], { check: false });
    await run('umount', [store], { check: false });
  }
}
