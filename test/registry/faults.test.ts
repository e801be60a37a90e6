import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfSignedCert, startRegistry, type StartedRegistry } from '../support/registry.js';
import { skopeo } from '../support/tools.js';
import { makeBigLayer, makeImage, makeLayer, push, type FileLayer } from './fixtures.js';
import {
  openRegistryDestination, openRegistrySource, RegistryClient,
} from '../../src/transports/registry/index.js';
import { StrataError } from '../../src/util/errors.js';

let dir: string;
let small: FileLayer;
let other: FileLayer;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-registry-faults-'));
  small = makeLayer(dir, 'small', { 'hello.txt': 'hello\n' });
  other = makeLayer(dir, 'other', { 'other.txt': 'other\n' });
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function inspectDigest(ref: string): Promise<string | undefined> {
  const r = await skopeo(['inspect', '--tls-verify=false', `docker://${ref}`], { check: false });
  return r.code === 0 ? (JSON.parse(r.stdout) as { Digest: string }).Digest : undefined;
}

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; host: string }> {
  return new Promise((res) => {
    const server = createServer(handler);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      res({ server, host: `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` });
    });
  });
}

test('a registry killed mid-push: clear rejection, the tag keeps the previous image, a retry succeeds', async () => {
  const reg1 = await startRegistry();
  let reg2: StartedRegistry | undefined;
  try {
    const v1 = makeImage([small]);
    await push(`${reg1.host}/app:1`, v1);
    const before = await inspectDigest(`${reg1.host}/app:1`);
    assert.ok(before);

    const big = makeBigLayer(dir, 'killed', 6, 'kill');
    const bytes = readFileSync(big.path);
    const v2 = makeImage([small, big]);
    const dest = await openRegistryDestination(`${reg1.host}/app:1`, { chunkSize: 1024 * 1024, retries: 2, retryBaseMs: 20 });
    await dest.addLayer(small);
    const w = await dest.beginBlob();
    const piece = 256 * 1024;
    let off = 0;
    for (; off < 2 * 1024 * 1024 + piece; off += piece) await w.write(bytes.subarray(off, off + piece));
    reg1.kill();
    await assert.rejects(async () => {
      for (; off < bytes.length; off += piece) await w.write(bytes.subarray(off, off + piece));
      await w.close(big.digest, big.size);
      await dest.commit(v2, []);
    }, (e: unknown) => {
      assert.ok(e instanceof StrataError, `expected a StrataError, got ${String(e)}`);
      assert.match(e.message, new RegExp(`registry ${reg1.host}: .*(connection refused|dropped the connection)`));
      return true;
    });
    await dest.abort();

    reg2 = await startRegistry({ storageDir: reg1.storageDir, port: reg1.port });
    assert.equal(await inspectDigest(`${reg2.host}/app:1`), before, 'the tag must still point at the previous image');
    await push(`${reg2.host}/app:1`, v2);
    const after2 = await inspectDigest(`${reg2.host}/app:1`);
    assert.ok(after2 && after2 !== before);
  } finally {
    await reg2?.stop();
    await reg1.stop();
  }
});

