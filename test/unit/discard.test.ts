import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DISCARD_PREFIX, discard, discardsSettled, sweepDiscarded } from '../../src/host/discard.js';

function tree(dir: string): void {
  mkdirSync(join(dir, 'rootfs', 'etc'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{}');
  writeFileSync(join(dir, 'rootfs', 'etc', 'hostname'), 'x');
}

test('discard: the path is gone when it returns, the tree is deleted in the background; nothing there is fine', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'cricket-discard-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const a = join(base, 'a');
  tree(a);
  await discard(a);
  assert.equal(existsSync(a), false);
  await discardsSettled();
  assert.deepEqual(readdirSync(base), [], 'nothing left once the background removal is done');
  await discard(join(base, 'missing'));
  // The same name again (a retry, a new container of that id) never collides with an aside.
  tree(a);
  await discard(a);
  tree(a);
  await discard(a);
  await discardsSettled();
  assert.deepEqual(readdirSync(base), []);
});

test('sweepDiscarded removes what a crash left aside, and only that', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'cricket-discard-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  tree(join(base, `${DISCARD_PREFIX}0123.42.0`));
  tree(join(base, 'keep'));
  await sweepDiscarded(base);
  assert.deepEqual(readdirSync(base), ['keep']);
  await sweepDiscarded(join(base, 'no-such-dir'));
});
