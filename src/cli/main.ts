#!/usr/bin/env node
/**
 * The strata CLI. Start-up time is part of every build's time, so this module loads only yargs
 * and the flag definitions: each command's module, and the library it drives, is imported when
 * that command runs (a `strata build` does not load the registry client or image readers unless
 * its flags need them), and the constants a command's flags list (--layering and --format
 * choices, the --max-layers default) are imported by that command's builder, which yargs runs
 * only for the command given.
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { removeHeldTemps } from '../util/temp-paths.js';
import { hideBin } from 'yargs/helpers';
import { StrataError } from '../util/errors.js';
import { registryFlags } from './commands/registry-flags.js';

/** --cache-dir, for `build` and `cache prune`. */
const CACHE_DIR_FLAG = { type: 'string', describe: 'layer cache directory (default: $XDG_CACHE_HOME/strata or ~/.cache/strata)' } as const;

/** Config flags of a new image, for `build` and `stack`. */
const IMAGE_FLAGS = {
  entrypoint: { type: 'string', array: true, describe: 'entrypoint: a JSON array, or one argv element per flag' },
  cmd: { type: 'string', array: true, describe: 'default arguments: a JSON array, or one argv element per flag' },
  env: { alias: 'e', type: 'string', array: true, describe: 'KEY=VALUE (repeatable; merged with the base by key)' },
  workdir: { type: 'string', describe: 'working directory' },
  user: { type: 'string', describe: 'user[:group] the process runs as' },
  label: { alias: 'l', type: 'string', array: true, describe: 'KEY=VALUE label (repeatable)' },
  expose: { type: 'string', array: true, describe: 'exposed port, PORT[/tcp|udp] (repeatable)' },
  volume: { type: 'string', array: true, describe: 'volume mount point (repeatable)' },
  'stop-signal': { type: 'string', describe: 'signal that stops the container' },
  author: { type: 'string', describe: 'image author' },
  arch: { type: 'string', describe: 'architecture (default: the base image\'s, else the host\'s)' },
  os: { type: 'string', describe: 'operating system (default: linux)' },
  variant: { type: 'string', describe: 'architecture variant, e.g. v8' },
  created: { type: 'string', describe: 'image creation time: unix seconds, RFC 3339, or "now" (default: SOURCE_DATE_EPOCH, else 1)' },
} as const;

/** How imported images are combined, for `build --import` and `stack`. */
const IMPORT_FLAGS = {
  squash: { type: 'boolean', default: false, describe: 'merge each imported image\'s layers into one, applying its whiteouts' },
  'allow-shadow': { type: 'boolean', default: false, describe: 'let an upper image replace a lower one\'s file (listed) instead of failing' },
} as const;

/** --progress, for every command that writes an image. */
const PROGRESS_FLAG = { choices: ['auto', 'tty', 'plain', 'none'] as const, default: 'auto' as const, describe: 'progress on stderr: auto (a status line on a terminal, unless --json), tty, plain (a line per layer) or none' } as const;

/** The read-only image store apps are embedded in, for `embed` and `build --embed`. */
const STORE_FLAGS = {
  store: { type: 'string', describe: 'absolute path of the image store in the host image (default /usr/lib/containers/storage)' },
  whiteouts: { choices: ['refuse', 'chardev', 'ostree'] as const, describe: 'what app-layer whiteouts become: refused (default), 0:0 character devices (hosts unpacked by GNU tar or containers-storage vfs), or .ostree-wh. files (ostree/bootc hosts)' },
  'max-app-layers': { type: 'number', describe: 'squash an app\'s layers from the N-th on into one (containers-storage mounts at most 58 from a read-only store)' },
  name: { type: 'string', array: true, describe: 'SRC=NAME:TAG: the name an embedded image takes in the store (default: its registry reference, or the name its archive or layout records)' },
} as const;

/**
 * The output flags of the commands that write a new image from others (`stack`, `embed`); `mtime`
 * and `platform` say what they mean for each command.
 */
