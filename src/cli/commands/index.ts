import type { ImageIndex } from '../../image/image.js';
import { parsePlatform, type Platform } from '../../image/platform.js';
import { StrataError } from '../../util/errors.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';
import { keyValues } from '../settings.js';

/** What every `strata index` subcommand may be given (yargs fills what the subcommand defines). */
export interface IndexArgs extends RegistryArgs {
  action: 'create' | 'append' | 'remove' | 'filter';
  output?: string;
  destination?: string;
  source?: string;
  sources?: string[];
  platform?: string[];
  exclude?: string[];
  annotation?: string[];
  'manifest-annotation'?: string[];
  format?: 'oci' | 'docker';
  flatten?: boolean;
  replace?: boolean;
  json: boolean;
}

export async function runIndex(args: IndexArgs): Promise<number> {
  const ops = await import('../../ops/index.js');
  const access = { registry: registryOptions(args) };
  const shape = {
    ...(args.format ? { format: args.format } : {}),
    ...(args.annotation?.length ? { annotations: keyValues('--annotation', args.annotation)! } : {}),
    ...(args.flatten === false ? { noFlatten: true } : {}),
  };
  let result;
  switch (args.action) {
    case 'create':
      result = await ops.createIndex(required(args.output, '-o'), sourceRefs(args), { ...shape, ...access });
      break;
    case 'append':
      result = await ops.appendIndex(required(args.destination, 'DEST'), sourceRefs(args), { ...shape, ...access, ...(args.replace ? { replace: true } : {}) });
      break;
    case 'remove':
      result = await ops.removeFromIndex(required(args.destination, 'DEST'), platforms(args.platform, '--platform', true), access);
      break;
    case 'filter':
      result = await ops.filterIndex(required(args.source, 'SRC'), required(args.output, '-o'), platforms(args.platform, '--platform', false), platforms(args.exclude, '--exclude', false), access);
      break;
  }
  await report(result.destination, result.index, args.json);
  return 0;
}

async function report(destination: string, index: ImageIndex, json: boolean): Promise<void> {
  const { describeIndex } = await import('../../ops/inspect.js');
  const { children } = describeIndex(destination, index);
  // What went over the wire: children already in the registry cost no blob bytes.
  const upload = destination.startsWith('docker://') ? { upload: { ...(await import('../../transports/registry/client.js')).registryStats } } : {};
  if (json) process.stdout.write(`${JSON.stringify({ destination, digest: index.manifest.digest, mediaType: index.manifest.mediaType, children, ...upload }, null, 2)}\n`);
  else process.stdout.write(`wrote ${destination}: index ${index.manifest.digest} with ${children.length} children (${children.map((c) => c.platform ?? 'no platform').join(', ')})\n`);
}

function required(v: string | undefined, what: string): string {
  if (v === undefined || v === '') throw new StrataError(`missing ${what}`);
  return v;
}

/**
 * The sources with their `--platform SRC=P` and `--manifest-annotation SRC=K=V`. SRC is matched
 * exactly against the sources as given, so a typo is named rather than ignored.
 */
function sourceRefs(args: IndexArgs) {
  const sources = args.sources ?? [];
  const platformOf = new Map<string, Platform>();
  for (const v of args.platform ?? []) {
    const [src, p] = splitSource(v, '--platform', sources);
    if (platformOf.has(src)) throw new StrataError(`--platform ${src}: given twice`);
    platformOf.set(src, parsePlatform(p, `--platform ${src}=`));
  }
  const annotationsOf = new Map<string, Record<string, string>>();
  for (const v of args['manifest-annotation'] ?? []) {
    const [src, kv] = splitSource(v, '--manifest-annotation', sources);
    annotationsOf.set(src, { ...(annotationsOf.get(src) ?? {}), ...keyValues('--manifest-annotation', [kv])! });
  }
  return sources.map((ref) => ({ ref, ...(platformOf.has(ref) ? { platform: platformOf.get(ref)! } : {}), ...(annotationsOf.has(ref) ? { annotations: annotationsOf.get(ref)! } : {}) }));
}

/** `SRC=REST`, SRC being one of the sources (references may hold `=` only after the source's own text). */
function splitSource(v: string, flag: string, sources: readonly string[]): [string, string] {
  const src = [...sources].sort((a, b) => b.length - a.length).find((s) => v.startsWith(`${s}=`));
  if (src === undefined) throw new StrataError(`${flag} ${JSON.stringify(v)}: expected SRC=VALUE with SRC one of the sources (${sources.join(', ') || 'none given'})`);
  return [src, v.slice(src.length + 1)];
}

function platforms(values: readonly string[] | undefined, flag: string, needOne: boolean): Platform[] {
  const out = (values ?? []).map((v) => parsePlatform(v, flag));
  if (needOne && out.length === 0) throw new StrataError(`${flag}: name at least one platform to remove`);
  return out;
}
