/**
 * Rewriting layer tars (imports at a path, squashes) and the squash view. Inputs are made with
 * GNU tar, outputs listed with GNU tar (`tar -tvv`, `--xattrs`), never with strata's reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, linkSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { rewriteTars, type TarInput } from '../../src/tar/rewrite.js';
import { squashView, type ViewMember } from '../../src/tar/squash.js';
import { readTarStream } from '../../src/tar/read-stream.js';
import { findShadows, sourceFiles } from '../../src/image/conflicts.js';
import { StrataError } from '../../src/util/errors.js';
import { tempDir } from '../support/paths.js';

function gnuTar(dir: string, members: readonly string[], out: string, extra: readonly string[] = []): string {
  // GNU tar drops added PAX records when atime/ctime are deleted in the same run: one or the other.
  const pax = extra.some((a) => a.startsWith('--pax-option')) ? [] : ['--pax-option=delete=atime,delete=ctime'];
  execFileSync('tar', ['--format=posix', ...pax, '--sort=name', '--mtime=@7', '--owner=1000', '--group=100', '--numeric-owner', ...extra, '-C', dir, '-cf', out, '--', ...members]);
  return out;
}

async function* bytesOf(file: string): AsyncGenerator<Buffer> {
  yield readFileSync(file);
}

const input = (file: string): TarInput => ({ what: file, open: async () => bytesOf(file) });

async function rewriteToFile(inputs: readonly TarInput[], out: string, prefix: string, view?: ReturnType<typeof squashView>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of rewriteTars(inputs, { prefix, mtime: 3, ...(view ? { view } : {}) })) chunks.push(c);
  writeFileSync(out, Buffer.concat(chunks));
  return out;
}

/** `tar -tvf` lines as [mode-and-owner, name] pairs, read by GNU tar. */
function listing(file: string): string[] {
  const r = spawnSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => {
    const f = l.split(/\s+/);
    return `${f[0]} ${f[1]} ${f.slice(5).join(' ')}`;
  });
}

async function membersOf(file: string): Promise<ViewMember[]> {
  const out: ViewMember[] = [];
  for await (const m of readTarStream(bytesOf(file), file)) out.push({ name: m.header.name.replace(/^\.\//, '').replace(/\/$/, ''), type: m.type });
  return out;
}

test('a layer moved under a prefix: parents first, names and hardlinks prefixed, owners, modes, xattrs and bodies kept, symlinks verbatim', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'bin', 'tool'), '#!/bin/sh\necho tool\n');
  chmodSync(join(root, 'bin', 'tool'), 0o750);
  linkSync(join(root, 'bin', 'tool'), join(root, 'bin', 'tool-again'));
  symlinkSync('/usr/bin/env', join(root, 'bin', 'env'));
  writeFileSync(join(root, 'bin', '.wh.old'), '');
  const long = `${'d'.repeat(90)}/${'f'.repeat(90)}`;
  mkdirSync(join(root, 'd'.repeat(90)));
  writeFileSync(join(root, long), 'long name\n');
  // An xattr as GNU tar records it (a SCHILY.xattr PAX record), here on every member.
  const src = gnuTar(root, ['.'], join(dir, 'src.tar'), ['--pax-option=SCHILY.xattr.user.origin:=gnu']);

  const out = await rewriteToFile([input(src)], join(dir, 'out.tar'), 'opt/tool');
  const lines = listing(out);
  assert.deepEqual(lines.slice(0, 2), ['drwxr-xr-x 0/0 opt/', `${lines[1]!.split(' ')[0]} 1000/100 opt/tool/`], 'opt/ is made (root-owned, 0755) before the source root, which becomes opt/tool/ with its own owner');
  assert.ok(lines.includes('-rwxr-x--- 1000/100 opt/tool/bin/tool'), lines.join('\n'));
  assert.ok(lines.includes('hrwxr-x--- 1000/100 opt/tool/bin/tool-again link to opt/tool/bin/tool'), lines.join('\n'));
  assert.ok(lines.includes('lrwxrwxrwx 1000/100 opt/tool/bin/env -> /usr/bin/env'), 'symlink targets are written verbatim');
  assert.ok(lines.includes('-rw-r--r-- 1000/100 opt/tool/bin/.wh.old'), 'whiteouts move with their directory');
  assert.ok(lines.includes(`-rw-r--r-- 1000/100 opt/tool/${long}`), 'a name longer than ustar holds survives (PAX path)');
  const body = execFileSync('tar', ['-xOf', out, `opt/tool/${long}`]).toString();
  assert.equal(body, 'long name\n');
  const xattrs = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '-tvvf', out], { encoding: 'utf8' }).stdout;
  assert.match(xattrs, /opt\/tool\/bin\/tool\n\s+x: 3 user\.origin/, 'PAX xattr records are carried over');

  const again = await rewriteToFile([input(src)], join(dir, 'again.tar'), 'opt/tool');
  assert.equal(createHash('sha256').update(readFileSync(again)).digest('hex'), createHash('sha256').update(readFileSync(out)).digest('hex'), 'the same input gives the same bytes');
});