async function newImageFlags<T>(y: Argv<T>, what: { mtime: string; platform: string }) {
  const { OUTPUT_FORMATS } = await import('../transports/open-destination.js');
  return y
    .option('output', { alias: 'o', type: 'string', describe: 'output: any -o reference of strata build' })
    .option('push', { type: 'string', describe: 'push to a registry instead: [docker://]HOST/REPO:TAG' })
    .option('format', { choices: OUTPUT_FORMATS, default: 'docker-archive' as const, describe: 'format of a plain-path output' })
    .option('compress', { choices: ['none', 'gzip', 'zstd'] as const, describe: 'compression of the new layers (default: gzip for oci, oci-archive and --push; none for docker-archive)' })
    .option('tag', { alias: 't', type: 'string', array: true, describe: 'image name:tag (repeatable)' })
    .option('platform', { type: 'string', describe: what.platform })
    .option('mtime', { type: 'string', describe: what.mtime })
    .option('progress', PROGRESS_FLAG)
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' })
    .options(IMAGE_FLAGS);
}

/** Flags shared by `build` and `plan`: what decides the layer assignment. */
async function closureOptions<T>(y: Argv<T>, closureRequired = true) {
  const [{ LAYERING_STRATEGIES }, { DEFAULT_MAX_LAYERS }] = await Promise.all([import('../layering/plan.js'), import('../layering/budget.js')]);
  return registryFlags(y)
    .positional('closure', {
      type: 'string',
      demandOption: closureRequired,
      describe: `closure JSON (nix path-info --json --recursive, exportReferencesGraph, or strata plain form), or a store path or ./result, whose closure Nix is asked for${closureRequired ? '' : '; optional when --add, --import or --from give the image content'}`,
    })
    .option('nix-store', { type: 'string', describe: 'store Nix is asked about for a store-path argument (nix --store)' })
    .option('store-dir', { type: 'string', describe: 'logical store directory (default: from the closure, else /nix/store)' })
    .option('root', { type: 'string', array: true, describe: 'root store path (repeatable; default: paths nothing refers to)' })
    .option('max-layers', { type: 'number', default: DEFAULT_MAX_LAYERS, describe: 'total layer budget, base layers and customisation layer included' })
    .option('layering', { choices: LAYERING_STRATEGIES, default: 'stable' as const, describe: 'how store paths are assigned to layers (popularity and auto: nixpkgs-identical plans)' })
    .option('from', { type: 'string', describe: 'base image: docker-archive:FILE, oci:DIR[:REF], oci-archive:FILE[:REF], docker://REF, or a path' })
    .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] to pick from a multi-platform base' })
    .option('previous', { type: 'string', describe: 'previous release image: its layer assignment is kept where possible (--layering stable)' })
    .option('plan-in', { type: 'string', describe: 'previous layer assignment as a plan file (strata plan --json, or a JSON list of lists of store paths)' })
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' });
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const parser = yargs(argv)
    .scriptName('strata')
    .completion('completion', 'print a bash/zsh completion script: strata completion >> ~/.bashrc')
    .usage('$0 <command> [options]\n\nDaemonless, byte-reproducible layered images from Nix closures.')
    .command(
      'build [closure]',
      'build an image from a closure',
      async (y) => {
        const { OUTPUT_FORMATS } = await import('../transports/open-destination.js');
        return (await closureOptions(y, false))
          .example('$0 build closure.json -o app.tar --tag app:1', 'a docker-archive from a closure file')
          .example('$0 build ./result --push reg.example/app:1', "a store path (nix build's result): Nix is asked for the closure")
          .example('$0 build closure.json --from docker://reg/base:1 -o oci:out:app --entrypoint /bin/app', 'on a base image, into an OCI layout')
          .example('$0 build closure.json --previous app-1.tar -o app-2.tar', "keep the previous release's layers where they still fit")
          .option('store-root', { type: 'string', default: '/', describe: 'physical root the store paths are read under' })
          .option('output', { alias: 'o', type: 'string', describe: 'output file or directory, or - for stdout' })
          .option('compress', { choices: ['none', 'gzip', 'zstd'] as const, describe: 'layer compression (default: gzip for oci, oci-archive and --push; none for docker-archive)' })
          .option('cache', { type: 'boolean', default: true, describe: 'use the layer cache (--no-cache builds every layer afresh)' })
          .option('cache-dir', CACHE_DIR_FLAG)
          .option('verify-cache', { type: 'boolean', default: false, describe: 'hash every cached layer before use (by default a layer whose file is unchanged since it was last verified — same inode, size, mtime and ctime — is trusted)' })
          .option('push', { type: 'string', describe: 'push to a registry instead of writing a file: [docker://]HOST/REPO:TAG' })
          .option('format', { choices: OUTPUT_FORMATS, default: 'docker-archive' as const, describe: 'output format' })
          .option('tag', { alias: 't', type: 'string', array: true, describe: 'image name:tag (repeatable)' })
          .option('mtime', { type: 'string', describe: 'mtime of every file in new layers (default: SOURCE_DATE_EPOCH, else 1)' })
          .option('progress', PROGRESS_FLAG)
          .options(IMAGE_FLAGS)
          .option('add', { type: 'string', array: true, describe: 'SRC:DEST — host file, directory or glob put at image path DEST (customisation layer)' })
          .option('bin', { type: 'string', array: true, describe: 'store path whose bin/ entries are linked into /bin' })
          .option('symlink', { type: 'string', array: true, describe: 'LINK:TARGET symlink in the customisation layer' })
          .option('remove', { type: 'string', array: true, describe: 'delete a base image path (written as an OCI whiteout)' })
          .options(IMPORT_FLAGS)
          .option('import', { type: 'string', array: true, describe: 'SRC[=DEST]: stack image SRC on the base, at image path DEST (default /; at / its layers are kept byte for byte)' })
          .option('nix-db', { type: 'boolean', default: false, describe: 'register the closure in a Nix database at /nix/var/nix/db, so Nix in the image knows its store (includeNixDB)' })
          .option('embed', { type: 'string', array: true, describe: 'app image to embed in a read-only image store of the image (see strata embed)' })
          .option('uid', { type: 'number', describe: 'owner uid of every entry of the new layers (default 0)' })
          .option('gid', { type: 'number', describe: 'owner gid of every entry of the new layers (default 0)' })
          .option('uname', { type: 'string', describe: 'owner user name in the new layers\' headers (default root)' })
          .option('gname', { type: 'string', describe: 'owner group name in the new layers\' headers (default root)' })
          .option('chown', { type: 'string', array: true, describe: 'PATH=UID:GID[:recursive]: owner of a customisation-layer path (made a directory when nothing else makes it)' })
          .option('chmod', { type: 'string', array: true, describe: 'PATH=MODE[:recursive]: mode of a customisation-layer path' })
          .option('perms', { type: 'string', array: true, describe: 'REGEX=MODE[:UID:GID]: mode (and owner) of store files whose image path matches (nix2container perms)' })
          .options(STORE_FLAGS);
      },
      async (args) => {
        const { runBuild } = await import('./commands/build.js');
        exitCode = await runBuild(args);
      },
    )
    .command(
      'stack <sources..>',
      'stack images into one, bottom first, sharing their layer blobs (SRC[=DEST] places SRC at image path DEST)',
      async (y) =>
        (await newImageFlags(registryFlags(y), {
          platform: 'OS/ARCH[/VARIANT] to pick from multi-platform sources',
          mtime: 'mtime of directories made for a DEST (default: SOURCE_DATE_EPOCH, else 1)',
        }))
          .example('$0 stack oci:out:kernel oci:out:ovmf -o oci:out:both', 'two images as one, their layers shared')
          .example('$0 stack docker://reg/tool:1=/opt/tool --squash -o tool.tar', 'an image placed at /opt/tool, squashed')
          .positional('sources', { type: 'string', array: true, demandOption: true, describe: 'images, bottom first: any --from reference, optionally =DEST' })
          .options(IMPORT_FLAGS),
      async (args) => {
        const { runStack } = await import('./commands/stack.js');
        exitCode = await runStack(args);
      },
    )
    .command(
      'embed <apps..>',
      'embed app images in a host image as a read-only image store that podman runs them from (bootc physically bound images)',
      async (y) =>
        (await newImageFlags(registryFlags(y), {
          platform: 'OS/ARCH[/VARIANT] to pick from a multi-platform host (the apps follow the host)',
          mtime: 'mtime of the store\'s files and directories (default: SOURCE_DATE_EPOCH, else 1)',
        }))
          .example('$0 embed docker://reg/app:1 --into oci:host:base -o oci:host:apps', "an app in the host's /usr/lib/containers/storage")
          .example('$0 embed oci:apps:web --name oci:apps:web=reg/web:2 --whiteouts chardev --into host.tar -o host-apps.tar', 'name it, and write its whiteouts as devices')
          .positional('apps', { type: 'string', array: true, demandOption: true, describe: 'app images: any --from reference' })
          .option('into', { type: 'string', demandOption: true, describe: 'host image: any --from reference' })
          .options(STORE_FLAGS),
      async (args) => {
        const { runEmbed } = await import('./commands/embed.js');
        exitCode = await runEmbed(args);
      },
    )
    .command(
      'publish <closure>',
      'publish every store path of a closure as one layer, and each as a runnable package image NAME:VERSION',
      (y) =>
        registryFlags(y)
          .example('$0 publish closure.json --to docker://reg/pkgs', 'every store path as a layer and a package image')
          .positional('closure', { type: 'string', demandOption: true, describe: 'closure JSON (nix path-info --json --recursive, exportReferencesGraph, or strata plain form)' })
          .option('to', { type: 'string', demandOption: true, describe: 'package repository: docker://HOST/PREFIX (packages at PREFIX/NAME) or oci:DIR' })
          .option('store-root', { type: 'string', default: '/', describe: 'physical root the store paths are read under' })
          .option('store-dir', { type: 'string', describe: 'logical store directory (default: from the closure, else /nix/store)' })
          .option('root', { type: 'string', array: true, describe: 'root store path (repeatable; default: paths nothing refers to)' })
          .option('compress', { choices: ['none', 'gzip', 'zstd'] as const, describe: 'layer compression (default gzip)' })
          .option('mtime', { type: 'string', describe: 'mtime of every file (default: SOURCE_DATE_EPOCH, else 1); builds with the same share the blobs' })
          .option('cache', { type: 'boolean', default: true, describe: 'use the layer cache (--no-cache builds every layer afresh)' })
          .option('cache-dir', CACHE_DIR_FLAG)
          .option('arch', IMAGE_FLAGS.arch)
          .option('os', IMAGE_FLAGS.os)
          .option('variant', IMAGE_FLAGS.variant)
          .option('created', IMAGE_FLAGS.created)
          .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' }),
      async (args) => {
        const { runPublish } = await import('./commands/publish.js');
        exitCode = await runPublish(args);
      },
    )
    .command(
      'compose <packages..>',
      'an image of published packages, by NAME[@RANGE], from exactly their published layers',
      async (y) => {
        const [{ OUTPUT_FORMATS }, { DEFAULT_MAX_LAYERS }] = await Promise.all([import('../transports/open-destination.js'), import('../layering/budget.js')]);
        return registryFlags(y)
          .example('$0 compose hello@^2 --registry docker://reg/pkgs --bin hello --push reg/app:1', 'an image from published packages')
          .positional('packages', { type: 'string', array: true, demandOption: true, describe: 'NAME or NAME@RANGE (^8, ~1.1, ">=2.39 <3", =1.1.1k), versions ordered as Nix orders them' })
          .option('registry', { type: 'string', demandOption: true, describe: 'package repository strata publish wrote: docker://HOST/PREFIX or oci:DIR' })
          .option('output', { alias: 'o', type: 'string', describe: 'output: any -o reference of strata build' })
          .option('push', { type: 'string', describe: 'push to a registry instead: [docker://]HOST/REPO:TAG' })
          .option('format', { choices: OUTPUT_FORMATS, default: 'docker-archive' as const, describe: 'format of a plain-path output' })
          .option('compress', { choices: ['none', 'gzip', 'zstd'] as const, describe: 'compression of new layers (default: gzip for oci, oci-archive and --push; none for docker-archive)' })
          .option('tag', { alias: 't', type: 'string', array: true, describe: 'image name:tag (repeatable)' })
          .option('mtime', { type: 'string', describe: 'mtime of files in new layers (default: SOURCE_DATE_EPOCH, else 1)' })
          .option('max-layers', { type: 'number', default: DEFAULT_MAX_LAYERS, describe: 'total layer budget; past it the least popular store paths share one new layer' })
          .option('add', { type: 'string', array: true, describe: 'SRC:DEST — host file, directory or glob put at image path DEST (customisation layer)' })
          .option('bin', { type: 'string', array: true, describe: 'composed package NAME whose bin/ entries are linked into /bin' })
          .option('symlink', { type: 'string', array: true, describe: 'LINK:TARGET symlink in the customisation layer' })
          .option('remove', { type: 'string', array: true, describe: 'delete a lower layer\'s path (written as an OCI whiteout)' })
          .option('import', { type: 'string', array: true, describe: 'SRC[=DEST]: stack image SRC under the packages, at image path DEST' })
          .option('lock', { type: 'string', describe: 'lock file: keep the resolutions it records, and record new ones' })
          .option('frozen', { type: 'boolean', default: false, describe: 'with --lock: fail instead of changing any resolution' })
          .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' })
          .options(IMAGE_FLAGS)
          .options(IMPORT_FLAGS);
      },
      async (args) => {
        const { runCompose } = await import('./commands/compose.js');
        exitCode = await runCompose(args);
      },
    )
    .command(
      'plan <closure>',
      'print the layer assignment without building',
      async (y) => (await closureOptions(y)).example('$0 plan closure.json --max-layers 40 --json', 'the layer assignment, without building'),
      async (args) => {
        const { runPlan } = await import('./commands/plan.js');
        exitCode = await runPlan(args);
      },
    )
    .command(
      'inspect <image>',
      'show an image\'s layers, sizes, digests and store paths',
      (y) =>
        registryFlags(y)
          .example('$0 inspect docker://reg/app:1', 'layers, sizes, store paths')
          .example('$0 inspect app-2.tar --previous app-1.tar', 'which layers a client of app-1 already has')
          .positional('image', { type: 'string', demandOption: true, describe: 'docker-archive file, OCI layout dir, oci-archive, or a transport reference' })
          .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] in a multi-platform image' })
          .option('previous', { type: 'string', describe: 'previous release: mark which layers are reused and how much is new' })
          .option('json', { type: 'boolean', default: false }),
      async (args) => {
        const { runInspect } = await import('./commands/inspect.js');
        exitCode = await runInspect(args);
      },
    )
    .command(
      'diff <from> <to>',
      'what changes from one image to another: layers kept, added and removed, store paths, config, and the bytes a client that has the first downloads for the second',
      (y) =>
        registryFlags(y)
          .example('$0 diff app-1.tar app-2.tar', 'what changed, and what a client of app-1 downloads')
          .positional('from', { type: 'string', demandOption: true, describe: 'the image a client has: any --from reference' })
          .positional('to', { type: 'string', demandOption: true, describe: 'the image it moves to' })
          .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] in multi-platform images' })
          .option('store-dir', { type: 'string', describe: 'store directory for layers without strata\'s records (default /nix/store)' })
          .option('json', { type: 'boolean', default: false }),
      async (args) => {
        const { runDiff } = await import('./commands/diff.js');
        exitCode = await runDiff(args);
      },
    )
    .command(
      'export <image>',
      'write an image\'s filesystem as one tar: its layers applied, whiteouts and all (dockerTools.exportImage)',
      (y) =>
        registryFlags(y)
          .example('$0 export oci:out:app -o rootfs.tar', 'the filesystem as one tar')
          .positional('image', { type: 'string', demandOption: true, describe: 'any --from reference' })
          .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'tar file to write, or - for stdout' })
          .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] in a multi-platform image' })
          .option('json', { type: 'boolean', default: false }),
      async (args) => {
        const { runExport } = await import('./commands/export.js');
        exitCode = await runExport(args);
      },
    )
    .command(
      'merge <sources..>',
      'several images in one docker-archive, shared layers once (dockerTools.mergeImages); a load gives every image by its names',
      (y) =>
        registryFlags(y)
          .example('$0 merge app-1.tar docker://reg/tool:2 -o both.tar', 'one archive, both images')
          .example('$0 merge oci:out:app=app:1 oci:out:tool=tool:1 -o both.tar', 'named as given')
          .positional('sources', { type: 'string', array: true, demandOption: true, describe: 'SRC[=NAME:TAG[,NAME:TAG]]: any --from reference, and its names (default: those its source records)' })
          .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the docker-archive to write' })
          .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] to pick from multi-platform sources' })
          .option('json', { type: 'boolean', default: false }),
      async (args) => {
        const { runMerge } = await import('./commands/merge.js');
        exitCode = await runMerge(args);
      },
    )
    .command(
      'push <source> <destination>',
      'copy an image (archive, layout or registry) to a registry, blobs unchanged',
      (y) =>
        registryFlags(y)
          .example('$0 push app.tar docker://reg/app:1', 'an archive to a registry')
          .positional('source', { type: 'string', demandOption: true, describe: 'docker-archive file, OCI layout, oci-archive, or docker://REF' })
          .positional('destination', { type: 'string', demandOption: true, describe: '[docker://]HOST/REPO:TAG' })
          .option('tag', { alias: 't', type: 'string', array: true, describe: 'extra tags in the destination repository' })
          .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] in a multi-platform source' })
          .option('progress', PROGRESS_FLAG)
          .option('json', { type: 'boolean', default: false }),
      async (args) => {
        const { runPush } = await import('./commands/push.js');
        exitCode = await runPush(args);
      },
    )
    .command('index', 'make and edit multi-platform image indexes (any transport)', (y) => {
      const shape = <U>(c: Argv<U>) =>
        registryFlags(c)
          .option('platform', { type: 'string', array: true, describe: 'SRC=OS/ARCH[/VARIANT][,osver=X]: the platform of SRC\'s children (default: from each config)' })
          .option('annotation', { type: 'string', array: true, describe: 'K=V annotation of the index (repeatable)' })
          .option('manifest-annotation', { type: 'string', array: true, describe: 'SRC=K=V annotation of SRC\'s children (repeatable)' })
          .option('format', { choices: ['oci', 'docker'] as const, describe: 'oci: an OCI index (default); docker: a Docker manifest list (Docker children only)' })
          .option('flatten', { type: 'boolean', default: true, describe: 'a source that is an index gives its children (--no-flatten: one nested entry)' })
          .option('json', { type: 'boolean', default: false });
      const run = (action: 'create' | 'append' | 'remove' | 'filter') => async (args: object) => {
        const { runIndex } = await import('./commands/index.js');
        exitCode = await runIndex({ ...(args as object), action } as Parameters<typeof runIndex>[0]);
      };
      return y
        .command('create <sources..>', 'a new index over the sources\' images and indexes', (c) =>
          shape(c).positional('sources', { type: 'string', array: true, demandOption: true }).option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'oci:DIR[:REF], oci-archive:FILE[:REF] or docker://REF' }), run('create'))
        .command('append <destination> <sources..>', 'add the sources\' children to the index at DESTINATION', (c) =>
          shape(c).positional('destination', { type: 'string', demandOption: true }).positional('sources', { type: 'string', array: true, demandOption: true })
            .option('replace', { type: 'boolean', default: false, describe: 'a child for a platform already there replaces the old one in place' }), run('append'))
        .command('remove <destination>', 'drop the children of the given platforms from the index at DESTINATION', (c) =>
          registryFlags(c).positional('destination', { type: 'string', demandOption: true })
            .option('platform', { type: 'string', array: true, demandOption: true, describe: 'OS/ARCH[/VARIANT] to remove (repeatable)' }).option('json', { type: 'boolean', default: false }), run('remove'))
        .command('filter <source>', 'a new index with only some platforms of SOURCE', (c) =>
          registryFlags(c).positional('source', { type: 'string', demandOption: true })
            .option('output', { alias: 'o', type: 'string', demandOption: true })
            .option('platform', { type: 'string', array: true, describe: 'OS/ARCH[/VARIANT] to keep (repeatable; default all)' })
            .option('exclude', { type: 'string', array: true, describe: 'OS/ARCH[/VARIANT] to drop (repeatable)' }).option('json', { type: 'boolean', default: false }), run('filter'))
        .example('$0 index create -o oci:out:multi oci:out:amd64 oci:out:arm64', 'one index over two platforms\' images')
        .example('$0 index append docker://reg/app:1 oci:out:riscv64 --replace', 'add (or replace) a platform in a pushed index')
        .example('$0 index filter docker://reg/app:1 -o oci:out:x86 --platform linux/amd64', 'keep only some platforms')
        .demandCommand(1, 'name an index command: create, append, remove or filter');
    })
    .command('cache', 'manage the layer cache', (y) =>
      y
        .command(
          'prune',
          'shrink the layer cache to --max-size, dropping the blobs used least recently',
          (p) =>
            p
              .option('max-size', { type: 'string', demandOption: true, describe: 'size to keep at most: bytes, or with K/M/G/T (powers of 1000) or Ki/Mi/Gi/Ti' })
              .option('cache-dir', CACHE_DIR_FLAG)
              .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' }),
          async (args) => {
            const { runCachePrune } = await import('./commands/cache.js');
            exitCode = await runCachePrune(args);
          },
        )
        .example('$0 cache prune --max-size 10G', 'at the end of a CI job: keep the 10 GB used most recently')
        .demandCommand(1, 'name a cache command: prune'),
    )
    .demandCommand(1, 'name a command: build, stack, publish, compose, plan, inspect, push, index or cache prune')
    .strict()
    .help()
    .version(`strata version ${packageVersion()}`)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });
  skipHelpCache(parser);
  await parser.parseAsync();
  return exitCode;
}

