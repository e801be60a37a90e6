import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  choosePlatform,
  formatPlatform,
  isAttestation,
  matchesPlatform,
  normalizePlatform,
  parsePlatform,
  samePlatform,
  wantedVariants,
  type Platform,
} from '../../src/image/platform.js';
import { StrataError } from '../../src/util/errors.js';

const P = (s: string): Platform => parsePlatform(s, 'test');

// Ported from podman-container-tools/container-libs image/internal/pkg/platform/platform_matcher_test.go,
// TestWantedPlatforms (ArchitectureChoice/OSChoice/VariantChoice → expected variants, in order).
test('wantedVariants mirrors containers/image WantedPlatforms, in order', () => {
  const cases: Array<[Platform, string[]]> = [
    [{ os: 'linux', architecture: 'amd64' }, ['']], // amd64 without variant accepts baseline only
    [{ os: 'linux', architecture: 'amd64', variant: 'v3' }, ['v3', 'v2', '']], // walks down from the requested level
    [{ os: 'linux', architecture: 'amd64', variant: 'v2' }, ['v2', '']],
    [{ os: 'linux', architecture: 'amd64', variant: 'v1' }, ['']], // v1 is the canonical baseline
    [{ os: 'linux', architecture: 'arm', variant: 'v6' }, ['v6', 'v5', '']],
    [{ os: 'linux', architecture: 'arm' }, ['', 'v8', 'v7', 'v6', 'v5']],
    [{ os: 'linux', architecture: 'arm64' }, ['', 'v8']], // arm64 has a base variant
    [{ os: 'freeBSD', architecture: 'armel', variant: 'custom' }, ['custom', '']], // unrecognised data
    // Beyond the Go table, same code paths:
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, ['v8', '']],
    [{ os: 'linux', architecture: 'arm64', variant: 'v9' }, ['v9', '']],
    [{ os: 'linux', architecture: 'arm', variant: 'v7' }, ['v7', 'v6', 'v5', '']],
    [{ os: 'linux', architecture: 'arm', variant: 'v8' }, ['v8', 'v7', 'v6', 'v5', '']],
    [{ os: 'linux', architecture: 'amd64', variant: 'v4' }, ['v4', 'v3', 'v2', '']],
    [{ os: 'linux', architecture: 'riscv64' }, ['']],
    [{ os: 'linux', architecture: 'arm', variant: '' }, ['', 'v8', 'v7', 'v6', 'v5']], // '' is no variant
  ];
  for (const [want, expected] of cases) assert.deepEqual(wantedVariants(want), expected, formatPlatform(want));
});

// Ported from the same file, TestMatchesPlatform (image, wanted, expected).
test('matchesPlatform mirrors containers/image MatchesPlatform', () => {
  const cases: Array<[string, Platform | undefined, Platform, boolean]> = [
    ['exact match', P('linux/amd64/v3'), P('linux/amd64/v3'), true],
    ['amd64 v1 matches empty variant', P('linux/amd64/v1'), P('linux/amd64'), true],
    ['amd64 empty variant matches v1', P('linux/amd64'), P('linux/amd64/v1'), true],
    ['amd64 v3 does not match v2', P('linux/amd64/v3'), P('linux/amd64/v2'), false],
    ['arm v1 normalization does not apply', P('linux/arm/v1'), P('linux/arm'), false],
    ['different OS does not match', P('windows/amd64'), P('linux/amd64'), false],
    // Our extension: the whole candidate list, and no normalisation of the image side.
    ['a less capable arm variant fits', P('linux/arm/v5'), P('linux/arm/v7'), true],
    ['a more capable arm variant does not', P('linux/arm/v8'), P('linux/arm/v7'), false],
    ['amd64/v3 is not picked for plain amd64', P('linux/amd64/v3'), P('linux/amd64'), false],
    ['an unlabelled arm64 fits arm64/v8', P('linux/arm64'), P('linux/arm64/v8'), true],
    ['index entries are not normalised', { os: 'linux', architecture: 'aarch64' }, P('linux/arm64'), false],
    ['os.version is ignored', P('windows/amd64:10.0.17763'), P('windows/amd64:10.0.20348'), true],
    ['a missing platform matches nothing', undefined, P('linux/amd64'), false],
  ];
  for (const [name, have, want, expected] of cases) assert.equal(matchesPlatform(have, want), expected, name);
});

