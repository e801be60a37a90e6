import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

/** sha256 hex of a file's bytes. */
export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * Every member of a tar (name → sha256 of its body), read with GNU tar, not with strata's code,
 * so that a test compares what an independent reader sees.
 */
export function tarMembers(archive: string): Map<string, string> {
  const list = spawnSync('tar', ['-tf', archive], { encoding: 'utf8' });
  if (list.status !== 0) throw new Error(`tar -tf ${archive}: ${list.stderr}`);
  const out = new Map<string, string>();
  for (const name of list.stdout.split('\n').filter(Boolean)) {
    if (name.endsWith('/')) {
      out.set(name, 'dir');
      continue;
    }
    const body = spawnSync('tar', ['-xOf', archive, name], { maxBuffer: 1 << 30 });
    out.set(name, createHash('sha256').update(body.stdout).digest('hex'));
  }
  return out;
}

/** Reads one member of a tar as text (GNU tar). */
export function tarMemberText(archive: string, name: string): string {
  const r = spawnSync('tar', ['-xOf', archive, name], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`tar -xOf ${archive} ${name}: ${r.stderr}`);
  return r.stdout;
}

/** Every file under a directory (relative path → sha256), for comparing OCI layout directories. */
export function treeDigests(dir: string, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(join(dir, rel)).isDirectory()) for (const [k, v] of treeDigests(dir, rel)) out.set(k, v);
    else out.set(rel, sha256File(join(dir, rel)));
  }
  return out;
}