/**
 * Whenever a command runs, yargs renders that command's whole help text and keeps it, in case
 * the handler later asks for help (its usage instance's cacheHelpMessage). Strata's handlers
 * never do, and failures go through .fail() above, which prints no help. The rendering
 * measures every cell with Intl.Segmenter and Unicode-property regexes: 40-50 ms of a build's
 * start-up, for text nobody sees. The hook is yargs-internal, so it is replaced only where
 * found; with a yargs that lacks it, help is rendered as before (slower, never different).
 * `--help` is unaffected: it renders afresh, and nothing is cached to return instead.
 */
function skipHelpCache(parser: Argv<unknown>): void {
  type Usage = { cacheHelpMessage?: unknown };
  const internal = (parser as unknown as { getInternalMethods?: () => { getUsageInstance?: () => Usage | undefined } }).getInternalMethods;
  const usage = typeof internal === 'function' ? internal.call(parser).getUsageInstance?.() : undefined;
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

/**
 * strata's version, as `strata --version` prints it (in the form skopeo, podman and umoci use):
 * package.json's, read from the package root (dist/src/cli is three levels below it, in the
 * bundle and out of it, and npm and the Nix package both install package.json there).
 */
function packageVersion(): string {
  try {
    const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

class UsageError extends Error {}

function report(err: unknown): number {
  if (err instanceof StrataError) {
    process.stderr.write(`strata: error: ${err.message}\n`);
    return 1;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`strata: ${err.message}\nRun 'strata --help' for usage.\n`);
    return 2;
  }
  process.stderr.write(`strata: internal error (please report): ${err instanceof Error ? err.stack : String(err)}\n`);
  return 70;
}

/**
 * SIGINT (Ctrl-C, a CI cancel) and SIGTERM (a CI timeout, `docker stop`) end the process at once,
 * but not before every temporary file and directory a writer still holds is removed: an output
 * appears whole (renamed into place) or not at all, and nothing is left beside it. A registry
 * tag is untouched too, since a push writes its manifest last. The exit status is the shell's
 * 128 + signal number.
 */
function cleanUpOnSignals(): void {
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  for (const [signal, code] of Object.entries(codes)) {
    process.once(signal, () => {
      const removed = removeHeldTemps();
      process.stderr.write(`strata: interrupted by ${signal}${removed > 0 ? `; removed ${removed} temporary file${removed === 1 ? '' : 's'}` : ''}\n`);
      process.exit(code);
    });
  }
}

cleanUpOnSignals();
main(hideBin(process.argv)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.exitCode = report(err);
  },
);
