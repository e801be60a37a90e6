import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseClosure, readClosureFile } from '../../src/closure/read.js';
import { closureFromEdges } from '../../src/closure/build-closure.js';
import type { Closure } from '../../src/closure/types.js';
import { StrataError } from '../../src/util/errors.js';
import { tempDir } from '../support/paths.js';

// Hash parts are shortened; strata does not require Nix's 32-character hashes.
const HELLO = '/nix/store/3aaa-hello-2.12';
const GLIBC = '/nix/store/1bbb-glibc-2.39';
const LIBIDN = '/nix/store/2ccc-libidn2-2.3';

/** A plain picture of a closure, to compare against hand-written expectations. */
function summary(c: Closure) {
  return {
    storeDir: c.storeDir,
    roots: c.roots,
    paths: [...c.paths.values()].map((p) => ({ ...p })),
  };
}

/** Asserts fn throws a StrataError whose message contains every fragment. */
function throwsNaming(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof StrataError, `expected a StrataError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} should mention ${JSON.stringify(f)}`);
    return true;
  });
}

// The closure every format below describes: hello -> glibc, libidn2; libidn2 -> glibc;
// glibc and hello refer to themselves.
const EXPECTED = {
  storeDir: '/nix/store',
  roots: [HELLO],
  paths: [
    { path: GLIBC, references: [], narSize: 30000, narHash: 'sha256-GGGG' },
    { path: LIBIDN, references: [GLIBC], narSize: 200, narHash: 'sha256-IIII' },
    { path: HELLO, references: [GLIBC, LIBIDN], narSize: 100, narHash: 'sha256-HHHH' },
  ],
};

test('nix path-info --json (Nix <= 2.18): array of objects with path', () => {
  const input = [
    { path: HELLO, narHash: 'sha256-HHHH', narSize: 100, references: [LIBIDN, HELLO, GLIBC], deriver: '/nix/store/x-hello.drv', registrationTime: 1, valid: true },
    { path: GLIBC, narHash: 'sha256-GGGG', narSize: 30000, references: [GLIBC], closureSize: 30000 },
    { path: LIBIDN, narHash: 'sha256-IIII', narSize: 200, references: [GLIBC], signatures: ['cache.nixos.org-1:xx'] },
  ];
  assert.deepEqual(summary(parseClosure(input, 'c.json')), EXPECTED);
});

test('nix path-info --json (Nix >= 2.19): object keyed by store path', () => {
  const input = {
    [LIBIDN]: { narHash: 'sha256-IIII', narSize: 200, references: [GLIBC], ca: null, deriver: null },
    [HELLO]: { narHash: 'sha256-HHHH', narSize: 100, references: [GLIBC, HELLO, LIBIDN] },
    [GLIBC]: { narHash: 'sha256-GGGG', narSize: 30000, references: [GLIBC] },
  };
  assert.deepEqual(summary(parseClosure(input, 'c.json')), EXPECTED);
});

test('Nix 2.33 --json-format 1 adds version and storeDir inside each object', () => {
  const input = {
    [LIBIDN]: { narHash: 'sha256-IIII', narSize: 200, references: [GLIBC], storeDir: '/nix/store', version: 1 },
    [HELLO]: { narHash: 'sha256-HHHH', narSize: 100, references: [GLIBC, HELLO, LIBIDN], storeDir: '/nix/store', version: 1 },
    [GLIBC]: { narHash: 'sha256-GGGG', narSize: 30000, references: [GLIBC], storeDir: '/nix/store', version: 1 },
  };
  assert.deepEqual(summary(parseClosure(input, 'c.json')), EXPECTED);
});

