import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readFileInRoot, resolveInRoot } from '../../src/host/overlay-read.js';

test('files are read inside the rootfs: symlinks, absolute or relative, never leave it', async (t) => {
  const outside = mkdtempSync(join(tmpdir(), 'ctr-outside-'));
  const root = mkdtempSync(join(tmpdir(), 'ctr-root-'));
  t.after(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });
  writeFileSync(join(outside, 'secret'), 'host secret\n');
  mkdirSync(join(root, 'etc'));
  mkdirSync(join(root, 'data'));
  writeFileSync(join(root, 'data', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(root, 'secret'), 'inside\n');
  symlinkSync('/data/passwd', join(root, 'etc', 'passwd'));
  symlinkSync(`../../../../../../..${outside}/secret`, join(root, 'etc', 'relative-escape'));
  symlinkSync(join(outside, 'secret'), join(root, 'etc', 'absolute-escape'));
  symlinkSync('loop', join(root, 'etc', 'loop'));

  assert.equal(await readFileInRoot(root, '/etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  // Escapes resolve inside the root, where the target does not exist.
  assert.equal(await readFileInRoot(root, '/etc/relative-escape'), undefined);
  assert.equal(await readFileInRoot(root, '/etc/absolute-escape'), undefined);
  assert.equal(await resolveInRoot(root, '/../../secret'), join(root, 'secret'));
  assert.equal(await readFileInRoot(root, '/etc/loop'), undefined);
  assert.equal(await readFileInRoot(root, '/etc/none'), undefined);
  assert.equal(await readFileInRoot(root, '/etc'), undefined, 'a directory is not a file');
});
