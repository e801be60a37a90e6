import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { openImageSource } from '../../src/transports/open-source.js';
import { storePathsInLayer } from '../../src/image/store-paths.js';
import { tempDir } from '../support/paths.js';
import { readAll, sha } from './helpers.js';

/**
 * The shape nixpkgs' stream_layered_image.py writes, produced here with Python's tarfile (PAX
 * format, as that script uses): layer members with absolute names (`/nix`, `/nix/store/…`),
 * outer members `<sha256 of layer>/layer.tar`, `<sha256 of config>.json` and manifest.json,
 * JSON indented by 4. Our own few lines, written from the published format.
 */
const script = String.raw`
import hashlib, io, json, sys, tarfile
out = sys.argv[1]
long_name = 'zzzz-' + 'verylong' * 20
def layer(paths):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w|') as t:
        for d in ['/nix', '/nix/store']:
            ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 1; t.addfile(ti)
        for p in paths:
            ti = tarfile.TarInfo('/nix/store/' + p); ti.type = tarfile.DIRTYPE; ti.mtime = 1; t.addfile(ti)
            data = ('contents of ' + p).encode()
            ti = tarfile.TarInfo('/nix/store/' + p + '/share/' + 'd/' * 60 + 'file'); ti.size = len(data); ti.mtime = 1
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()
layers = [layer(['aaaa-glibc']), layer(['bbbb-hello', long_name])]
sums = [hashlib.sha256(l).hexdigest() for l in layers]
cfg = json.dumps({'created': '1970-01-01T00:00:01+00:00', 'architecture': 'amd64', 'os': 'linux', 'config': {},
    'rootfs': {'diff_ids': ['sha256:' + s for s in sums], 'type': 'layers'},
    'history': [{'created': '1970-01-01T00:00:01+00:00', 'comment': 'store paths: x'} for s in sums]}, indent=4).encode()
cfg_name = hashlib.sha256(cfg).hexdigest() + '.json'
with tarfile.open(out, mode='w') as t:
    for s, l in zip(sums, layers):
        ti = tarfile.TarInfo(s + '/layer.tar'); ti.size = len(l); ti.mtime = 1; t.addfile(ti, io.BytesIO(l))
    for name, data in [(cfg_name, cfg), ('manifest.json', json.dumps([{'Config': cfg_name, 'RepoTags': ['hello:nix'], 'Layers': [s + '/layer.tar' for s in sums]}], indent=4).encode())]:
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 1; t.addfile(ti, io.BytesIO(data))
    print(json.dumps({'sums': sums, 'long': long_name}))
`;

test('a nixpkgs streamLayeredImage-shaped archive (Python tarfile, PAX) reads, with its store paths', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'nix.tar');
  const info = JSON.parse(execFileSync('python3', ['-c', script, file]).toString()) as { sums: string[]; long: string };
  const src = await openImageSource(`docker-archive:${file}:hello:nix`);
  const img = src.image;
  assert.deepEqual(img.layers.map((l) => l.diffId), info.sums.map((s) => `sha256:${s}`));
  assert.deepEqual(img.layers.map((l) => l.digest), info.sums.map((s) => `sha256:${s}`));
  for (const l of img.layers) assert.equal(sha(await readAll(await l.open())), l.digest);
  assert.deepEqual(await storePathsInLayer(img.layers[0]!, '/nix/store'), ['/nix/store/aaaa-glibc']);
  assert.deepEqual(await storePathsInLayer(img.layers[1]!, '/nix/store'), ['/nix/store/bbbb-hello', `/nix/store/${info.long}`]);
});
