/**
 * The stack planner and check as data in, data out: which layers are carried, rewritten or not
 * repeated; what the history says; and that strata store layers are compared without being read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkStack } from '../../src/builder/stack.js';
import { assembleImage } from '../../src/image/assemble.js';
import { LayerScanner } from '../../src/image/layer-scan.js';
import type { Image } from '../../src/image/image.js';
import type { Layer } from '../../src/image/layer.js';
import { planStack, stackTemplate, type StackSource } from '../../src/image/stack.js';
import { storeLayerHistory } from '../../src/image/history.js';
import { StrataError } from '../../src/util/errors.js';

const digest = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}` as const;

/** A layer that must never be read: opening it fails the test. */
function unreadable(c: string): Layer {
  return {
    diffId: digest(c), digest: digest(c), size: 1, mediaType: 'application/vnd.oci.image.layer.v1.tar', compression: 'none',
    open: () => Promise.reject(new Error(`layer ${c} was read`)),
  };
}

function image(layers: Layer[], history: { created_by: string; comment?: string }[], extra: Record<string, unknown> = {}): Image {
  return {
    config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, history, ...extra },
    configBytes: Buffer.from('{}'),
    configDigest: digest('c'),
    layers,
  };
}

const src = (name: string, img: Image, at = '', squash = false): StackSource => ({ name, label: name, image: img, at, squash });

test('planStack: shared layers are not repeated, layers at a path are rewritten, squashes are one step, history says where from', () => {
  const base = unreadable('a');
  const app = unreadable('b');
  const tool = [unreadable('d'), unreadable('e')];
  const plan = planStack([
    src('base', image([base], [{ created_by: 'base layer' }])),
    src('app', image([base, app], [{ created_by: 'base layer' }, { created_by: 'app layer', comment: 'built' }], { config: { Cmd: ['/app'] } })),
    src('tool', image(tool, [{ created_by: 't1' }, { created_by: 't2' }]), 'opt/tool', true),
    src('app-again', image([app], [{ created_by: 'app layer' }], { config: { Cmd: ['/again'] } }), 'srv'),
  ]);
  assert.deepEqual(plan.steps.map((s) => [s.kind, s.source]), [['carry', 0], ['carry', 1], ['rewrite', 2], ['rewrite', 3]]);
  assert.deepEqual(plan.repeated, [{ source: 1, diffId: base.diffId }]);
  assert.equal(plan.steps[1]!.history.comment, 'from app: built');
  assert.match(plan.steps[2]!.history.created_by!, /^strata: squash of 2 layers of tool at \/opt\/tool$/);
  assert.match(plan.steps[3]!.history.created_by!, new RegExp(`^strata: import ${app.digest} of app-again at /srv$`));
  const img = assembleImage(stackTemplate(plan), plan.steps.map((s) => ({ layer: s.kind === 'carry' ? s.layer : unreadable('f'), createdBy: '', history: s.history })), { created: '1970-01-01T00:00:01Z' });
  assert.deepEqual(img.config.config?.Cmd, ['/again'], "the config is the last source's");
  assert.deepEqual(img.config.history?.map((e) => e.created_by), plan.steps.map((s) => s.history.created_by), 'one history entry per stacked layer');
});

test('planStack refuses mixed platforms and more than 127 layers, naming the culprit', () => {
  const a = src('amd', image([unreadable('a')], [{ created_by: 'x' }]));
  const arm = src('arm', { ...image([unreadable('b')], [{ created_by: 'y' }]), config: { ...image([unreadable('b')], []).config, architecture: 'arm64' } });
  assert.throws(() => planStack([a, arm]), (e: Error) => e instanceof StrataError && /arm is for linux\/arm64 but amd is for linux\/amd64/.test(e.message));
  const many = Array.from({ length: 128 }, (_, i) => unreadable(i.toString(16).padStart(2, '0')));
  assert.throws(() => planStack([src('many', image(many, many.map(() => ({ created_by: 'l' }))))]), /128 layers, more than the 127/);
});

test('checkStack compares strata store layers by their recorded store paths and reads none of them', async () => {
  const h = (paths: string[]) => storeLayerHistory(paths);
  const lower = image([unreadable('a')], [{ created_by: h(['/nix/store/aaa-libc']).createdBy, comment: h(['/nix/store/aaa-libc']).comment }]);
  const upper = image([unreadable('b')], [{ created_by: h(['/nix/store/aaa-libc', '/nix/store/bbb-app']).createdBy, comment: h(['/nix/store/aaa-libc', '/nix/store/bbb-app']).comment }]);
  const plan = planStack([src('lower', lower), src('upper', upper)]);
  const checked = await checkStack(plan, new LayerScanner(), { allowShadow: false });
  assert.deepEqual(checked.shadowed, [], 'one store path in two layers is the same content');
});
