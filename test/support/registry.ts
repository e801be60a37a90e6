/**
 * A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a
 * temporary config and storage, optionally behind htpasswd basic auth or TLS. Installed with apt
 * when missing, so a fresh machine runs these tests instead of skipping them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { ensurePackages } from './tools.js';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StartedRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  /** Where blobs and manifests are stored (reuse it with `storageDir` to restart the same registry). */
  storageDir: string;
  /** Stops the registry (SIGTERM, waits for exit) and removes its temporary files (not a caller-given storageDir). */
  stop(): Promise<void>;
  /** SIGKILL at once: the "registry died mid-push" case. */
  kill(): void;
  /** The registry's own log so far, for failure messages. */
  log(): string;
}

export interface RegistryStartOptions {
  htpasswd?: { user: string; pass: string };
  /** Reuse this storage (a restart after kill()). */
  storageDir?: string;
  /** Listen on this port instead of a free one. */
  port?: number;
  /** Serve HTTPS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
}

/** Installs docker-registry and apache2-utils (htpasswd) unless present (apt runs under the shared test lock). */
export function ensureRegistryTools(): Promise<void> {
  return ensurePackages(['docker-registry', 'apache2-utils', 'skopeo']);
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export async function startRegistry(opts: RegistryStartOptions = {}): Promise<StartedRegistry> {
  await ensureRegistryTools();
  const work = mkdtempSync(join(tmpdir(), 'strata-registry-'));
  const storageDir = opts.storageDir ?? join(work, 'storage');
  mkdirSync(storageDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const host = `127.0.0.1:${port}`;

  let auth = '';
  if (opts.htpasswd) {
    const r = spawnSync('htpasswd', ['-Bbn', opts.htpasswd.user, opts.htpasswd.pass], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
    writeFileSync(join(work, 'htpasswd'), r.stdout);
    auth = `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${join(work, 'htpasswd')}\n`;
  }
  const tls = opts.tls ? `  tls:\n    certificate: ${opts.tls.cert}\n    key: ${opts.tls.key}\n` : '';
  // A fixed http.secret keeps upload-session state valid across a restart on the same storage.
  const config = `version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${storageDir}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${host}
  secret: strata-test-secret
${tls}${auth}`;
  writeFileSync(join(work, 'config.yml'), config);

  const logFile = join(work, 'registry.log');
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn('docker-registry', ['serve', join(work, 'config.yml')], { stdio: ['ignore', fd, fd] });
  let exited = false;
  const exitPromise = new Promise<void>((res) => child.on('exit', () => { exited = true; res(); }));
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  // Ready when /v2/ answers anything over plain HTTP (a TLS registry answers 400 to it).
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`docker-registry exited at start:\n${log()}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`docker-registry did not answer on ${host} within 30 s:\n${log()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    host,
    port,
    storageDir,
    log,
    kill(): void {
      if (!exited) child.kill('SIGKILL');
    },
    async stop(): Promise<void> {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exitPromise;
        clearTimeout(t);
      }
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** A self-signed certificate for 127.0.0.1/localhost, for the "registry requires TLS" case. */
export function selfSignedCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { cert, key };
}
