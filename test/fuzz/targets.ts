/**
 * Fuzz targets (issue 19, part 2): every reader of untrusted input, fed generated and mutated
 * inputs. A target passes an input when the reader either accepts it or refuses it with a
 * StrataError that names the input (the culprit); any other exception — a TypeError, a RangeError,
 * an error that does not say which input — is a crash, and an input that takes too long is a hang.
 * The mutation corpus is made from real images strata builds of the bundled demo closure.
 */
import fc from 'fast-check';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { parseClosure } from '../../src/closure/read.js';
import { parsePlanFile } from '../../src/layering/plan-file.js';
import { readTarStream } from '../../src/tar/read-stream.js';
import { MemberChecks } from '../../src/tar/member-checks.js';
import { layerTar } from '../../src/image/layer-tar.js';
import { loadFrameCompressor } from '../../src/compress/zstd-block.js';
import type { Layer } from '../../src/image/layer.js';
import { openImageSource } from '../../src/transports/open-source.js';
import { createServer, type Server } from 'node:http';
import { parseRegistryReference } from '../../src/transports/registry/reference.js';
import { parsePlatform } from '../../src/image/platform.js';
import { parseTag } from '../../src/image/tag.js';
import { storeTarName } from '../../src/ops/embed.js';
import { StrataError } from '../../src/util/errors.js';
import { build } from '../../src/ops/build.js';
import { repoRoot } from '../support/paths.js';
import { tarBuffer } from '../transports-read/helpers.js';

/** A tar as strata's zstd writer frames it (one frame here: the corpus tars are small), kept per tar. */
const zstdFrames = new WeakMap<Buffer, Buffer>();
async function zstdOf(tar: Buffer): Promise<Buffer> {
  let z = zstdFrames.get(tar);
  if (z === undefined) {
    z = Buffer.from((await loadFrameCompressor())(tar.subarray(0, Math.min(tar.length, 1 << 20))));
    zstdFrames.set(tar, z);
  }
  return z;
}

export interface Target<T> {
  readonly name: string;
  readonly input: fc.Arbitrary<T>;
  /** Resolves when the input was handled; rejects with what the reader threw. */
  run(input: T): Promise<void>;
  /** The words a refusal must contain to name its culprit. */
  readonly culprit: (input: T) => string;
}

/** What a run of one input came to. */
export type Outcome = 'accepted' | 'refused' | { crash: string } | 'hang';

export async function attempt<T>(t: Target<T>, input: T, timeoutMs = 5000): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((res) => (timer = setTimeout(() => res('hang'), timeoutMs)));
  try {
    const r = await Promise.race([t.run(input).then(() => 'accepted' as const), hang]);
    return r;
  } catch (e) {
    if (!(e instanceof StrataError)) return { crash: `${(e as Error)?.constructor?.name}: ${(e as Error)?.stack ?? String(e)}` };
    if (!e.message.includes(t.culprit(input))) return { crash: `refusal does not name ${JSON.stringify(t.culprit(input))}: ${e.message}` };
    return 'refused';
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Mutations of bytes: flips, overwrites, truncation, insertion — what a damaged or crafted file is.

type Edit = { kind: 'flip' | 'set'; at: number; value: number } | { kind: 'cut'; at: number } | { kind: 'insert'; at: number; bytes: Uint8Array };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }) }),
);

/** Edits aimed at the first `focus` bytes (headers live there) more often than anywhere. */
function mutated(seed: Buffer, edits: readonly Edit[], focus = 4096): Buffer {
  let b = Buffer.from(seed);
  for (const e of edits) {
    if (b.length === 0) break;
    const at = e.at % (e.at % 3 === 0 ? b.length : Math.min(b.length, focus));
    if (e.kind === 'flip') b[at] = b[at]! ^ e.value;
    else if (e.kind === 'set') b[at] = e.value;
    else if (e.kind === 'cut') b = b.subarray(0, at);
    else if (e.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(e.bytes), b.subarray(at)]);
  }
  return b;
}