interface Entry {
  id: string;
  platform?: Platform;
  annotations?: Record<string, string>;
}
const pick = (entries: Entry[], want: string): string | undefined =>
  choosePlatform(entries, P(want), (e) => e.platform, (e) => e.annotations)?.id;
const entry = (id: string, platform?: string, annotations?: Record<string, string>): Entry => ({
  id,
  ...(platform ? { platform: P(platform) } : {}),
  ...(annotations ? { annotations } : {}),
});

test('choosePlatform follows the candidate order, not the index order', () => {
  // Each index lists the candidates in the reverse of wantedVariants order, so picking by index
  // order (or by any other candidate order) gives a different answer.
  const arm = [entry('v5', 'linux/arm/v5'), entry('v6', 'linux/arm/v6'), entry('v7', 'linux/arm/v7'), entry('v8', 'linux/arm/v8'), entry('none', 'linux/arm')];
  assert.equal(pick(arm, 'linux/arm'), 'none');
  assert.equal(pick(arm.slice(0, 4), 'linux/arm'), 'v8');
  assert.equal(pick(arm.slice(0, 3), 'linux/arm'), 'v7');
  assert.equal(pick(arm.slice(0, 2), 'linux/arm'), 'v6');
  assert.equal(pick(arm, 'linux/arm/v7'), 'v7');
  assert.equal(pick(arm, 'linux/arm/v6'), 'v6');
  assert.equal(pick([entry('none', 'linux/arm'), entry('v5', 'linux/arm/v5')], 'linux/arm/v6'), 'v5'); // '' comes after known variants
  assert.equal(pick([entry('v8', 'linux/arm64/v8'), entry('none', 'linux/arm64')], 'linux/arm64'), 'none');
  assert.equal(pick([entry('none', 'linux/arm64'), entry('v8', 'linux/arm64/v8')], 'linux/arm64/v8'), 'v8');
  assert.equal(pick([entry('v2', 'linux/amd64/v2'), entry('v3', 'linux/amd64/v3'), entry('base', 'linux/amd64')], 'linux/amd64/v3'), 'v3');
  assert.equal(pick([entry('base', 'linux/amd64'), entry('v2', 'linux/amd64/v2')], 'linux/amd64/v3'), 'v2');
});

test('choosePlatform: strict equality, no match, platform-less last resort', () => {
  // amd64 variants beyond the baseline are never picked for plain amd64 (design notes §9).
  assert.equal(pick([entry('v3', 'linux/amd64/v3')], 'linux/amd64'), undefined);
  assert.equal(pick([entry('v1', 'linux/amd64/v1')], 'linux/amd64'), 'v1');
  assert.equal(pick([{ id: 'x', platform: { os: 'linux', architecture: 'x86_64' } }], 'linux/amd64'), undefined);
  assert.equal(pick([entry('win', 'windows/amd64'), entry('s390x', 'linux/s390x')], 'linux/amd64'), undefined);
  assert.equal(pick([], 'linux/amd64'), undefined);
  const withBare = [entry('bare'), entry('v5', 'linux/arm/v5'), entry('other', 'linux/amd64')];
  assert.equal(pick(withBare, 'linux/arm'), 'v5'); // even the last candidate beats no platform
  assert.equal(pick(withBare, 'linux/ppc64le'), 'bare');
  assert.equal(pick([entry('bare1'), entry('bare2')], 'linux/amd64'), 'bare1');
});

