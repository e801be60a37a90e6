import type { LayeringStrategy } from '../../layering/types.js';
import type { ClosureInput } from '../../ops/inputs.js';
import { parsePlatform } from '../../image/platform.js';
import { StrataError } from '../../util/errors.js';
import type { OutputFormat } from '../../transports/open-destination.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';

export interface ClosureArgs extends RegistryArgs {
  closure?: string;
  'store-dir'?: string;
  root?: string[];
  'max-layers': number;
  layering: LayeringStrategy;
  from?: string;
  platform?: string;
  previous?: string;
  'plan-in'?: string;
  'nix-store'?: string;
  json: boolean;
}

/** The closure flags as the library's ClosureInput (`strata plan` demands the closure; `build` may go without). */
export function closureInput(args: ClosureArgs): Omit<ClosureInput, 'closure'> & { closure?: string } {
  return {
    ...(args.closure !== undefined ? { closure: args.closure } : {}),
    ...(args['store-dir'] ? { storeDir: args['store-dir'] } : {}),
    ...(args.root?.length ? { roots: args.root } : {}),
    ...(args['nix-store'] ? { nixStore: args['nix-store'] } : {}),
  };
}

/** Options for opening an image named on the command line: platform choice and registry access. */
export function sourceOptions(args: RegistryArgs & { platform?: string }) {
  return { ...(args.platform ? { platform: parsePlatform(args.platform, '--platform') } : {}), registry: registryOptions(args) };
}

export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** The flags of a command that writes a new image: where, in what form, under which names. */
export interface OutputArgs {
  output?: string;
  push?: string;
  format: OutputFormat;
  compress?: 'none' | 'gzip' | 'zstd';
  tag?: string[];
  mtime?: string;
  progress?: 'auto' | 'tty' | 'plain' | 'none';
}

/** What every command that writes an image reports first in its --json summary. */
export function writtenImage(result: { destination: string; manifestDigest: string; image: { configDigest: string } }) {
  return { output: result.destination, imageId: result.image.configDigest, manifestDigest: result.manifestDigest };
}

/** Where a command's report goes: stderr when the image itself goes to stdout (`-o -`). */
export function reportStream(args: { output?: string }): NodeJS.WriteStream {
  return args.output === '-' ? process.stderr : process.stdout;
}

/** `-o REF` or `--push REF` (which is `-o docker://REF`): exactly one of them. */
export function outputOf(args: { output?: string; push?: string }): string {
  if (!args.output && !args.push) throw new StrataError('no output: pass -o FILE|DIR|- or --push REGISTRY/REPO:TAG');
  if (args.output && args.push) throw new StrataError('give either -o or --push, not both');
  return args.push ? (args.push.startsWith('docker://') ? args.push : `docker://${args.push}`) : args.output!;
}

/** What went over the wire to a registry output: lets CI see that an unchanged re-push uploaded nothing. */
export async function uploadStats(output: string): Promise<object> {
  if (!output.startsWith('docker://')) return {};
  return { upload: { ...(await import('../../transports/registry/client.js')).registryStats } };
}

/** With --allow-shadow, what the upper images replaced is listed on stderr (stdout may be an image). */
export function reportShadowed(shadowed: readonly { path: string; lower: string; upper: string }[]): void {
  for (const s of shadowed) process.stderr.write(`strata: /${s.path} of ${s.lower} is shadowed by ${s.upper}\n`);
}

/** The customisation-layer and import flags, shared by `build` and `compose`. */
export interface CustomisationArgs {
  add?: string[];
  bin?: string[];
  symlink?: string[];
  remove?: string[];
  import?: string[];
  squash: boolean;
  'allow-shadow': boolean;
}

/** `--add`, `--symlink` and `--remove` parsed (`--bin` is a store path to build, a package name to compose). */
export async function customisationOf(args: CustomisationArgs) {
  const { parseAdd, parseSymlink } = await import('../../builder/customisation.js');
  return { adds: (args.add ?? []).map(parseAdd), symlinks: (args.symlink ?? []).map(parseSymlink), removes: args.remove ?? [] };
}

/** `--import SRC[=DEST]...`, `--squash` and `--allow-shadow` as a request's fields. */
export async function importsOf(args: CustomisationArgs) {
  const { parseStackSource } = await import('../../ops/stack.js');
  return { imports: (args.import ?? []).map((i) => parseStackSource(i, '--import')), squash: args.squash, allowShadow: args['allow-shadow'] };
}