test('a member or hardlink escaping with .. is refused, naming the layer and the member', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  mkdirSync(join(root, 'a'), { recursive: true });
  writeFileSync(join(root, 'a', 'evil'), 'x');
  const src = gnuTar(root, ['a/evil'], join(dir, 'evil.tar'), ['-P', '--transform=s,^a/,../,']);
  await assert.rejects(rewriteToFile([input(src)], join(dir, 'o.tar'), 'opt'), (e: Error) => e instanceof StrataError && e.message.includes(src) && e.message.includes('"../evil"') && e.message.includes("'..'"));
});

test('squashView applies whiteouts, opaque directories and replacements to lower layers only', () => {
  const L = (...names: string[]) => names.map((n) => ({ name: n.replace(/\/$/, ''), type: n.endsWith('/') ? ('directory' as const) : ('file' as const) }));
  const view = squashView([
    L('etc/', 'etc/a', 'etc/b', 'dir/', 'dir/x', 'lib/', 'lib/l1', 'swap/', 'swap/inner'),
    L('etc/', 'etc/.wh.a', 'dir/', 'dir/.wh..wh..opq', 'dir/y', 'lib/l2', 'swap', 'etc/.wh.c', 'etc/c'),
    L('etc/a'),
  ]);
  assert.equal(view.get('etc/a'), 2, 're-created above its whiteout');
  assert.equal(view.get('etc/b'), 0);
  assert.equal(view.get('dir/x'), undefined, 'hidden by the opaque directory above');
  assert.equal(view.get('dir/y'), 1, 'the opaque layer keeps its own children');
  assert.equal(view.get('lib/l1'), 0, 'directories merge');
  assert.equal(view.get('lib/l2'), 1);
  assert.equal(view.get('swap'), 1, 'a file replaces a directory');
  assert.equal(view.get('swap/inner'), undefined, 'and hides what the directory held');
  assert.equal(view.get('etc/c'), 1, "a layer's whiteout does not hide its own members");
  assert.equal(view.get('etc'), 1, 'the topmost directory entry wins');
});

test('a squash writes each visible member once, from its layer, without whiteouts', async (t) => {
  const dir = tempDir(t);
  const l1 = join(dir, 'l1');
  const l2 = join(dir, 'l2');
  mkdirSync(join(l1, 'etc'), { recursive: true });
  mkdirSync(join(l1, 'dir'), { recursive: true });
  writeFileSync(join(l1, 'etc', 'a'), 'a1');
  writeFileSync(join(l1, 'etc', 'b'), 'b1');
  writeFileSync(join(l1, 'dir', 'x'), 'x1');
  mkdirSync(join(l2, 'etc'), { recursive: true });
  mkdirSync(join(l2, 'dir'), { recursive: true });
  writeFileSync(join(l2, 'etc', '.wh.a'), '');
  writeFileSync(join(l2, 'etc', 'b'), 'b2');
  writeFileSync(join(l2, 'dir', '.wh..wh..opq'), '');
  writeFileSync(join(l2, 'dir', 'y'), 'y2');
  const t1 = gnuTar(l1, ['etc', 'dir'], join(dir, 'l1.tar'));
  const t2 = gnuTar(l2, ['etc', 'dir'], join(dir, 'l2.tar'));
  const view = squashView([await membersOf(t1), await membersOf(t2)]);
  const out = await rewriteToFile([input(t1), input(t2)], join(dir, 'sq.tar'), '', view);
  const names = listing(out).map((l) => l.split(' ').slice(2).join(' ')).sort();
  assert.deepEqual(names, ['dir/', 'dir/y', 'etc/', 'etc/b'].sort());
  assert.equal(execFileSync('tar', ['-xOf', out, 'etc/b']).toString(), 'b2');
});

test('findShadows: different content at one path is a shadow, same content and directories are not; store paths compare by name', () => {
  const m = (name: string, content?: string) => (content === undefined ? { name, type: 'directory' as const } : { name, type: 'file' as const, content });
  const a = sourceFiles('A', '', [{ members: [m('etc'), m('etc/os-release', 'file 644 sha256:1'), m('etc/same', 'file 644 sha256:s')] }, { storePaths: ['/nix/store/x-a'] }]);
  const b = sourceFiles('B', '', [{ members: [m('etc'), m('etc/os-release', 'file 644 sha256:2'), m('etc/same', 'file 644 sha256:s')] }, { storePaths: ['/nix/store/x-a', '/nix/store/y-b'] }]);
  const c = sourceFiles('C', 'opt/c', [{ members: [m('etc/os-release', 'file 644 sha256:3')] }]);
  assert.deepEqual(findShadows([a, b, c]), [{ path: 'etc/os-release', lower: 'A', upper: 'B' }]);
});
