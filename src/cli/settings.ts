import { rfc3339, type ImageSettings } from '../image/assemble.js';
import { StrataError } from '../util/errors.js';
import { defaultArchitecture, resolveEpoch } from '../ops/defaults.js';

export { defaultArchitecture, resolveEpoch };

/**
 * Turning flag values into library options. Kept apart from the yargs wiring so each rule
 * (how a timestamp, a KEY=VALUE, or an argv list is spelled) lives in one place.
 */

/** An argv list flag: a JSON array (`'["/bin/sh","-c","x"]'`) or repeated flags, one element each. */
export function argvList(flag: string, values: readonly string[] | undefined): string[] | undefined {
  if (!values || values.length === 0) return undefined;
  if (values.length === 1 && values[0]!.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values[0]!);
    } catch (err) {
      throw new StrataError(`${flag}: ${JSON.stringify(values[0])} is not a JSON array: ${(err as Error).message}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) throw new StrataError(`${flag}: expected a JSON array of strings`);
    return parsed;
  }
  return [...values];
}

/** `KEY=VALUE` flags (labels) to a record; a repeated key keeps its last value. */
export function keyValues(flag: string, values: readonly string[] | undefined): Record<string, string> | undefined {
  if (!values || values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const kv of values) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new StrataError(`${flag} ${JSON.stringify(kv)}: expected KEY=VALUE`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** `--env` entries, checked for the KEY=VALUE shape (order kept: it is part of the config). */
export function envList(values: readonly string[] | undefined): string[] | undefined {
  if (!values || values.length === 0) return undefined;
  for (const kv of values) if (kv.indexOf('=') <= 0) throw new StrataError(`--env ${JSON.stringify(kv)}: expected KEY=VALUE`);
  return [...values];
}

export interface ImageFlags {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  label?: string[];
  expose?: string[];
  volume?: string[];
  workdir?: string;
  user?: string;
  'stop-signal'?: string;
  author?: string;
  arch?: string;
  os?: string;
  variant?: string;
  created?: string;
}

/** The image settings a build's flags ask for. `inheritArch` leaves the architecture to the base. */
export function imageSettings(flags: ImageFlags, inheritPlatform: boolean): ImageSettings {
  const settings: ImageSettings = { created: rfc3339(resolveEpoch('--created', flags.created)) };
  const arch = flags.arch ?? (inheritPlatform ? undefined : defaultArchitecture());
  if (arch !== undefined) settings.architecture = arch;
  const os = flags.os ?? (inheritPlatform ? undefined : 'linux');
  if (os !== undefined) settings.os = os;
  if (flags.variant !== undefined) settings.variant = flags.variant;
  const entrypoint = argvList('--entrypoint', flags.entrypoint);
  if (entrypoint) settings.entrypoint = entrypoint;
  const cmd = argvList('--cmd', flags.cmd);
  if (cmd) settings.cmd = cmd;
  const env = envList(flags.env);
  if (env) settings.env = env;
  const labels = keyValues('--label', flags.label);
  if (labels) settings.labels = labels;
  if (flags.expose?.length) settings.exposedPorts = flags.expose;
  if (flags.volume?.length) settings.volumes = flags.volume;
  if (flags.workdir !== undefined) settings.workingDir = flags.workdir;
  if (flags.user !== undefined) settings.user = flags.user;
  if (flags['stop-signal'] !== undefined) settings.stopSignal = flags['stop-signal'];
  if (flags.author !== undefined) settings.author = flags.author;
  return settings;
}