const edits = fc.array(edit, { minLength: 1, maxLength: 6 });

// ---------------------------------------------------------------------------------------------
// The corpus

export interface Corpus {
  readonly dir: string;
  readonly tars: readonly Buffer[];
  readonly archive: Buffer;
  readonly layout: string;
  /** A fake registry on 127.0.0.1 that answers with whatever `answer` says (the registry target sets it). */
  readonly registry: { host: string; answer: RegistryAnswer };
  close(): Promise<void>;
}

/** What the fake registry says: a token challenge or not, the token reply, the manifest and the config. */
export interface RegistryAnswer {
  challenge: string | undefined;
  token: string;
  manifest: { body: string; type: string; digest: string | undefined };
  config: string;
}

export async function makeCorpus(): Promise<Corpus> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-fuzz-'));
  const tars = [
    await tarBuffer([{ name: 'a/', type: 'directory' }, { name: 'a/b.txt', content: 'hello\n' }, { name: 'a/link', type: 'symlink', linkname: 'b.txt' }, { name: 'a/hard', type: 'link', linkname: 'a/b.txt' }]),
    await tarBuffer([{ name: `${'d'.repeat(120)}/${'f'.repeat(120)}`, content: 'x'.repeat(2000) }, { name: 'nix/store/aaaa-x/.wh.gone' }]),
  ];
  const demo = join(repoRoot, 'closures', 'demo');
  const archive = join(dir, 'seed.tar');
  await build({ closure: join(demo, 'closure.json'), storeRoot: join(demo, 'root'), output: archive, cache: false, tags: ['seed:1'], settings: { architecture: 'amd64' } });
  const layout = join(dir, 'seed-layout');
  await build({ closure: join(demo, 'closure.json'), storeRoot: join(demo, 'root'), output: `oci:${layout}:seed`, cache: false, settings: { architecture: 'amd64' } });
  const registry = { host: '', answer: { challenge: undefined, token: '{}', manifest: { body: '{}', type: 'application/json', digest: undefined }, config: '{}' } as RegistryAnswer };
  const server: Server = createServer((req, res) => {
    const a = registry.answer;
    if (req.url?.startsWith('/token')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(a.token);
    if (a.challenge != null && !req.headers.authorization) return void res.writeHead(401, { 'www-authenticate': a.challenge }).end();
    if (req.url === '/v2/') return void res.writeHead(200).end('{}');
    if (req.url?.includes('/manifests/')) return void res.writeHead(200, { 'content-type': a.manifest.type, ...(a.manifest.digest ? { 'docker-content-digest': a.manifest.digest } : {}) }).end(a.manifest.body);
    if (req.url?.includes('/blobs/')) return void res.writeHead(200).end(a.config);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  registry.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    dir, tars, archive: readFileSync(archive), layout, registry,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function drain(tar: AsyncIterable<Buffer>, what: string): Promise<void> {
  const checks = new MemberChecks(what);
  for await (const m of readTarStream(tar, what)) {
    checks.check(m.header.name, m.type, m.type === 'hardlink' ? m.header.linkname : undefined);
    for await (const _ of m.body()) void _;
  }
}

/** Reads every layer of the image `ref` names, to its end, as a build would. */
async function readImage(ref: string): Promise<void> {
  const source = await openImageSource(ref);
  try {
    for (const [i, l] of source.image.layers.entries()) await drain(layerTar(l, `layer ${i} of ${source.name}`), `layer ${i} of ${source.name}`);
  } finally {
    await source.close();
  }
}

let counter = 0;

export function targets(corpus: Corpus): Target<any>[] {
  const storePath = fc.stringMatching(/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[a-z0-9.+_-]{1,12}$/);
  const closureEntry = fc.record({
    path: fc.oneof(storePath, fc.string(), fc.constant('/nix/store/x')),
    references: fc.oneof(fc.array(fc.oneof(storePath, fc.string()), { maxLength: 4 }), fc.jsonValue()),
    narSize: fc.oneof(fc.nat(), fc.double(), fc.string(), fc.constant(undefined)),
    narHash: fc.oneof(fc.constant('sha256-' + 'A'.repeat(43) + '='), fc.string(), fc.constant(undefined)),
  }, { requiredKeys: ['path'] });
  const closureInput = fc.oneof(
    fc.jsonValue(),
    fc.array(closureEntry, { maxLength: 8 }),
    fc.record({ version: fc.oneof(fc.constant(1), fc.jsonValue()), paths: fc.array(closureEntry, { maxLength: 8 }), roots: fc.option(fc.array(fc.string())) }),
  );
  const planInput = fc.oneof(fc.jsonValue(), fc.array(fc.array(fc.oneof(storePath, fc.string()))), fc.record({ layers: fc.array(fc.record({ paths: fc.array(storePath) })) }));

  const tarInput = fc.record({ seed: fc.nat({ max: corpus.tars.length - 1 }), edits });
  const archiveFile = (bytes: Buffer): string => {
    const f = join(corpus.dir, `in-${process.pid}-${counter++}.tar`);
    writeFileSync(f, bytes);
    return f;
  };

  const jsonEdit = fc.record({ file: fc.constantFrom('index.json', 'manifest', 'config'), path: fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.nat({ max: 4 })), { maxLength: 3 }), value: fc.jsonValue({ maxDepth: 2 }) });

  return [
    {
      name: 'closure reader',
      input: closureInput,
      culprit: () => 'fuzz closure',
      run: async (input: unknown) => void parseClosure(input, 'fuzz closure'),
    },
    {
      name: 'plan file reader',
      input: planInput,
      culprit: () => 'fuzz plan',
      run: async (input: unknown) => void parsePlanFile(input, 'fuzz plan'),
    },
    {
      name: 'tar reader',
      input: tarInput,
      culprit: () => 'fuzz tar',
      run: async ({ seed, edits: e }: { seed: number; edits: Edit[] }) => drain(Readable.from([mutated(corpus.tars[seed]!, e)]), 'fuzz tar'),
    },
    {
      name: 'gzip layer reader',
      input: tarInput,
      culprit: () => 'fuzz layer',
      run: async ({ seed, edits: e }: { seed: number; edits: Edit[] }) => {
        const bytes = mutated(gzipSync(corpus.tars[seed]!), e, 64);
        const layer: Layer = { diffId: `sha256:${'0'.repeat(64)}`, digest: `sha256:${'0'.repeat(64)}`, size: bytes.length, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', compression: 'gzip', open: async () => Readable.from([bytes]) };
        await drain(layerTar(layer, 'fuzz layer'), 'fuzz layer');
      },
    },
    {
      name: 'zstd layer reader',
      input: tarInput,
      culprit: () => 'fuzz layer',
      run: async ({ seed, edits: e }: { seed: number; edits: Edit[] }) => {
        const bytes = mutated(await zstdOf(corpus.tars[seed]!), e, 64);
        const layer: Layer = { diffId: `sha256:${'0'.repeat(64)}`, digest: `sha256:${'0'.repeat(64)}`, size: bytes.length, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', compression: 'zstd', open: async () => Readable.from([bytes]) };
        await drain(layerTar(layer, 'fuzz layer'), 'fuzz layer');
      },
    },
    {
      name: 'docker-archive reader',
      input: edits,
      culprit: () => 'in-',
      run: async (e: Edit[]) => {
        const f = archiveFile(mutated(corpus.archive, e, 16384));
        try {
          await readImage(`docker-archive:${f}`);
        } finally {
          rmSync(f, { force: true });
        }
      },
    },
    {
      name: 'OCI layout reader',
      input: fc.array(jsonEdit, { minLength: 1, maxLength: 3 }),
      culprit: () => 'layout-',
      run: async (es: { file: string; path: (string | number)[]; value: unknown }[]) => {
        const dir = join(corpus.dir, `layout-${process.pid}-${counter++}`);
        cpSync(corpus.layout, dir, { recursive: true });
        try {
          const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
          const blob = (d: string) => join(dir, 'blobs', 'sha256', d.slice(7));
          const manifestFile = blob(index.manifests[0]!.digest);
          const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { config: { digest: string } };
          const files: Record<string, string> = { 'index.json': join(dir, 'index.json'), manifest: manifestFile, config: blob(manifest.config.digest) };
          for (const e of es) {
            const f = files[e.file]!;
            const doc = JSON.parse(readFileSync(f, 'utf8')) as unknown;
            writeFileSync(f, JSON.stringify(setAt(doc, e.path, e.value)));
          }
          await readImage(`oci:${dir}`);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
    {
      name: 'registry responses',
      input: fc.record({
        challenge: fc.option(fc.oneof(fc.string(), fc.constant(`Bearer realm="http://${corpus.registry.host}/token",service="fuzz",scope="repository:x/y:pull"`), fc.constant('Basic realm="x"'))),
        token: fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string(), fc.constant('{"token":"t"}')),
        manifest: fc.record({
          body: fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string(), jsonEditOf(seedManifest(corpus))),
          type: fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'text/html'),
          digest: fc.option(fc.oneof(fc.constant(`sha256:${'0'.repeat(64)}`), fc.string())),
        }),
        config: fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string(), fc.constant(seedConfig(corpus))),
      }) as fc.Arbitrary<RegistryAnswer>,
      culprit: () => corpus.registry.host,
      run: async (answer: RegistryAnswer) => {
        corpus.registry.answer = answer;
        const { openRegistrySource } = await import('../../src/transports/registry/index.js');
        const source = await openRegistrySource(`${corpus.registry.host}/x/y:1`, { retries: 0 });
        await source.close();
      },
    },
    {
      name: 'reference and flag parsers',
      input: fc.record({ which: fc.constantFrom('registry', 'platform', 'tag', 'store'), text: fc.oneof(fc.string(), fc.stringMatching(/^[a-z0-9./:@-]{0,40}$/)) }),
      culprit: ({ text }: { text: string }) => (text === '' ? '' : JSON.stringify(text).slice(1, -1).slice(0, 8)),
      run: async ({ which, text }: { which: string; text: string }) => {
        if (which === 'registry') parseRegistryReference(text);
        else if (which === 'platform') parsePlatform(text, '--platform');
        else if (which === 'tag') parseTag(text);
        else storeTarName(text);
      },
    },
  ];
}

/** The seed image's manifest, as the registry target mutates it. */
function seedManifest(corpus: Corpus): unknown {
  const index = JSON.parse(readFileSync(join(corpus.layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  return JSON.parse(readFileSync(join(corpus.layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8'));
}

/** The seed image's config bytes (what its manifest's config digest names). */
function seedConfig(corpus: Corpus): string {
  const manifest = seedManifest(corpus) as { config: { digest: string } };
  return readFileSync(join(corpus.layout, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8');
}

/** JSON text of `doc` with up to three fields replaced by generated values. */
function jsonEditOf(doc: unknown): fc.Arbitrary<string> {
  return fc.array(fc.record({ path: fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.nat({ max: 4 })), { maxLength: 3 }), value: fc.jsonValue({ maxDepth: 2 }) }), { maxLength: 3 })
    .map((es) => JSON.stringify(es.reduce((d, e) => setAt(d, e.path, e.value), doc)));
}

/** `doc` with the value at `path` replaced (paths that do not exist are made, as far as they can be). */
function setAt(doc: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (Array.isArray(doc) && typeof head === 'number') {
    const copy = [...doc];
    copy[head % (copy.length + 1)] = setAt(copy[head % (copy.length + 1)], rest, value);
    return copy;
  }
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc)) {
    const keys = Object.keys(doc);
    const key = typeof head === 'number' ? keys[head % Math.max(1, keys.length)] ?? String(head) : head!;
    return { ...(doc as Record<string, unknown>), [key]: setAt((doc as Record<string, unknown>)[key], rest, value) };
  }
  return setAt({}, path, value);
}