test('choosePlatform ties: zstd, then zstd:chunked sentinel, then the earliest', () => {
  const zstd = { 'io.github.containers.compression.zstd': 'true' };
  const sentinel = { ...zstd, 'io.github.containers.zstd-chunked.sentinel': 'true' };
  assert.equal(pick([entry('gzip', 'linux/amd64'), entry('zstd', 'linux/amd64', zstd)], 'linux/amd64'), 'zstd');
  assert.equal(pick([entry('zstd', 'linux/amd64', zstd), entry('gzip', 'linux/amd64')], 'linux/amd64'), 'zstd');
  assert.equal(pick([entry('zstd', 'linux/amd64', zstd), entry('chunked', 'linux/amd64', sentinel)], 'linux/amd64'), 'chunked');
  // The annotation must be exactly "true".
  assert.equal(pick([entry('gzip', 'linux/amd64'), entry('no', 'linux/amd64', { 'io.github.containers.compression.zstd': 'false' })], 'linux/amd64'), 'gzip');
  // The platform rank comes before compression.
  assert.equal(pick([entry('zstd-v8', 'linux/arm64/v8', zstd), entry('gzip-bare', 'linux/arm64')], 'linux/arm64'), 'gzip-bare');
  assert.equal(pick([entry('first', 'linux/amd64'), entry('second', 'linux/amd64')], 'linux/amd64'), 'first');
  assert.equal(pick([entry('bare-gzip'), entry('bare-zstd', undefined, zstd)], 'linux/amd64'), 'bare-zstd');
  // Without annotationsOf, the earliest wins.
  const es = [entry('gzip', 'linux/amd64'), entry('zstd', 'linux/amd64', zstd)];
  assert.equal(choosePlatform(es, P('linux/amd64'), (e) => e.platform)?.id, 'gzip');
});

test('parsePlatform accepts OS/ARCH[/VARIANT] and os.version/features', () => {
  assert.deepEqual(P('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(P('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(P('Linux/ARM64/V8'), { os: 'linux', architecture: 'arm64', variant: 'v8' }); // lowercased as containerd does
  assert.deepEqual(P('linux/x86_64'), { os: 'linux', architecture: 'x86_64' }); // aliases are left for normalizePlatform
  assert.deepEqual(P('windows/amd64:10.0.17763.1234'), { os: 'windows', architecture: 'amd64', osVersion: '10.0.17763.1234' });
  assert.deepEqual(P('windows/amd64,osver=10.0.17763'), { os: 'windows', architecture: 'amd64', osVersion: '10.0.17763' });
  assert.deepEqual(P('windows/amd64,osver=10.0.17763,osfeatures=win32k;foo'), {
    os: 'windows',
    architecture: 'amd64',
    osVersion: '10.0.17763',
    osFeatures: ['win32k', 'foo'],
  });
});

test('parsePlatform errors name the flag and the input', () => {
  const bad: Array<[string, RegExp]> = [
    ['linux', /^--platform "linux": expected OS\/ARCH\[\/VARIANT\]$/],
    ['', /^--platform "": expected OS\/ARCH\[\/VARIANT\]$/],
    ['linux/', /^--platform "linux\/": expected OS\/ARCH\[\/VARIANT\]$/],
    ['/amd64', /^--platform "\/amd64": expected/],
    ['linux//v7', /^--platform "linux\/\/v7": expected/],
    ['linux/arm/v7/', /^--platform "linux\/arm\/v7\/": expected/],
    ['linux/arm/v7/x', /^--platform "linux\/arm\/v7\/x": expected/],
    ['linux/amd64 ', /^--platform "linux\/amd64 ": must not contain whitespace/],
    [' linux/amd64', /whitespace/],
    ['linux/am d64', /whitespace/],
    ['linux/amd*', /"amd\*" may hold only letters, digits/],
    ['linux/amd64,osver=', /osver "" is not a valid os.version/],
    ['linux/amd64:', /"" is not a valid os.version/],
    ['linux/amd64:1,osver=2', /os.version is given twice/],
    ['linux/amd64,osver=1,osver=2', /os.version is given twice/],
    ['linux/amd64,osfeatures=a;;b', /not a ;-separated list/],
    ['linux/amd64,foo=bar', /unknown option "foo=bar"/],
    ['linux/amd64,', /unknown option ""/],
  ];
  for (const [s, re] of bad) {
    assert.throws(() => parsePlatform(s, '--platform'), (e: unknown) => e instanceof StrataError && re.test(e.message), s);
  }
});

test('formatPlatform and parsePlatform round-trip', () => {
  assert.equal(formatPlatform(undefined), 'unknown platform');
  assert.equal(formatPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }), 'linux/arm64/v8');
  assert.equal(formatPlatform({ os: 'linux', architecture: 'amd64', variant: '' }), 'linux/amd64');
  assert.equal(formatPlatform({ os: 'windows', architecture: 'amd64', osVersion: '10.0.20348.1', osFeatures: ['win32k'] }), 'windows/amd64:10.0.20348.1');
  for (const s of ['linux/amd64', 'linux/arm/v7', 'linux/arm64/v8', 'windows/amd64:10.0.17763.1234', 'linux/riscv64/rva23u64']) {
    assert.equal(formatPlatform(P(s)), s);
    assert.deepEqual(P(formatPlatform(P(s))), P(s));
  }
});