test('Nix 2.33 --json-format 2: {version, storeDir, info} with base names', () => {
  const input = {
    version: 2,
    storeDir: '/nix/store',
    info: {
      '2ccc-libidn2-2.3': { version: 2, storeDir: '/nix/store', narHash: 'sha256-IIII', narSize: 200, references: ['1bbb-glibc-2.39'], ca: null },
      '3aaa-hello-2.12': { version: 2, narHash: 'sha256-HHHH', narSize: 100, references: ['1bbb-glibc-2.39', '3aaa-hello-2.12', '2ccc-libidn2-2.3'] },
      '1bbb-glibc-2.39': { narHash: 'sha256-GGGG', narSize: 30000, references: ['1bbb-glibc-2.39'], ca: { method: 'nar', hash: 'sha256-x' } },
    },
  };
  assert.deepEqual(summary(parseClosure(input, 'c.json')), EXPECTED);
});

test('versioned path-info uses its own store dir for base names', () => {
  const input = { version: 3, storeDir: '/opt/store', info: { '1aaa-a': { narSize: 5, references: ['2bbb-b'], narHash: null }, '2bbb-b': { narSize: 6, references: [] } } };
  assert.deepEqual(summary(parseClosure(input, 'c.json')), {
    storeDir: '/opt/store',
    roots: ['/opt/store/1aaa-a'],
    paths: [
      { path: '/opt/store/1aaa-a', references: ['/opt/store/2bbb-b'], narSize: 5 },
      { path: '/opt/store/2bbb-b', references: [], narSize: 6 },
    ],
  });
});

test('a structured narHash {algorithm, format, hash} becomes an SRI string', () => {
  const c = parseClosure({ [HELLO]: { narHash: { algorithm: 'sha256', format: 'base64', hash: 'QvtA=' }, narSize: 1, references: [] } }, 'c.json');
  assert.equal(c.paths.get(HELLO)!.narHash, 'sha256-QvtA=');
});

test('a path-info null value (path not in the store) is an error naming the path', () => {
  throwsNaming(() => parseClosure({ [HELLO]: { narSize: 1, references: [GLIBC] }, [GLIBC]: null }, 'c.json'), 'c.json', GLIBC, 'not valid');
  throwsNaming(() => parseClosure({ version: 2, storeDir: '/nix/store', info: { '1bbb-glibc-2.39': null } }, 'c.json'), '1bbb-glibc-2.39', 'not valid');
});

test('Nix 2.3 "valid": false entries are an error naming the path', () => {
  throwsNaming(() => parseClosure([{ path: GLIBC, valid: false }], 'c.json'), GLIBC, 'not valid');
});

const GRAPH = [
  { path: HELLO, references: [GLIBC, HELLO, LIBIDN], narSize: 100, closureSize: 30300, narHash: 'sha256-HHHH' },
  { path: LIBIDN, references: [GLIBC], narSize: 200, closureSize: 30200, narHash: 'sha256-IIII' },
  { path: GLIBC, references: [GLIBC], narSize: 30000, closureSize: 30000, narHash: 'sha256-GGGG' },
];

test('exportReferencesGraph: bare, under "closure", under "graph"', () => {
  assert.deepEqual(summary(parseClosure(GRAPH, 'c.json')), EXPECTED);
  assert.deepEqual(summary(parseClosure({ closure: GRAPH }, 'c.json')), EXPECTED);
  assert.deepEqual(summary(parseClosure({ graph: GRAPH }, 'c.json')), EXPECTED);
});

test('exportReferencesGraph inside a structured-attrs file with other attributes', () => {
  const attrs = { graph: GRAPH, exclude_paths: [], pipeline: [['popularity_contest']], name: 'docker-layers', outputs: { out: '/nix/store/zzz-out' } };
  assert.deepEqual(summary(parseClosure(attrs, '.attrs.json')), EXPECTED);
});

test('exportReferencesGraph entries without narSize/narHash default to 0 / absent', () => {
  const c = parseClosure({ closure: [{ path: HELLO, references: [HELLO] }] }, 'c.json');
  assert.deepEqual(summary(c), { storeDir: '/nix/store', roots: [HELLO], paths: [{ path: HELLO, references: [], narSize: 0 }] });
});

