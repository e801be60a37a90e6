/**
 * Push benchmark: a large image to a local distribution registry (docker-registry on 127.0.0.1).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/push.js      (STRATA_BENCH_PUSH_MB=512 by default)
 *
 * Cases, each printed as seconds and MB/s over the image's blob bytes:
 *   - cold:     fresh registry, every layer uploaded (chunked PATCHes from the layer files);
 *   - warm:     the same image again: HEADs only, zero blob bytes;
 *   - streamed: the layers written through beginBlob() into a new repository (the build path,
 *               where layers are uploaded while they are produced; nothing is skipped);
 *   - spool cold/warm: beginBlob() with blobWrites 'spool' (temp file, then HEAD/upload) into a
 *               new repository, then again: the rebuilt-but-unchanged case costs HEADs only;
 *   - rebuilt:  the build path of a cached, unchanged image (produceLayers): each layer's digest is
 *               known from the cache record, so the registry is asked first (hasBlob) and nothing
 *               is read or written for a layer it has;
 *   - mount:    the image into another repository with mountFrom: cross-repository mounts.
 * Then each re-push as a ratio to the cold push of the same run.
 * Layers are incompressible pseudo-random tars, so the numbers are transfer, not compression.
 * Timings are printed, never asserted.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync, writeSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Digest } from '../src/image/digest.js';
import type { Layer } from '../src/image/layer.js';
import { makeImage } from '../test/registry/fixtures.js';
import { startRegistry } from '../test/support/registry.js';
import { newRegistryStats, openRegistryDestination, type RegistryStats } from '../src/transports/registry/index.js';

const TOTAL_MB = Number(process.env.STRATA_BENCH_PUSH_MB ?? 512);
const LAYERS = Number(process.env.STRATA_BENCH_PUSH_LAYERS ?? 8);

/** Writes a single-file tar of `bytes` pseudo-random bytes, hashing as it goes (one pass, 1 MiB buffers). */
function writeLayer(path: string, bytes: number, seed: number): Layer {
  const fd = openSync(path, 'w');
  const hash = createHash('sha256');
  const put = (b: Buffer) => { writeSync(fd, b); hash.update(b); };
  const header = Buffer.alloc(512);
  const field = (s: string, off: number, len: number) => header.write(s, off, len, 'ascii');
  field(`blob-${seed}.bin`, 0, 100);
  field('0000644\0', 100, 8); field('0000000\0', 108, 8); field('0000000\0', 116, 8);
  field(`${bytes.toString(8).padStart(11, '0')}\0`, 124, 12); field('00000000001\0', 136, 12);
  header.fill(' ', 148, 156); field('0', 156, 1); field('ustar\0', 257, 6); field('00', 263, 2);
  let sum = 0;
  for (const b of header) sum += b;
  field(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  put(header);
  // AES-128-CTR keystream over zeros: deterministic per seed, incompressible, and fast.
  const key = createHash('sha256').update(`bench-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let left = bytes; left > 0;) {
    const n = Math.min(left, zeros.length);
    put(cipher.update(zeros.subarray(0, n)));
    left -= n;
  }
  put(Buffer.alloc((512 - (bytes % 512)) % 512 + 1024));
  closeSync(fd);
  const digest = `sha256:${hash.digest('hex')}` as Digest;
  return { diffId: digest, digest, size: statSync(path).size, mediaType: 'application/vnd.oci.image.layer.v1.tar', compression: 'none',
    open: async (): Promise<Readable> => createReadStream(path, { highWaterMark: 1024 * 1024 }) };
}

function line(name: string, seconds: number, bytes: number, stats: RegistryStats): number {
  const mb = bytes / 1e6;
  console.log(`${name.padEnd(11)} ${seconds.toFixed(2).padStart(7)} s  ${(mb / seconds).toFixed(1).padStart(8)} MB/s  ` +
    `uploaded ${(stats.blobBytesUploaded / 1e6).toFixed(1)} MB, ${stats.blobsUploaded} blobs up, ${stats.blobsSkipped} skipped, ${stats.blobsMounted} mounted, ${stats.requests} requests`);
  return seconds;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-push-'));
  const reg = await startRegistry();
  try {
    const per = Math.floor((TOTAL_MB * 1024 * 1024) / LAYERS);
    const layers = Array.from({ length: LAYERS }, (_, i) => writeLayer(join(dir, `layer${i}.tar`), per, i));
    const image = makeImage(layers);
    const total = layers.reduce((n, l) => n + l.size, 0) + image.configBytes.length;
    console.log(`image: ${LAYERS} layers, ${(total / 1e6).toFixed(1)} MB, registry ${reg.host} (distribution, filesystem storage)`);

    const push = async (name: string, ref: string, how: 'addLayer' | 'stream' | 'spool' | 'rebuilt', mountFrom?: string[], parallel = 1): Promise<number> => {
      const stats = newRegistryStats();
      const t0 = process.hrtime.bigint();
      const dest = await openRegistryDestination(ref, { stats, ...(mountFrom ? { mountFrom } : {}), ...(how === 'spool' ? { blobWrites: 'spool' as const } : {}) });
      const one = async (l: Layer) => {
        if (how === 'addLayer') return dest.addLayer(l);
        if (how === 'rebuilt' && (await dest.hasBlob!(l.digest, l.size))) return;
        const w = await dest.beginBlob(l.size);
        for await (const c of await l.open()) await w.write(c as Buffer);
        await w.close(l.digest, l.size);
      };
      // `parallel` workers take layers in order: what a builder producing several layers at once does.
      let next = 0;
      await Promise.all(Array.from({ length: parallel }, async () => { while (next < layers.length) await one(layers[next++]!); }));
      await dest.commit(image, []);
      return line(name, Number(process.hrtime.bigint() - t0) / 1e9, total, stats);
    };
    const cold = await push('cold', `${reg.host}/bench/app:cold`, 'addLayer');
    await push('cold x4', `${reg.host}/bench/app4:cold`, 'addLayer', undefined, 4);
    const warm = await push('warm', `${reg.host}/bench/app:warm`, 'addLayer');
    await push('streamed', `${reg.host}/bench/streamed:1`, 'stream');
    await push('stream x4', `${reg.host}/bench/streamed4:1`, 'stream', undefined, 4);
    await push('spool cold', `${reg.host}/bench/spooled:1`, 'spool');
    const spoolWarm = await push('spool warm', `${reg.host}/bench/spooled:2`, 'spool');
    const rebuilt = await push('rebuilt', `${reg.host}/bench/spooled:3`, 'rebuilt');
    const mount = await push('mount', `${reg.host}/bench/mounted:1`, 'addLayer', ['bench/app']);
    const ratio = (s: number) => `${(s / cold).toFixed(3)}×`;
    console.log(`re-push / cold push: warm ${ratio(warm)}, spool warm ${ratio(spoolWarm)}, rebuilt (cache + HEAD) ${ratio(rebuilt)}, mount ${ratio(mount)}`);
  } finally {
    await reg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
