/**
 * One platform matcher for every transport (registry, oci-layout, docker-archive, index creation).
 *
 * Selection follows containers/image (podman, skopeo, buildah), as of
 * podman-container-tools/container-libs `image/internal/pkg/platform/platform_matcher.go`
 * (WantedPlatforms, MatchesPlatform) and `image/internal/manifest/oci_index.go`
 * (chooseInstance, instanceCandidate.isPreferredOver). Normalisation follows containerd
 * `platforms` (`database.go` normalizeOS/normalizeArch, `platforms.go` Normalize); parsing and
 * formatting follow go-containerregistry `pkg/v1/platform.go` (ParsePlatform, String) and
 * containerd Parse (component characters, lowercasing).
 */
import { StrataError } from '../util/errors.js';

/** An OCI image-index platform. A superset of config.ts's Platform, structurally compatible with it. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  osVersion?: string;
  osFeatures?: string[];
}

/** containerd Parse's `specifierRe` (`^[A-Za-z0-9_.-]+$`): what an os, architecture or variant may hold. */
const COMPONENT = /^[A-Za-z0-9_.-]+$/;
/** Windows versions are dotted numbers; `+` is allowed because containerd escapes it rather than refusing it. */
const OS_OPTION = /^[A-Za-z0-9_.+-]+$/;

/**
 * Parses `OS/ARCH[/VARIANT]` with an optional os.version, written either go-containerregistry's way
 * (`linux/amd64:10.0.17763`) or as an option (`windows/amd64,osver=10.0.17763`), and optional
 * os.features (`,osfeatures=win32k;foo`). os, architecture and variant are lowercased, as containerd's
 * Parse does (go-containerregistry keeps them verbatim, but an index written by anyone is lowercase,
 * so an uppercase request could never match). Values are otherwise taken verbatim: aliases such as
 * x86_64 are left for normalizePlatform, so skopeo-style exact requests stay possible.
 */
export function parsePlatform(s: string, what: string): Platform {
  const fail = (detail: string): never => {
    throw new StrataError(`${what} ${JSON.stringify(s)}: ${detail}`);
  };
  const shape = 'expected OS/ARCH[/VARIANT]';
  if (/\s/.test(s)) fail(`must not contain whitespace; ${shape}`);
  const [spec = '', ...options] = s.split(',');
  let osVersion: string | undefined;
  let osFeatures: string[] | undefined;
  for (const option of options) {
    const eq = option.indexOf('=');
    const key = eq < 0 ? option : option.slice(0, eq);
    const value = eq < 0 ? '' : option.slice(eq + 1);
    if (key === 'osver') {
      if (osVersion !== undefined) fail('os.version is given twice');
      if (!OS_OPTION.test(value)) fail(`osver ${JSON.stringify(value)} is not a valid os.version`);
      osVersion = value;
    } else if (key === 'osfeatures') {
      if (osFeatures !== undefined) fail('osfeatures is given twice');
      osFeatures = value.split(';');
      if (osFeatures.some((f) => !OS_OPTION.test(f))) fail(`osfeatures ${JSON.stringify(value)} is not a ;-separated list of features`);
    } else {
      fail(`unknown option ${JSON.stringify(option)} (expected osver=VERSION or osfeatures=A;B)`);
    }
  }
  let path = spec;
  const colon = spec.indexOf(':');
  if (colon >= 0) {
    // go-containerregistry's String()/ParsePlatform spelling: os/arch[/variant]:osversion.
    if (osVersion !== undefined) fail('os.version is given twice');
    const v = spec.slice(colon + 1);
    if (!OS_OPTION.test(v)) fail(`${JSON.stringify(v)} is not a valid os.version`);
    osVersion = v;
    path = spec.slice(0, colon);
  }
  const parts = path.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) fail(shape);
  for (const part of parts) if (!COMPONENT.test(part)) fail(`${JSON.stringify(part)} may hold only letters, digits, '_', '.' and '-'; ${shape}`);
  const [os, architecture, variant] = parts.map((p) => p.toLowerCase()) as [string, string, string | undefined];
  return {
    os,
    architecture,
    ...(variant !== undefined ? { variant } : {}),
    ...(osVersion !== undefined ? { osVersion } : {}),
    ...(osFeatures !== undefined ? { osFeatures } : {}),
  };
}