test("strata's own form, with storeDir and roots", () => {
  const input = {
    version: 1,
    storeDir: '/gnu/store',
    roots: ['/gnu/store/2bbb-b', '/gnu/store/1aaa-a'],
    paths: [
      { path: '/gnu/store/2bbb-b', references: ['/gnu/store/3ccc-c', '/gnu/store/2bbb-b'], narSize: 7 },
      { path: '/gnu/store/1aaa-a', references: ['/gnu/store/2bbb-b'], narHash: 'sha256:abc' },
      { path: '/gnu/store/3ccc-c', references: [] },
    ],
  };
  assert.deepEqual(summary(parseClosure(input, 'c.json')), {
    storeDir: '/gnu/store',
    roots: ['/gnu/store/1aaa-a', '/gnu/store/2bbb-b'],
    paths: [
      { path: '/gnu/store/1aaa-a', references: ['/gnu/store/2bbb-b'], narSize: 0, narHash: 'sha256:abc' },
      { path: '/gnu/store/2bbb-b', references: ['/gnu/store/3ccc-c'], narSize: 7 },
      { path: '/gnu/store/3ccc-c', references: [], narSize: 0 },
    ],
  });
});

test('storeDir option applies to inputs that do not declare one', () => {
  const c = parseClosure([{ path: '/s/1aaa-a', references: [] }], 'c.json', { storeDir: '/s' });
  assert.equal(c.storeDir, '/s');
  throwsNaming(() => parseClosure([{ path: '/s/1aaa-a', references: [] }], 'c.json'), '/s/1aaa-a', 'not inside the store directory /nix/store');
});

test('storeDir option disagreeing with the file is an error naming both', () => {
  throwsNaming(() => parseClosure({ version: 1, storeDir: '/gnu/store', paths: [{ path: '/gnu/store/1-a', references: [] }] }, 'c.json', { storeDir: '/nix/store' }),
    'c.json', '/gnu/store', '/nix/store');
  throwsNaming(() => parseClosure({ [HELLO]: { narSize: 1, references: [], storeDir: '/other/store' } }, 'c.json'), 'c.json', '/other/store', HELLO);
});

test('paths iterate in bytewise order (uppercase before lowercase), references sorted bytewise', () => {
  const a = '/nix/store/0000-a';
  const B = '/nix/store/0000-B';
  const z = '/nix/store/zzzz-z';
  const Z = '/nix/store/ZZZZ-Z';
  const c = parseClosure([{ path: z, references: [a, B, Z] }, { path: a, references: [] }, { path: Z, references: [] }, { path: B, references: [] }], 'c.json');
  // Bytes: '0000-B' < '0000-a' ('B' 0x42 < 'a' 0x61); 'ZZZZ' (0x5a) < 'zzzz' (0x7a).
  assert.deepEqual([...c.paths.keys()], [B, a, Z, z]);
  assert.deepEqual(c.paths.get(z)!.references, [B, a, Z]);
});

test('self-references are dropped in every format', () => {
  const forms: unknown[] = [
    [{ path: HELLO, references: [HELLO], narSize: 1 }],
    { [HELLO]: { references: [HELLO], narSize: 1 } },
    { version: 2, storeDir: '/nix/store', info: { '3aaa-hello-2.12': { references: ['3aaa-hello-2.12'], narSize: 1 } } },
    { closure: [{ path: HELLO, references: [HELLO] }] },
    { version: 1, paths: [{ path: HELLO, references: [HELLO] }] },
  ];
  for (const f of forms) {
    const c = parseClosure(f, 'c.json');
    assert.deepEqual(c.paths.get(HELLO)!.references, []);
    assert.deepEqual(c.roots, [HELLO], 'a self-reference must not stop a path being a root');
  }
});

