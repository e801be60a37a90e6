import { canonicalJsonBytes } from '../util/json.js';
import { StrataError } from '../util/errors.js';
import type { ContainerConfig, HistoryEntry, ImageConfig } from './config.js';
import { sha256Digest } from './digest.js';
import type { Image } from './image.js';
import type { Layer } from './layer.js';

/** What a user sets on the image (the `--entrypoint`, `--env`, ... flags). Unset fields inherit. */
export interface ImageSettings {
  architecture?: string;
  os?: string;
  variant?: string;
  /** RFC 3339 timestamp written as `created` of the image and of each new history entry. */
  created: string;
  author?: string;
  entrypoint?: string[];
  cmd?: string[];
  /** `KEY=VALUE` strings; a KEY already set by the base is replaced in place. */
  env?: string[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
  exposedPorts?: string[];
  volumes?: string[];
  stopSignal?: string;
}

/** A layer plus the history entry that describes it. */
export interface DescribedLayer {
  layer: Layer;
  createdBy: string;
  comment?: string;
  /** The whole entry, kept as it is (a layer carried from another image): createdBy and comment are then unused. */
  history?: HistoryEntry;
}

/**
 * Builds the image config the way `docker build` derives a child image from its parent:
 * runtime settings are inherited field by field and overridden by what the user set;
 * Env is merged by key, Labels/ExposedPorts/Volumes are merged, and setting an Entrypoint
 * without a Cmd clears the inherited Cmd (it was written for the old entrypoint).
 * Base history is kept and one entry per new layer is appended.
 */
export function assembleImage(
  base: Image | undefined,
  newLayers: readonly DescribedLayer[],
  settings: ImageSettings,
  annotations?: Record<string, string>,
): Image {
  const baseConfig = base?.config;
  const architecture = settings.architecture ?? baseConfig?.architecture;
  const os = settings.os ?? baseConfig?.os ?? 'linux';
  if (!architecture) throw new StrataError('no architecture: pass --arch');
  if (baseConfig && baseConfig.architecture !== architecture) {
    throw new StrataError(`base image is ${baseConfig.os}/${baseConfig.architecture} but the build asks for ${os}/${architecture}`);
  }
  if (baseConfig && baseConfig.os !== os) {
    throw new StrataError(`base image is for os ${baseConfig.os} but the build asks for ${os}`);
  }

  const layers = [...(base?.layers ?? []), ...newLayers.map((d) => d.layer)];
  const history: HistoryEntry[] = [...baseHistory(base)];
  for (const d of newLayers) {
    history.push(d.history ?? { created: settings.created, created_by: d.createdBy, ...(d.comment ? { comment: d.comment } : {}) });
  }

  const { history: _h, rootfs: _r, created: _c, config: _cc, ...baseRest } = baseConfig ?? ({} as Partial<ImageConfig>);
  const config: ImageConfig = {
    ...baseRest,
    architecture,
    os,
    ...(settings.variant ?? baseConfig?.variant ? { variant: settings.variant ?? baseConfig?.variant } : {}),
    ...(settings.author ?? baseConfig?.author ? { author: settings.author ?? baseConfig?.author } : {}),
    created: settings.created,
    config: mergeContainerConfig(baseConfig?.config, settings),
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history,
  };
  const configBytes = canonicalJsonBytes(config);
  return {
    config,
    configBytes,
    configDigest: sha256Digest(configBytes),
    layers,
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

/**
 * The base's history, made consistent with its layers: the spec requires as many non-empty
 * entries as layers, and some images carry no history at all. Missing entries are synthesised
 * so that our appended entries line up with our layers.
 */
function baseHistory(base: Image | undefined): HistoryEntry[] {
  if (!base) return [];
  const history = base.config.history ?? [];
  const nonEmpty = history.filter((h) => !h.empty_layer).length;
  if (nonEmpty === base.layers.length) return history;
  if (nonEmpty > base.layers.length) {
    throw new StrataError(`base image history lists ${nonEmpty} layers but the image has ${base.layers.length}`);
  }
  const missing = base.layers.length - nonEmpty;
  return [...Array.from({ length: missing }, () => ({ created_by: 'base layer (no history recorded)' })), ...history];
}

export function mergeContainerConfig(base: ContainerConfig | undefined, s: ImageSettings): ContainerConfig {
  const out: ContainerConfig = { ...(base ?? {}) };
  if (s.entrypoint) {
    out.Entrypoint = s.entrypoint;
    if (!s.cmd) delete out.Cmd;
  }
  if (s.cmd) out.Cmd = s.cmd;
  if (s.env) out.Env = mergeEnv(base?.Env ?? [], s.env);
  if (s.workingDir !== undefined) out.WorkingDir = s.workingDir;
  if (s.user !== undefined) out.User = s.user;
  if (s.stopSignal !== undefined) out.StopSignal = s.stopSignal;
  if (s.labels) out.Labels = { ...(base?.Labels ?? {}), ...s.labels };
  if (s.exposedPorts) out.ExposedPorts = { ...(base?.ExposedPorts ?? {}), ...asSet(s.exposedPorts.map(normalisePort)) };
  if (s.volumes) out.Volumes = { ...(base?.Volumes ?? {}), ...asSet(s.volumes) };
  return out;
}

/** Env merged by key: a key set again replaces the earlier value in place; new keys are appended. */
export function mergeEnv(base: readonly string[], extra: readonly string[]): string[] {
  const out = [...base];
  for (const kv of extra) {
    const key = envKey(kv);
    const i = out.findIndex((e) => envKey(e) === key);
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}

function envKey(kv: string): string {
  const eq = kv.indexOf('=');
  return eq < 0 ? kv : kv.slice(0, eq);
}

function normalisePort(p: string): string {
  if (!/^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/.test(p)) throw new StrataError(`invalid port ${JSON.stringify(p)}: expected PORT[/tcp|udp|sctp]`);
  return p.includes('/') ? p : `${p}/tcp`;
}

function asSet(keys: readonly string[]): Record<string, Record<string, never>> {
  return Object.fromEntries(keys.map((k) => [k, {}]));
}

/** Formats a unix timestamp (seconds) as the RFC 3339 string image configs use. */
export function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}