/**
 * `os/arch[/variant][:osversion]`, as go-containerregistry's Platform.String() (its trailing
 * ` (osfeatures=…)` is left out: this is for messages, and parsePlatform reads it back).
 */
export function formatPlatform(p: Platform | undefined): string {
  if (p === undefined) return 'unknown platform';
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}${p.osVersion ? `:${p.osVersion}` : ''}`;
}

/**
 * containerd's Normalize, exactly (containerd/platforms main: database.go normalizeOS and
 * normalizeArch, platforms.go Normalize): os lowercased and macos→darwin; arch and variant
 * lowercased; i386→386 (variant dropped); x86_64/x86-64→amd64 with v1 dropped;
 * aarch64→arm64 with 8/v8/v8.0 DROPPED (arm64 without a variant means v8) and 9/9.0/v9.0→v9;
 * armhf→arm/v7; armel→arm/v6; arm with no variant or 7 → v7, 5/6/8 → v5/v6/v8; os.features sorted
 * and deduplicated; os.version kept. Unlike containerd, an empty os stays empty (containerd fills in
 * the host's, which would make a stored platform depend on the build machine).
 */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let arch = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (arch) {
    case 'i386':
      arch = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  const out: Platform = { architecture: arch, os };
  if (variant !== '') out.variant = variant;
  if (p.osVersion) out.osVersion = p.osVersion;
  if (p.osFeatures && p.osFeatures.length > 0) out.osFeatures = [...new Set(p.osFeatures)].sort();
  return out;
}

/**
 * containers/image's `compatibility` table: per architecture, known variants from most capable to
 * most compatible. An architecture without an entry has no modelled variants.
 */
const COMPATIBILITY: Readonly<Record<string, readonly string[]>> = {
  amd64: ['v4', 'v3', 'v2'],
  arm: ['v8', 'v7', 'v6', 'v5'],
  arm64: ['v8'],
};

/** containers/image normalizeAmd64Variant: amd64 v1 is the baseline, the same as no variant. */
function amd64Variant(arch: string, variant: string | undefined): string {
  return arch === 'amd64' && variant === 'v1' ? '' : (variant ?? '');
}

/**
 * The variants to accept for `want`, most preferred first ('' = an entry without a variant), as
 * containers/image WantedPlatforms builds them when the architecture is given (so nothing is
 * detected from the host):
 * - a variant was asked for: that variant and the less capable ones after it in COMPATIBILITY
 *   (arm/v6 → v6, v5; arm64/v8 → v8; amd64/v3 → v3, v2), or just itself when unknown (arm64/v9,
 *   riscv64/rva23 → itself); then '' (an unlabelled image is assumed to fit). amd64/v1 → [''].
 * - no variant: '' first (the unlabelled image is the most compatible), then every known variant
 *   of the architecture (arm → '', v8, v7, v6, v5; arm64 → '', v8), except amd64, which stays ['']
 *   so an amd64 request never picks an image needing a newer CPU than the baseline.
 */
export function wantedVariants(want: Platform): string[] {
  const arch = want.architecture;
  const variant = amd64Variant(arch, want.variant);
  const known = COMPATIBILITY[arch];
  if (variant !== '') {
    const i = known ? known.indexOf(variant) : -1;
    return [...(i >= 0 ? known!.slice(i) : [variant]), ''];
  }
  return arch === 'amd64' || !known ? [''] : ['', ...known];
}

/** The position of `have` in the candidate list for `want`, or -1 (containers/image MatchesPlatform per candidate). */
function candidateIndex(have: Platform, want: Platform, candidates: readonly string[]): number {
  // Strict string equality of os and architecture: index entries are not normalised, as in containers/image.
  if (have.os !== want.os || have.architecture !== want.architecture) return -1;
  // Variants compare as strings too, with amd64 v1 ≡ '' the only equivalence; os.version and os.features are ignored.
  return candidates.indexOf(amd64Variant(have.architecture, have.variant));
}

/**
 * Whether an image of platform `have` is acceptable for a request for `want`: `have` equals one of
 * want's candidates (wantedVariants). A missing platform matches nothing. Note: containers/image's
 * MatchesPlatform compares with one candidate; this compares with the whole candidate list, so
 * arm/v5 is acceptable for arm/v7 here.
 */
export function matchesPlatform(have: Platform | undefined, want: Platform): boolean {
  return have !== undefined && candidateIndex(have, want, wantedVariants(want)) >= 0;
}

const ZSTD_ANNOTATION = 'io.github.containers.compression.zstd';
const ZSTD_CHUNKED_SENTINEL_ANNOTATION = 'io.github.containers.zstd-chunked.sentinel';

/**
 * The entry containers/image's OCI chooseInstance would pick (ChooseInstance, so preferGzip unset),
 * or undefined when none fits. Rules, in order:
 * 1. the lower position of its platform in wantedVariants wins (the user's ordering of what fits);
 * 2. an entry without a platform fits, but after every entry whose platform fits (OCI makes
 *    platform optional; such an entry is usually a single-platform image, so it is a last resort);
 * 3. on a tie, an entry annotated `io.github.containers.compression.zstd: "true"` wins (containers/image
 *    prefers zstd unless asked for gzip, since that entry is a zstd copy of the same image);
 * 4. then one annotated `io.github.containers.zstd-chunked.sentinel: "true"` (newest containers/image);
 * 5. then the earliest in the index (index order is the writer's preference).
 * For a Docker manifest list, whose entries must have a platform, pass a platformOf that never
 * returns undefined (containers/image's Schema2List.ChooseInstance has no last resort).
 */
export function choosePlatform<T>(
  entries: readonly T[],
  want: Platform,
  platformOf: (e: T) => Platform | undefined,
  annotationsOf?: (e: T) => Record<string, string> | undefined,
): T | undefined {
  const candidates = wantedVariants(want);
  let best: { entry: T; rank: number; zstd: boolean; sentinel: boolean } | undefined;
  for (const entry of entries) {
    const p = platformOf(entry);
    const rank = p === undefined ? Number.POSITIVE_INFINITY : candidateIndex(p, want, candidates);
    if (rank < 0) continue;
    const annotations = annotationsOf?.(entry);
    const zstd = annotations?.[ZSTD_ANNOTATION] === 'true';
    const sentinel = annotations?.[ZSTD_CHUNKED_SENTINEL_ANNOTATION] === 'true';
    // Only a strictly better entry replaces the current one, so ties go to the earliest.
    const better =
      best === undefined ||
      (rank !== best.rank ? rank < best.rank : zstd !== best.zstd ? zstd : sentinel !== best.sentinel && sentinel);
    if (better) best = { entry, rank, zstd, sentinel };
  }
  return best?.entry;
}

/**
 * A BuildKit attestation manifest: platform unknown/unknown and annotation
 * `vnd.docker.reference.type: attestation-manifest` (its subject is `vnd.docker.reference.digest`).
 * Both are required, so an ordinary image that merely lacks a platform is never taken for one.
 */
export function isAttestation(platform: Platform | undefined, annotations: Record<string, string> | undefined): boolean {
  return (
    platform?.os === 'unknown' &&
    platform.architecture === 'unknown' &&
    annotations?.['vnd.docker.reference.type'] === 'attestation-manifest'
  );
}

/** Whether `a` and `b` agree on os, architecture and variant, whatever OS version either names: images that run on the same machines. */
export function samePlatformAnyVersion(a: Platform, b: Platform): boolean {
  return samePlatform({ ...a, osVersion: '' }, { ...b, osVersion: '' });
}

/**
 * Exact equality of os, architecture, variant and os.version (a missing variant or os.version equals
 * ''), for finding duplicate entries when creating an index. Nothing is normalised: callers normalise
 * both sides first if they want arm64 ≡ arm64/v8. os.features are not compared.
 */
export function samePlatform(a: Platform | undefined, b: Platform | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.os === b.os &&
    a.architecture === b.architecture &&
    (a.variant ?? '') === (b.variant ?? '') &&
    (a.osVersion ?? '') === (b.osVersion ?? '')
  );
}
