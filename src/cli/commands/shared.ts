import type { ClosureInput } from '../../ops/inputs.js';
import { parsePlatform } from '../../image/platform.js';
import { registryOptions, type RegistryArgs } from './registry-flags.js';

export interface ClosureArgs extends RegistryArgs {
  closure: string;
  'store-dir'?: string;
  root?: string[];
  'max-layers': number;
  layering: 'popularity' | 'auto' | 'stable';
  from?: string;
  platform?: string;
  previous?: string;
  'plan-in'?: string;
  json: boolean;
}

/** The closure flags as the library's ClosureInput. */
export function closureInput(args: ClosureArgs): ClosureInput {
  return {
    closure: args.closure,
    ...(args['store-dir'] ? { storeDir: args['store-dir'] } : {}),
    ...(args.root?.length ? { roots: args.root } : {}),
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
