/**
 * containerd reads strata's images with its own code (the reader behind Docker ≥ 23, k3s and
 * nerdctl): `ctr images import` unpacks every layer, checking each against the config's DiffID,
 * and `ctr run` starts the image. zstd and gzip layers, OCI archive and docker-archive. containerd
 * runs privately here: its own root, state and socket in a temp dir, the CRI plugin (the only
 * one that listens on a network port) disabled.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BusyboxStore } from '../support/busybox-store.js';
import { ensurePackages, run } from '../support/tools.js';
import { buildImage, setupE2E } from './e2e-support.js';

describe('containerd imports and runs strata images', () => {
  let dir: string;
  let store: BusyboxStore;
  let daemon: ChildProcess | undefined;
  let socket: string;
  const ctr = (args: readonly string[]) => run('ctr', ['--address', socket, ...args]);

  before(async () => {
    await ensurePackages(['containerd', 'runc']);
    dir = mkdtempSync(join(tmpdir(), 'strata-e2e-containerd-'));
    store = await setupE2E(join(dir, 'fixture'));
    socket = join(dir, 'containerd.sock');
    const config = join(dir, 'config.toml');
    writeFileSync(config, [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '',
    ].join('\n'));
    daemon = spawn('containerd', ['--config', config], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      const r = await run('ctr', ['--address', socket, 'version'], { check: false });
      if (r.code === 0) break;
      if (i >= 100) throw new Error(`containerd did not start: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  });
  after(async () => {
    if (daemon && daemon.exitCode === null) {
      const gone = new Promise((res) => daemon!.once('exit', res));
      daemon.kill('SIGTERM');
      await gone;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const c of [
    { name: 'an OCI archive with zstd layers', file: 'zstd-oci.tar', flags: ['--format', 'oci-archive', '--compress', 'zstd'] },
    { name: 'an OCI archive with gzip layers', file: 'gzip-oci.tar', flags: ['--format', 'oci-archive', '--compress', 'gzip'] },
    { name: 'a docker-archive', file: 'image.tar', flags: [] as string[] },
  ]) {
    test(`${c.name}: ctr images import unpacks it (DiffIDs checked) and ctr run prints the fixture's output`, async () => {
      const out = join(dir, c.file);
      await buildImage(store, out, c.flags);
      await ctr(['images', 'import', '--snapshotter', 'native', out]);
      const listed = await ctr(['images', 'ls', '-q']);
      assert.match(listed.stdout, /strata-e2e:1/);
      const id = `t-${c.file.replace(/\W/g, '')}`;
      const r = await ctr(['run', '--snapshotter', 'native', '--rm', 'docker.io/library/strata-e2e:1', id]);
      assert.equal(r.stdout, store.expectedOutput);
      await ctr(['images', 'rm', 'docker.io/library/strata-e2e:1']);
    });
  }
});
