import { createHash } from 'node:crypto';
import { MAX_METADATA_BYTES, metadataTooLarge } from '../../image/limits.js';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import { StrataError } from '../../util/errors.js';
import { sha256Digest, type Digest } from '../../image/digest.js';
import { MediaTypes } from '../../image/media-types.js';
import type { Platform } from '../../image/config.js';
import type { Compression } from '../../image/media-types.js';
import {
  basicAuthorization, lookupCredentials, parseWwwAuthenticate, repositoryScope, TokenCache,
  type Challenge, type Credentials, type CredentialOptions,
} from './auth.js';
import { isLoopbackHost } from './reference.js';

export interface RegistryOptions extends CredentialOptions {
  /** Hosts (host[:port]) that may be spoken to over plain HTTP (`--insecure-registry`). */
  insecure?: readonly string[];
  /** Use HTTPS even for localhost/127.0.0.1/[::1] (which otherwise get plain HTTP). */
  requireTls?: boolean;
  /** Attempts after the first for a request that failed with 429/5xx or a dropped connection. Default 4. */
  retries?: number;
  /** First backoff delay; doubles per attempt, capped at 10 s. Default 250 ms. */
  retryBaseMs?: number;
  /** Upload chunk size: blobs up to this size go up in one PUT, larger ones in PATCHes of it. Default 16 MiB. */
  chunkSize?: number;
  /** Platform picked from an image index when reading. Default linux/amd64. */
  platform?: Platform;
  /** Other repositories of the same registry whose blobs may be mounted instead of uploaded. */
  mountFrom?: readonly string[];
  /** Compression the destination asks of new layers. Default gzip (what registries serve). */
  compression?: Compression;
  /**
   * How beginBlob() sends a new layer. 'stream' (default): PATCHed while it is produced, so
   * building and uploading overlap, but a layer the registry already has is sent again, since
   * its digest is known only at the end. 'spool': written to a temporary file first (under
   * `spoolDir`, default the system temp dir), then skipped, mounted or uploaded like addLayer():
   * a rebuilt, unchanged layer costs no upload.
   */
  blobWrites?: 'stream' | 'spool';
  spoolDir?: string;
  /** Counters to add to besides the process-wide `registryStats` (one per push in tests). */
  stats?: RegistryStats;
}

/** Byte and request counters, so that tests and the benchmark can see what went over the wire. */
export interface RegistryStats {
  /** Blob body bytes sent (layers and configs; a retransmitted chunk counts again). */
  blobBytesUploaded: number;
  blobsUploaded: number;
  /** Blobs the registry already had in the target repository (HEAD 200). */
  blobsSkipped: number;
  /** Blobs made present by a cross-repository mount. */
  blobsMounted: number;
  blobBytesDownloaded: number;
  manifestsPut: number;
  requests: number;
  retries: number;
}

export function newRegistryStats(): RegistryStats {
  return { blobBytesUploaded: 0, blobsUploaded: 0, blobsSkipped: 0, blobsMounted: 0, blobBytesDownloaded: 0, manifestsPut: 0, requests: 0, retries: 0 };
}

/** Process-wide counters over every RegistryClient. */
export const registryStats: RegistryStats = newRegistryStats();

export const MANIFEST_ACCEPT = [
  MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerManifestList,
] as const;

export interface FetchedManifest {
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly digest: Digest;
  readonly json: Record<string, unknown>;
}

type Scope = readonly string[];

interface RequestSpec {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A path below the registry root (`/v2/...`) or an absolute URL (upload Locations). */
  url: string;
  headers?: Record<string, string>;
  /** Always a Buffer, never a stream, so a request can be sent again after a failure. */
  body?: Buffer;
  scope: Scope;
  /** What the request is for, in error messages: "upload of layer sha256:…". */
  what: string;
  /** Statuses the caller handles itself; any other final status becomes a StrataError. */
  expect: readonly number[];
  /** False for requests that must not be repeated blindly (a PATCH whose fate is unknown). */
  retry?: boolean;
}

const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const RETRY_NET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED']);

/**
 * A client for one registry host speaking the OCI distribution API over fetch: no daemon,
 * no skopeo. It pings `/v2/` once to learn how the registry wants to be authenticated, keeps
 * bearer tokens per scope, and retries what is safe to retry.
 */
