/**
 * Issue 19, part 1: untrusted metadata is never read whole however large it is. A docker-archive
 * manifest.json over 1 MiB, an OCI index.json or config over 4 MiB, and a registry manifest over
 * 4 MiB (declared or streamed) are refused with a message naming them, and the 48 MB manifest.json
 * of the issue costs no more memory than a small one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../support/cli.js';
import { cliPath, tempDir } from '../support/paths.js';
import { ensurePackages } from '../support/tools.js';
import { configJson, hex, sha, storeLayer, writeTar } from '../transports-read/helpers.js';
import { openRegistrySource } from '../../src/transports/registry/index.js';
import { StrataError } from '../../src/util/errors.js';

/** A docker-archive whose manifest.json is padded with whitespace to `size` bytes (valid JSON still). */
async function paddedArchive(dir: string, size: number): Promise<string> {
  const layer = await storeLayer('aaaa-base');
  const cfg = configJson([sha(layer)]);
  const manifest = JSON.stringify([{ Config: `${hex(sha(cfg))}.json`, RepoTags: ['big:1'], Layers: ['l.tar'] }]);
  const file = join(dir, `archive-${size}.tar`);
  await writeTar(file, [
    { name: 'manifest.json', content: manifest + ' '.repeat(Math.max(0, size - manifest.length)) },
    { name: `${hex(sha(cfg))}.json`, content: cfg },
    { name: 'l.tar', content: layer },
  ]);
  return file;
}

/** Peak RSS in MB of `strata ARGS`, from GNU time. */
function peakRss(args: readonly string[]): { mb: number; stderr: string; code: number | null } {
  const r = spawnSync('/usr/bin/time', ['-f', 'RSS %M', process.execPath, cliPath, ...args], { encoding: 'utf8' });
  const m = /RSS (\d+)\s*$/.exec(r.stderr);
  return { mb: m ? Number(m[1]) / 1024 : NaN, stderr: r.stderr, code: r.status };
}

test('a docker-archive manifest.json over 1 MiB is refused unread: the 48 MB one costs what a small one costs', async (t) => {
  await ensurePackages(['time']);
  const dir = tempDir(t);
  const small = await paddedArchive(dir, 1000);
  const big = await paddedArchive(dir, 48_000_000);
  const baseline = peakRss(['inspect', small]);
  assert.equal(baseline.code, 0, baseline.stderr);
  const refused = peakRss(['inspect', big]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /manifest\.json" is 48000000 bytes, more than the 1 MiB/);
  assert.ok(refused.mb < baseline.mb + 40, `peak ${refused.mb.toFixed(0)} MB against ${baseline.mb.toFixed(0)} MB for a small one`);
  const justOver = await paddedArchive(dir, (1 << 20) + 1);
  const r = await runStrata(['inspect', justOver]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /1048577 bytes/);
});

test('an OCI layout with an index.json or a config over 4 MiB is refused, naming it', async (t) => {
  const dir = tempDir(t);
  const layout = join(dir, 'layout');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(layout, 'index.json'), `{"schemaVersion":2,"manifests":[]}${' '.repeat(5 << 20)}`);
  const r = await runStrata(['inspect', `oci:${layout}`]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /index\.json is \d+ bytes, more than the 4 MiB/);

  // A manifest that claims a 5 MiB config: refused from the descriptor, before any read.
  const layer = await storeLayer('bbbb-app');
  const put = (b: Buffer | string) => {
    const bytes = Buffer.from(b);
    writeFileSync(join(layout, 'blobs', 'sha256', hex(sha(bytes))), bytes);
    return { digest: sha(bytes), size: bytes.length };
  };
  const l = put(layer);
  const manifest = put(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('x'), size: 5 << 20 }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l }] }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }] }));
  const c = await runStrata(['inspect', `oci:${layout}`]);
  assert.notEqual(c.code, 0);
  assert.match(c.stderr, /config sha256:[0-9a-f]{64} is 5242880 bytes, more than the 4 MiB/);
});

test('a registry manifest over 4 MiB is refused, whether its size is declared or it just keeps coming', async () => {
  const huge = Buffer.alloc((4 << 20) + 10, 0x20);
  for (const declare of [true, false]) {
    const server = createServer((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end('{}');
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...(declare ? { 'content-length': String(huge.length) } : {}) });
      // Streamed in pieces without a length: the reader must stop at the cap, not at the end.
      for (let i = 0; i < huge.length; i += 1 << 20) res.write(huge.subarray(i, i + (1 << 20)));
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      await assert.rejects(openRegistrySource(`127.0.0.1:${port}/big/app:1`), (e: unknown) => e instanceof StrataError && /the manifest is \d+ bytes, more than the 4 MiB/.test(e.message));
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }
});