// containerd/platforms database.go normalizeArch / normalizeOS, platforms.go Normalize.
test('normalizePlatform follows containerd Normalize', () => {
  const cases: Array<[Platform, Platform]> = [
    [{ os: 'Linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' }],
    [{ os: 'linux', architecture: 'x86-64', variant: 'v1' }, { os: 'linux', architecture: 'amd64' }],
    [{ os: 'linux', architecture: 'amd64', variant: 'V3' }, { os: 'linux', architecture: 'amd64', variant: 'v3' }],
    [{ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: '8' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'AArch64', variant: 'v8.0' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: '9.0' }, { os: 'linux', architecture: 'arm64', variant: 'v9' }],
    [{ os: 'linux', architecture: 'armhf' }, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    [{ os: 'linux', architecture: 'armel' }, { os: 'linux', architecture: 'arm', variant: 'v6' }],
    [{ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    [{ os: 'linux', architecture: 'arm', variant: '6' }, { os: 'linux', architecture: 'arm', variant: 'v6' }],
    [{ os: 'linux', architecture: 'arm', variant: 'v5' }, { os: 'linux', architecture: 'arm', variant: 'v5' }],
    [{ os: 'linux', architecture: 'i386', variant: 'i686' }, { os: 'linux', architecture: '386' }],
    [{ os: 'MacOS', architecture: 'arm64' }, { os: 'darwin', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'riscv64', variant: 'RVA23U64' }, { os: 'linux', architecture: 'riscv64', variant: 'rva23u64' }],
    [
      { os: 'windows', architecture: 'amd64', osVersion: '10.0.17763.1', osFeatures: ['win32k', 'a', 'win32k'] },
      { os: 'windows', architecture: 'amd64', osVersion: '10.0.17763.1', osFeatures: ['a', 'win32k'] },
    ],
  ];
  for (const [input, expected] of cases) assert.deepEqual(normalizePlatform(input), expected, JSON.stringify(input));
});

test('isAttestation needs unknown/unknown and the BuildKit annotation', () => {
  const ann = { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': 'sha256:00' };
  assert.equal(isAttestation({ os: 'unknown', architecture: 'unknown' }, ann), true);
  assert.equal(isAttestation({ os: 'unknown', architecture: 'unknown' }, undefined), false);
  assert.equal(isAttestation({ os: 'unknown', architecture: 'unknown' }, { 'vnd.docker.reference.type': 'other' }), false);
  assert.equal(isAttestation({ os: 'linux', architecture: 'amd64' }, ann), false);
  assert.equal(isAttestation(undefined, ann), false);
});

test('samePlatform is exact equality of os, architecture, variant and os.version', () => {
  assert.equal(samePlatform(P('linux/amd64'), { os: 'linux', architecture: 'amd64', variant: '' }), true);
  assert.equal(samePlatform(P('linux/arm64'), P('linux/arm64/v8')), false);
  assert.equal(samePlatform(P('windows/amd64:10.0.1'), P('windows/amd64:10.0.2')), false);
  assert.equal(samePlatform(P('windows/amd64:10.0.1'), { os: 'windows', architecture: 'amd64', osVersion: '10.0.1', osFeatures: ['x'] }), true);
  assert.equal(samePlatform(P('linux/amd64'), P('linux/arm64')), false);
  assert.equal(samePlatform(undefined, undefined), true);
  assert.equal(samePlatform(undefined, P('linux/amd64')), false);
});
