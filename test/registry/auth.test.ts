import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type StartedRegistry } from '../support/registry.js';
import { skopeo } from '../support/tools.js';
import { makeImage, makeLayer, type FileLayer } from './fixtures.js';
import {
  lookupCredentials, newRegistryStats, openRegistryDestination, openRegistrySource, parseWwwAuthenticate, RegistryClient,
  type RegistryOptions,
} from '../../src/transports/registry/index.js';
import { normaliseAuthKey } from '../../src/transports/registry/auth.js';
import type { Image } from '../../src/image/image.js';

let reg: StartedRegistry;
let dir: string;
let layer: FileLayer;
const user = 'strata';
const pass = 's3cret-pw';
const b64 = (s: string) => Buffer.from(s).toString('base64');

before(async () => {
  reg = await startRegistry({ htpasswd: { user, pass } });
  dir = mkdtempSync(join(tmpdir(), 'strata-registry-auth-'));
  layer = makeLayer(dir, 'l', { 'a.txt': 'auth test\n' });
});
after(async () => {
  await reg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function push(ref: string, image: Image, opts: RegistryOptions) {
  const dest = await openRegistryDestination(ref, { retryBaseMs: 20, ...opts, stats: newRegistryStats() });
  for (const l of image.layers) await dest.addLayer(l);
  await dest.commit(image, []);
}

/** An environment with no credentials anywhere but what the test writes. */
function emptyHome(name: string): NodeJS.ProcessEnv {
  const home = join(dir, name);
  mkdirSync(home, { recursive: true });
  return { HOME: home };
}

test('basic auth: explicit credentials push; skopeo reads the image with the same credentials', async () => {
  await push(`${reg.host}/auth/app:1`, makeImage([layer]), { username: user, password: pass, env: emptyHome('h1') });
  const r = await skopeo(['inspect', '--tls-verify=false', '--creds', `${user}:${pass}`, `docker://${reg.host}/auth/app:1`]);
  assert.deepEqual((JSON.parse(r.stdout) as { Layers: string[] }).Layers, [layer.digest]);
  const anon = await skopeo(['inspect', '--tls-verify=false', '--no-creds', `docker://${reg.host}/auth/app:1`], { check: false });
  assert.notEqual(anon.code, 0, 'the registry really requires auth');
});

test('basic auth: credentials from $REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR auth.json and ~/.docker/config.json', async () => {
  const env1 = emptyHome('h2');
  writeFileSync(join(dir, 'auth.json'), JSON.stringify({ auths: { [reg.host]: { auth: b64(`${user}:${pass}`) } } }));
  await push(`${reg.host}/auth/app:2`, makeImage([layer]), { env: { ...env1, REGISTRY_AUTH_FILE: join(dir, 'auth.json') } });

  const env2 = emptyHome('h3');
  const runtime = join(dir, 'run');
  mkdirSync(join(runtime, 'containers'), { recursive: true });
  writeFileSync(join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { [`${reg.host}/auth`]: { auth: b64(`${user}:${pass}`) } } }));
  const src = await openRegistrySource(`${reg.host}/auth/app:2`, { env: { ...env2, XDG_RUNTIME_DIR: runtime } });
  assert.deepEqual(src.image.layers.map((l) => l.digest), [layer.digest]);

  const env3 = emptyHome('h4');
  mkdirSync(join(env3.HOME!, '.docker'));
  writeFileSync(join(env3.HOME!, '.docker', 'config.json'), JSON.stringify({ auths: { [`http://${reg.host}/v1/`]: { auth: b64(`${user}:${pass}`) } } }));
  const src3 = await openRegistrySource(`${reg.host}/auth/app:2`, { env: env3 });
  assert.equal(src3.image.layers.length, 1);
});

test('basic auth: wrong password and missing credentials are clear errors', async () => {
  await assert.rejects(openRegistryDestination(`${reg.host}/auth/app:3`, { username: user, password: 'nope', env: emptyHome('h5') }),
    new RegExp(`registry ${reg.host} rejected the credentials of user "${user}" from the command line \\(401\\)`));
  await assert.rejects(openRegistryDestination(`${reg.host}/auth/app:3`, { env: emptyHome('h6') }),
    new RegExp(`registry ${reg.host} requires authentication and no credentials were found.*podman login ${reg.host}`));
  const env = emptyHome('h7');
  writeFileSync(join(dir, 'bad-auth.json'), JSON.stringify({ auths: { [reg.host]: { auth: b64(`${user}:wrong`) } } }));
  await assert.rejects(openRegistrySource(`${reg.host}/auth/app:1`, { env: { ...env, REGISTRY_AUTH_FILE: join(dir, 'bad-auth.json') } }),
    new RegExp(`rejected the credentials of user "${user}" from .*bad-auth\\.json \\(entry ${reg.host.replace(/\./g, '\\.')}\\)`));
});

