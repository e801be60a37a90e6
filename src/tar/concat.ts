/**
 * Several layer tars as one, every member's bytes exactly as stored. Made for store layers: each
 * single-path layer starts with the same `nix/` and `nix/store/` directories and then holds one
 * store path, so their members concatenated in store-path order, those directories once, are
 * byte for byte the layer strata writes for all those paths together — a merged layer equals the
 * built one. A repeated directory is skipped (the first one stands); any other name in two inputs
 * is an error, since one input would silently replace the other. Runs are marked as the builder
 * cuts them (segments.ts): the leading directories, each store path, the end of the archive.
 */
import { StrataError } from '../util/errors.js';
import { END_OF_ARCHIVE } from './header.js';
import { paddedBody, readTarStream } from './read-stream.js';
import { checkMemberName } from './read.js';
import { RUN_START, storeMemberPrefix, storePathMember } from './segments.js';
import type { TarInput } from './rewrite.js';

export async function* concatTars(inputs: readonly TarInput[], storeDir: string): AsyncGenerator<Buffer | typeof RUN_START> {
  const seen = new Map<string, string>();
  const prefix = storeMemberPrefix(storeDir);
  let run: string | undefined | null = null; // null: nothing written yet
  for (const input of inputs) {
    for await (const m of readTarStream(await input.open(), input.what)) {
      const name = checkMemberName(m.header.name, input.what);
      const first = seen.get(name);
      if (first !== undefined) {
        if (m.type === 'directory') continue;
        throw new StrataError(`${input.what}: ${JSON.stringify(name)} is also in ${first}; layers that share files cannot be merged`);
      }
      seen.set(name, input.what);
      // A member's run: the store path it lies in, or none (the store directory's parents).
      const r = storePathMember(name, prefix);
      if (r !== run) yield RUN_START;
      run = r;
      yield m.raw;
      yield* paddedBody(m);
    }
  }
  yield RUN_START;
  yield Buffer.alloc(END_OF_ARCHIVE);
}
