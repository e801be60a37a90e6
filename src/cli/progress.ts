/**
 * What the CLI shows while an image is written: `--progress auto` (the default) draws one status
 * line on stderr when stderr is a terminal and --json was not asked for; `tty` always draws it;
 * `plain` prints a line per layer (for CI logs); `none` prints nothing. Always on stderr, never on
 * stdout, where the image (`-o -`) or the JSON summary goes.
 */
import type { ProgressSink } from '../transports/progress.js';
import { humanSize } from './commands/shared.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'none';
export const PROGRESS_MODES: readonly ProgressMode[] = ['auto', 'tty', 'plain', 'none'];

export function progressSink(mode: ProgressMode, json: boolean, out: NodeJS.WriteStream = process.stderr): ProgressSink | undefined {
  const resolved = mode === 'auto' ? (out.isTTY && !json ? 'tty' : 'none') : mode;
  if (resolved === 'none') return undefined;
  if (resolved === 'plain') {
    return {
      layer: ({ layers, bytes, size }) => void out.write(`strata: layer ${layers} written (${humanSize(size)}), ${humanSize(bytes)} so far\n`),
      bytes: () => undefined,
      end: (committed) => void out.write(committed ? 'strata: committed\n' : 'strata: aborted\n'),
    };
  }
  let layers = 0;
  let last = 0;
  let drawn = false;
  const draw = (bytes: number, force = false) => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    drawn = true;
    out.write(`\r\x1b[Kstrata: ${layers} layer${layers === 1 ? '' : 's'}, ${humanSize(bytes)} written`);
  };
  return {
    layer: (d) => {
      layers = d.layers;
      draw(d.bytes, true);
    },
    bytes: (total) => draw(total),
    end: () => {
      if (drawn) out.write('\r\x1b[K');
    },
  };
}
