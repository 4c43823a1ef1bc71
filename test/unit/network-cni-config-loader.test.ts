import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniConfigSource, loadFirstValidCniConfig } from '../../src/cni/cni-config-loader.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

test('the first valid config by file name wins; invalid ones are named when none is usable', (t) => {
  const dir = tempDir('cricket-cniconf-');
  t.after(() => removeDir(dir));
  writeFileSync(join(dir, '05-broken.conflist'), '{');
  writeFileSync(join(dir, '07-noplugins.conflist'), '{"name":"x","plugins":[]}');
  let s = loadFirstValidCniConfig(dir);
  assert.equal(s.ready, false);
  assert.match(!s.ready ? s.message : '', /05-broken\.conflist.*07-noplugins\.conflist: "plugins" must be a non-empty list/);
  writeFileSync(join(dir, '20-single.conf'), '{"cniVersion":"0.4.0","name":"single","type":"bridge"}');
  writeFileSync(join(dir, '30-later.conflist'), '{"cniVersion":"1.0.0","name":"later","plugins":[{"type":"bridge"}]}');
  s = loadFirstValidCniConfig(dir);
  assert.ok(s.ready);
  assert.equal(s.config.name, 'single');
  assert.deepEqual(s.config.list.plugins, [{ cniVersion: '0.4.0', name: 'single', type: 'bridge' }]);
  assert.equal(s.config.cniVersion, '0.4.0');
});

test('CniConfigSource notices a config edited in place', (t) => {
  const dir = tempDir('cricket-cniconf-');
  t.after(() => removeDir(dir));
  const file = join(dir, '10-a.conflist');
  writeFileSync(file, '{"cniVersion":"1.0.0","name":"first","plugins":[{"type":"bridge"}]}');
  const src = new CniConfigSource(dir);
  const a = src.current();
  assert.ok(a.ready && a.config.name === 'first');
  writeFileSync(file, '{"cniVersion":"1.0.0","name":"second-name","plugins":[{"type":"bridge"}]}');
  const b = src.current();
  assert.ok(b.ready && b.config.name === 'second-name');
  assert.equal(new CniConfigSource(join(dir, 'absent')).current().ready, false);
});
