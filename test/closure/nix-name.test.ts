import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareVersions,
  highestInRange,
  inRange,
  parseDrvName,
  parseVersionRange,
  storePathName,
} from '../../src/closure/nix-name.js';
import { StrataError } from '../../src/util/errors.js';

/** Asserts fn throws a StrataError whose message contains every fragment. */
function throwsNaming(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof StrataError, `expected a StrataError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} should mention ${JSON.stringify(f)}`);
    return true;
  });
}

/** compareVersions(a, b) is `expected` and compareVersions(b, a) its opposite, as Nix's own test checks. */
function versionTest(a: string, b: string, expected: -1 | 0 | 1): void {
  assert.equal(compareVersions(a, b), expected, `compareVersions(${a}, ${b})`);
  assert.equal(compareVersions(b, a), -expected || 0, `compareVersions(${b}, ${a})`);
}

test('parseDrvName splits at the first dash not followed by a letter', () => {
  const cases: [string, string, string][] = [
    ['openssl-1.1.1k', 'openssl', '1.1.1k'],
    ['curl-8.0.1-bin', 'curl', '8.0.1-bin'],
    ['xgcc-12.3.0-libgcc', 'xgcc', '12.3.0-libgcc'],
    ['hello', 'hello', ''],
    ['gtk+-3.24.38', 'gtk+', '3.24.38'],
    ['apache-httpd-2.0.48', 'apache-httpd', '2.0.48'],
    ['bash-interactive-5.2p26', 'bash-interactive', '5.2p26'],
    ['python3.11-requests-2.31.0', 'python3.11-requests', '2.31.0'],
    ['tzdata-2024a', 'tzdata', '2024a'],
    ['foo-unstable-2023-10-01', 'foo-unstable', '2023-10-01'],
    ['glibc-locales', 'glibc-locales', ''],
    ['trailing-', 'trailing-', ''],
    ['foo--1', 'foo', '-1'],
    // From Nix's tests/lang/eval-okay-versions.nix:
    ['hello-1.0.2', 'hello', '1.0.2'],
    ['915resolution-0.5.2', '915resolution', '0.5.2'],
    ['xf86-video-i810-1.7.4', 'xf86-video-i810', '1.7.4'],
  ];
  for (const [full, name, version] of cases) assert.deepEqual(parseDrvName(full), { name, version }, full);
});

test('storePathName takes the part after the hash', () => {
  assert.equal(storePathName('/nix/store/i47ri27awhf97vii49wzlf792npyffib-demo-hello-1.0'), 'demo-hello-1.0');
  assert.equal(storePathName('/gnu/store/i47ri27awhf97vii49wzlf792npyffib-x-1', '/gnu/store'), 'x-1');
  for (const bad of [
    '/nix/store/i47ri27awhf97vii49wzlf792npyffib', // no name
    '/nix/store/i47ri27awhf97vii49wzlf792npyffib-', // empty name
    '/nix/store/short-hello-1.0', // hash too short
    '/nix/store/e47ri27awhf97vii49wzlf792npyffib-hello', // 'e' is not in Nix's base-32
    '/nix/store/i47ri27awhf97vii49wzlf792npyffib-hello/bin/hello', // inside a store path
    '/nix/store/i47ri27awhf97vii49wzlf792npyffib-.hidden',
    '/tmp/i47ri27awhf97vii49wzlf792npyffib-hello',
    'hello-1.0',
  ]) {
    throwsNaming(() => storePathName(bad), JSON.stringify(bad));
  }
});

test('compareVersions orders the versions strata meets', () => {
  versionTest('1.1.1', '1.1.1k', -1);
  versionTest('1.1.1k', '1.1.1w', -1);
  versionTest('1.1.1', '1.1.1w', -1);
  versionTest('2.39', '2.4', 1);
  versionTest('1.0pre1', '1.0', -1);
  versionTest('2024a', '2024b', -1);
  versionTest('2023', '2024a', -1);
  versionTest('2023c', '2024a', -1);
  versionTest('1.0', '1.0', 0);
  versionTest('1.0', '1-0', 0); // '.' and '-' are both separators
  versionTest('01', '1', 0); // digit runs compare as numbers
  versionTest('2.3', '2.3.0', -1); // an exhausted version is "" and "" < a number
  versionTest('9', '9.0', -1);
  versionTest('8.99', '9', -1);
  versionTest('9pre1', '9', -1);
  versionTest('', '1.0', -1);
  versionTest('', '', 0);
  versionTest('0.9.8zh', '1.0.0', -1);
  versionTest('1.0rc1', '1.0', 1); // only "pre" sorts below the release; rc is a plain word (and a word beats "")
  versionTest('1.0alpha', '1.0beta', -1);
  // A digit run too big for an int is not a number to Nix, so it loses to any number.
  versionTest('99999999999', '1', -1);
});

test('compareVersions agrees with Nix tests/lang/eval-okay-versions.nix', () => {
  versionTest('1.0', '2.3', -1);
  versionTest('2.1', '2.3', -1);
  versionTest('2.3', '2.3', 0);
  versionTest('2.5', '2.3', 1);
  versionTest('3.1', '2.3', 1);
  versionTest('2.3.1', '2.3', 1);
  versionTest('2.3.1', '2.3a', 1);
  versionTest('2.3pre1', '2.3', -1);
  versionTest('2.3pre3', '2.3pre12', -1);
  versionTest('2.3a', '2.3c', -1);
  versionTest('2.3pre1', '2.3c', -1);
  versionTest('2.3pre1', '2.3q', -1);
});