test('roots: every unreferenced path, sorted; or the explicit roots', () => {
  const input = [
    { path: '/nix/store/9-z', references: ['/nix/store/5-m'] },
    { path: '/nix/store/1-a', references: ['/nix/store/5-m'] },
    { path: '/nix/store/5-m', references: [] },
    { path: '/nix/store/7-lonely', references: [] },
  ];
  assert.deepEqual(parseClosure(input, 'c.json').roots, ['/nix/store/1-a', '/nix/store/7-lonely', '/nix/store/9-z']);
  assert.deepEqual(parseClosure(input, 'c.json', { roots: ['/nix/store/9-z', '/nix/store/5-m', '/nix/store/9-z'] }).roots, ['/nix/store/5-m', '/nix/store/9-z']);
  throwsNaming(() => parseClosure(input, 'c.json', { roots: ['/nix/store/8-missing'] }), 'c.json', '/nix/store/8-missing', 'not in the closure');
  throwsNaming(() => parseClosure({ version: 1, roots: ['/nix/store/8-gone'], paths: input }, 'c.json'), '/nix/store/8-gone', 'not in the closure');
});

test('a reference to a path outside the closure names both paths', () => {
  throwsNaming(() => parseClosure([{ path: HELLO, references: [GLIBC] }], 'c.json'), 'c.json', HELLO, GLIBC, 'not in the closure');
});

test('malformed store paths are rejected, naming the path', () => {
  const cases: [string, string][] = [
    ['/usr/lib/1aaa-foo', 'not inside the store directory'],
    ['/nix/store/../etc/passwd', "'..'"],
    ['/nix/store/..', "'..'"],
    ['/nix/store/./1aaa-foo', "'/./'"],
    ['/nix/store/', 'empty name'],
    ['/nix/store/1aaa-foo/bin/sh', 'not directly inside'],
    ['/nix/store/1aaa-foo bar', '" "'],
    ['/nix/store/1aaa-föo', '"ö"'],
    ['/nix/store/1aaa-a:b', '":"'],
    ['/nix/store/.1aaa-foo', "starting with '.'"],
    ['/nix/storeX/1aaa-foo', 'not inside the store directory'],
    ['nix/store/1aaa-foo', 'not inside the store directory'],
  ];
  for (const [bad, why] of cases) {
    throwsNaming(() => parseClosure([{ path: bad, references: [] }], 'c.json'), 'c.json', JSON.stringify(bad), why);
    // ...also when it only appears as a reference
    throwsNaming(() => parseClosure([{ path: HELLO, references: [bad] }], 'c.json'), JSON.stringify(bad), why, HELLO);
  }
  // Every character Nix allows is accepted.
  const ok = '/nix/store/1aaa-AZaz09+-._?=';
  assert.ok(parseClosure([{ path: ok, references: [] }], 'c.json').paths.has(ok));
});

test('duplicate entries: identical ones merge, disagreeing ones name the path and field', () => {
  const same = parseClosure([{ path: HELLO, references: [HELLO], narSize: 5 }, { path: HELLO, references: [], narSize: 5, narHash: 'sha256-h' }], 'c.json');
  assert.deepEqual([...same.paths.values()], [{ path: HELLO, references: [], narSize: 5, narHash: 'sha256-h' }]);
  const base = [{ path: GLIBC, references: [] }];
  throwsNaming(() => parseClosure([...base, { path: HELLO, references: [GLIBC] }, { path: HELLO, references: [] }], 'c.json'), 'c.json', HELLO, 'different references');
  throwsNaming(() => parseClosure([{ path: HELLO, references: [], narSize: 1 }, { path: HELLO, references: [], narSize: 2 }], 'c.json'), HELLO, 'narSize', '1', '2');
  throwsNaming(() => parseClosure([{ path: HELLO, references: [], narHash: 'sha256-a' }, { path: HELLO, references: [], narHash: 'sha256-b' }], 'c.json'), HELLO, 'narHash');
});

test('a reference cycle names its paths in order', () => {
  const [a, b, c, d] = ['/nix/store/1-a', '/nix/store/2-b', '/nix/store/3-c', '/nix/store/4-d'];
  // d -> a -> b -> c -> a: the search starts at a (bytewise first) and meets a again via b, c.
  const input = [
    { path: d, references: [a] },
    { path: c, references: [a, c] },
    { path: b, references: [c] },
    { path: a, references: [b] },
  ];
  throwsNaming(() => parseClosure(input, 'c.json'), 'c.json', `${a} -> ${b} -> ${c} -> ${a}`);
  throwsNaming(() => parseClosure([{ path: a, references: [b] }, { path: b, references: [a] }], 'c.json'), `${a} -> ${b} -> ${a}`);
});

