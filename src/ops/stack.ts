import { checkStack, produceStack } from '../builder/stack.js';
import { checkProducibleCompression } from '../compress/compression.js';
import { assembleImage } from '../image/assemble.js';
import type { Shadow } from '../image/conflicts.js';
import { LayerScanner } from '../image/layer-scan.js';
import { manifestOf } from '../image/manifest.js';
import type { Image } from '../image/image.js';
import { imagePath } from '../image/image-path.js';
import { planStack, stackTemplate, type StackPlan, type StackSource } from '../image/stack.js';
import { defaultCompression } from '../transports/open-destination.js';
import { openImageSource } from '../transports/open-source.js';
import { parseLocalReference } from '../transports/reference.js';
import type { ImageSource } from '../transports/types.js';
import { StrataError } from '../util/errors.js';
import { openOutput, type OutputRequest, writing } from './commit.js';
import { defaultCreated, resolveEpoch } from './defaults.js';
import type { SourceAccess } from './inputs.js';

/** An image to stack or import, and the absolute image path its filesystem goes to (default `/`). */
export interface StackSourceRef {
  readonly ref: string;
  readonly at?: string;
}

/** `SRC[=DEST]` as the CLI spells a stack source or an --import: DEST an absolute image path. */
export function parseStackSource(arg: string, flag: string): StackSourceRef {
  const eq = arg.lastIndexOf('=');
  if (eq <= 0) return { ref: arg };
  const at = arg.slice(eq + 1);
  // Checked here, with the flag named, so a bad DEST fails before any image is opened.
  imagePath(at, `${flag} ${arg}`, { allowRoot: true });
  return { ref: arg.slice(0, eq), at };
}

/** Opened stack sources; `close` releases them all. */
export interface OpenedSources {
  readonly sources: StackSource[];
  close(): Promise<void>;
}

/** Opens every source (the platform chosen as for --from), closing the ones opened when one fails. */
export async function openStackSources(refs: readonly StackSourceRef[], squash: boolean, access: SourceAccess, flag: string): Promise<OpenedSources> {
  const opened: ImageSource[] = [];
  const close = async () => void (await Promise.all(opened.map((s) => s.close())));
  try {
    const sources: StackSource[] = [];
    for (const r of refs) {
      const at = imagePath(r.at ?? '/', `${flag} ${r.ref}`, { allowRoot: true });
      const source = await openImageSource(r.ref, access);
      opened.push(source);
      sources.push({ name: source.name, label: await historyLabel(r.ref, source.image), image: source.image, at, squash });
    }
    return { sources, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * A source as the history names it. A registry reference is a global name; a local image is
 * named by its name in the archive or layout and its config digest — not by the host path it was
 * read from, which differs between machines and CI runs and would make the output differ too.
 */
async function historyLabel(ref: string, image: Image): Promise<string> {
  if (ref.startsWith('docker://')) return ref;
  const local = await parseLocalReference(ref);
  const transport = local?.transport ?? 'image';
  return `${transport}${local?.name ? ` ${local.name}` : ''} (config ${image.configDigest})`;
}

/** Everything a stack takes, typed; the settings go on top of the last source's config. */
export interface StackRequest extends OutputRequest, SourceAccess {
  /** The images, bottom first. */
  readonly sources: readonly StackSourceRef[];
  /** Merge each source's layers into one, applying its whiteouts. */
  readonly squash?: boolean;
  /** Let an upper source replace a lower one's file (reported in `shadowed`) instead of failing. */
  readonly allowShadow?: boolean;
}

export interface StackSummary {
  readonly destination: string;
  readonly manifestDigest: string;
  readonly image: Image;
  readonly plan: StackPlan;
  readonly shadowed: readonly Shadow[];
}

/**
 * Stacks images into one: the sources' layers in order, bottom first, each kept byte for byte
 * where it stays at `/` (so its digest and every signature over it hold), rewritten where it is
 * placed elsewhere or squashed; layers already lower in the stack are not repeated; the config is
 * the last source's with the settings on top. Sources that shadow each other's files fail the
 * stack before anything is written, unless `allowShadow`.
 */
export async function stack(request: StackRequest): Promise<StackSummary> {
  return writing(request.output, () => stackUnguarded(request));
}

async function stackUnguarded(request: StackRequest): Promise<StackSummary> {
  if (request.sources.length === 0) throw new StrataError('nothing to stack: name at least one image');
  const compression = request.compression ?? defaultCompression(request.output, request.format);
  checkProducibleCompression(compression);
  const mtime = request.mtime ?? resolveEpoch('--mtime', undefined);
  const opened = await openStackSources(request.sources, request.squash ?? false, request, 'stack');
  try {
    const plan = planStack(opened.sources);
    const checked = await checkStack(plan, new LayerScanner(), { allowShadow: request.allowShadow ?? false });
    const dest = await openOutput(request.output, {
      ...(request.format ? { format: request.format } : {}),
      compression,
      mtime,
      registry: request.registry ?? {},
      sources: request.sources.map((s) => s.ref),
      ...(request.progress ? { progress: request.progress } : {}),
    });
    try {
      const layers = await produceStack(checked, dest, { compression, mtime });
      const settings = { ...request.settings, created: request.settings?.created ?? defaultCreated() };
      const image = assembleImage(stackTemplate(plan), layers, settings);
      await dest.commit(image, request.tags ?? []);
      return { destination: dest.name, manifestDigest: manifestOf(image).digest, image, plan, shadowed: checked.shadowed };
    } catch (e) {
      await dest.abort();
      throw e;
    }
  } finally {
    await opened.close();
  }
}