/** Checks which versions a range admits and which it refuses. */
function admits(text: string, inside: string[], outside: string[]): void {
  const range = parseVersionRange(text, 'test');
  for (const v of inside) assert.ok(inRange(v, range), `${v} should be in ${text}`);
  for (const v of outside) assert.ok(!inRange(v, range), `${v} should not be in ${text}`);
}

test('caret ranges stop at the next major, or the next minor below 1', () => {
  admits('^8', ['8', '8.0.1', '8.99', '9pre1'], ['7.99', '9', '9.0', '8pre1']);
  admits('^1.2.3', ['1.2.3', '1.2.3a', '1.9'], ['1.2.2', '2.0']);
  admits('^0.2', ['0.2', '0.2.9'], ['0.1', '0.3', '1.0']);
  admits('^0.0.3', ['0.0.3', '0.0.3.1'], ['0.0.4', '0.1']);
  admits('^0', ['0', '0.9'], ['1']);
  admits('^1.1.1k', ['1.1.1k', '1.1.1w', '1.2'], ['1.1.1', '1.1.1j', '2']);
});

test('tilde ranges stop at the next minor when one is given', () => {
  admits('~1.1', ['1.1', '1.1.1k', '1.1.9'], ['1.0.9', '1.2', '1.2.0']);
  admits('~1', ['1', '1.9'], ['2']);
  admits('~1.1.3', ['1.1.3', '1.1.10'], ['1.1.2', '1.2']);
});

test('comparators are ANDed and ordered by compareVersions, not semver', () => {
  admits('>=2.39 <3', ['2.39', '2.40', '2.100'], ['2.4', '2.38', '3', '3.0']);
  admits('>= 2.39 < 3', ['2.39'], ['2.4', '3']); // a space after the operator is allowed, as in semver
  admits('<9', ['8.99', '9pre1'], ['9', '9.0', '9.1']);
  admits('<=9', ['9'], ['9.0']);
  admits('>1.1.1', ['1.1.1k'], ['1.1.1']);
  admits('>1.1.1k <1.1.1w', ['1.1.1l'], ['1.1.1k', '1.1.1w']);
});

test('exact versions and alternatives', () => {
  admits('=1.1.1k', ['1.1.1k', '1-1-1k'], ['1.1.1', '1.1.1w', '1.1.1k.0']);
  admits('1.1.1k', ['1.1.1k'], ['1.1.1']);
  admits('1.1.1 || 2.0', ['1.1.1', '2.0'], ['1.1.1k', '2', '2.0.0', '1.5']);
  admits('^1 || >=3 <3.2', ['1.5', '3.1'], ['2', '3.2']);
  admits('1.1.1||2.0', ['2.0'], ['1.5']);
});

test('pre-releases and dates', () => {
  admits('>=1.0', ['1.0', '1.0.1'], ['1.0pre1', '1.0pre99']);
  admits('>=1.0pre1 <1.0', ['1.0pre1', '1.0pre12'], ['1.0', '0.9']);
  admits('>=2024a', ['2024a', '2024b', '2025'], ['2023', '2023c', '2024']);
  admits('^2024', ['2024', '2024a', '2024-10-01'], ['2023c', '2025']);
  admits('>=2023-06-01 <2024', ['2023-06-01', '2023-12-31'], ['2023-05-31', '2024-01-01']);
});

test('* and the empty range admit everything', () => {
  for (const text of ['*', '', '   ']) admits(text, ['0', '1.1.1k', '2024a', ''], []);
  admits('* >=2', ['2'], ['1']);
});

test('highestInRange picks the newest by compareVersions', () => {
  const versions = ['1.1.1k', '1.1.1w', '1.1.1', '3.0.13', '3.1.4', '2.39', '2.4'];
  assert.equal(highestInRange(versions, parseVersionRange('~1.1', 'test')), '1.1.1w');
  assert.equal(highestInRange(versions, parseVersionRange('^3', 'test')), '3.1.4');
  assert.equal(highestInRange(versions, parseVersionRange('>=2 <3', 'test')), '2.39');
  assert.equal(highestInRange(versions, parseVersionRange('*', 'test')), '3.1.4');
  assert.equal(highestInRange(versions, parseVersionRange('^4', 'test')), undefined);
  assert.equal(highestInRange([], parseVersionRange('*', 'test')), undefined);
  // Nix-equal spellings: the answer does not depend on input order.
  const any = parseVersionRange('*', 'test');
  assert.equal(highestInRange(['1-0', '1.0'], any), highestInRange(['1.0', '1-0'], any));
});

test('garbage ranges are StrataErrors naming what and the text', () => {
  for (const text of [
    '>=', // no version
    '>= ', // no version
    'latest',
    '>=x',
    '!=1.0',
    '=>1.0',
    '>>1.0',
    '1.x', // semver x-range
    '^1.*',
    '1.0 - 2.0', // semver hyphen range
    '1.0 ||', // empty alternative
    '|| 1.0',
    '1.0 | 2.0',
    '>=1.0,<2.0',
    '^99999999999', // cannot bump a number Nix does not read as a number
  ]) {
    throwsNaming(() => parseVersionRange(text, '--only openssl'), '--only openssl', JSON.stringify(text));
  }
});