export class RegistryClient {
  readonly host: string;
  readonly baseUrl: string;
  readonly stats: RegistryStats = newRegistryStats();
  private readonly extraStats: RegistryStats | undefined;
  private readonly creds: Credentials | undefined;
  private readonly tokens = new TokenCache();
  private challenge: Challenge | null | undefined; // undefined: not pinged; null: no auth needed
  private pinging: Promise<void> | undefined;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  readonly chunkSize: number;

  /**
   * @param host the API host[:port] (`registry-1.docker.io` for Docker Hub)
   * @param registry the registry as users name it, for credential lookup (`docker.io`)
   * @param repository the repository credentials are looked up for (podman allows per-repo entries)
   */
  constructor(host: string, registry: string, repository: string, readonly opts: RegistryOptions = {}) {
    this.host = host;
    const plain = !opts.requireTls && (isLoopbackHost(host) || (opts.insecure ?? []).includes(host));
    this.baseUrl = `${plain ? 'http' : 'https'}://${host}`;
    this.creds = lookupCredentials(registry, repository, opts);
    this.extraStats = opts.stats;
    this.retries = opts.retries ?? 4;
    this.retryBaseMs = opts.retryBaseMs ?? 250;
    this.chunkSize = opts.chunkSize ?? 16 * 1024 * 1024;
  }

  private count(field: keyof RegistryStats, n = 1): void {
    this.stats[field] += n;
    registryStats[field] += n;
    if (this.extraStats) this.extraStats[field] += n;
  }

  // -------------------------------------------------------------------------------------------
  // Blobs

  /** Size of the blob when `repo` has it, undefined when it does not. */
  async headBlob(repo: string, digest: Digest): Promise<number | undefined> {
    const res = await this.request({
      method: 'HEAD', url: `/v2/${repo}/blobs/${digest}`, scope: pullScope(repo), what: `check for blob ${digest} in ${repo}`, expect: [200, 404],
    });
    if (res.status === 404) return undefined;
    const len = res.headers.get('content-length');
    return len === null ? -1 : Number(len);
  }

  /**
   * Streams a blob, verifying size and digest as the bytes pass; a mismatch fails the stream at
   * its end with an error naming `what` (e.g. "layer 3 of docker://…").
   */
  async getBlob(repo: string, digest: Digest, expectedSize: number | undefined, what: string): Promise<Readable> {
    const res = await this.request({ method: 'GET', url: `/v2/${repo}/blobs/${digest}`, scope: pullScope(repo), what: `download of ${what}`, expect: [200] });
    if (!res.body) throw new StrataError(`${this.host}: empty response body for ${what} (${digest})`);
    const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
    const verify = new VerifyingStream(digest, expectedSize, what, (n) => this.count('blobBytesDownloaded', n));
    body.on('error', (e) => verify.destroy(new StrataError(`${this.host}: download of ${what} (${digest}) failed: ${describeError(e)}`, { cause: e })));
    return body.pipe(verify);
  }

