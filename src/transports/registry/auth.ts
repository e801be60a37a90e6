import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { StrataError } from '../../util/errors.js';
import { DOCKER_HUB } from './reference.js';

export interface Credentials {
  readonly username: string;
  readonly password: string;
  /** Where they came from, for messages ("--creds", "/root/.docker/config.json"). */
  readonly source: string;
}

export interface CredentialOptions {
  /** Explicit credentials (flags) win over every file. */
  username?: string;
  password?: string;
  /** An explicit auth file (`--authfile`), read before the default ones. */
  authFile?: string;
  /** Environment to read REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, HOME from. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The auth files podman and docker read, in the order containers/image tries them
 * (pkg/docker/config/config.go): an explicit file, $REGISTRY_AUTH_FILE,
 * ${XDG_RUNTIME_DIR}/containers/auth.json, $XDG_CONFIG_HOME/containers/auth.json,
 * ~/.docker/config.json, and the ancient ~/.dockercfg.
 */
export function authFileCandidates(opts: CredentialOptions = {}): string[] {
  const env = opts.env ?? process.env;
  const home = env.HOME ?? homedir();
  const out: string[] = [];
  if (opts.authFile) out.push(opts.authFile);
  if (env.REGISTRY_AUTH_FILE) out.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) out.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  out.push(join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'containers', 'auth.json'));
  out.push(join(env.DOCKER_CONFIG ?? join(home, '.docker'), 'config.json'));
  out.push(join(home, '.dockercfg'));
  return out;
}

/**
 * Finds credentials for `registry` (as users name it, e.g. `docker.io`, `localhost:5000`) and
 * `repository`. Like podman, an entry for `host/namespace/repo` beats `host/namespace` beats `host`.
 * Returns undefined when nothing matches: the registry is then used anonymously.
 */
export function lookupCredentials(registry: string, repository: string, opts: CredentialOptions = {}): Credentials | undefined {
  if (opts.username !== undefined || opts.password !== undefined) {
    if (!opts.username || opts.password === undefined) {
      throw new StrataError('registry credentials need both a user name and a password (--creds USER:PASSWORD)');
    }
    return { username: opts.username, password: opts.password, source: 'the command line' };
  }
  for (const file of authFileCandidates(opts)) {
    const auths = readAuths(file, file === opts.authFile);
    if (!auths) continue;
    const found = matchEntry(auths, registry, repository, file);
    if (found) return found;
  }
  return undefined;
}

type AuthEntry = { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown };

function readAuths(file: string, explicit: boolean): Record<string, AuthEntry> | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (explicit) throw new StrataError(`cannot read auth file ${file}: ${(e as Error).message}`);
    return undefined;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new StrataError(`auth file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object') throw new StrataError(`auth file ${file} is not a JSON object`);
  const d = doc as Record<string, unknown>;
  // config.json and auth.json keep entries under "auths"; ~/.dockercfg has them at the top.
  const auths = file.endsWith('.dockercfg') ? d : d.auths;
  if (auths === undefined) return undefined;
  if (auths === null || typeof auths !== 'object') throw new StrataError(`auth file ${file}: "auths" is not an object`);
  return auths as Record<string, AuthEntry>;
}

/** Normalises an auth-file key: `https://index.docker.io/v1/` → `docker.io`, `http://h:5000/` → `h:5000`. */
export function normaliseAuthKey(key: string): string {
  let k = key.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
  k = k.replace(/\/v[12]$/, '');
  const slash = k.indexOf('/');
  const host = slash >= 0 ? k.slice(0, slash) : k;
  const rest = slash >= 0 ? k.slice(slash) : '';
  const h = host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
  return h + rest;
}

function matchEntry(auths: Record<string, AuthEntry>, registry: string, repository: string, file: string): Credentials | undefined {
  const byKey = new Map<string, AuthEntry>();
  for (const [k, v] of Object.entries(auths)) byKey.set(normaliseAuthKey(k), v);
  // Most specific first: registry/ns/repo, registry/ns, registry.
  const parts = repository.split('/');
  const keys: string[] = [];
  for (let n = parts.length; n >= 1; n--) keys.push(`${registry}/${parts.slice(0, n).join('/')}`);
  keys.push(registry);
  for (const key of keys) {
    const entry = byKey.get(key);
    if (!entry) continue;
    const creds = decodeEntry(entry, `${file} (entry ${key})`);
    if (creds) return creds;
  }
  return undefined;
}

function decodeEntry(entry: AuthEntry, where: string): Credentials | undefined {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new StrataError(`${where}: "auth" is not base64 of USER:PASSWORD`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source: where };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password, source: where };
  }
  // identitytoken (OAuth refresh tokens) or credential helpers: not supported yet; an empty
  // entry means "no credentials here", as docker treats it.
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// WWW-Authenticate

export interface Challenge {
  /** Lower-cased scheme: `basic` or `bearer`. */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a WWW-Authenticate header (RFC 7235): one or more `Scheme k=v, k="quoted, \"v\""`
 * challenges. Parameter names are lower-cased; values are unquoted.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = (): void => { while (i < n && /[\s,]/.test(header[i]!)) i++; };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipSpace();
    const word = token();
    if (word === '') { i++; continue; }
    // `word` is a scheme unless followed by '=' (then it is a parameter of the current challenge).
    let j = i;
    while (j < n && header[j] === ' ') j++;
    if (header[j] === '=' && out.length > 0 && header[j + 1] !== '=') {
      i = j + 1;
      while (i < n && header[i] === ' ') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && header[i] !== ',' && !/\s/.test(header[i]!)) i++;
        value = header.slice(start, i);
      }
      out[out.length - 1]!.params[word.toLowerCase()] = value;
    } else {
      out.push({ scheme: word.toLowerCase(), params: {} });
    }
  }
  return out;
}

/** The scope string a token request names: `repository:team/app:pull,push`. */
export function repositoryScope(repository: string, actions: readonly ('pull' | 'push')[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** Bearer tokens by scope set, kept until shortly before they expire. */
export class TokenCache {
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  static key(scopes: readonly string[]): string {
    return [...scopes].sort().join(' ');
  }

  get(scopes: readonly string[], now = Date.now()): string | undefined {
    const e = this.tokens.get(TokenCache.key(scopes));
    return e && e.expiresAt > now ? e.token : undefined;
  }

  set(scopes: readonly string[], token: string, expiresInSeconds: number, now = Date.now()): void {
    // Renew 10 s early so a token does not expire between check and use; the spec's minimum is 60 s.
    const life = Math.max(expiresInSeconds, 60) * 1000 - 10_000;
    this.tokens.set(TokenCache.key(scopes), { token, expiresAt: now + life });
  }

  delete(scopes: readonly string[]): void {
    this.tokens.delete(TokenCache.key(scopes));
  }
}

export function basicAuthorization(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`;
}