/**
 * A `KEY=VALUE` flag value split at its last `=` (a key may hold `=`, as a regex can; a value
 * never does), both sides non-empty; otherwise an error naming FLAG, the value and EXPECTED.
 */
function splitAssignment(flag: string, value: string, expected: string): [string, string] {
  const eq = value.lastIndexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw new StrataError(`${flag} ${JSON.stringify(value)}: expected ${expected}`);
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/** The image-store flags of `embed` and `build --embed`. */
export interface StoreArgs {
  store?: string;
  whiteouts?: 'refuse' | 'chardev' | 'ostree';
  'max-app-layers'?: number;
  name?: string[];
}

/** The store flags as a StoreRequest's fields (`--name SRC=NAME:TAG` split at its last `=`). */
export function storeOptions(args: StoreArgs) {
  const names: Record<string, string> = {};
  for (const n of args.name ?? []) {
    const [src, name] = splitAssignment('--name', n, 'SRC=NAME:TAG, SRC one of the images to embed');
    names[src] = name;
  }
  return {
    ...(args.store !== undefined ? { store: args.store } : {}),
    ...(args.whiteouts !== undefined ? { whiteouts: args.whiteouts } : {}),
    ...(args['max-app-layers'] !== undefined ? { maxAppLayers: args['max-app-layers'] } : {}),
    ...(Object.keys(names).length > 0 ? { names } : {}),
  };
}

/** The ownership flags of `build`. */
export interface OwnershipArgs {
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  chown?: string[];
  chmod?: string[];
  perms?: string[];
}

/**
 * `--uid/--gid/--uname/--gname` (every new entry), `--perms REGEX=MODE[:UID:GID]` (store files),
 * `--chown PATH=UID:GID[:recursive]` and `--chmod PATH=MODE[:recursive]` (customisation layer).
 */
export async function ownershipOf(args: OwnershipArgs) {
  const { checkId, checkName, parseMode } = await import('../../tar/ownership.js');
  const { imagePath } = await import('../../image/image-path.js');
  const id = (flag: string, s: string | undefined) => (s === undefined || s === '' ? undefined : checkId(/^\d+$/.test(s) ? Number(s) : NaN, flag));
  const given = args.uid !== undefined || args.gid !== undefined || args.uname !== undefined || args.gname !== undefined;
  const owner = given
    ? { uid: checkId(args.uid ?? 0, '--uid'), gid: checkId(args.gid ?? 0, '--gid'), uname: checkName(args.uname ?? 'root', '--uname'), gname: checkName(args.gname ?? 'root', '--gname') }
    : undefined;
  const perms = (args.perms ?? []).map((v) => {
    const [pattern, rest] = splitAssignment('--perms', v, 'REGEX=MODE[:UID:GID]');
    try {
      new RegExp(pattern);
    } catch (e) {
      throw new StrataError(`--perms ${JSON.stringify(v)}: ${(e as Error).message}`);
    }
    const [mode, uid, gid] = rest.split(':');
    return { pattern, mode: parseMode(mode!, '--perms'), ...(uid ? { uid: id('--perms', uid)! } : {}), ...(gid ? { gid: id('--perms', gid)! } : {}) };
  });
  const chown = (args.chown ?? []).map((v) => {
    const [path, rest] = splitAssignment('--chown', v, 'PATH=UID:GID[:recursive]');
    const [uid, gid, rec, ...extra] = rest.split(':');
    if (extra.length > 0 || (rec !== undefined && rec !== 'recursive') || uid === undefined || gid === undefined) throw new StrataError(`--chown ${JSON.stringify(v)}: expected PATH=UID:GID[:recursive]`);
    return { path: imagePath(path, '--chown'), recursive: rec === 'recursive', uid: id('--chown', uid)!, gid: id('--chown', gid)! };
  });
  const chmod = (args.chmod ?? []).map((v) => {
    const [path, rest] = splitAssignment('--chmod', v, 'PATH=MODE[:recursive]');
    const [mode, rec, ...extra] = rest.split(':');
    if (extra.length > 0 || (rec !== undefined && rec !== 'recursive')) throw new StrataError(`--chmod ${JSON.stringify(v)}: expected PATH=MODE[:recursive]`);
    return { path: imagePath(path, '--chmod'), recursive: rec === 'recursive', mode: parseMode(mode!, '--chmod') };
  });
  return {
    ...(owner || perms.length > 0 ? { ownership: { ...(owner ? { owner } : {}), ...(perms.length > 0 ? { perms } : {}) } } : {}),
    paths: [...chown, ...chmod],
  };
}