  /**
   * Mounts `digest` from another repository of this registry. True when the registry did it
   * (201); false when it opened an upload session instead (202), which is cancelled here.
   */
  async mountBlob(repo: string, digest: Digest, fromRepo: string): Promise<boolean> {
    const res = await this.request({
      method: 'POST', url: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`,
      scope: [repositoryScope(repo, ['pull', 'push']), repositoryScope(fromRepo, ['pull'])],
      what: `mount of blob ${digest} from ${fromRepo} into ${repo}`, expect: [201, 202],
    });
    if (res.status === 201) {
      this.count('blobsMounted');
      return true;
    }
    const loc = res.headers.get('location');
    if (loc) await new BlobUpload(this, repo, this.resolve(loc, res.url || undefined)).cancel();
    return false;
  }

  /** Opens an upload session (POST …/blobs/uploads/). */
  async startUpload(repo: string): Promise<BlobUpload> {
    const res = await this.request({ method: 'POST', url: `/v2/${repo}/blobs/uploads/`, scope: pushScope(repo), what: `start of a blob upload to ${repo}`, expect: [202] });
    return new BlobUpload(this, repo, this.requireLocation(res, `upload to ${repo}`));
  }

  /**
   * Uploads a blob held in memory (configs, small layers): POST, then one PUT with the bytes.
   * A failed attempt starts a fresh session, since a half-written session cannot be trusted.
   */
  async uploadBuffer(repo: string, digest: Digest, bytes: Buffer, what: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const upload = await this.startUpload(repo);
      try {
        await upload.putWhole(digest, bytes, what);
        return;
      } catch (e) {
        await upload.cancel();
        if (attempt >= this.retries || !isTransient(e)) throw e;
        await this.backoff(attempt, null);
      }
    }
  }

  /**
   * Uploads a blob read from a stream of unknown chunking in PATCHes of `chunkSize` bytes, so
   * at most one chunk is in memory while the next is read.
   */
  async uploadStream(repo: string, digest: Digest, stream: AsyncIterable<Buffer>, what: string): Promise<void> {
    const upload = await this.startUpload(repo);
    // One PATCH in flight while the next chunk is read: disk and network overlap, memory stays at two chunks.
    let inflight: Promise<void> = Promise.resolve();
    try {
      const chunks = new Chunker(this.chunkSize);
      for await (const piece of stream) {
        for (const full of chunks.add(piece as Buffer)) {
          await inflight;
          inflight = upload.patch(full, what);
          inflight.catch(() => { /* awaited below; avoid an unhandled rejection meanwhile */ });
        }
      }
      await inflight;
      const rest = chunks.flush();
      await upload.finish(digest, rest, what);
    } catch (e) {
      await inflight.catch(() => undefined);
      await upload.cancel();
      throw e;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Manifests

  /** Fetches a manifest or index by tag or digest and checks its digest. */
  async getManifest(repo: string, reference: string, what: string): Promise<FetchedManifest> {
    const res = await this.request({
      method: 'GET', url: `/v2/${repo}/manifests/${reference}`, scope: pullScope(repo), what: `fetch of manifest ${what}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') }, expect: [200, 404],
    });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new StrataError(`${what}: manifest unknown (the registry has no ${reference.startsWith('sha256:') ? 'such digest' : 'such tag'} in ${repo})`);
    }
    const bytes = await readCapped(res, MAX_METADATA_BYTES, `${what}: the manifest`);
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:') && reference !== digest) {
      throw new StrataError(`${what}: the registry sent a manifest whose digest is ${digest}, not the ${reference} asked for`);
    }
    const header = res.headers.get('docker-content-digest');
    if (header && header.startsWith('sha256:') && header !== digest) {
      throw new StrataError(`${what}: manifest bytes hash to ${digest} but the registry says Docker-Content-Digest: ${header}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new StrataError(`${what}: the registry returned a malformed manifest (not JSON: ${(e as Error).message}; starts ${JSON.stringify(bytes.subarray(0, 60).toString('utf8'))})`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new StrataError(`${what}: the registry returned a malformed manifest (not a JSON object)`);
    }
    const obj = json as Record<string, unknown>;
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const mediaType = typeof obj.mediaType === 'string' ? obj.mediaType : contentType;
    if (obj.schemaVersion === 1) throw new StrataError(`${what}: Docker schema 1 manifests are not supported (re-push the image with a current tool)`);
    if (obj.schemaVersion !== 2) throw new StrataError(`${what}: the registry returned a malformed manifest (schemaVersion is ${JSON.stringify(obj.schemaVersion)}, expected 2)`);
    return { mediaType, bytes, digest, json: obj };
  }

  /** PUTs a manifest or index under a tag or its digest; returns the digest the registry reports. */
  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    const digest = sha256Digest(bytes);
    const res = await this.request({
      method: 'PUT', url: `/v2/${repo}/manifests/${reference}`, scope: pushScope(repo), what: `PUT of manifest ${repo}:${reference}`,
      headers: { 'content-type': mediaType }, body: bytes, expect: [201, 200],
    });
    await res.body?.cancel();
    const header = res.headers.get('docker-content-digest');
    if (header && header !== digest) {
      throw new StrataError(`${this.host}/${repo}:${reference}: the registry stored the manifest as ${header}, but its bytes hash to ${digest}`);
    }
    this.count('manifestsPut');
    return digest;
  }

  // -------------------------------------------------------------------------------------------
  // Listings

  /** Every tag of a repository, following the registry's pages; [] when it has no such repository. */
  async listTags(repo: string): Promise<string[]> {
    return this.listPages(`/v2/${repo}/tags/list?n=1000`, pullScope(repo), 'tags', `tag list of ${this.host}/${repo}`);
  }

  /** Every repository of the registry (its catalog), following the registry's pages. */
  async listRepositories(): Promise<string[]> {
    return this.listPages('/v2/_catalog?n=1000', ['registry:catalog:*'], 'repositories', `catalog of ${this.host}`);
  }

  /** GETs a paginated list (distribution-spec: a JSON array under `key`, the next page in a Link header). */
  private async listPages(first: string, scope: Scope, key: string, what: string): Promise<string[]> {
    const out: string[] = [];
    let url: string | undefined = first;
    for (let page = 0; url !== undefined; page++) {
      if (page >= 1000) throw new StrataError(`${what}: more than 1000 pages; the registry's Link headers loop`);
      const res = await this.request({ method: 'GET', url, scope, what, expect: [200, 404] });
      if (res.status === 404) {
        await res.body?.cancel();
        return out;
      }
      let json: unknown;
      const text = (await readCapped(res, MAX_METADATA_BYTES, `${what}: a page`)).toString('utf8');
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new StrataError(`${what}: the registry answered with something that is not JSON (${(e as Error).message})`);
      }
      const list = (json as Record<string, unknown> | null)?.[key];
      if (list !== null && list !== undefined && (!Array.isArray(list) || !list.every((t) => typeof t === 'string'))) {
        throw new StrataError(`${what}: the registry's answer has no list of strings under ${JSON.stringify(key)}`);
      }
      out.push(...((list as string[] | null | undefined) ?? []));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
      url = next === undefined ? undefined : new URL(next, this.baseUrl + '/').pathname + new URL(next, this.baseUrl + '/').search;
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // HTTP core

  /**
   * Resolves a Location header as RFC 3986 says: against the URL of the request that returned it
   * (`base`, e.g. the session's current Location), so `uploads/abc?_state=…`, `/v2/…` and an
   * absolute URL on another host all mean what the registry meant.
   */
  resolve(location: string, base?: string): string {
    return new URL(location, base ?? this.baseUrl + '/').toString();
  }

  requireLocation(res: Response, what: string): string {
    const loc = res.headers.get('location');
    if (!loc) throw new StrataError(`${this.host}: the registry answered ${res.status} to the ${what} without a Location header`);
    return this.resolve(loc, res.url || undefined);
  }

  /** Counts upload bytes: called by BlobUpload once a body was accepted. */
  countUpload(bytes: number): void {
    this.count('blobBytesUploaded', bytes);
  }

  countBlob(field: 'blobsUploaded' | 'blobsSkipped'): void {
    this.count(field);
  }

  /**
   * Sends one request with authentication, retrying (bounded, with exponential backoff and
   * Retry-After) on 429/5xx and dropped connections. Statuses outside `expect` become a
   * StrataError that quotes the registry's own error code and message.
   */
  async request(spec: RequestSpec): Promise<Response> {
    await this.ping();
    let refreshedAuth = false;
    for (let attempt = 0; ; attempt++) {
      const retryable = spec.retry !== false && attempt < this.retries;
      let res: Response;
      try {
        res = await this.send(spec.method, spec.url, spec.headers ?? {}, spec.body, await this.authorization(spec.scope));
      } catch (e) {
        const code = errorCode(e);
        if (retryable && code !== undefined && RETRY_NET_CODES.has(code)) {
          await this.backoff(attempt, null);
          continue;
        }
        throw this.networkError(e, spec.what, attempt + 1);
      }
      if (res.status === 401 && !refreshedAuth && this.challenge?.scheme === 'bearer') {
        // The token expired or lacks a scope the registry now asks for: get a fresh one, once.
        refreshedAuth = true;
        await res.body?.cancel();
        this.tokens.delete(spec.scope);
        const ch = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '').find((c) => c.scheme === 'bearer');
        if (ch) this.challenge = ch;
        attempt--;
        continue;
      }
      if (spec.expect.includes(res.status)) return res;
      if (retryable && RETRY_STATUSES.has(res.status)) {
        await res.body?.cancel();
        await this.backoff(attempt, res.headers.get('retry-after'));
        continue;
      }
      throw await this.statusError(res, spec.what, attempt + 1);
    }
  }

  private async send(method: string, url: string, headers: Record<string, string>, body: Buffer | undefined, authorization: string | undefined): Promise<Response> {
    this.count('requests');
    const h: Record<string, string> = { 'user-agent': 'strata', ...headers };
    if (authorization) h.authorization = authorization;
    if (body !== undefined) h['content-length'] = String(body.length);
    let target = url.startsWith('/') ? this.baseUrl + url : url;
    let m = method;
    let b: Uint8Array | undefined = body ?? (method === 'PUT' || method === 'PATCH' || method === 'POST' ? new Uint8Array(0) : undefined);
    // Redirects are followed here rather than by fetch, so that credentials never travel to
    // another origin (a blob store the registry redirects to gets no Authorization header).
    for (let hop = 0; ; hop++) {
      const res = await fetch(target, { method: m, headers: h, body: b, redirect: 'manual' });
      const loc = res.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(res.status) || !loc) return withUrl(res, target);
      if (hop >= 10) throw new StrataError(`registry ${this.host}: more than 10 redirects from ${url}`);
      await res.body?.cancel();
      const next = new URL(loc, target);
      if (next.origin !== new URL(target).origin) delete h.authorization;
      // 303, and 301/302 after a POST, turn into a GET without a body (what browsers and curl do).
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && m === 'POST')) {
        m = 'GET';
        b = undefined;
        delete h['content-length'];
      }
      target = next.toString();
    }
  }

  async backoff(attempt: number, retryAfter: string | null): Promise<void> {
    this.count('retries');
    let ms = Math.min(this.retryBaseMs * 2 ** attempt, 10_000);
    const ra = retryAfter === null ? NaN : Number(retryAfter);
    if (Number.isFinite(ra) && ra >= 0) ms = Math.min(Math.max(ms, ra * 1000), 30_000);
    await sleep(ms);
  }

  /**
   * Learns the registry's authentication scheme from `GET /v2/` (once per client). Public so
   * that a push can fail on a bad host, TLS or credentials before any work is done.
   */
  ping(): Promise<void> {
    if (this.challenge !== undefined) return Promise.resolve();
    this.pinging ??= this.doPing().finally(() => { this.pinging = undefined; });
    return this.pinging;
  }

  private async doPing(): Promise<void> {
    let res: Response;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await this.send('GET', '/v2/', {}, undefined, undefined);
      } catch (e) {
        const code = errorCode(e);
        if (attempt < this.retries && code !== undefined && RETRY_NET_CODES.has(code)) {
          await this.backoff(attempt, null);
          continue;
        }
        throw this.networkError(e, 'connection check (GET /v2/)', attempt + 1);
      }
      if (RETRY_STATUSES.has(res.status) && attempt < this.retries) {
        await res.body?.cancel();
        await this.backoff(attempt, res.headers.get('retry-after'));
        continue;
      }
      break;
    }
    const text = await readCapped(res, 64 << 10, `registry ${this.host}: its answer to a ping`).then((b) => b.toString('utf8'), () => '');
    if (res.status === 200) {
      this.challenge = null;
      return;
    }
    if (res.status === 400 && /HTTP request to an HTTPS server/i.test(text)) {
      throw new StrataError(`registry ${this.host} requires TLS: it refused plain HTTP ("${text.trim()}"). ` +
        `strata uses plain HTTP only for localhost and --insecure-registry hosts; reach it over HTTPS (--tls) instead`);
    }
    if (res.status !== 401) {
      throw new StrataError(`${this.baseUrl}/v2/ answered ${res.status} ${res.statusText}: ${this.host} does not look like an OCI registry`);
    }
    const challenges = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '');
    const ch = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (!ch) {
      throw new StrataError(`registry ${this.host} asks for authentication with an unsupported scheme (WWW-Authenticate: ${res.headers.get('www-authenticate') ?? 'missing'})`);
    }
    if (ch.scheme === 'basic') {
      if (!this.creds) throw this.noCredentials();
      // Check the credentials now, so a typo is reported as such and not as a failed upload.
      const check = await this.send('GET', '/v2/', {}, undefined, basicAuthorization(this.creds));
      await check.body?.cancel();
      if (check.status === 401 || check.status === 403) throw this.badCredentials(`${check.status}`);
      if (check.status !== 200) throw new StrataError(`${this.baseUrl}/v2/ answered ${check.status} ${check.statusText} after authenticating`);
    }
    this.challenge = ch;
  }

  private noCredentials(): StrataError {
    return new StrataError(`registry ${this.host} requires authentication and no credentials were found for it ` +
      `(looked in $REGISTRY_AUTH_FILE, \${XDG_RUNTIME_DIR}/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json); ` +
      `log in with \`podman login ${this.host}\` or pass --creds USER:PASSWORD`);
  }

  private badCredentials(detail: string): StrataError {
    return new StrataError(`registry ${this.host} rejected the credentials of user ${JSON.stringify(this.creds?.username)} from ${this.creds?.source} (${detail}): wrong user name or password`);
  }

  private async authorization(scope: Scope): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return this.creds ? basicAuthorization(this.creds) : undefined;
    const cached = this.tokens.get(scope);
    if (cached) return `Bearer ${cached}`;
    const token = await this.fetchToken(ch, scope);
    return `Bearer ${token}`;
  }

  /** The distribution token flow: GET realm?service=…&scope=…, with basic credentials when we have them. */
  private async fetchToken(ch: Challenge, scope: Scope): Promise<string> {
    const realm = ch.params.realm;
    if (!realm) throw new StrataError(`registry ${this.host} sent a Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new StrataError(`registry ${this.host} sent a Bearer challenge with an invalid realm ${JSON.stringify(realm)}`);
    }
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    for (const s of scope) url.searchParams.append('scope', s);
    if (this.creds) url.searchParams.set('account', this.creds.username);
    const headers: Record<string, string> = { 'user-agent': 'strata' };
    if (this.creds) headers.authorization = basicAuthorization(this.creds);
    let res: Response;
    try {
      res = await fetch(url, { headers });
    } catch (e) {
      throw this.networkError(e, `token request to ${url.origin}`, 1);
    }
    // A token reply is a few kilobytes; one that is not is refused, not read.
    const text = (await readCapped(res, 1 << 20, `token service ${url.origin}${url.pathname}: its reply`)).toString('utf8');
    if (res.status === 401 || res.status === 403) {
      if (this.creds) throw this.badCredentials(`token service ${url.origin}${url.pathname} answered ${res.status}`);
      throw this.noCredentials();
    }
    if (res.status !== 200) throw new StrataError(`token service ${url.origin}${url.pathname} for ${this.host} answered ${res.status}: ${text.slice(0, 200)}`);
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      throw new StrataError(`token service ${url.origin}${url.pathname} for ${this.host} returned something that is not JSON`);
    }
    const token = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : undefined;
    if (!token) throw new StrataError(`token service ${url.origin}${url.pathname} for ${this.host} returned no token`);
    this.tokens.set(scope, token, typeof doc.expires_in === 'number' ? doc.expires_in : 60);
    return token;
  }

  /** A StrataError for a failed connection, naming the host and what the cause means. */
  networkError(e: unknown, what: string, attempts: number): StrataError {
    if (e instanceof StrataError) return e;
    const code = errorCode(e);
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    let why: string;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') why = `unknown host: ${this.host.replace(/:\d+$/, '')} does not resolve`;
    else if (code === 'ECONNREFUSED') why = 'connection refused: is the registry running?';
    else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') why = 'the registry dropped the connection';
    else if (code !== undefined && /SSL|TLS|CERT|EPROTO/.test(code)) {
      why = this.baseUrl.startsWith('https:')
        ? `TLS failed (${code}): if ${this.host} serves plain HTTP, allow it with --insecure-registry ${this.host}; if it uses a private CA, trust it (NODE_EXTRA_CA_CERTS)`
        : `TLS error (${code})`;
    } else why = describeError(e);
    return new StrataError(`registry ${this.host}: ${what} failed${tries}: ${why}`, { cause: e });
  }

  private async statusError(res: Response, what: string, attempts: number): Promise<StrataError> {
    const text = res.status === 404 || res.headers.get('content-length') !== '0' ? await readCapped(res, 64 << 10, 'an error body').then((b) => b.toString('utf8'), () => '') : '';
    let detail = text.trim().slice(0, 300);
    try {
      const doc = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
      if (Array.isArray(doc.errors) && doc.errors.length > 0) {
        detail = doc.errors.map((er) => `${er.code ?? 'ERROR'}: ${er.message ?? ''}${er.detail !== undefined ? ` (${JSON.stringify(er.detail).slice(0, 200)})` : ''}`).join('; ');
      }
    } catch { /* not JSON: keep the text */ }
    const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
    if (res.status === 401) {
      return this.creds ? this.badCredentials(`${what}: 401${detail ? ` ${detail}` : ''}`) : this.noCredentials();
    }
    if (res.status === 403) return new StrataError(`registry ${this.host}: ${what} denied (403): the credentials ${this.creds ? `of ${this.creds.username} ` : ''}lack permission${detail ? ` — ${detail}` : ''}`);
    return new StrataError(`registry ${this.host}: ${what} failed with ${res.status} ${res.statusText}${tries}${detail ? `: ${detail}` : ''}`);
  }
}

function pullScope(repo: string): Scope {
  return [repositoryScope(repo, ['pull'])];
}

function pushScope(repo: string): Scope {
  return [repositoryScope(repo, ['pull', 'push'])];
}

/** The system error code behind a fetch failure (undici wraps it in `cause`, sometimes twice). */
export function errorCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    const c = cur as { code?: unknown; cause?: unknown; errors?: unknown };
    if (typeof c.code === 'string' && c.code !== 'ERR_INVALID_STATE') return c.code;
    if (Array.isArray(c.errors) && c.errors.length > 0) cur = c.errors[0];
    else cur = c.cause;
  }
  return undefined;
}

function describeError(e: unknown): string {
  const parts: string[] = [];
  for (let cur: unknown = e, depth = 0; cur && depth < 4; depth++) {
    const m = (cur as { message?: unknown }).message;
    if (typeof m === 'string' && m && !parts.includes(m)) parts.push(m);
    cur = (cur as { cause?: unknown }).cause;
  }
  return parts.join(': ') || String(e);
}

/**
 * One upload session. The registry hands out a new Location (with new state) after every
 * PATCH; `offset` is how many bytes the registry has acknowledged.
 */
export class BlobUpload {
  offset = 0;

  constructor(private readonly client: RegistryClient, readonly repo: string, private location: string) {}

  /**
   * Sends one chunk. A PATCH whose fate is unknown (the connection dropped) is not simply
   * repeated: the session's status (GET, `Range: 0-N`) says how much arrived, and only the
   * rest is sent again. Registries that cannot report it (or refuse the stale session) make
   * the upload fail with a clear error instead of a corrupted blob.
   */
  async patch(chunk: Buffer, what: string): Promise<void> {
    const start = this.offset;
    let sent = 0; // bytes of `chunk` the registry has confirmed
    for (let attempt = 0; ; attempt++) {
      const part = chunk.subarray(sent);
      if (part.length === 0) return;
      const from = start + sent;
      try {
        const res = await this.client.request({
          method: 'PATCH', url: this.location, scope: pushScope(this.repo), what: `upload of ${what} (bytes ${from}-${start + chunk.length - 1})`,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${from + part.length - 1}` },
          body: part, expect: [202, 204], retry: false,
        });
        await res.body?.cancel();
        this.location = this.client.requireLocation(res, `chunk upload of ${what}`);
        this.offset = from + part.length;
        this.client.countUpload(part.length);
        return;
      } catch (e) {
        // 416: the registry holds a different number of bytes than this chunk assumed — ask it
        // how many (the distribution spec's resume), then send from there.
        const outOfRange = e instanceof StrataError && / failed with 416\b/.test(e.message);
        if (attempt >= (this.client.opts.retries ?? 4) || (!isTransient(e) && !outOfRange)) throw e;
        if (!outOfRange) await sleep(Math.min((this.client.opts.retryBaseMs ?? 250) * 2 ** attempt, 10_000));
        const have = await this.status(what).catch(() => undefined);
        if (have === undefined || have < start || have > start + chunk.length) {
          throw new StrataError(`registry ${this.client.host}: upload of ${what} was interrupted at byte ${from} and the registry cannot resume it: ${(e as Error).message}`, { cause: e });
        }
        sent = have - start;
      }
    }
  }

  /** Asks the registry how many bytes it holds for this session; refreshes the Location. */
  async status(what: string): Promise<number> {
    const res = await this.client.request({ method: 'GET', url: this.location, scope: pushScope(this.repo), what: `status of the upload of ${what}`, expect: [204, 200] });
    await res.body?.cancel();
    const range = res.headers.get('range');
    const loc = res.headers.get('location');
    if (loc) this.location = this.client.resolve(loc, this.location);
    if (range === null) return 0;
    const m = /^(?:bytes=)?0-(\d+)$/.exec(range.trim());
    if (!m) throw new StrataError(`registry ${this.client.host}: malformed Range ${JSON.stringify(range)} in upload status`);
    // distribution writes "0-0" both for an empty session and for one byte. A session we last
    // saw empty that still answers to its old state is empty (distribution refuses a stale
    // state once the size moved), so read "0-0" as 0 bytes then; the final digest check catches the rest.
    const end = Number(m[1]);
    return end === 0 && this.offset === 0 ? 0 : end + 1;
  }

  /** Completes the upload: PUT <location>&digest=…, with the last bytes (if any) as the body. */
  async finish(digest: Digest, last: Buffer | undefined, what: string): Promise<void> {
    if (last && last.length > 0) await this.patch(last, what);
    const url = new URL(this.location);
    url.searchParams.set('digest', digest);
    const res = await this.client.request({
      method: 'PUT', url: url.toString(), scope: pushScope(this.repo), what: `completion of the upload of ${what}`,
      headers: { 'content-type': 'application/octet-stream' }, expect: [201, 204],
    });
    await res.body?.cancel();
    this.client.countBlob('blobsUploaded');
  }

  /** Monolithic upload: the whole blob as the body of the completing PUT (not repeated on failure). */
  async putWhole(digest: Digest, bytes: Buffer, what: string): Promise<void> {
    const url = new URL(this.location);
    url.searchParams.set('digest', digest);
    const res = await this.client.request({
      method: 'PUT', url: url.toString(), scope: pushScope(this.repo), what: `upload of ${what}`,
      headers: { 'content-type': 'application/octet-stream' }, body: bytes, expect: [201, 204], retry: false,
    });
    await res.body?.cancel();
    this.offset = bytes.length;
    this.client.countUpload(bytes.length);
    this.client.countBlob('blobsUploaded');
  }

  /** Cancels the session (DELETE); best effort, failures are ignored since the push already failed. */
  async cancel(): Promise<void> {
    try {
      const res = await this.client.request({ method: 'DELETE', url: this.location, scope: pushScope(this.repo), what: 'cancel of an upload', expect: [204, 200, 202, 404], retry: false });
      await res.body?.cancel();
    } catch { /* the registry may be gone; its upload purger removes the session */ }
  }
}