test('credential lookup: flags beat files, the most specific entry wins, docker.io keys are normalised', () => {
  const home = join(dir, 'lookup');
  mkdirSync(join(home, '.docker'), { recursive: true });
  writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: {
    'https://index.docker.io/v1/': { auth: b64('hub:hubpw') },
    'r.example.com': { auth: b64('host:hostpw') },
    'r.example.com/team': { username: 'team', password: 'teampw' },
    'empty.example.com': {},
  } }));
  const env = { HOME: home };
  assert.equal(lookupCredentials('docker.io', 'library/alpine', { env })?.username, 'hub');
  assert.equal(lookupCredentials('r.example.com', 'team/app', { env })?.username, 'team');
  assert.equal(lookupCredentials('r.example.com', 'other/app', { env })?.username, 'host');
  assert.equal(lookupCredentials('empty.example.com', 'x', { env }), undefined);
  assert.equal(lookupCredentials('none.example.com', 'x', { env }), undefined);
  assert.equal(lookupCredentials('r.example.com', 'team/app', { env, username: 'flag', password: 'f' })?.username, 'flag');
  assert.throws(() => lookupCredentials('r', 'x', { env, username: 'only-user' }), /both a user name and a password/);
  writeFileSync(join(dir, 'broken.json'), '{not json');
  assert.throws(() => lookupCredentials('r', 'x', { env: { ...env, REGISTRY_AUTH_FILE: join(dir, 'broken.json') } }), /auth file .*broken\.json is not valid JSON/);
  assert.equal(normaliseAuthKey('https://index.docker.io/v1/'), 'docker.io');
  assert.equal(normaliseAuthKey('http://localhost:5000/'), 'localhost:5000');
});

test('WWW-Authenticate parsing: schemes, quoted values with commas and escapes, several challenges', () => {
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull,push' } },
  ]);
  assert.deepEqual(parseWwwAuthenticate('Basic realm="basic-realm"'), [{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
  assert.deepEqual(parseWwwAuthenticate('Basic realm="a \\"q\\"", Bearer realm=https://x/t, error=insufficient_scope'), [
    { scheme: 'basic', params: { realm: 'a "q"' } },
    { scheme: 'bearer', params: { realm: 'https://x/t', error: 'insufficient_scope' } },
  ]);
});

test('bearer token flow: token fetched with basic credentials per scope, cached, refreshed on 401', async () => {
  const tokenRequests: { scope: string[]; auth: string | undefined; service: string | null }[] = [];
  let validToken = 'tok-1';
  let serverHost = '';
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${serverHost}`);
    if (url.pathname === '/token') {
      tokenRequests.push({ scope: url.searchParams.getAll('scope'), auth: req.headers.authorization, service: url.searchParams.get('service') });
      if (req.headers.authorization !== `Basic ${b64('bob:pw')}`) return void res.writeHead(401).end();
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: validToken, expires_in: 300 }));
    }
    if (req.headers.authorization !== `Bearer ${validToken}`) {
      return void res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${serverHost}/token",service="fake-registry"` }).end();
    }
    if (url.pathname === '/v2/') return void res.writeHead(200).end();
    if (url.pathname.startsWith('/v2/team/app/blobs/')) return void res.writeHead(404).end();
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  serverHost = `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  try {
    const client = new RegistryClient(serverHost, serverHost, 'team/app', { username: 'bob', password: 'pw', env: emptyHome('h8') });
    const d = `sha256:${'a'.repeat(64)}` as const;
    assert.equal(await client.headBlob('team/app', d), undefined);
    assert.equal(await client.headBlob('team/app', d), undefined);
    assert.equal(tokenRequests.length, 1, 'the token is cached per scope');
    assert.deepEqual(tokenRequests[0], { scope: ['repository:team/app:pull'], auth: `Basic ${b64('bob:pw')}`, service: 'fake-registry' });
    validToken = 'tok-2'; // the registry revokes the old token: a 401 makes the client fetch a new one
    assert.equal(await client.headBlob('team/app', d), undefined);
    assert.equal(tokenRequests.length, 2);

    const bad = new RegistryClient(serverHost, serverHost, 'team/app', { username: 'bob', password: 'wrong', env: emptyHome('h9') });
    await assert.rejects(bad.headBlob('team/app', d), /rejected the credentials of user "bob" .*token service http:\/\/127\.0\.0\.1:\d+\/token answered 401/);
  } finally {
    server.close();
  }
});