test('429, 5xx and a dropped PATCH are retried; the chunked upload resumes and the push succeeds', async () => {
  const reg = await startRegistry();
  const seen = new Map<string, number>();
  const faults: string[] = [];
  // A proxy in front of the real registry: the first request of each kind fails in its own way.
  const { server, host } = await listen((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const kind = `${req.method} ${/\/blobs\/uploads\//.test(req.url ?? '') ? 'upload' : /\/manifests\//.test(req.url ?? '') ? 'manifest' : /\/blobs\//.test(req.url ?? '') ? 'blob' : 'other'}`;
      const n = (seen.get(kind) ?? 0) + 1;
      seen.set(kind, n);
      if (n === 1 && kind === 'PATCH upload') { faults.push('drop PATCH'); req.socket.destroy(); return; }
      if (n === 1 && kind === 'HEAD blob') { faults.push('429 HEAD'); res.writeHead(429, { 'retry-after': '0' }).end(); return; }
      if (n === 1 && (kind === 'POST upload' || kind === 'PUT manifest' || kind === 'PUT upload')) { faults.push(`503 ${kind}`); res.writeHead(503).end(); return; }
      const up = request({ host: '127.0.0.1', port: reg.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(parts));
    });
  });
  try {
    // The proxy is 127.0.0.1 too, so plain HTTP; the registry builds Locations from the Host header, i.e. the proxy.
    const big = makeBigLayer(dir, 'flaky', 3, 'flaky');
    const image = makeImage([small, big]);
    const stats = await push(`${host}/flaky/app:1`, image, { chunkSize: 1024 * 1024 });
    assert.deepEqual(faults.sort(), ['429 HEAD', '503 POST upload', '503 PUT manifest', '503 PUT upload', 'drop PATCH']);
    assert.ok(stats.retries >= 4, `retries: ${stats.retries}`);
    const r = await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/flaky/app:1`]);
    assert.deepEqual((JSON.parse(r.stdout) as { Layers: string[] }).Layers, [small.digest, big.digest]);
  } finally {
    server.close();
    await reg.stop();
  }
});

test('unknown host, TLS required, TLS expected but absent: clear errors', async () => {
  await assert.rejects(openRegistryDestination('docker://no-such-registry.invalid/app:1', { retries: 0 }),
    /registry no-such-registry\.invalid: .*unknown host: no-such-registry\.invalid does not resolve/);

  const tlsDir = join(dir, 'tls');
  rmSync(tlsDir, { recursive: true, force: true });
  (await import('node:fs')).mkdirSync(tlsDir);
  const reg = await startRegistry({ tls: selfSignedCert(tlsDir) });
  try {
    // localhost is spoken to over plain HTTP; this registry insists on TLS.
    await assert.rejects(openRegistryDestination(`${reg.host}/app:1`), new RegExp(`registry ${reg.host} requires TLS`));
    // Over HTTPS its self-signed certificate is not trusted.
    await assert.rejects(openRegistryDestination(`${reg.host}/app:1`, { requireTls: true, retries: 0 }), /TLS failed \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED|UNABLE_TO_VERIFY)/);
  } finally {
    await reg.stop();
  }
  const plain = await startRegistry();
  try {
    await assert.rejects(openRegistryDestination(`${plain.host}/app:1`, { requireTls: true, retries: 0 }),
      new RegExp(`TLS failed .*if ${plain.host} serves plain HTTP, allow it with --insecure-registry ${plain.host}`));
  } finally {
    await plain.stop();
  }

  assert.match(new RegistryClient('registry.example.com', 'registry.example.com', 'a').baseUrl, /^https:\/\//);
  assert.match(new RegistryClient('registry.example.com:5000', 'registry.example.com:5000', 'a', { insecure: ['registry.example.com:5000'] }).baseUrl, /^http:\/\//);
  assert.match(new RegistryClient('registry.example.com:5000', 'registry.example.com:5000', 'a', { insecure: ['other:5000'] }).baseUrl, /^https:\/\//);
  assert.match(new RegistryClient('[::1]:5000', '[::1]:5000', 'a').baseUrl, /^http:\/\//);
});

test('malformed manifests, wrong config bytes and corrupt layer blobs from a server are named in errors', async () => {
  const config = makeImage([other]);
  const goodManifest = (layerDigest: string, layerSize: number) => Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.configDigest, size: config.configBytes.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layerSize }],
  }));
  const layerBytes = readFileSync(other.path);
  const corrupt = Buffer.from(layerBytes);
  corrupt[corrupt.length - 20] ^= 0xff;
  const { server, host } = await listen((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    const send = (b: Buffer | string, type = 'application/vnd.oci.image.manifest.v1+json') => void res.writeHead(200, { 'content-type': type }).end(b);
    if (url === '/v2/bad/json/manifests/1') return send('{"schemaVersion": 2, "layers": [');
    if (url === '/v2/bad/array/manifests/1') return send('[1,2]');
    if (url === '/v2/bad/layers/manifests/1') return send('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:00","size":1},"layers":[]}');
    if (url === '/v2/bad/schema1/manifests/1') return send('{"schemaVersion":1,"name":"x"}', 'application/vnd.docker.distribution.manifest.v1+prettyjws');
    if (url === '/v2/bad/header/manifests/1') return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': `sha256:${'1'.repeat(64)}` }).end(goodManifest(other.digest, other.size));
    if (/^\/v2\/bad\/(corrupt|config)\/manifests\/1$/.test(url)) return send(goodManifest(other.digest, other.size));
    if (url === `/v2/bad/corrupt/blobs/${config.configDigest}`) return send(config.configBytes, 'application/octet-stream');
    if (url === `/v2/bad/config/blobs/${config.configDigest}`) return send(Buffer.concat([config.configBytes, Buffer.from(' ')]), 'application/octet-stream');
    if (url === `/v2/bad/corrupt/blobs/${other.digest}`) return send(corrupt, 'application/octet-stream');
    res.writeHead(404).end();
  });
  try {
    await assert.rejects(openRegistrySource(`${host}/bad/json:1`), new RegExp(`docker://${host}/bad/json:1: the registry returned a malformed manifest \\(not JSON`));
    await assert.rejects(openRegistrySource(`${host}/bad/array:1`), /malformed manifest \(not a JSON object\)/);
    await assert.rejects(openRegistrySource(`${host}/bad/layers:1`), /manifest "config": digest: "sha256:00" is not a sha256 digest/);
    await assert.rejects(openRegistrySource(`${host}/bad/schema1:1`), /schema 1 manifests are not supported/);
    await assert.rejects(openRegistrySource(`${host}/bad/header:1`), /manifest bytes hash to sha256:[0-9a-f]{64} but the registry says Docker-Content-Digest: sha256:1111/);
    await assert.rejects(openRegistrySource(`${host}/bad/config:1`), new RegExp(`config of docker://${host}/bad/config:1: blob ${config.configDigest} is ${config.configBytes.length + 1} bytes, the manifest says ${config.configBytes.length}`));

    const src = await openRegistrySource(`${host}/bad/corrupt:1`);
    const stream = await src.image.layers[0]!.open();
    await assert.rejects(async () => { for await (const _ of stream) { /* drain */ } },
      new RegExp(`layer 1/1 \\(${other.digest}\\) of docker://${host}/bad/corrupt:1: blob content hashes to sha256:[0-9a-f]{64}, not the ${other.digest}`));
  } finally {
    server.close();
  }
});

test('a layer whose bytes do not match its digest is refused by the registry, naming the layer', async () => {
  const reg = await startRegistry();
  try {
    const liar = { ...small, digest: other.digest, size: small.size };
    const h = createHash('sha256').update(readFileSync(small.path)).digest('hex');
    assert.notEqual(`sha256:${h}`, liar.digest);
    await assert.rejects(push(`${reg.host}/liar:1`, makeImage([liar])), new RegExp(`upload of layer ${other.digest} failed with 400.*DIGEST_INVALID`));
    assert.equal(await inspectDigest(`${reg.host}/liar:1`), undefined, 'no tag after a failed push');
  } finally {
    await reg.stop();
  }
});