/** True for failures worth another attempt: dropped connections, 429 and 5xx. */
export function isTransient(e: unknown): boolean {
  const code = errorCode(e);
  if (code !== undefined && RETRY_NET_CODES.has(code)) return true;
  const m = e instanceof Error ? e.message : '';
  return /failed with (408|429|500|502|503|504)\b/.test(m);
}

/** Cuts a stream of arbitrary pieces into chunks of exactly `size` (the last may be shorter). */
export class Chunker {
  private parts: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly size: number) {}

  get buffered(): number {
    return this.bytes;
  }

  *add(piece: Buffer): Generator<Buffer> {
    let p = piece;
    while (p.length > 0) {
      const take = Math.min(this.size - this.bytes, p.length);
      this.parts.push(p.subarray(0, take));
      this.bytes += take;
      p = p.subarray(take);
      if (this.bytes === this.size) yield this.take();
    }
  }

  flush(): Buffer {
    return this.take();
  }

  private take(): Buffer {
    // Copy once: the pieces may be views into buffers the producer reuses.
    const out = Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    return out;
  }
}

/** Passes bytes through while hashing them; fails at the end when digest or size differ. */
export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private seen = 0;

  constructor(private readonly digest: Digest, private readonly size: number | undefined, private readonly what: string, private readonly onBytes?: (n: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.seen += chunk.length;
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const got = `sha256:${this.hash.digest('hex')}`;
    if (this.size !== undefined && this.size >= 0 && this.seen !== this.size) {
      cb(new StrataError(`${this.what}: blob ${this.digest} is ${this.seen} bytes, the manifest says ${this.size}`));
    } else if (got !== this.digest) {
      cb(new StrataError(`${this.what}: blob content hashes to ${got}, not the ${this.digest} the manifest names`));
    } else cb();
  }
}

/**
 * A response body read whole, but never more than `limit` bytes: a Content-Length above it is
 * refused before reading, and a body that runs past it is cut off there.
 */
export async function readCapped(res: Response, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await res.body?.cancel();
    throw metadataTooLarge(what, declared, limit);
  }
  const parts: Buffer[] = [];
  let n = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      n += chunk.length;
      if (n > limit) {
        await res.body.cancel().catch(() => undefined);
        throw metadataTooLarge(what, n, limit);
      }
      parts.push(Buffer.from(chunk));
    }
  }
  return Buffer.concat(parts, n);
}

/**
 * The response as it came, knowing the URL it answers (a manually followed redirect's final
 * one), which Locations in it are relative to. `Response.url` is read-only and empty for
 * responses built by hand, so it is defined on the object.
 */
function withUrl(res: Response, url: string): Response {
  if (res.url === url) return res;
  Object.defineProperty(res, 'url', { value: url });
  return res;
}