test('an empty closure is an error in every form', () => {
  for (const empty of [[], {}, { closure: [] }, { version: 1, paths: [] }, { version: 2, storeDir: '/nix/store', info: {} }]) {
    throwsNaming(() => parseClosure(empty, 'c.json'), 'c.json', 'empty');
  }
});

test('narSize must be a non-negative integer', () => {
  for (const bad of [-1, 1.5, '12', true, 2 ** 60]) {
    throwsNaming(() => parseClosure([{ path: HELLO, references: [], narSize: bad }], 'c.json'), 'c.json', HELLO, 'narSize', 'non-negative integer');
  }
  assert.equal(parseClosure([{ path: HELLO, references: [], narSize: null }], 'c.json').paths.get(HELLO)!.narSize, 0);
});

test('an unrecognised shape names the file and lists the accepted formats', () => {
  for (const bad of [42, 'hello', null, { foo: 1, bar: 2 }, [1, 2], [{ name: 'x' }]]) {
    throwsNaming(() => parseClosure(bad, 'weird.json'), 'weird.json', 'accepted formats', 'path-info', 'exportReferencesGraph');
  }
  throwsNaming(() => parseClosure({ version: 2, paths: [] }, 'c.json'), 'c.json', 'unsupported strata closure version 2');
  throwsNaming(() => parseClosure([{ path: HELLO }], 'c.json'), HELLO, '"references"');
  throwsNaming(() => parseClosure({ a: [{ path: HELLO, references: [] }], b: [{ path: GLIBC, references: [] }] }, 'c.json'), 'ambiguous', '"a"', '"b"');
});

test('readClosureFile: reads a file; malformed JSON and missing files name the file', async (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'closure.json');
  writeFileSync(good, JSON.stringify(GRAPH));
  assert.deepEqual(summary(await readClosureFile(good)), EXPECTED);

  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"closure": [');
  let parseMessage = '';
  try { JSON.parse('{"closure": ['); } catch (e) { parseMessage = (e as Error).message; }
  await assert.rejects(readClosureFile(bad), (err: Error) => err instanceof StrataError && err.message.includes(bad) && err.message.includes(parseMessage));

  const missing = join(dir, 'nope.json');
  await assert.rejects(readClosureFile(missing), (err: Error) => err instanceof StrataError && err.message.includes(missing));

  const wrongShape = join(dir, 'shape.json');
  writeFileSync(wrongShape, '{"hello": "world", "x": 1}');
  await assert.rejects(readClosureFile(wrongShape), (err: Error) => err instanceof StrataError && err.message.includes(wrongShape) && err.message.includes('accepted formats'));
});

test('closureFromEdges builds and validates like parseClosure', () => {
  const c = closureFromEdges({ [HELLO]: [GLIBC, HELLO], [GLIBC]: [] }, { [HELLO]: 10 });
  assert.deepEqual(summary(c), {
    storeDir: '/nix/store',
    roots: [HELLO],
    paths: [{ path: GLIBC, references: [], narSize: 0 }, { path: HELLO, references: [GLIBC], narSize: 10 }],
  });
  assert.equal(closureFromEdges({ '/s/1-a': [] }, undefined, '/s').storeDir, '/s');
  throwsNaming(() => closureFromEdges({ [HELLO]: [GLIBC] }), HELLO, GLIBC, 'not in the closure');
  throwsNaming(() => closureFromEdges({ [HELLO]: [] }, { [GLIBC]: 3 }), GLIBC);
  throwsNaming(() => closureFromEdges({ [HELLO]: [] }, { [HELLO]: -3 }), HELLO, 'narSize');
});
