import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Digest } from '../image/digest.js';
import { LayerScanner } from '../image/layer-scan.js';
import { squashLayers } from '../builder/squash.js';
import { openImageSource } from '../transports/open-source.js';
import { requireParent, tempBeside } from '../util/output-path.js';
import { holdTemp, releaseTemp } from '../util/temp-paths.js';
import type { SourceAccess } from './inputs.js';

export interface ExportRequest extends SourceAccess {
  /** The image: any reference `--from` takes. */
  readonly image: string;
  /** The tar file to write, or `-` for stdout. */
  readonly output: string;
}

export interface ExportSummary {
  readonly source: string;
  /** sha256 of the tar written. */
  readonly digest: Digest;
  readonly size: number;
  readonly layers: number;
}

/**
 * The image's filesystem as one tar, as dockerTools.exportImage gives it: the layers applied
 * bottom up with their whiteouts (deleted paths gone, opaque directories emptied of what was
 * below), each remaining path once, as its topmost layer has it. Every member keeps its header
 * fields, in layer order, so the tar depends only on the layers: the same image exports to the
 * same bytes. Each layer is read twice, streaming: once for which member of each path wins, once
 * to write. Written beside the output (or in TMPDIR for stdout) and renamed, so a failed export
 * leaves nothing.
 */
export async function exportImage(request: ExportRequest): Promise<ExportSummary> {
  const toStdout = request.output === '-';
  if (!toStdout) await requireParent(request.output);
  const source = await openImageSource(request.image, request);
  const temp = toStdout
    ? join(tmpdir(), `strata-export-${randomBytes(6).toString('hex')}.tar`)
    : tempBeside(request.output);
  holdTemp(temp);
  try {
    const layers = source.image.layers;
    const squash = await squashLayers(layers, (l) => `layer ${l.digest} of ${source.name}`, new LayerScanner());
    const hash = createHash('sha256');
    let size = 0;
    const tar = Readable.from((async function* () {
      for await (const chunk of squash.tar()) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    })());
    await pipeline(tar, createWriteStream(temp, { flags: 'wx', mode: 0o644 }));
    if (toStdout) {
      await pipeline(createReadStream(temp), process.stdout, { end: false });
      await rm(temp, { force: true });
    } else {
      await rename(temp, request.output);
    }
    releaseTemp(temp);
    return { source: source.name, digest: `sha256:${hash.digest('hex')}`, size, layers: layers.length };
  } catch (e) {
    await rm(temp, { force: true });
    releaseTemp(temp);
    throw e;
  } finally {
    await source.close();
  }
}
