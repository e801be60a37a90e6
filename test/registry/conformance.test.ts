/**
 * Issue 19, part 3: what the distribution spec's conformance suite expects of a client, against a
 * fake registry that answers each way: a relative Location resolved against the request it came
 * with, the newest one used; 202 per chunk and 201 at the end; a 416 resumed by asking the
 * upload's range; a mount answered with 202 falling back to an upload (the session cancelled);
 * the token for a mount scoped `pull` on the source repository; and a blob redirect to another
 * host followed without the Authorization header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { RegistryClient } from '../../src/transports/registry/index.js';

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

function serve(handler: Handler): Promise<{ server: Server; host: string }> {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => handler(req, Buffer.concat(parts), res));
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, host: `127.0.0.1:${(server.address() as { port: number }).port}` }));
  });
}

async function closeAll(...servers: Server[]): Promise<void> {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
}

interface Seen { method: string; url: string; auth?: string }

test('uploads: relative Locations resolved against their request, newest wins; 202 per chunk, 201 at the end; a 416 resumed from the range the registry reports', async () => {
  const seen: Seen[] = [];
  const received: Buffer[] = [];
  let state = 0;
  let refused416 = false;
  const { server, host } = await serve((req, body, res) => {
    seen.push({ method: req.method!, url: req.url! });
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
    if (req.method === 'POST' && url.pathname === '/v2/app/blobs/uploads/') return void res.writeHead(202, { location: `session?_state=${state}` }).end();
    if (url.pathname === '/v2/app/blobs/uploads/session') {
      // Every answer hands out a new state; an old one is refused, as distribution does.
      if (url.searchParams.get('_state') !== String(state)) return void res.writeHead(400).end('stale state');
      const have = received.reduce((n, b) => n + b.length, 0);
      if (req.method === 'GET') return void res.writeHead(204, { range: `0-${Math.max(0, have - 1)}`, location: `session?_state=${++state}` }).end();
      if (req.method === 'PATCH') {
        if (!refused416 && have > 0) {
          // The registry took the first two bytes of this chunk and then refused the range: the
          // client must ask how much it holds, and send only the rest.
          refused416 = true;
          received.push(body.subarray(0, 2));
          return void res.writeHead(416).end();
        }
        const from = Number(/^(\d+)-/.exec(req.headers['content-range'] ?? '')?.[1]);
        assert.equal(from, have, 'each chunk starts where the registry is');
        received.push(body);
        return void res.writeHead(202, { location: `/v2/app/blobs/uploads/session?_state=${++state}`, range: `0-${have + body.length - 1}` }).end();
      }
      if (req.method === 'PUT') {
        const all = Buffer.concat(received);
        const digest = `sha256:${createHash('sha256').update(all).digest('hex')}`;
        return void res.writeHead(url.searchParams.get('digest') === digest ? 201 : 400).end();
      }
    }
    res.writeHead(404).end();
  });
  try {
    const client = new RegistryClient(host, host, 'app', { retries: 2, retryBaseMs: 1 });
    const upload = await client.startUpload('app');
    const a = Buffer.from('hello, ');
    const b = Buffer.from('world');
    await upload.patch(a, 'blob');
    await upload.patch(b, 'blob');
    await upload.finish(`sha256:${createHash('sha256').update(Buffer.concat([a, b])).digest('hex')}`, undefined, 'blob');
    assert.ok(refused416, 'the 416 was answered');
    assert.deepEqual(Buffer.concat(received).toString(), 'hello, world');
    assert.ok(seen.some((s) => s.method === 'GET' && s.url.startsWith('/v2/app/blobs/uploads/session')), 'the status was asked for after the 416');
  } finally {
    await closeAll(server);
  }
});

test('a mount answered with 202 falls back (the session cancelled); its token asks pull on the source repository', async () => {
  const seen: Seen[] = [];
  const scopes: string[][] = [];
  const { server, host } = await serve((req, _body, res) => {
    const url = new URL(req.url!, 'http://x');
    seen.push({ method: req.method!, url: req.url!, ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    if (url.pathname === '/token') {
      scopes.push(url.searchParams.getAll('scope'));
      return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"T"}');
    }
    if (req.headers.authorization !== 'Bearer T') return void res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="fake"` }).end();
    if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
    if (req.method === 'POST' && url.searchParams.has('mount')) return void res.writeHead(202, { location: 'abc?_state=1' }).end();
    if (req.method === 'DELETE') return void res.writeHead(204).end();
    res.writeHead(404).end();
  });
  try {
    const client = new RegistryClient(host, host, 'app', { retries: 0 });
    assert.equal(await client.mountBlob('app', `sha256:${'a'.repeat(64)}`, 'other/base'), false);
    assert.ok(seen.some((s) => s.method === 'DELETE' && s.url.startsWith('/v2/app/blobs/uploads/abc')), 'the session the 202 opened is cancelled, at the resolved Location');
    assert.ok(scopes.some((s) => s.includes('repository:other/base:pull') && s.some((x) => /^repository:app:(pull,push|push,pull)$/.test(x))), JSON.stringify(scopes));
  } finally {
    await closeAll(server);
  }
});

test('a blob redirect to another host is followed without the Authorization header', async () => {
  const blob = Buffer.from('layer bytes');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  let storeAuth: string | undefined = 'unset';
  const store = await serve((req, _body, res) => {
    storeAuth = req.headers.authorization;
    res.writeHead(200, { 'content-length': String(blob.length) }).end(blob);
  });
  const registryAuth: (string | undefined)[] = [];
  const { server, host } = await serve((req, _body, res) => {
    if (req.url?.startsWith('/token')) return void res.writeHead(200).end('{"token":"T"}');
    if (req.headers.authorization !== 'Bearer T') return void res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token"` }).end();
    registryAuth.push(req.headers.authorization);
    if (req.url === '/v2/') return void res.writeHead(200).end('{}');
    res.writeHead(307, { location: `http://${store.host}/blobs/${digest}?sig=xyz` }).end();
  });
  try {
    const client = new RegistryClient(host, host, 'app', { retries: 0 });
    const chunks: Buffer[] = [];
    for await (const c of await client.getBlob('app', digest as `sha256:${string}`, blob.length, 'the blob')) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), blob);
    assert.ok(registryAuth.includes('Bearer T'), 'the registry got the token');
    assert.equal(storeAuth, undefined, 'the other host did not');
  } finally {
    await closeAll(server, store.server);
  }
});
