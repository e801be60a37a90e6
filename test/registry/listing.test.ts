/**
 * Tag and catalog listings against a real registry: what package composition resolves versions
 * from. Pages are followed (the registry is asked for small pages here, so there are several).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryClient } from '../../src/transports/registry/client.js';
import { runStrata } from '../support/cli.js';
import { tempDir } from '../support/paths.js';
import { ensureRegistryTools, startRegistry, type StartedRegistry } from '../support/registry.js';

let reg: StartedRegistry;
before(async () => {
  await ensureRegistryTools();
  reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
});

test('listTags lists every tag across pages, and [] for an unknown repository; listRepositories lists the catalog', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'f'), 'x\n');
  const tags = ['1.0', '1.1.1k', '2.39', '2.4'];
  for (const tag of tags) {
    const r = await runStrata(['build', '--add', `${join(dir, 'f')}:/f`, '--push', `${reg.host}/pkgs/curl:${tag}`, '--no-cache', '--arch', 'amd64']);
    assert.equal(r.code, 0, r.stderr);
  }
  const client = new RegistryClient(reg.host, reg.host, 'pkgs/curl');
  // Two tags per page: the Link header must be followed.
  const paged = client as unknown as { listPages(first: string, scope: readonly string[], key: string, what: string): Promise<string[]> };
  assert.deepEqual((await paged.listPages('/v2/pkgs/curl/tags/list?n=2', ['repository:pkgs/curl:pull'], 'tags', 'test')).sort(), [...tags].sort());
  assert.deepEqual((await client.listTags('pkgs/curl')).sort(), [...tags].sort());
  assert.deepEqual(await client.listTags('pkgs/nothing'), []);
  assert.ok((await client.listRepositories()).includes('pkgs/curl'));
});
