import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReference, isLoopbackHost, parseRegistryReference } from '../../src/transports/registry/index.js';

const D = `sha256:${'0123456789abcdef'.repeat(4)}`;

test('references normalise like docker: Docker Hub, library/, latest, ports, digests', () => {
  const cases: [string, object][] = [
    ['alpine', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['docker://alpine:3.19', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/alpine', tag: '3.19' }],
    ['team/app:1.4', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'team/app', tag: '1.4' }],
    ['docker.io/alpine', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['index.docker.io/team/app', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'team/app', tag: 'latest' }],
    ['localhost/app', { registry: 'localhost', apiHost: 'localhost', repository: 'app', tag: 'latest' }],
    ['docker://localhost:5000/team/app:1.4', { registry: 'localhost:5000', apiHost: 'localhost:5000', repository: 'team/app', tag: '1.4' }],
    ['registry.example.com/team/sub/app', { registry: 'registry.example.com', apiHost: 'registry.example.com', repository: 'team/sub/app', tag: 'latest' }],
    [`127.0.0.1:5000/app@${D}`, { registry: '127.0.0.1:5000', apiHost: '127.0.0.1:5000', repository: 'app', digest: D }],
    [`h.io/app:1@${D}`, { registry: 'h.io', apiHost: 'h.io', repository: 'app', tag: '1', digest: D }],
    ['[::1]:5000/a_b__c-d.e', { registry: '[::1]:5000', apiHost: '[::1]:5000', repository: 'a_b__c-d.e', tag: 'latest' }],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseRegistryReference(input), want, input);
  assert.equal(formatReference(parseRegistryReference('alpine')), 'docker.io/library/alpine:latest');
});

test('invalid references name the part that is wrong', () => {
  assert.throws(() => parseRegistryReference('oci:./dir:tag'), /invalid registry reference "oci:\.\/dir:tag"/);
  assert.throws(() => parseRegistryReference('docker-archive://x'), /only the docker:\/\/ transport/);
  assert.throws(() => parseRegistryReference('h.io/App:1'), /repository component "App" must be lowercase/);
  assert.throws(() => parseRegistryReference('h.io/app:-x'), /tag "-x" must be/);
  assert.throws(() => parseRegistryReference('h.io/app@sha256:abc'), /"sha256:abc" is not a sha256 digest/);
  assert.throws(() => parseRegistryReference('h.io/'), /repository name is missing/);
  assert.throws(() => parseRegistryReference('h.io/a//b'), /repository component "" must be/);
  assert.throws(() => parseRegistryReference(''), /it is empty/);
});

test('loopback hosts are the only ones allowed plain HTTP by default', () => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1:1234', '[::1]:5000']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['127.0.0.2:5000', 'localhost.example.com', 'registry.example.com:5000', '[::2]:5000']) assert.ok(!isLoopbackHost(h), h);
});
